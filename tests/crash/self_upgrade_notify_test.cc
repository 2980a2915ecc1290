// `baton upgrade --self` (docs/design.md §15) with a daemon of protocol
// notify (§14): sdkv, which knows nothing of baton, keeps its pid, its
// listeners and its load through in-place re-executions of the supervisor;
// its readiness, its last STATUS=, its watchdog and the FD store go across
// the exec (state format 2), and the resumed supervisor hands the stored
// descriptor to the next generation of a normal upgrade. A generation that
// is not ready yet, and a baton that reads only format 1, are refused.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>

#include "crashpoints/crashpoints.h"
#include "tests/crash/self_upgrade_util.h"
#include "tests/notify/notify_util.h"

namespace baton::harness {
namespace {

using namespace std::chrono_literals;

const std::string kConfig = "[notify]\nstrategy = \"overlap\"\nready_timeout = \"5s\"\n";

// Waits until `baton status` says the generation is ready ("serving"):
// the HTTP health check Start() waits for comes before READY=1.
bool WaitServing(Cluster& c) {
  for (int i = 0; i < 1000; ++i) {
    auto st = c.Status();
    if (st.json.is_object() && st.json.as_object().contains("state") && st.json.at("state").as_string() == "serving") {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// Files in `dir` (sdkv writes one per key).
size_t FilesIn(const std::string& dir) {
  size_t n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// The same supervisor and the same generation serve, nothing was spawned,
// and neither the watchdog nor the ready deadline fired since `log_from`.
void ExpectUntouched(NotifyCluster& nc, pid_t serving, size_t log_from) {
  auto status = nc->Status();
  ASSERT_TRUE(status.json.is_object()) << status.out << status.err;
  EXPECT_EQ(JInt(status.json, {"supervisor_pid"}), nc->supervisor_pid()) << status.out;
  EXPECT_EQ(JInt(status.json, {"incumbent_pid"}), serving) << status.out;
  EXPECT_EQ(std::string(status.json.at("state").as_string()), "serving") << status.out;
  const std::string log = nc->SupervisorLog().substr(log_from);
  for (const char* e : {"child.spawn", "child.watchdog", "child.not_ready", "child.exit", "notify.rejected"}) {
    EXPECT_EQ(log.find(std::string("\"event\":\"") + e + "\""), std::string::npos) << e << "\n" << log;
  }
  EXPECT_TRUE(ProcessRunning(serving));
  EXPECT_NE(nc.Healthz().find("pid=" + std::to_string(serving) + " "), std::string::npos) << nc.Healthz();
}

class SelfUpgradeNotifyTest : public ::testing::TestWithParam<bool> {};  // baton-load --close

TEST_P(SelfUpgradeNotifyTest, TenInPlaceUnderLoadThenTheFdStoreCrossesAHandoff) {
  // sdkv parks a memfd (its generation counter) in the FD store and pings
  // the watchdog at a third of its period.
  NotifyCluster nc(kConfig + "fd_store_max = 4\nwatchdog = \"3s\"\n", {"--store-state", "--watchdog"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ASSERT_TRUE(WaitServing(*nc)) << nc->SupervisorLog();
  const pid_t serving = nc->IncumbentPid();
  ASSERT_GT(serving, 0);
  EXPECT_NE(nc.Healthz().find("gen=1 fds=http\n"), std::string::npos) << nc.Healthz();
  const size_t log_from = nc->SupervisorLog().size();
  nc->StartLoad(8, "600s", GetParam());
  const std::string data = nc->dir() + "/data";
  for (int i = 0; i < 1500 && FilesIn(data) < 50; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_GE(FilesIn(data), 50u) << "the load does not write";
  constexpr int kRounds = 10;
  for (int i = 0; i < kRounds; ++i) {
    auto r = SelfUpgrade(*nc);
    ASSERT_EQ(r.exit_code, 0) << "round " << i << ": " << r.out << r.err << nc->SupervisorLog().substr(log_from);
    EXPECT_EQ(Outcome(r), "COMMITTED") << r.out;
    EXPECT_EQ(JInt(r.json, {"supervisor_pid"}), nc->supervisor_pid()) << r.out;
    EXPECT_EQ(JInt(r.json, {"state_version"}), 2) << r.out;
  }
  const std::string log = nc->SupervisorLog().substr(log_from);
  EXPECT_EQ(Count(log, kSelfUpgraded), static_cast<size_t>(kRounds)) << log;
  // Each resumed image holds the daemon's STATUS= and the stored memfd.
  EXPECT_EQ(Count(log, "\"status\":\"serving as pid " + std::to_string(serving) + "\""), static_cast<size_t>(kRounds))
      << log;
  EXPECT_EQ(Count(log, "\"fd_store\":1"), static_cast<size_t>(kRounds)) << log;
  ExpectUntouched(nc, serving, log_from);
  EXPECT_NE(nc.Healthz().find(" gen=1 "), std::string::npos) << nc.Healthz();  // never restarted
  // A daemon handoff right after the self-upgrades commits, and the new
  // generation finds the stored descriptor (its counter moves on to 2).
  auto up = nc->Upgrade();
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << nc->SupervisorLog().substr(log_from);
  EXPECT_NE(nc->IncumbentPid(), serving);
  EXPECT_NE(nc.Healthz().find("gen=2 fds=http:state"), std::string::npos) << nc.Healthz();
  ExpectCleanLoad(nc->FinishLoad());
  EXPECT_EQ(nc->Stop(), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, SelfUpgradeNotifyTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "Close" : "KeepAlive"); });

// The watchdog holds while the daemon pings through self-upgrades, and a
// daemon that stops pinging afterwards is still caught by the resumed image
// (which re-armed it) and restarted.
TEST(SelfUpgradeNotifyWatchdogTest, AMissAfterASelfUpgradeIsStillCaught) {
  NotifyCluster nc(kConfig + "watchdog = \"600ms\"\n", {"--watchdog", "--watchdog-stop-file", "@CONF@/stop"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ASSERT_TRUE(WaitServing(*nc)) << nc->SupervisorLog();
  const pid_t serving = nc->IncumbentPid();
  const size_t log_from = nc->SupervisorLog().size();
  for (int i = 0; i < 3; ++i) {
    auto r = SelfUpgrade(*nc);
    ASSERT_EQ(r.exit_code, 0) << i << ": " << r.out << r.err << nc->SupervisorLog().substr(log_from);
  }
  ExpectUntouched(nc, serving, log_from);
  const std::string stop = nc.Write("stop", "");
  ASSERT_TRUE(nc.WaitForEvent("child.watchdog", 20s)) << nc->SupervisorLog().substr(log_from);
  EXPECT_NE(nc->SupervisorLog().find("pid " + std::to_string(serving) + " missed its watchdog", log_from),
            std::string::npos)
      << nc->SupervisorLog().substr(log_from);
  std::remove(stop.c_str());  // the restarted generation pings again
  EXPECT_GT(nc.WaitForNewIncumbent(serving, 20s), 0) << nc->SupervisorLog().substr(log_from);
  EXPECT_FALSE(ProcessRunning(serving));
  EXPECT_EQ(nc->Stop(), 0);
}

// A period the daemon set itself (WATCHDOG_USEC=, 600 ms against a
// configured 60 s) is carried: a miss after the self-upgrades is caught
// within the daemon's period, long before the configured one would.
TEST(SelfUpgradeNotifyWatchdogTest, TheDaemonsOwnPeriodIsCarried) {
  NotifyCluster nc(kConfig + "watchdog = \"60s\"\n",
                   {"--watchdog", "--watchdog-usec", "600000", "--watchdog-stop-file", "@CONF@/stop"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ASSERT_TRUE(WaitServing(*nc)) << nc->SupervisorLog();
  const pid_t serving = nc->IncumbentPid();
  const size_t log_from = nc->SupervisorLog().size();
  for (int i = 0; i < 3; ++i) {
    auto r = SelfUpgrade(*nc);
    ASSERT_EQ(r.exit_code, 0) << i << ": " << r.out << r.err << nc->SupervisorLog().substr(log_from);
    EXPECT_EQ(JInt(r.json, {"state_version"}), 2) << r.out;
  }
  ExpectUntouched(nc, serving, log_from);
  const std::string stop = nc.Write("stop", "");
  ASSERT_TRUE(nc.WaitForEvent("child.watchdog", 20s)) << nc->SupervisorLog().substr(log_from);
  EXPECT_NE(nc->SupervisorLog().find("pid " + std::to_string(serving) + " missed its watchdog (600 ms)", log_from),
            std::string::npos)
      << nc->SupervisorLog().substr(log_from);
  std::remove(stop.c_str());
  EXPECT_GT(nc.WaitForNewIncumbent(serving, 20s), 0) << nc->SupervisorLog().substr(log_from);
  EXPECT_EQ(nc->Stop(), 0);
}

// What is refused: nothing changes, and the caller is told why.
void ExpectRefused(NotifyCluster& nc, const std::string& binary, const std::vector<std::string>& why) {
  const size_t log_from = nc->SupervisorLog().size();
  const pid_t serving = nc->IncumbentPid();
  auto r = SelfUpgrade(*nc, binary);
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_EQ(Outcome(r), "REFUSED") << r.out;
  for (const auto& w : why) EXPECT_NE(r.out.find(w), std::string::npos) << w << "\n" << r.out;
  EXPECT_EQ(nc->SupervisorLog().find("\"event\":\"supervisor.self_exec\"", log_from), std::string::npos);
  EXPECT_EQ(nc->supervisor_pid(), JInt(nc->Status().json, {"supervisor_pid"}));
  EXPECT_EQ(nc->IncumbentPid(), serving);
}

// A start still bounded by its ready deadline is not carried.
TEST(SelfUpgradeNotifyRefusalTest, AGenerationThatIsNotReadyYet) {
  NotifyCluster nc("[notify]\nready_timeout = \"120s\"\n", {"--never-ready"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();  // it answers HTTP, but never says READY=1
  ExpectRefused(nc, "", {"not ready yet", "protocol notify"});
}

// A baton that reads only state format 1 cannot hold protocol notify's
// state: the pre-flight refuses it rather than letting it drop the FD store.
TEST(SelfUpgradeNotifyRefusalTest, ABatonThatReadsOnlyFormatOne) {
  NotifyCluster nc(kConfig + "fd_store_max = 4\n", {"--store-state"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ASSERT_TRUE(WaitServing(*nc)) << nc->SupervisorLog();
  const std::string old =
      nc->Script("baton-format-1", "BATON_TEST_SELF_STATE_VERSION=1 exec " + BinPath("baton") + " \"$@\"");
  ExpectRefused(nc, old, {"reads supervisor state format 1", "needs format 2", "protocol notify", "FD store of 1"});
  // This baton (formats 1-2) still upgrades itself, and the FD store stays.
  auto r = SelfUpgrade(*nc);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_EQ(nc->Upgrade().exit_code, 0) << nc->SupervisorLog();
  EXPECT_NE(nc.Healthz().find("gen=2 fds=http:state"), std::string::npos) << nc.Healthz();
}

// A crash right after the exec: nothing listens for a re-attach in a
// daemon of protocol notify, so the watchdog starts the previous binary at
// once and it adopts the generation (drained, a new one cold-started) with
// no connection refused.
TEST(SelfUpgradeNotifyCrashTest, AfterTheExecTheWatchdogsSupervisorAdopts) {
  NotifyCluster nc(kConfig, {}, BinPath("sdkv"), {}, {"BATON_CRASH_AT=supervisor.self_after_exec"});
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ASSERT_TRUE(WaitServing(*nc)) << nc->SupervisorLog();
  const pid_t serving = nc->IncumbentPid();
  const pid_t first = nc->supervisor_pid();
  auto r = SelfUpgrade(*nc);
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;  // the caller lost its supervisor
  const int status = nc->WaitSupervisorExit(30s);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == crashpoints::kCrashExitCode) << "status " << status;
  const pid_t next = nc.WaitForNewIncumbent(serving, 60s);
  EXPECT_GT(next, 0) << nc->SupervisorLog();
  auto st = nc->Status();
  ASSERT_TRUE(st.json.is_object()) << st.out << st.err;
  const pid_t sup = static_cast<pid_t>(JInt(st.json, {"supervisor_pid"}));
  EXPECT_NE(sup, first);
  EXPECT_NE(std::string(st.json.at("takeover").as_string()).find("adopted"), std::string::npos) << st.out;
  EXPECT_EQ(nc.CountEvents("supervisor.reattach"), 0u);
  ::kill(sup, SIGTERM);
  for (int i = 0; i < 1500 && ProcessRunning(sup); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(ProcessRunning(sup));
}

}  // namespace
}  // namespace baton::harness
