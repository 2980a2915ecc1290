// The C ABI through real handoffs: `baton supervise` runs capi_probe (a C
// daemon using only baton.h), `baton upgrade` hands over between two of
// them, and the probes' trace says what each hook received. Hook failures
// come back through the C return code and baton_hook_fail, and roll back.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "baton/baton.h"
#include "tests/unit/capi/probe_cluster.h"
#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool Has(const std::string& trace, const std::string& line) {
  return trace.find(line + "\n") != std::string::npos;
}

TEST(CapiHandoffTest, AnUpgradeCallsEveryHookWithWhatTheHeaderPromises) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  const int cold = c.PidOf("serving");
  // The cold generation found its inherited listener by name and by index.
  EXPECT_TRUE(Has(c.Trace(), std::to_string(cold) + " created role=" + std::to_string(BATON_ROLE_COLD_START) +
                                 " listeners=1 http_fd=3 at0=http:3 nope=8:no inherited listener named 'nope'"))
      << c.Trace();

  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.Log();
  ASSERT_TRUE(c.WaitForTrace(std::regex(std::to_string(cold) + " exit 0\n"), seconds(20))) << c.Trace();
  const std::string t = c.Trace();
  const int next = c.PidOf("warm");
  ASSERT_NE(next, 0) << t;
  const std::string inc = std::to_string(cold), suc = std::to_string(next);
  EXPECT_TRUE(Has(t, suc + " created role=" + std::to_string(BATON_ROLE_SUCCESSOR) +
                         " listeners=1 http_fd=3 at0=http:3 nope=8:no inherited listener named 'nope'"))
      << t;
  // Drain's two forms of the deadline agree.
  EXPECT_TRUE(std::regex_search(t, std::regex(inc + R"( drain remaining_ms=\d+ agree=1\n)"))) << t;
  EXPECT_TRUE(Has(t, inc + " seal size=" + std::to_string(sizeof(baton_seal_report)) +
                         " revision=" + std::to_string(1000 + cold)))
      << t;
  // Begin sees exactly what the incumbent sealed.
  EXPECT_TRUE(std::regex_search(
      t, std::regex(suc + " begin size=" + std::to_string(sizeof(baton_sealed_state)) + " sealed=1 revision=" +
                    std::to_string(1000 + cold) + " fingerprint=fp-" + inc + R"( generation=[1-9]\d* lease_epoch=0\n)")))
      << t;
  // baton_start returns in the successor after its Ready, maybe after the
  // commit that ended `baton upgrade`: its "serving" line may come later.
  EXPECT_TRUE(c.WaitForTrace(std::regex(suc + " serving\n"), seconds(20))) << c.Trace();
  EXPECT_TRUE(Has(t, inc + " retire")) << t;
  EXPECT_EQ(t.find(" resume "), std::string::npos) << t;
}

struct FailureCase {
  const char* hook;
  const char* knob;      // the fail-<hook> file: "<code> <message>"
  const char* expected;  // in `baton upgrade`'s output
  const char* resume;    // the incumbent's resume line after the rollback, or "" for none
};

void ExpectRollback(const FailureCase& fc) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  const int cold = c.PidOf("serving");
  c.Knob(std::string("fail-") + fc.hook, fc.knob);
  auto r = c.Upgrade();
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << c.Log();
  EXPECT_NE(r.out.find(fc.expected), std::string::npos) << r.out << c.Trace();
  const std::string inc = std::to_string(cold);
  if (fc.resume[0] != '\0') {
    EXPECT_TRUE(c.WaitForTrace(std::regex(inc + " " + fc.resume + "\n"), seconds(20))) << c.Trace();
  }
  EXPECT_FALSE(Has(c.Trace(), inc + " retire")) << c.Trace();
  // Once the hook behaves, the same incumbent hands over.
  c.ClearKnob(std::string("fail-") + fc.hook);
  auto again = c.Upgrade();
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err << c.Log();
  EXPECT_TRUE(c.WaitForTrace(std::regex(inc + " retire\n"), seconds(20))) << c.Trace();
}

TEST(CapiHandoffTest, WarmFailureRollsBackWithItsMessage) {
  ExpectRollback({"warm", "1 warm: cache server unavailable", "warm: cache server unavailable", ""});
}

TEST(CapiHandoffTest, DrainFailureRollsBackAndResumes) {
  ExpectRollback({"drain", "4 drain: requests still in flight", "drain: requests still in flight",
                  "resume data_changed=0"});
}

TEST(CapiHandoffTest, SealFailureRollsBackAndResumes) {
  ExpectRollback({"seal", "12 seal: fsync kv.log: Input/output error", "seal: fsync kv.log: Input/output error",
                  "resume data_changed=0"});
}

TEST(CapiHandoffTest, BeginFailureRollsBackAndTheIncumbentReloads) {
  ExpectRollback({"begin", "3 begin: replayed revision 4, sealed 5", "begin: replayed revision 4, sealed 5",
                  "resume data_changed=1"});
}

TEST(CapiHandoffTest, AFailureWithoutMessageNamesTheHook) {
  ExpectRollback({"seal", "12", "seal hook failed", "resume data_changed=0"});
}

TEST(CapiHandoffTest, AReturnValueThatIsNoErrcIsReportedAsSuch) {
  ExpectRollback({"seal", "99 odd", "odd (the hook returned 99, which is no baton_errc)", "resume data_changed=0"});
}

TEST(CapiHandoffTest, AnUnprintableFingerprintRollsBack) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  c.Knob("fingerprint", std::string(1100, 'f'));
  auto r = c.Upgrade();
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << c.Log();
  EXPECT_NE(r.out.find("printable ASCII of at most 1024 bytes"), std::string::npos) << r.out;
}

TEST(CapiHandoffTest, ReturningZeroIgnoresAMessage) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  c.Knob("fail-warm", "0 only a warning");
  auto r = c.Upgrade();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << c.Log();
}

TEST(CapiHandoffTest, RequestExitFromASignalThreadEndsTheGeneration) {
  ProbeCluster c;
  ASSERT_TRUE(c.Start()) << c.Log();
  const int cold = c.PidOf("serving");
  ASSERT_EQ(::kill(cold, SIGTERM), 0);
  EXPECT_TRUE(c.WaitForTrace(std::regex(std::to_string(cold) + " exit 0\n"), seconds(20))) << c.Trace();
}

}  // namespace
}  // namespace baton::harness
