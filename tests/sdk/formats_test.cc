// The example daemons' on-disk formats and their state-schema numbers
// (docs/integrate.md, "State schemas"). Two daemons that declare the same
// number must read each other's data: gokvd and rustkvd write the same
// kv.log byte for byte (schema 2), so they hand over to each other under
// load, both ways, losing nothing. Two different formats declare different
// numbers, so a default pair of them is refused at Hello (exit 4) before any
// side effect, instead of rolling back late or misreading the data.
#include <ostream>
#include <thread>

#include "tests/integration/integration_util.h"
#include "tools/harness/http.h"

namespace baton::harness {
namespace {

const std::string kKvd = BinPath("kvd");
const std::string kGokvd = BinPath("gokvd");
const std::string kRustkvd = BinPath("rustkvd");
const std::string kPykvd = BATON_PYKVD;

Cluster::Options Running(const std::string& binary) {
  Cluster::Options o;
  o.binary = binary;
  return o;
}

TEST(SdkFormatTest, GokvdAndRustkvdHandOverToEachOtherUnderLoad) {
  Cluster c(Running(kGokvd));
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  // Keys are the raw request target, not percent-decoded, by either daemon.
  ASSERT_EQ(HttpStatus(HttpRequest(c.port(), "PUT", "/kv/by%20gokvd", "0")), 200);
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 1; i <= 6; ++i) {
    const bool to_rust = i % 2 == 1;
    auto r = c.Upgrade(to_rust ? kRustkvd : kGokvd);
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 6000);
    EXPECT_EQ(Outcome(r), "committed");
    // What the other one wrote last is here; write one for the next.
    const std::string mine = to_rust ? "/kv/by%20rustkvd" : "/kv/by%20gokvd";
    const std::string theirs = to_rust ? "/kv/by%20gokvd" : "/kv/by%20rustkvd";
    EXPECT_EQ(HttpBody(HttpGet(c.port(), theirs)), std::to_string(i - 1)) << "upgrade " << i;
    ASSERT_EQ(HttpStatus(HttpRequest(c.port(), "PUT", mine, std::to_string(i))), 200);
  }
  // Every acknowledged write of the load, written by either, is read back.
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

struct Pair {
  const char* incumbent;
  const char* successor;
  const char* message;
};

void PrintTo(const Pair& p, std::ostream* os) { *os << p.incumbent << " -> " << p.successor; }

std::string Binary(const std::string& name) {
  if (name == "kvd") return kKvd;
  if (name == "gokvd") return kGokvd;
  if (name == "rustkvd") return kRustkvd;
  return kPykvd;
}

class SdkFormatRefusalTest : public ::testing::TestWithParam<Pair> {};

// Default flags on both sides: nothing but the formats' own numbers.
TEST_P(SdkFormatRefusalTest, ADefaultPairOfDifferentFormatsIsRefusedUpFront) {
  const Pair& p = GetParam();
  Cluster c(Running(Binary(p.incumbent)));
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  ASSERT_EQ(HttpStatus(HttpRequest(c.port(), "PUT", "/kv/k", "v")), 200);
  auto r = c.Upgrade(Binary(p.successor));
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 6000);
  EXPECT_NE(r.out.find(p.message), std::string::npos) << r.out;
  EXPECT_EQ(c.IncumbentPid(), before);
  EXPECT_EQ(HttpBody(HttpGet(c.port(), "/kv/k")), "v");
  // The incumbent never sealed: it still takes writes.
  EXPECT_EQ(HttpStatus(HttpRequest(c.port(), "PUT", "/kv/k", "w")), 200);
  EXPECT_EQ(HttpBody(HttpGet(c.port(), "/kv/k")), "w");
}

INSTANTIATE_TEST_SUITE_P(Pairs, SdkFormatRefusalTest,
                         ::testing::Values(Pair{"kvd", "gokvd", "incumbent speaks [1,1], successor speaks [2,2]"},
                                           Pair{"kvd", "rustkvd", "incumbent speaks [1,1], successor speaks [2,2]"},
                                           Pair{"kvd", "pykvd", "incumbent speaks [1,1], successor speaks [3,3]"},
                                           Pair{"gokvd", "kvd", "incumbent speaks [2,2], successor speaks [1,1]"},
                                           Pair{"rustkvd", "pykvd", "incumbent speaks [2,2], successor speaks [3,3]"},
                                           Pair{"pykvd", "gokvd", "incumbent speaks [3,3], successor speaks [2,2]"}),
                         [](const auto& info) {
                           return std::string(info.param.incumbent) + "_to_" + info.param.successor;
                         });

}  // namespace
}  // namespace baton::harness
