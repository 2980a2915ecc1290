// ownership/libpq.h: libpq is not loaded until the lease first asks for it,
// then every function resolves; a missing or unusable libpq is a clear
// kFailedPrecondition, never a crash. This binary links the daemon library
// (as every daemon does) but not libpq itself.
#include "ownership/libpq.h"

#include <dlfcn.h>

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace baton::ownership {
namespace {

// Whether libpq was already mapped when the process started, i.e. whether
// something this binary links (the daemon library) still needs it.
const bool kLoadedAtStart = ::dlopen(kLibpqSoname, RTLD_LAZY | RTLD_NOLOAD) != nullptr;

const std::string kEmptyLibpq = std::string(BATON_TEST_BIN_DIR) + "/empty-libpq/libpq.so.5";

TEST(LibpqTest, NotLoadedUntilFirstUse) { EXPECT_FALSE(kLoadedAtStart); }

TEST(LibpqTest, LoadsEveryFunctionOnce) {
  auto pq = LoadLibpq();
  ASSERT_TRUE(pq) << pq.error().message;
  ASSERT_NE(*pq, nullptr);
#define BATON_EXPECT_LOADED(name) EXPECT_NE((*pq)->name, nullptr) << #name;
  BATON_LIBPQ_FUNCTIONS(BATON_EXPECT_LOADED)
#undef BATON_EXPECT_LOADED
  EXPECT_NE(::dlopen(kLibpqSoname, RTLD_LAZY | RTLD_NOLOAD), nullptr);
  // Cached: the same table every time.
  auto again = LoadLibpq();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *pq);
  // And it is the real thing.
  char* err = nullptr;
  PQconninfoOption* opts = (*pq)->PQconninfoParse("host=/tmp port=5433", &err);
  ASSERT_NE(opts, nullptr) << (err != nullptr ? err : "out of memory");
  std::string port;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "port" && o->val != nullptr) port = o->val;
  }
  (*pq)->PQconninfoFree(opts);
  EXPECT_EQ(port, "5433");
}

TEST(LibpqTest, ConcurrentFirstUsesGetOneTable) {
  std::vector<const Libpq*> got(8, nullptr);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&got, i] {
      auto pq = LoadLibpq();
      if (pq) got[i] = *pq;
    });
  }
  for (auto& t : threads) t.join();
  for (const Libpq* p : got) {
    EXPECT_NE(p, nullptr);
    EXPECT_EQ(p, got[0]);
  }
}

TEST(LibpqTest, AMissingLibpqIsAClearError) {
  auto pq = LoadLibpqFrom("libpq-baton-missing.so.5");
  ASSERT_FALSE(pq);
  EXPECT_TRUE(pq.error().Is(Errc::kFailedPrecondition)) << pq.error().ToString();
  EXPECT_EQ(
      pq.error().message.rfind("the Postgres lease needs libpq (libpq-baton-missing.so.5, Debian package libpq5): "
                               "libpq-baton-missing.so.5: cannot open shared object file",
                               0),
      0u)
      << pq.error().message;
  // Not cached: the real libpq still loads afterwards.
  EXPECT_TRUE(LoadLibpq());
}

TEST(LibpqTest, ALibpqWithoutItsFunctionsIsAClearError) {
  auto pq = LoadLibpqFrom(kEmptyLibpq.c_str());
  ASSERT_FALSE(pq);
  EXPECT_TRUE(pq.error().Is(Errc::kFailedPrecondition)) << pq.error().ToString();
  EXPECT_EQ(
      pq.error().message.rfind("the Postgres lease needs libpq (" + kEmptyLibpq + ", Debian package libpq5): ", 0), 0u)
      << pq.error().message;
  EXPECT_NE(pq.error().message.find("undefined symbol: PQconnectStartParams"), std::string::npos) << pq.error().message;
}

}  // namespace
}  // namespace baton::ownership
