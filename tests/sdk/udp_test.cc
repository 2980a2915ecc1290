// An SDK's typed helper for a udp:// listener under a real `baton
// supervise`. Compiled once per SDK: BATON_SDK_UDP_PROBE is that SDK's UDP
// probe (sdk/go/internal/udpprobe, sdk/rust/baton/examples/udp_probe.rs;
// one behaviour, one output format), BATON_SDK_SUITE the name of the test
// suite. The probe echoes every datagram on its "udp" listener through the
// helper (Go PacketConn, Rust udp_socket), closes it in its drain, and says
// on stderr what the stream helper makes of "udp" and the datagram helper of
// "http".
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/udp_util.h"
#include "tools/harness/cluster.h"

namespace baton::harness {
namespace {

using std::chrono::seconds;

Cluster::Options ProbeOptions() {
  Cluster::Options o;
  o.binary = BATON_SDK_UDP_PROBE;
  // Port 0: the supervisor picks a free port and shows it. "http" is the
  // harness's own tcp:// listener.
  o.supervise_args = {"--listen", "udp=udp://127.0.0.1:0"};
  return o;
}

// The line of `log` starting with `prefix`, without its newline; "" if none.
std::string LineStarting(const std::string& log, const std::string& prefix) {
  const auto at = log.find(prefix);
  if (at == std::string::npos) return "";
  return log.substr(at, log.find('\n', at) - at);
}

// Every datagram reaches the generation serving through the helper and is
// answered, none refused or lost: the cold start's, and across an upgrade
// (the incumbent closing its socket object in its drain) the successor's,
// on the one socket the supervisor bound.
TEST(BATON_SDK_SUITE, DatagramsReachEachGenerationThroughTheUdpHelper) {
  Cluster c(ProbeOptions());
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const int port = StatusListenerPort(c, "udp", "udp");
  ASSERT_GT(port, 0) << c.Status().out;
  const pid_t first = c.IncumbentPid();
  ASSERT_GT(first, 0);

  UdpPinger pinger(port);
  ASSERT_TRUE(pinger.connected());
  pinger.Start();
  ASSERT_TRUE(pinger.WaitForAnswerFrom(first, seconds(20))) << Describe(pinger.Snapshot()) << c.SupervisorLog();

  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog();
  const pid_t second = c.IncumbentPid();
  ASSERT_GT(second, 0);
  ASSERT_NE(second, first);
  EXPECT_TRUE(c.WaitForLog("udp-probe " + std::to_string(first) + " drained\n", seconds(20))) << c.SupervisorLog();
  ASSERT_TRUE(pinger.WaitForAnswerFrom(second, seconds(20))) << Describe(pinger.Snapshot()) << c.SupervisorLog();

  const auto report = pinger.Stop();
  ExpectEveryDatagramAnswered(report);
  EXPECT_EQ(report.pids, (std::set<long>{first, second})) << Describe(report);
  EXPECT_EQ(UdpInodes(port).size(), 1u);
}

// The stream helper on a datagram socket, and the datagram helper on a
// listening stream socket: INVALID_ARGUMENT (6), naming the listener and
// saying what it is.
TEST(BATON_SDK_SUITE, TheOtherKindsHelperIsAnInvalidArgument) {
  Cluster c(ProbeOptions());
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const std::string pid = std::to_string(c.IncumbentPid());
  const std::string on_udp = "udp-probe " + pid + " stream on udp: ";
  const std::string on_http = "udp-probe " + pid + " datagram on http: ";
  ASSERT_TRUE(c.WaitForLog(on_udp, seconds(20))) << c.SupervisorLog();
  ASSERT_TRUE(c.WaitForLog(on_http, seconds(20))) << c.SupervisorLog();
  const std::string log = c.SupervisorLog();

  const std::string udp = LineStarting(log, on_udp);
  EXPECT_EQ(udp.rfind(on_udp + "code=6 ", 0), 0u) << udp;
  EXPECT_NE(udp.find("\"udp\" is a datagram socket (udp://)"), std::string::npos) << udp;
  const std::string http = LineStarting(log, on_http);
  EXPECT_EQ(http.rfind(on_http + "code=6 ", 0), 0u) << http;
  EXPECT_NE(http.find("\"http\" is a stream listener"), std::string::npos) << http;
}

}  // namespace
}  // namespace baton::harness
