// The bounded FD store (supervisor/fd_store.h) with real descriptors: what
// it keeps, what it closes, and that nothing leaks.
#include "supervisor/fd_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace baton::supervisor {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

// A pipe: the read end goes into the store, the write end stays with the test.
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    r = p[0];
    w = p[1];
  }
  ~Pipe() { ::close(w); }
};

std::vector<OwnedFd> Fds(std::initializer_list<int> fds) {
  std::vector<OwnedFd> out;
  for (int fd : fds) out.emplace_back(fd);
  return out;
}

TEST(FdStoreTest, StoresUpToTheMaximumAndClosesTheRest) {
  FdStore store(2, {});
  Pipe a, b, c;
  auto r = store.Add("x", Fds({a.r, b.r, c.r}));
  EXPECT_EQ(r.stored, 2u);
  EXPECT_EQ(r.refused, 1u);
  EXPECT_FALSE(IsOpen(c.r));
  ASSERT_EQ(store.Entries().size(), 2u);
  EXPECT_EQ(store.Entries()[0].first, "x");
  EXPECT_EQ(store.Entries()[1].first, "x-2");
  EXPECT_TRUE(IsOpen(a.r));
}

TEST(FdStoreTest, TheSameFileStoredAgainIsNotStoredTwice) {
  FdStore store(4, {});
  Pipe a;
  store.Add("x", Fds({a.r}));
  const int dup = ::fcntl(a.r, F_DUPFD_CLOEXEC, 0);
  auto r = store.Add("y", Fds({dup}));
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_FALSE(IsOpen(dup));
  EXPECT_EQ(store.size(), 1u);
}

TEST(FdStoreTest, ANewFileUnderAStoredNameReplacesIt) {
  FdStore store(1, {});
  Pipe a, b;
  store.Add("x", Fds({a.r}));
  auto r = store.Add("x", Fds({b.r}));
  EXPECT_EQ(r.replaced, 1u);
  EXPECT_FALSE(IsOpen(a.r));
  EXPECT_EQ(store.Entries().at(0).second, b.r);
}

TEST(FdStoreTest, ReservedNamesAreRefused) {
  FdStore store(4, {"http"});
  Pipe a;
  EXPECT_EQ(store.Add("http", Fds({a.r})).refused, 1u);
  EXPECT_FALSE(IsOpen(a.r));
  EXPECT_EQ(store.size(), 0u);
}

TEST(FdStoreTest, RemoveClosesTheNameAndItsSiblings) {
  FdStore store(4, {});
  Pipe a, b, c;
  store.Add("x", Fds({a.r, b.r}));
  store.Add("x-y", Fds({c.r}));
  EXPECT_EQ(store.Remove("x"), 2u);
  EXPECT_FALSE(IsOpen(a.r));
  EXPECT_FALSE(IsOpen(b.r));
  EXPECT_TRUE(IsOpen(c.r));
  EXPECT_EQ(store.Remove("nothing"), 0u);
}

TEST(FdStoreTest, DestructionClosesEverything) {
  Pipe a;
  {
    FdStore store(4, {});
    store.Add("x", Fds({a.r}));
  }
  EXPECT_FALSE(IsOpen(a.r));
}

}  // namespace
}  // namespace baton::supervisor
