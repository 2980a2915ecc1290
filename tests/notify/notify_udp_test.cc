// A udp:// listener for an unmodified daemon (docs/unmodified.md): sdkv,
// which knows nothing of baton, finds the bound datagram socket among its
// LISTEN_FDS and echoes on it; datagrams sent all along 10 upgrades are
// answered by some generation and none is refused, with either strategy
// (sequential leaves a gap in which no generation reads: the datagrams
// wait in the socket the supervisor holds).
#include "tests/integration/udp_util.h"
#include "tests/notify/notify_util.h"

namespace baton::harness {
namespace {

void TenUpgradesUnderDatagrams(const std::string& strategy) {
  NotifyCluster nc("[notify]\nstrategy = \"" + strategy + "\"\nready_timeout = \"5s\"\n", {}, BinPath("sdkv"),
                   {"--listen", "dns=udp://127.0.0.1:0"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const int port = StatusListenerPort(*nc, "dns", "udp");
  ASSERT_GT(port, 0) << nc->Status().out;
  // sdkv saw both listeners by name, in order.
  EXPECT_NE(nc.Healthz().find("fds=http:dns"), std::string::npos) << nc.Healthz();

  UdpPinger pinger(port);
  ASSERT_TRUE(pinger.connected());
  pinger.Start();
  pid_t pid = nc->IncumbentPid();
  ASSERT_TRUE(pinger.WaitForAnswerFrom(pid, std::chrono::seconds(20))) << Describe(pinger.Snapshot());
  for (int i = 0; i < 10; ++i) {
    auto r = nc->Upgrade();
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << nc->SupervisorLog();
    const pid_t next = nc.WaitForNewIncumbent(pid, std::chrono::seconds(20));
    ASSERT_GT(next, 0) << "upgrade " << i;
    pid = next;
    ASSERT_TRUE(pinger.WaitForAnswerFrom(pid, std::chrono::seconds(20)))
        << "upgrade " << i << ": " << Describe(pinger.Snapshot());
  }
  const auto report = pinger.Stop();
  ExpectEveryDatagramAnswered(report);
  EXPECT_EQ(report.pids.size(), 11u) << Describe(report);
  EXPECT_EQ(UdpInodes(port).size(), 1u);
}

TEST(NotifyUdpTest, OverlapUpgradesAnswerEveryDatagramNoneRefused) { TenUpgradesUnderDatagrams("overlap"); }

TEST(NotifyUdpTest, SequentialUpgradesAnswerEveryDatagramNoneRefused) { TenUpgradesUnderDatagrams("sequential"); }

}  // namespace
}  // namespace baton::harness
