// The baton-load binary: exit codes and the --json contract.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "tests/unit/load/kv_test_server.h"

namespace baton::load {
namespace {

struct CliRun {
  int exit_code = -1;
  std::string out;
};

// Runs baton-load with `args`; stdout captured, stderr discarded.
CliRun RunCli(const std::string& args) {
  const std::string cmd = std::string(BATON_BIN_DIR) + "/baton-load " + args + " 2>/dev/null";
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(BatonLoadCli, UsageErrorsExit2) {
  EXPECT_EQ(RunCli("").exit_code, 2) << "--target is required";
  EXPECT_EQ(RunCli("--target http://10.0.0.1:80 --duration 1s").exit_code, 2);
  EXPECT_EQ(RunCli("--target nonsense --duration 1s").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 10").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --write-ratio 2").exit_code, 2);
  EXPECT_EQ(RunCli("--help").exit_code, 0);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --gaps-over -1").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --gaps-over x").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --idle-fraction 1.5").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --idle-fraction 0.5 --idle 3").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --idle-fraction 0.5 --close").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --watches -1").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --watches 1 --watch-from 0").exit_code, 2);
  EXPECT_EQ(RunCli("--target http://127.0.0.1:1 --duration 1s --watches 1 --watch-wait x").exit_code, 2);
}

TEST(BatonLoadCli, WatchesAndIdleConnectionsInJson) {
  auto server = test::KvTestServer::Start();
  ASSERT_TRUE(server);
  const CliRun r = RunCli("--target " + server->Url() +
                          " --connections 4 --duration 500ms --json --seed 7 --watches 2 --idle-fraction 0.5"
                          " --burst 100ms --idle 200ms");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  boost::system::error_code ec;
  auto v = boost::json::parse(r.out, ec);
  ASSERT_FALSE(ec) << r.out;
  EXPECT_EQ(v.at("idle_connections").as_int64(), 2);
  const auto& w = v.at("watch").as_object();
  EXPECT_EQ(w.at("streams").as_int64(), 2);
  EXPECT_EQ(w.at("from").as_int64(), 1);
  EXPECT_TRUE(w.at("continuous").as_bool());
  EXPECT_TRUE(w.at("checked").as_bool());
  EXPECT_EQ(w.at("behind").as_int64(), 0);
  EXPECT_EQ(w.at("events").as_int64(), 2 * v.at("writes_acked").as_int64());
}

TEST(BatonLoadCli, TargetDownExits3) {
  std::string url;
  {
    auto server = test::KvTestServer::Start();
    ASSERT_TRUE(server);
    url = server->Url();
  }
  EXPECT_EQ(RunCli("--target " + url + " --duration 200ms").exit_code, 3);
}

TEST(BatonLoadCli, JsonRunAgainstHealthyServer) {
  auto server = test::KvTestServer::Start();
  ASSERT_TRUE(server);
  const CliRun r = RunCli("--target " + server->Url() + " --connections 2 --duration 500ms --json --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  boost::system::error_code ec;
  const auto v = boost::json::parse(r.out, ec);
  ASSERT_FALSE(ec) << "stdout must be exactly one JSON object: " << r.out;
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("errors_total").to_number<uint64_t>(), 0u);
  EXPECT_GT(o.at("writes_acked").to_number<uint64_t>(), 0u);
  EXPECT_EQ(o.at("lost_writes").to_number<uint64_t>(), 0u);
  EXPECT_EQ(o.at("connections").to_number<int>(), 2);
  EXPECT_EQ(o.at("mode").as_string(), "keepalive");
  EXPECT_TRUE(o.contains("timeline"));
  EXPECT_TRUE(o.contains("latency_us"));
  EXPECT_TRUE(o.contains("write_gap_ms"));
}

TEST(BatonLoadCli, GapsOverReportsMonotonicGaps) {
  auto server = test::KvTestServer::Start();
  ASSERT_TRUE(server);
  const auto before = std::chrono::steady_clock::now().time_since_epoch();
  // --gaps-over 0: every gap between acks is logged.
  const CliRun r =
      RunCli("--target " + server->Url() + " --connections 2 --duration 300ms --json --seed 7 --gaps-over 0");
  const auto after = std::chrono::steady_clock::now().time_since_epoch();
  ASSERT_EQ(r.exit_code, 0) << r.out;
  boost::system::error_code ec;
  const auto v = boost::json::parse(r.out, ec);
  ASSERT_FALSE(ec) << r.out;
  const auto& o = v.as_object();
  EXPECT_DOUBLE_EQ(o.at("gaps_over_ms").to_number<double>(), 0.0);
  const auto& gaps = o.at("gaps").as_array();
  ASSERT_FALSE(gaps.empty());
  // Same clock across processes: every gap lies within our [before, after].
  const double lo = std::chrono::duration<double, std::milli>(before).count();
  const double hi = std::chrono::duration<double, std::milli>(after).count();
  double prev = 0;
  for (const auto& g : gaps) {
    const double s = g.at("start_mono_ms").to_number<double>();
    EXPECT_GE(s, lo - 0.001);
    EXPECT_LE(s + g.at("gap_ms").to_number<double>(), hi + 0.001);
    EXPECT_GE(s, prev) << "oldest first";
    prev = s;
  }
}

TEST(BatonLoadCli, HumanSummaryAndFailureExit1) {
  test::KvFaults faults;
  faults.forget_put = 3;
  auto server = test::KvTestServer::Start(faults);
  ASSERT_TRUE(server);
  const CliRun r = RunCli("--target " + server->Url() + " --duration 300ms --close");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_EQ(r.out.rfind("requests ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("lost writes 1 of"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace baton::load
