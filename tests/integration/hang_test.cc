// Hangs, not only deaths: only silence or a deadline may end a handoff, and
// a hung process must not leave the service without a serving generation.
#include <thread>

#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

const std::vector<std::string> kFastLiveness = {"--timeout", "heartbeat=200ms", "--timeout", "liveness=1s",
                                                 "--timeout", "term-grace=1s"};

TEST(HangTest, HookRunningFarPastTheLivenessTimeoutStillCommits) {
  Cluster c({{}, kFastLiveness, {}});
  ASSERT_TRUE(c.Start());
  c.StartLoad(8, "600s");
  // Warm takes 4 s, four liveness timeouts: the library heartbeats meanwhile.
  auto r = c.Upgrade(c.Script("slow", "exec " + BinPath("kvd") + " \"$@\" --warm-delay-ms 4000"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(r.json.is_object());
  EXPECT_GE(r.json.at("phases_ms").at("warm").to_number<double>(), 4000.0) << r.out;
  ExpectCleanLoad(c.FinishLoad());
}

TEST(HangTest, SuccessorHungAfterBeginIsRolledBack) {
  Cluster c({{}, kFastLiveness, {}});
  ASSERT_TRUE(c.Start());
  const pid_t before = c.IncumbentPid();
  c.StartLoad(8, "600s");
  // The successor's io thread stops dead: no heartbeat, no Ready.
  auto r = c.Upgrade(c.Script("hung", "BATON_CRASH_AT=successor.after_begin BATON_CRASH_ACTION=hang exec " +
                                          BinPath("kvd") + " \"$@\""));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("silent"), std::string::npos) << r.out;
  EXPECT_EQ(c.IncumbentPid(), before);
  EXPECT_EQ(c.Upgrade(BinPath("kvd")).exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

TEST(HangTest, RetiredGenerationThatNeverExitsIsKilledAfterItsGrace) {
  // The old generation commits and closes its channel, then never exits:
  // after the drain grace + term grace the supervisor kills it, and says so.
  Cluster c({{"--hang-at-exit"}, {"--timeout", "drain=1s", "--timeout", "term-grace=1s"}, {}});
  ASSERT_TRUE(c.Start());
  const pid_t old_pid = c.IncumbentPid();
  auto r = c.Upgrade(BinPath("kvd"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(c.WaitForLog("\"event\":\"child.retire_timeout\"", std::chrono::seconds(20))) << c.SupervisorLog();
  EXPECT_TRUE(c.WaitForLog("\"pid\":" + std::to_string(old_pid) + ",\"how\":\"killed by signal 9\"",
                           std::chrono::seconds(5)))
      << c.SupervisorLog();
  EXPECT_TRUE(c.Healthy());
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

TEST(HangTest, IncumbentHungInSealIsReplacedWithoutLosingWrites) {
  // The incumbent's hook thread hangs in seal (its io thread still
  // heartbeats): the seal deadline rolls back, the resume deadline finds it
  // stuck, the supervisor kills it and restarts a generation.
  std::vector<std::string> args = kFastLiveness;
  for (const char* a : {"--timeout", "seal=500ms", "--timeout", "resume=1s"}) args.push_back(a);
  Cluster c({{}, args, {"BATON_CRASH_AT=incumbent.in_seal", "BATON_CRASH_ACTION=hang"}});
  ASSERT_TRUE(c.Start());
  const pid_t before = c.IncumbentPid();
  c.StartLoad(8, "600s");
  auto r = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_NE(r.out.find("did not resume in time"), std::string::npos) << r.out;
  bool serving = false;
  for (int i = 0; i < 500 && !serving; ++i) {
    const pid_t now = c.IncumbentPid();
    serving = now > 0 && now != before && c.Healthy();
    if (!serving) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(serving) << c.SupervisorLog().substr(0, 6000);
  auto load = c.FinishLoad();
  ASSERT_TRUE(load.json.is_object()) << load.out;
  // New connections waited in the accept queue meanwhile: never refused,
  // and nothing acknowledged was lost.
  EXPECT_EQ(JInt(load.json, {"errors", "refused"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"lost_writes"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"verify_errors"}), 0) << load.out;
}

}  // namespace
}  // namespace baton::harness
