// Unmodified daemons under `baton supervise --protocol notify` (docs/
// unmodified.md): sdkv (C) and sdkv.py, which know nothing of baton, upgraded
// with each strategy, rolled back, watched by the watchdog, and sending
// every notify message, good and bad.
#include <signal.h>

#include "tests/notify/notify_util.h"

namespace baton::harness {
namespace {

using namespace std::chrono_literals;

const std::string kOverlap = "[notify]\nstrategy = \"overlap\"\nready_timeout = \"5s\"\n";
const std::string kSequential = "[notify]\nstrategy = \"sequential\"\nready_timeout = \"5s\"\n";

TEST(NotifyIntegrationTest, OverlapUpgradeCommitsAndStatusShowsTheProtocol) {
  NotifyCluster nc(kOverlap);
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  auto st = nc->Status();
  ASSERT_TRUE(st.json.is_object()) << st.out << st.err;
  EXPECT_EQ(st.json.at("protocol").as_string(), "notify");
  EXPECT_EQ(st.json.at("strategy").as_string(), "overlap");
  const pid_t old_pid = nc->IncumbentPid();
  // The daemon's own STATUS= (sdkv: "serving as pid N", sent with READY=1).
  EXPECT_EQ(st.json.at("daemon_status").as_string(), "serving as pid " + std::to_string(old_pid)) << st.out;
  auto r = nc->Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << nc->SupervisorLog();
  EXPECT_EQ(Outcome(r), "committed");
  EXPECT_TRUE(r.json.at("phases_ms").as_object().contains("spawn")) << r.out;
  EXPECT_TRUE(r.json.at("phases_ms").as_object().contains("ready")) << r.out;
  EXPECT_TRUE(r.json.at("phases_ms").as_object().contains("stop")) << r.out;
  const pid_t new_pid = nc->IncumbentPid();
  EXPECT_NE(new_pid, old_pid);
  EXPECT_FALSE(ProcessRunning(old_pid));
  EXPECT_NE(nc.Healthz().find("pid=" + std::to_string(new_pid)), std::string::npos) << nc.Healthz();
  EXPECT_EQ(ZombiesAfterSettling(nc->supervisor_pid()), 0);
  // The serving generation's STATUS=, not the old one's, in both forms.
  auto text = RunCommand({BinPath("baton"), "status", "--runtime-dir", nc->dir() + "/run"}, 20s);
  EXPECT_NE(text.out.find("status      \"serving as pid " + std::to_string(new_pid) + "\"\n"), std::string::npos)
      << text.out;
}

TEST(NotifyIntegrationTest, OverlapNewThatExitsBeforeReadyRollsBackWithOldUntouched) {
  NotifyCluster nc(kOverlap);
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t old_pid = nc->IncumbentPid();
  auto r = nc->Upgrade(nc->Script("broken", "exec " + BinPath("sdkv") + " --exit-before-ready 7"));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(Reason(r).find("exited with status 7"), std::string::npos) << Reason(r);
  EXPECT_EQ(nc->IncumbentPid(), old_pid);
  EXPECT_TRUE(nc->Healthy());
}

TEST(NotifyIntegrationTest, ADaemonThatNeverSaysReadyIsKilledAndRolledBack) {
  NotifyCluster nc("[notify]\nready_timeout = \"1500ms\"\n");
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t old_pid = nc->IncumbentPid();
  auto r = nc->Upgrade(nc->Script("mute", "exec " + BinPath("sdkv") + " --never-ready"));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(Reason(r).find("not ready within 1500 ms"), std::string::npos) << Reason(r);
  EXPECT_EQ(nc->IncumbentPid(), old_pid);
  EXPECT_EQ(ZombiesAfterSettling(nc->supervisor_pid()), 0);
}

TEST(NotifyIntegrationTest, ErrnoAndStoppingBeforeReadyAreFailures) {
  NotifyCluster nc(kOverlap);
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  auto r = nc->Upgrade(nc->Script("errno", "exec " + BinPath("sdkv") + " --errno 28"));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(Reason(r).find("errno 28"), std::string::npos) << Reason(r);
  r = nc->Upgrade(nc->Script("stopping", "exec " + BinPath("sdkv") + " --stopping-before-ready"));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(Reason(r).find("STOPPING=1"), std::string::npos) << Reason(r);
}

TEST(NotifyIntegrationTest, ExtendTimeoutGivesASlowStartMoreTime) {
  NotifyCluster nc("[notify]\nready_timeout = \"1s\"\n");
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  auto r = nc->Upgrade(nc->Script("slow", "exec " + BinPath("sdkv") + " --extend-ms 5000 --ready-delay-ms 1500"));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(NotifyIntegrationTest, OldThatIgnoresItsStopSignalIsKilledAtTheDrainDeadline) {
  NotifyCluster nc(kOverlap, {"--ignore-term"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t old_pid = nc->IncumbentPid();
  auto r = nc->Upgrade(BinPath("sdkv"), {});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_FALSE(ProcessRunning(old_pid));
  ASSERT_TRUE(r.json.is_object()) << r.out;
  EXPECT_GE(r.json.at("phases_ms").at("stop").to_number<double>(), 2900.0) << r.out;
}

TEST(NotifyIntegrationTest, SequentialUpgradeReportsTheNotReadyWindow) {
  NotifyCluster nc(kSequential);
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t old_pid = nc->IncumbentPid();
  auto r = nc->Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << nc->SupervisorLog();
  EXPECT_NE(Reason(r).find("not ready for"), std::string::npos) << Reason(r);
  EXPECT_NE(nc->IncumbentPid(), old_pid);
  EXPECT_EQ(nc.CountEvents("handoff.not_ready"), 1u);
  EXPECT_NE(nc.Metrics().find("baton_handoff_not_ready_seconds_count 1"), std::string::npos);
}

TEST(NotifyIntegrationTest, SequentialFailureStartsThePreviousBinaryAgain) {
  NotifyCluster nc(kSequential);
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t old_pid = nc->IncumbentPid();
  auto r = nc->Upgrade(nc->Script("broken", "exec " + BinPath("sdkv") + " --exit-before-ready 4"));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << nc->SupervisorLog();
  EXPECT_NE(Reason(r).find("previous binary serves again"), std::string::npos) << Reason(r);
  EXPECT_NE(Reason(r).find("not ready for"), std::string::npos) << Reason(r);
  const pid_t now_pid = nc->IncumbentPid();
  EXPECT_NE(now_pid, old_pid);
  EXPECT_TRUE(nc->Healthy());
  // The previous binary (not the broken one) serves; the next upgrade works.
  EXPECT_EQ(nc->Upgrade().exit_code, 0);
}

TEST(NotifyIntegrationTest, FdStoreCrossesUpgradesAndCrashRestarts) {
  NotifyCluster nc(kOverlap + "fd_store_max = 4\n", {"--store-state"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  EXPECT_NE(nc.Healthz().find("gen=1 "), std::string::npos) << nc.Healthz();
  ASSERT_EQ(nc->Upgrade().exit_code, 0);
  EXPECT_NE(nc.Healthz().find("gen=2 fds=http:state"), std::string::npos) << nc.Healthz();
  const pid_t pid = nc->IncumbentPid();
  ::kill(pid, SIGKILL);
  ASSERT_GT(nc.WaitForNewIncumbent(pid, 20s), 0) << nc->SupervisorLog();
  EXPECT_NE(nc.Healthz().find("gen=3 fds=http:state"), std::string::npos) << nc.Healthz();
}

// A service that parks a descriptor on its way out and dies at once: the
// FDSTORE=1 datagram and the exit reach the supervisor in no fixed order,
// and the datagram must count first (docs/design.md §14), every time.
TEST(NotifyIntegrationTest, ADescriptorStoredJustBeforeACrashReachesTheNextGeneration) {
  NotifyCluster nc(kOverlap + "fd_store_max = 8\n", {"--store-and-die"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  for (int round = 0; round < 4; ++round) {
    const pid_t pid = nc->IncumbentPid();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGUSR1), 0);
    ASSERT_GT(nc.WaitForNewIncumbent(pid, 20s), 0) << nc->SupervisorLog();
    const std::string health = nc.Healthz();
    EXPECT_NE(health.find("last-words-" + std::to_string(pid)), std::string::npos)
        << "round " << round << ": " << health << "\n" << nc->SupervisorLog();
  }
}

// Upgrades, then waits until the replaced generation has exited, so that the
// supervisor no longer holds its pidfd, channel or notify socket: an FD count
// taken right after `baton upgrade` returns may still include them.
int UpgradeAndSettle(Cluster& c) {
  const pid_t old = c.IncumbentPid();
  const int code = c.Upgrade().exit_code;
  for (int i = 0; i < 500 && old > 0 && ProcessRunning(old); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(old > 0 && ProcessRunning(old)) << "the old generation " << old << " did not exit";
  // The supervisor closes them when it handles the exit; wait until its
  // count has held still for 10 polls (200 ms).
  int last = -1;
  for (int i = 0, same = 0; i < 500 && same < 10; ++i) {
    const int n = CountFds(c.supervisor_pid());
    same = n == last ? same + 1 : 0;
    last = n;
    std::this_thread::sleep_for(20ms);
  }
  return code;
}

TEST(NotifyIntegrationTest, FdStoreIsBoundedAndTheSupervisorDoesNotGrowFds) {
  NotifyCluster nc(kOverlap + "fd_store_max = 3\n", {"--store-state", "--store-extra", "2"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ASSERT_EQ(nc->Upgrade().exit_code, 0);
  ASSERT_EQ(UpgradeAndSettle(*nc), 0);
  const int fds_before = CountFds(nc->supervisor_pid());
  const int upgrades = std::getenv("BATON_NOTIFY_UPGRADES") ? std::atoi(std::getenv("BATON_NOTIFY_UPGRADES")) : 30;
  for (int i = 0; i + 1 < upgrades; ++i) ASSERT_EQ(nc->Upgrade().exit_code, 0) << i << nc->SupervisorLog();
  ASSERT_EQ(UpgradeAndSettle(*nc), 0) << nc->SupervisorLog();
  EXPECT_EQ(CountFds(nc->supervisor_pid()), fds_before);
  EXPECT_NE(nc.Healthz().find("gen=" + std::to_string(upgrades + 3) + " "), std::string::npos) << nc.Healthz();
  EXPECT_EQ(nc.CountEvents("notify.rejected"), 1u);  // fdstore_full, logged once
  EXPECT_GE(MetricValue(nc.Metrics(), "baton_notify_rejected_total{kind=\"fdstore_full\"}"), upgrades);
}

TEST(NotifyIntegrationTest, AMissedWatchdogRestartsOutsideAHandoff) {
  NotifyCluster nc(kOverlap + "watchdog = \"600ms\"\n", {"--watchdog", "--watchdog-stop-ms", "1500"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t pid = nc->IncumbentPid();
  ASSERT_TRUE(nc.WaitForEvent("child.watchdog", 20s)) << nc->SupervisorLog();
  EXPECT_GT(nc.WaitForNewIncumbent(pid, 20s), 0) << nc->SupervisorLog();
}

TEST(NotifyIntegrationTest, AMissedWatchdogInsideAHandoffRollsBack) {
  NotifyCluster nc(kOverlap + "watchdog = \"600ms\"\n", {"--watchdog"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t pid = nc->IncumbentPid();
  auto r = nc->Upgrade(
      nc->Script("hung", "exec " + BinPath("sdkv") + " --watchdog --watchdog-stop-ms 0 --ready-delay-ms 3000"));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(Reason(r).find("missed its watchdog"), std::string::npos) << Reason(r);
  EXPECT_EQ(nc->IncumbentPid(), pid);
}

TEST(NotifyIntegrationTest, BadDatagramsAreCountedLoggedOnceAndChangeNothing) {
  NotifyCluster nc(kOverlap, {"--junk", "--mainpid"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t pid = nc->IncumbentPid();
  // Forged: the right socket, the wrong sender (this test process).
  for (int i = 0; i < 3; ++i) SendDatagram(nc->dir() + "/run/notify.1", "READY=1\nSTOPPING=1");
  std::string m;
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < end) {
    m = nc.Metrics();
    if (MetricValue(m, "baton_notify_rejected_total{kind=\"forged\"}") >= 3 &&
        MetricValue(m, "baton_notify_rejected_total{kind=\"unannounced_fd\"}") >= 1) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(MetricValue(m, "baton_notify_rejected_total{kind=\"forged\"}"), 3) << m;
  EXPECT_EQ(MetricValue(m, "baton_notify_rejected_total{kind=\"oversized\"}"), 1) << m;
  EXPECT_EQ(MetricValue(m, "baton_notify_rejected_total{kind=\"malformed\"}"), 1) << m;
  EXPECT_EQ(MetricValue(m, "baton_notify_rejected_total{kind=\"unannounced_fd\"}"), 1) << m;
  EXPECT_EQ(MetricValue(m, "baton_notify_rejected_total{kind=\"mainpid\"}"), 1) << m;
  EXPECT_EQ(nc.CountEvents("notify.rejected"), 5u) << nc.Events();  // once per kind
  EXPECT_EQ(nc->IncumbentPid(), pid);
  EXPECT_TRUE(nc->Healthy());
  EXPECT_EQ(nc->Upgrade().exit_code, 0);  // and the next handoff is unaffected
}

TEST(NotifyIntegrationTest, PythonDaemonUpgradesAndRollsBack) {
  // An interpreter's start on a loaded machine (a parallel suite, a
  // sanitizer build beside it) took over 5 s here: the broken build exits
  // at once, so a generous ready deadline costs this test nothing.
  NotifyCluster nc("[notify]\nstrategy = \"overlap\"\nready_timeout = \"30s\"\n", {}, SDKV_PY);
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t old_pid = nc->IncumbentPid();
  auto r = nc->Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << nc->SupervisorLog();
  EXPECT_NE(nc->IncumbentPid(), old_pid);
  const pid_t serving = nc->IncumbentPid();
  r = nc->Upgrade(nc->Script("broken", std::string("exec ") + SDKV_PY + " --fail-before-ready 9"));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(nc->IncumbentPid(), serving);
}

// A generation that fails its probation while it still serves is reverted by
// a handoff of the daemon's own strategy, not by killing it and starting the
// previous binary cold: the load sees what an upgrade would show it.
class NotifyProbationTest : public ::testing::TestWithParam<const char*> {};

TEST_P(NotifyProbationTest, AFailingProbeIsRevertedByAHandoff) {
  NotifyCluster nc(std::string("[notify]\nstrategy = \"") + GetParam() +
                   "\"\nready_timeout = \"5s\"\n[probation]\nprobe = \"http\"\nprobe_address = "
                   "\"127.0.0.1:@PORT@\"\nprobe_path = \"/healthz\"\nprobe_interval = \"200ms\"\n"
                   "probe_failures = 3\n");
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  const pid_t first = nc->IncumbentPid();
  nc->StartLoad(8, "300s");
  auto r = nc->Upgrade(nc->Script("bad-health", "exec " + BinPath("sdkv") + " --fail-healthz"),
                       {"--probation", "30s"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err << nc->SupervisorLog().substr(0, 8000);
  ASSERT_TRUE(r.json.is_object()) << r.out;
  ASSERT_TRUE(r.json.at("probation").is_object()) << r.out;
  const auto& probation = r.json.at("probation").as_object();
  EXPECT_EQ(probation.at("check").as_string(), "probe") << r.out;
  ASSERT_TRUE(probation.contains("revert") && probation.at("revert").is_object()) << r.out;
  const auto& revert = probation.at("revert").as_object();
  EXPECT_EQ(revert.at("outcome").as_string(), "committed") << r.out;
  // The failed generation took part: it was the revert's incumbent, and it
  // was stopped by its signal, not killed before a cold start.
  EXPECT_EQ(JInt(r.json, {"probation", "revert", "old_pid"}), JInt(r.json, {"new_pid"})) << r.out;
  EXPECT_TRUE(revert.at("phases_ms").as_object().contains("ready")) << r.out;
  const pid_t restored = nc->IncumbentPid();
  EXPECT_EQ(restored, static_cast<pid_t>(JInt(r.json, {"probation", "revert", "new_pid"}))) << r.out;
  EXPECT_NE(restored, first);
  EXPECT_NE(nc.Healthz().find("pid=" + std::to_string(restored)), std::string::npos) << nc.Healthz();
  EXPECT_EQ(nc.CountEvents("revert"), 1u) << nc.Events();
  ExpectCleanLoad(nc->FinishLoad());
}

INSTANTIATE_TEST_SUITE_P(Strategies, NotifyProbationTest, ::testing::Values("overlap", "sequential"));

TEST(NotifyIntegrationTest, BadConfigNamesTheKey) {
  TempDir d("nb");
  const std::string base = "binary = \"/bin/true\"\ndata_dir = \"/tmp\"\n[listeners]\nhttp = \"tcp://127.0.0.1:8080\"\n";
  std::ofstream(d.path() + "/a.toml") << "protocol = \"notify\"\n" << base << "[notify]\nstrategy = \"parallel\"\n";
  auto r = RunCommand({BinPath("baton"), "check-config", d.path() + "/a.toml"}, 20s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE((r.out + r.err).find("notify.strategy"), std::string::npos) << r.out << r.err;
  std::ofstream(d.path() + "/b.toml") << "protocol = \"notify\"\n" << base << "[notify]\nreadiness = \"tcp\"\n";
  r = RunCommand({BinPath("baton"), "check-config", d.path() + "/b.toml"}, 20s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE((r.out + r.err).find("notify.probe_address"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace baton::harness
