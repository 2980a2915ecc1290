// `baton upgrade --self` (docs/design.md §15): the supervisor re-executes a
// baton binary in place, under load, keeping its pid, the serving
// generation (same pid, neither drained nor restarted), every listener and
// the caller's connection. A new binary that cannot start or cannot read the
// state is refused by the pre-flight; one that fails to resume after the
// exec hands back to the previous binary in the same pid; one that dies
// after the exec (a crash point) is replaced by the watchdog with the
// previous binary, which re-attaches. The daemon never notices.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "tests/crash/self_upgrade_util.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/http.h"
#include "tools/harness/slowdown.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

// The same supervisor process and the same generation serve, and nothing
// was spawned or drained since `log_from`.
void ExpectUntouched(Cluster& c, pid_t serving, size_t log_from) {
  auto status = c.Status();
  ASSERT_TRUE(status.json.is_object()) << status.out << status.err;
  EXPECT_EQ(JInt(status.json, {"supervisor_pid"}), c.supervisor_pid()) << status.out;
  EXPECT_EQ(JInt(status.json, {"incumbent_pid"}), serving) << status.out;
  EXPECT_EQ(std::string(status.json.at("state").as_string()), "serving") << status.out;
  const std::string log = c.SupervisorLog().substr(log_from);
  EXPECT_EQ(log.find("\"event\":\"child.spawn\""), std::string::npos) << log;
  EXPECT_EQ(log.find("\"event\":\"child.channel_closed\""), std::string::npos) << log;
  EXPECT_TRUE(ProcessRunning(serving));
}

class SelfUpgradeTest : public ::testing::TestWithParam<bool> {};  // --close

TEST_P(SelfUpgradeTest, FiftyInPlaceUnderLoadThenAHandoff) {
  // A liveness timeout well below the 50 rounds' total: every resumed image
  // must give the generation a frame at once, or back-to-back exec's
  // starve it until it gives up on its supervisor.
  Cluster::Options opts;
  opts.supervise_args = {"--timeout", "liveness=" + std::to_string(3 * kSanitizerSlowdown) + "s"};
  Cluster c(opts);
  const pid_t serving = StartLoaded(c, GetParam());
  ASSERT_GT(serving, 0);
  const size_t log_from = c.SupervisorLog().size();
  constexpr int kRounds = 50;
  for (int i = 0; i < kRounds; ++i) {
    auto r = SelfUpgrade(c);
    ASSERT_EQ(r.exit_code, 0) << "round " << i << ": " << r.out << r.err << c.SupervisorLog().substr(log_from);
    EXPECT_EQ(Outcome(r), "COMMITTED") << r.out;
    EXPECT_EQ(JInt(r.json, {"supervisor_pid"}), c.supervisor_pid()) << r.out;
    EXPECT_EQ(JInt(r.json, {"state_version"}), 1) << r.out;
  }
  EXPECT_EQ(Count(c.SupervisorLog().substr(log_from), kSelfUpgraded), static_cast<size_t>(kRounds));
  ExpectUntouched(c, serving, log_from);
  // The resumed supervisor drives a daemon handoff as before.
  auto up = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_NE(c.IncumbentPid(), serving);
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(c.Stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, SelfUpgradeTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "Close" : "KeepAlive"); });

// The metrics listener, its counters and `baton events`' ring go across the
// exec, after a daemon handoff; SIGUSR2 self-upgrades like the command (the
// outcome only in the events).
TEST(SelfUpgradeCarryTest, MetricsListenerEventsAndSigusr2) {
  const int mport = FreePort();
  Cluster::Options opts;
  opts.supervise_args = {"--metrics-listen", "127.0.0.1:" + std::to_string(mport)};
  Cluster c(opts);
  const pid_t serving = StartLoaded(c);
  ASSERT_GT(serving, 0);
  const size_t log_from = c.SupervisorLog().size();
  const std::string committed = "baton_handoffs_total{outcome=\"committed\"} 1";
  ASSERT_EQ(c.Upgrade(BinPath("kvd")).exit_code, 0);
  const pid_t next = c.IncumbentPid();
  EXPECT_NE(HttpBody(HttpGet(mport, "/metrics")).find(committed), std::string::npos);
  ASSERT_EQ(SelfUpgrade(c).exit_code, 0);
  const std::string metrics = HttpGet(mport, "/metrics");
  EXPECT_EQ(HttpStatus(metrics), 200);
  EXPECT_NE(HttpBody(metrics).find(committed), std::string::npos) << "the counters were not carried:\n" << metrics;
  EXPECT_EQ(c.SupervisorLog().find("\"event\":\"metrics.listen\"", log_from), std::string::npos)
      << "bound again instead of carried";
  auto events = RunCommand({BinPath("baton"), "events", "--runtime-dir", c.dir() + "/run", "--json"},
                           std::chrono::seconds(20));
  EXPECT_NE(events.out.find("\"event\":\"supervisor.start\""), std::string::npos) << "the ring was not carried";
  EXPECT_NE(events.out.find(kSelfUpgraded), std::string::npos);
  ASSERT_EQ(::kill(c.supervisor_pid(), SIGUSR2), 0);
  for (int i = 0; i < 1500 && Count(c.SupervisorLog().substr(log_from), kSelfUpgraded) < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Count(c.SupervisorLog().substr(log_from), kSelfUpgraded), 2u);
  EXPECT_EQ(HttpStatus(HttpGet(mport, "/metrics")), 200);
  EXPECT_EQ(c.IncumbentPid(), next);
  EXPECT_TRUE(ProcessRunning(next));
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(c.Stop(), 0);
}

// The pre-flight refuses, nothing changes, and a good self-upgrade follows.
void ExpectRefused(Cluster& c, pid_t serving, const std::string& binary, const std::string& why) {
  const size_t log_from = c.SupervisorLog().size();
  auto r = SelfUpgrade(c, binary);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_EQ(Outcome(r), "REFUSED") << r.out;
  EXPECT_NE(r.out.find(why), std::string::npos) << r.out;
  EXPECT_EQ(c.SupervisorLog().find("\"event\":\"supervisor.self_exec\"", log_from), std::string::npos);
  ExpectUntouched(c, serving, log_from);
}

TEST(SelfUpgradeRefusalTest, ABinaryThatExitsAtStart) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  ExpectRefused(c, serving, c.Script("broken-baton", "echo 'cannot start' >&2; exit 1"), "cannot start");
  EXPECT_EQ(SelfUpgrade(c).exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
}

TEST(SelfUpgradeRefusalTest, AnIncompatibleStateFormat) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  const std::string other = c.Script("baton-format-99", "BATON_TEST_SELF_STATE_VERSION=99 exec " + BinPath("baton") + " \"$@\"");
  ExpectRefused(c, serving, other, "state format 99");
  EXPECT_EQ(SelfUpgrade(c).exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
}

// A baton that reads only state format 1 is handed format 1: a daemon of
// the baton protocol holds nothing format 2 adds (protocol notify's state,
// tests/crash/self_upgrade_notify_test.cc).
TEST(SelfUpgradeFormatTest, AnOlderFormatIsWrittenWhenItCarriesEverything) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  const size_t log_from = c.SupervisorLog().size();
  const std::string old = c.Script("baton-format-1", "BATON_TEST_SELF_STATE_VERSION=1 exec " + BinPath("baton") + " \"$@\"");
  auto r = SelfUpgrade(c, old);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(JInt(r.json, {"state_version"}), 1) << r.out;
  ExpectUntouched(c, serving, log_from);
  EXPECT_EQ(SelfUpgrade(c).exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(c.Stop(), 0);
}

// The pre-flight passes but the exec'd image cannot read the state: it
// re-executes the previous binary (same pid), which answers the caller.
TEST(SelfUpgradeFallbackTest, AResumeFailureRunsThePreviousBinaryAgain) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  const size_t log_from = c.SupervisorLog().size();
  const std::string baton = BinPath("baton");
  const std::string liar = c.Script("baton-liar", "[ \"$1\" = self-check ] && exec " + baton +
                                                      " \"$@\"\nBATON_TEST_SELF_STATE_VERSION=99 exec " + baton + " \"$@\"");
  auto r = SelfUpgrade(c, liar);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(Outcome(r), "ROLLED_BACK") << r.out;
  EXPECT_EQ(JInt(r.json, {"supervisor_pid"}), c.supervisor_pid()) << r.out;
  const std::string log = c.SupervisorLog().substr(log_from);
  EXPECT_NE(log.find("\"event\":\"supervisor.self_resume_failed\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"event\":\"supervisor.self_upgrade_reverted\""), std::string::npos) << log;
  ExpectUntouched(c, serving, log_from);
  // The previous binary, re-executed, upgrades itself again.
  EXPECT_EQ(SelfUpgrade(c).exit_code, 0);
  ExpectUntouched(c, serving, log_from);
  // A baton that does not take the running one's command line (here: it
  // adds a flag it does not know) hands back the same way.
  const std::string strict = c.Script(
      "baton-strict", "[ \"$1\" = self-check ] && exec " + baton + " \"$@\"\nfirst=$1\nshift\nexec " + baton +
                          " \"$first\" --no-such-flag \"$@\"");
  auto r2 = SelfUpgrade(c, strict);
  EXPECT_EQ(r2.exit_code, 3) << r2.out << r2.err;
  EXPECT_NE(r2.out.find("its command line"), std::string::npos) << r2.out;
  EXPECT_EQ(SelfUpgrade(c).exit_code, 0);
  ExpectUntouched(c, serving, log_from);
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(c.Stop(), 0);
}

// The file stops being executable between the pre-flight and the exec:
// execve fails, the image that tried it carries on (same pid, descriptors
// close-on-exec again, the watchdog released and reaped) and says why.
TEST(SelfUpgradeFallbackTest, AFailedExecChangesNothing) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  const size_t log_from = c.SupervisorLog().size();
  const std::string slow =
      c.Script("baton-vanishing", "[ \"$1\" = self-check ] && sleep 2\nexec " + BinPath("baton") + " \"$@\"");
  auto self = std::async(std::launch::async, [&] { return SelfUpgrade(c, slow); });
  ASSERT_TRUE(c.WaitForLog("\"event\":\"supervisor.self_upgrade\"", std::chrono::seconds(30)));
  ASSERT_EQ(::chmod(slow.c_str(), 0644), 0);
  auto r = self.get();
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("Permission denied"), std::string::npos) << r.out;
  EXPECT_NE(c.SupervisorLog().find("\"event\":\"supervisor.self_exec\"", log_from), std::string::npos);
  ExpectUntouched(c, serving, log_from);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0) << "the watchdog was not reaped";
  // Still in charge, and able to upgrade itself and the daemon.
  EXPECT_EQ(SelfUpgrade(c).exit_code, 0);
  EXPECT_EQ(c.Upgrade(BinPath("kvd")).exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(c.Stop(), 0);
}

// While a self-upgrade runs (a slow pre-flight) a daemon upgrade is busy,
// and while a daemon's probation runs a self-upgrade is.
TEST(SelfUpgradeBusyTest, NeitherRunsDuringTheOther) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  const std::string baton = BinPath("baton");
  const std::string slow = c.Script("baton-slow", "[ \"$1\" = self-check ] && sleep 2\nexec " + baton + " \"$@\"");
  auto self = std::async(std::launch::async, [&] { return SelfUpgrade(c, slow); });
  ASSERT_TRUE(c.WaitForLog("\"event\":\"supervisor.self_upgrade\"", std::chrono::seconds(30)));
  auto up = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(up.exit_code, 4) << up.out << up.err;
  EXPECT_NE(up.out.find("upgrading itself"), std::string::npos) << up.out;
  auto s = self.get();
  EXPECT_EQ(s.exit_code, 0) << s.out << s.err;
  EXPECT_EQ(c.IncumbentPid(), serving);

  auto probation = std::async(std::launch::async, [&] { return c.Upgrade(BinPath("kvd"), {"--probation", "3s"}); });
  bool on_probation = false;
  for (int i = 0; i < 1500 && !on_probation; ++i) {
    auto st = c.Status();
    on_probation = JInt(st.json, {"probation_left_ms"}) > 0;
    if (!on_probation) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(on_probation);
  auto busy = SelfUpgrade(c);
  EXPECT_EQ(busy.exit_code, 4) << busy.out << busy.err;
  EXPECT_NE(busy.out.find("probation"), std::string::npos) << busy.out;
  EXPECT_EQ(probation.get().exit_code, 0);
  EXPECT_EQ(SelfUpgrade(c).exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
}

// A crash around the exec: the watchdog starts the previous binary as a
// new supervisor, which re-attaches to the same generation.
class SelfUpgradeCrashTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SelfUpgradeCrashTest, TheWatchdogBringsThePreviousBinaryBack) {
  const std::string point = GetParam();
  Cluster::Options opts;
  opts.env = {"BATON_CRASH_AT=" + point};
  Cluster c(opts);
  const pid_t serving = StartLoaded(c);
  ASSERT_GT(serving, 0);
  const pid_t first = c.supervisor_pid();
  auto r = SelfUpgrade(c);
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;  // the caller lost its supervisor
  const int status = c.WaitSupervisorExit(std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == crashpoints::kCrashExitCode) << "status " << status;
  EXPECT_TRUE(c.WaitForLog("\"event\":\"supervisor.reattach\"", std::chrono::seconds(60))) << c.SupervisorLog();
  const std::string log = c.SupervisorLog();
  EXPECT_NE(log.find("baton crashpoint " + point), std::string::npos) << log;
  auto st = c.Status();
  ASSERT_TRUE(st.json.is_object()) << st.out << st.err;
  const pid_t next = static_cast<pid_t>(JInt(st.json, {"supervisor_pid"}));
  EXPECT_NE(next, first);
  EXPECT_EQ(JInt(st.json, {"incumbent_pid"}), serving) << st.out;
  EXPECT_EQ(std::string(st.json.at("takeover").as_string()), "re-attached to pid " + std::to_string(serving));
  // The previous binary is in charge: it upgrades the daemon as ever.
  auto up = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  ExpectCleanLoad(c.FinishLoad());
  ::kill(next, SIGTERM);
  for (int i = 0; i < 1500 && ProcessRunning(next); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(ProcessRunning(next));
}

INSTANTIATE_TEST_SUITE_P(Points, SelfUpgradeCrashTest,
                         ::testing::Values("supervisor.self_before_exec", "supervisor.self_after_exec",
                                           "supervisor.self_mid_resume"),
                         [](const auto& info) { return TestNameOf(info.param); });

}  // namespace
}  // namespace baton::harness
