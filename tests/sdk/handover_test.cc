// An SDK's descriptor and state handover under a real `baton supervise`.
// Compiled once per SDK: BATON_SDK_PROBE is that SDK's handover probe
// (sdk/go/internal/handoverprobe, sdk/rust/baton/examples/handover_probe.rs,
// tests/sdk/python/handover_probe.py; one behaviour, one trace format),
// BATON_SDK_SUITE the name of the test suite. The incumbent hands over two
// connected socket pairs (each connection with the bytes it read and did not
// process as metadata, its peer as a file) and a state of a MiB; the
// successor must receive names, kinds, metadata and state, and each
// connection must carry what is then written on its peer. A successor
// failing its begin gives everything back to the incumbent's resume.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/unit/capi/accept_steps.h"
#include "tests/unit/capi/probe_cluster.h"

namespace baton::harness {
namespace {

using std::chrono::seconds;

constexpr const char* kHandover = "2 1048576";  // 2 socket pairs, a 1 MiB state

// What generation `pid` received in `hook` from the incumbent `from`.
void ExpectReceived(const std::string& t, const std::string& pid, const std::string& hook, const std::string& from) {
  for (int i = 0; i < 2; ++i) {
    const std::string n = std::to_string(i);
    EXPECT_NE(t.find(pid + " " + hook + " handed conn-" + n + " kind=0 meta=ping-" + from + "-" + n + " read=pong-" +
                     pid + "-" + n + "\n"),
              std::string::npos)
        << hook << " conn-" << n << "\n"
        << t;
    EXPECT_NE(t.find(pid + " " + hook + " handed peer-" + n + " kind=1 meta= read=\n"), std::string::npos)
        << hook << " peer-" << n << "\n"
        << t;
  }
  EXPECT_NE(t.find(pid + " " + hook + " state len=1048576 head=state-" + from + "xxx"), std::string::npos) << t;
}

TEST(BATON_SDK_SUITE, ConnectionsAndStateReachTheSuccessor) {
  ProbeCluster c(BATON_SDK_PROBE);
  ASSERT_TRUE(c.Start()) << c.Log();
  const std::string inc = std::to_string(c.PidOf("serving"));
  // Outside drain and seal: FAILED_PRECONDITION (3).
  EXPECT_TRUE(c.WaitForTrace(std::regex(inc + " outside=3\n"), seconds(5))) << c.Trace();
  c.Knob("handover", kHandover);
  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.Log();
  const std::string suc = std::to_string(c.PidOf("warm"));
  ASSERT_TRUE(c.WaitForTrace(std::regex(suc + " serving\n"), seconds(20))) << c.Trace();
  ASSERT_TRUE(c.WaitForTrace(std::regex(inc + " retire\n"), seconds(20))) << c.Trace();
  const std::string t = c.Trace();
  // A pipe as a connection, a name twice: INVALID_ARGUMENT (6), the
  // descriptor still the caller's.
  EXPECT_NE(t.find(inc + " refused pipe=6 twice=6 open=1\n"), std::string::npos) << t;
  ExpectReceived(t, suc, "begin", inc);
  EXPECT_EQ(t.find(" resume "), std::string::npos) << t;
}

// A successor that did not accept a handover is handed nothing: the
// incumbent sees it in its drain, its hand-over and state are refused
// (FAILED_PRECONDITION, the socket still its own), and the successor's
// begin takes nothing. The next successor, accepting again, gets it all.
TEST(BATON_SDK_SUITE, ASuccessorThatDoesNotAcceptIsHandedNothing) {
  ProbeCluster c(BATON_SDK_PROBE);
  std::string inc, suc, next;
  ASSERT_NO_FATAL_FAILURE(UpgradeToASuccessorThatDoesNotAccept(c, kHandover, &inc, &suc));
  const std::string t = c.Trace();
  EXPECT_NE(t.find(inc + " state_unaccepted=3\n"), std::string::npos) << t;
  EXPECT_NE(t.find(suc + " begin state none\n"), std::string::npos) << t;
  ASSERT_NO_FATAL_FAILURE(UpgradeToASuccessorThatAcceptsAgain(c, suc, &next));
  ExpectReceived(c.Trace(), next, "begin", suc);
}

TEST(BATON_SDK_SUITE, ARollbackGivesEverythingBackToTheIncumbent) {
  ProbeCluster c(BATON_SDK_PROBE);
  ASSERT_TRUE(c.Start()) << c.Log();
  const std::string inc = std::to_string(c.PidOf("serving"));
  c.Knob("handover", kHandover);
  // The successor receives everything, uses it, then fails its begin.
  c.Knob("fail-begin", "begin: refusing");
  auto r = c.Upgrade();
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << c.Log();
  EXPECT_NE(r.out.find("begin: refusing"), std::string::npos) << r.out;
  ASSERT_TRUE(c.WaitForTrace(std::regex(inc + " resume state len="), seconds(20))) << c.Trace();
  const std::string suc = std::to_string(c.PidOf("warm"));
  ExpectReceived(c.Trace(), suc, "begin", inc);
  // Back to the incumbent, which finds its connections working.
  ExpectReceived(c.Trace(), inc, "resume", inc);

  // And the next upgrade hands over again, from the same incumbent.
  c.ClearKnob("fail-begin");
  r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.Log();
  const std::string next = std::to_string(c.LastPidOf("warm\n"));
  ASSERT_NE(next, suc);
  ASSERT_TRUE(c.WaitForTrace(std::regex(next + " serving\n"), seconds(20))) << c.Trace();
  ASSERT_TRUE(c.WaitForTrace(std::regex(inc + " retire\n"), seconds(20))) << c.Trace();
  const std::string t = c.Trace();
  ExpectReceived(t, next, "begin", inc);
  EXPECT_EQ(t.find("\n" + suc + " serving\n"), std::string::npos) << "the refused successor served\n" << t;
}

}  // namespace
}  // namespace baton::harness
