// udp:// listeners with a daemon on the public C++ API (udp_echo_daemon):
// the supervisor binds the datagram socket once, every generation answers
// on it, and no datagram is refused or lost across upgrades and across a
// self-upgrade of the supervisor.
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "tests/crash/self_upgrade_util.h"
#include "tests/integration/udp_util.h"
#include "tools/harness/cluster.h"

namespace baton::harness {
namespace {

Cluster::Options EchoOptions() {
  Cluster::Options o;
  o.binary = HelperPath("udp_echo_daemon");
  // Port 0: the supervisor picks a free port and shows it.
  o.supervise_args = {"--listen", "udp=udp://127.0.0.1:0"};
  return o;
}

TEST(UdpTest, DatagramsAreAnsweredAcrossTenUpgradesNoneRefused) {
  Cluster c(EchoOptions());
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const int port = StatusListenerPort(c, "udp", "udp");
  ASSERT_GT(port, 0) << c.Status().out;
  // The log names it as it names the tcp one, the port resolved.
  EXPECT_NE(c.SupervisorLog().find("udp=udp://127.0.0.1:" + std::to_string(port)), std::string::npos)
      << c.SupervisorLog();
  const auto text = RunCommand({BinPath("baton"), "status", "--runtime-dir", c.dir() + "/run"}, std::chrono::seconds(20));
  EXPECT_NE(text.out.find("udp=udp://127.0.0.1:" + std::to_string(port)), std::string::npos) << text.out;

  UdpPinger pinger(port);
  ASSERT_TRUE(pinger.connected());
  pinger.Start();
  pid_t pid = c.IncumbentPid();
  ASSERT_TRUE(pinger.WaitForAnswerFrom(pid, std::chrono::seconds(20))) << Describe(pinger.Snapshot());
  for (int i = 0; i < 10; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << c.SupervisorLog();
    const pid_t next = c.IncumbentPid();
    ASSERT_GT(next, 0);
    ASSERT_NE(next, pid) << "upgrade " << i;
    pid = next;
    // The new generation answers on the socket the supervisor kept.
    ASSERT_TRUE(pinger.WaitForAnswerFrom(pid, std::chrono::seconds(20)))
        << "upgrade " << i << ": " << Describe(pinger.Snapshot());
  }
  const auto report = pinger.Stop();
  ExpectEveryDatagramAnswered(report);
  EXPECT_EQ(report.pids.size(), 11u) << Describe(report);
  EXPECT_GT(report.sent, 100u) << Describe(report);
  // Still the one socket the supervisor bound.
  EXPECT_EQ(UdpInodes(port).size(), 1u);
}

TEST(UdpTest, SelfUpgradeKeepsTheSameUdpSocketAnswering) {
  Cluster c(EchoOptions());
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const int port = StatusListenerPort(c, "udp", "udp");
  ASSERT_GT(port, 0) << c.Status().out;
  const auto before = UdpInodes(port);
  ASSERT_EQ(before.size(), 1u);
  const unsigned long inode = *before.begin();
  ASSERT_TRUE(HoldsSocket(c.supervisor_pid(), inode));

  UdpPinger pinger(port);
  ASSERT_TRUE(pinger.connected());
  pinger.Start();
  const pid_t gen = c.IncumbentPid();
  ASSERT_TRUE(pinger.WaitForAnswerFrom(gen, std::chrono::seconds(20))) << Describe(pinger.Snapshot());
  const uint64_t answered_before = pinger.Snapshot().answered;

  auto r = SelfUpgrade(c);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog();
  EXPECT_EQ(Count(c.SupervisorLog(), kSelfUpgraded), 1u);
  // Same supervisor pid, same socket (inode), still bound to the port, and
  // the generation, untouched, still answers on it.
  ASSERT_TRUE(ProcessRunning(c.supervisor_pid()));
  EXPECT_EQ(UdpInodes(port), before);
  EXPECT_TRUE(HoldsSocket(c.supervisor_pid(), inode));
  EXPECT_EQ(StatusListenerPort(c, "udp", "udp"), port);
  EXPECT_EQ(c.IncumbentPid(), gen);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (pinger.Snapshot().answered < answered_before + 50 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // And an upgrade after it hands the same socket to the next generation.
  auto up = c.Upgrade();
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << c.SupervisorLog();
  const pid_t next = c.IncumbentPid();
  ASSERT_NE(next, gen);
  ASSERT_TRUE(pinger.WaitForAnswerFrom(next, std::chrono::seconds(20))) << Describe(pinger.Snapshot());
  EXPECT_EQ(UdpInodes(port), before);

  const auto report = pinger.Stop();
  EXPECT_GE(report.answered, answered_before + 50) << Describe(report);
  ExpectEveryDatagramAnswered(report);
}

// The config file's [listeners] takes udp:// as --listen does: check-config
// shows it, supervise binds it (port 0 resolved in status) and the daemon
// answers on it.
TEST(UdpTest, ConfigFileUdpListenerIsCheckedBoundAndServed) {
  const TempDir tmp("udpcfg");
  const std::string& dir = tmp.path();
  ::mkdir((dir + "/data").c_str(), 0755);
  const int http_port = FreePort();
  const std::string cfg = dir + "/echo.toml";
  std::ofstream(cfg) << "binary = \"" << HelperPath("udp_echo_daemon") << "\"\n"
                     << "data_dir = \"" << dir << "/data\"\n"
                     << "runtime_dir = \"" << dir << "/run\"\n"
                     << "[listeners]\n"
                     << "http = \"tcp://127.0.0.1:" << http_port << "\"\n"
                     << "udp = \"udp://127.0.0.1:0\"\n";
  auto check = RunCommand({BinPath("baton"), "check-config", cfg}, std::chrono::seconds(20));
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("listener     udp = udp://127.0.0.1:0"), std::string::npos) << check.out;

  const pid_t sup = SpawnBackground({BinPath("baton"), "supervise", "--config", cfg}, {}, dir + "/out", dir + "/err");
  ASSERT_GT(sup, 0);
  std::string listeners;
  int port = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (port == 0 && std::chrono::steady_clock::now() < end) {
    auto st = RunCommand({BinPath("baton"), "status", "--runtime-dir", dir + "/run", "--json"}, std::chrono::seconds(5));
    if (st.exit_code == 0 && st.json.is_object() && st.json.at("incumbent_pid").to_number<int64_t>() > 0) {
      for (const auto& l : st.json.at("listeners").as_array()) {
        const std::string text(l.as_string());
        if (text.rfind("udp=udp://127.0.0.1:", 0) == 0) port = std::stoi(text.substr(20));
      }
    }
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(port, 0) << ReadAll(dir + "/err");
  UdpPinger pinger(port);
  ASSERT_TRUE(pinger.connected());
  pinger.Start();
  const auto answered_by = [&] { return pinger.Snapshot().answered; };
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (answered_by() < 20 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto report = pinger.Stop();
  EXPECT_GE(report.answered, 20u) << Describe(report) << ReadAll(dir + "/err");
  EXPECT_EQ(report.refused, 0u) << Describe(report);
  ::kill(sup, SIGTERM);
  EXPECT_GE(WaitFor(sup, std::chrono::seconds(30)), 0);
}

// A supervisor killed and restarted re-attaches to the generation that
// served on; the new supervisor takes the very UDP socket over from it
// (checked as a bound datagram socket on the configured port).
TEST(UdpTest, ReattachTakesTheSameUdpSocketOver) {
  const int port = FreeUdpPort();
  ASSERT_GT(port, 0);
  Cluster::Options o = EchoOptions();
  o.supervise_args = {"--listen", "udp=udp://127.0.0.1:" + std::to_string(port)};
  Cluster c(o);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const auto before = UdpInodes(port);
  ASSERT_EQ(before.size(), 1u);
  UdpPinger pinger(port);
  ASSERT_TRUE(pinger.connected());
  pinger.Start();
  const pid_t gen = c.IncumbentPid();
  ASSERT_TRUE(pinger.WaitForAnswerFrom(gen, std::chrono::seconds(20))) << Describe(pinger.Snapshot());

  c.KillSupervisor();
  ASSERT_TRUE(c.WaitForReattachSocket(gen, std::chrono::seconds(30))) << c.SupervisorLog();
  const size_t log_from = c.SupervisorLog().size();
  ASSERT_TRUE(c.RestartSupervisor()) << c.SupervisorLog().substr(log_from);
  const std::string log = c.SupervisorLog().substr(log_from);
  EXPECT_NE(log.find("\"event\":\"supervisor.reattach\""), std::string::npos) << log;
  EXPECT_NE(log.find("udp=udp://127.0.0.1:" + std::to_string(port)), std::string::npos) << log;
  EXPECT_EQ(c.IncumbentPid(), gen);
  EXPECT_EQ(UdpInodes(port), before);
  EXPECT_TRUE(HoldsSocket(c.supervisor_pid(), *before.begin()));

  auto up = c.Upgrade();
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << c.SupervisorLog().substr(log_from);
  const pid_t next = c.IncumbentPid();
  ASSERT_NE(next, gen);
  ASSERT_TRUE(pinger.WaitForAnswerFrom(next, std::chrono::seconds(20))) << Describe(pinger.Snapshot());
  const auto report = pinger.Stop();
  EXPECT_EQ(report.refused, 0u) << Describe(report);
  EXPECT_EQ(report.lost, 0u) << Describe(report);
  EXPECT_EQ(report.answered, report.sent) << Describe(report);
  EXPECT_EQ(UdpInodes(port), before);
}

}  // namespace
}  // namespace baton::harness
