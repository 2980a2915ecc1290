// The supervisor dies (or hangs) at each step of a handoff under load.
// docs/design.md §3: the generations it started resolve the handoff by the orphan
// rules on their own (the incumbent resumes unless the successor got Ready;
// a successor without a supervisor before Ready exits), and exactly one of
// them keeps serving through the listeners it inherited: no refused
// connection, no lost acknowledged write. A new supervisor for the same
// runtime dir then re-attaches to that orphan (docs/design.md §15): it takes
// the listeners over and the orphan serves on under it, neither drained nor
// replaced; and the next upgrade commits. (Adoption, the fallback, is
// tested in reattach_test.cc.)
#include <signal.h>
#include <sys/wait.h>

#include <future>
#include <set>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "ownership/data_dir.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

enum class Survivor { kIncumbent, kSuccessor, kEither };

struct SupervisorCase {
  const char* point;
  Survivor survivor;  // who serves once the orphan rules settled
  bool rollback;      // the successor fails its begin hook, so the supervisor sends Resume
  bool successor_may_die_serving = false;  // it began serving before it noticed: its connections reset
};

// The generations left in the dead supervisor's process group once the
// orphan rules settled (at most liveness + the incumbent's 10 s orphan
// grace); empty on timeout with more than one left.
std::vector<pid_t> SettledOrphans(pid_t group, pid_t exclude) {
  std::vector<pid_t> left;
  for (int i = 0; i < 500; ++i) {
    left.clear();
    for (pid_t p : ProcessesInGroup(group)) {
      if (p != exclude) left.push_back(p);
    }
    if (left.size() <= 1) return left;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return {};
}

// Orphan rules held: one generation left, serving, the only flock holder;
// then a new supervisor re-attaches to it, and a clean upgrade commits.
void ExpectOrphanRulesThenReattach(Cluster& c, pid_t group, pid_t exclude, pid_t old_pid, Survivor want) {
  auto left = SettledOrphans(group, exclude);
  ASSERT_EQ(left.size(), 1u) << "generations left: " << left.size() << "\n" << c.SupervisorLog().substr(0, 8000);
  const pid_t survivor = left[0];
  if (want == Survivor::kIncumbent) {
    EXPECT_EQ(survivor, old_pid) << "the incumbent should have resumed";
  }
  if (want == Survivor::kSuccessor) {
    EXPECT_NE(survivor, old_pid) << "the successor should own the service";
  }
  bool healthy = false;
  for (int i = 0; i < 250 && !healthy; ++i) {
    healthy = c.Healthy();
    if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(healthy) << "the orphan does not serve";
  EXPECT_FALSE(ownership::DataDirLock::Acquire(c.dir() + "/data")) << "nobody holds the data-dir lock";
  EXPECT_EQ(ownership::RecordedHolder(c.dir() + "/data"), survivor);

  // Serving with no supervisor and no handoff: it waits for the next one.
  ASSERT_TRUE(c.WaitForReattachSocket(survivor, std::chrono::seconds(30))) << c.SupervisorLog().substr(0, 8000);
  const size_t log_from = c.SupervisorLog().size();
  ASSERT_TRUE(c.RestartSupervisor()) << c.SupervisorLog().substr(0, 12000);
  const std::string log = c.SupervisorLog().substr(log_from);
  EXPECT_NE(log.find("\"event\":\"supervisor.reattach\""), std::string::npos) << log;
  EXPECT_NE(log.find("supervisor.listener_adopted"), std::string::npos)
      << "the listener was bound afresh instead of taken over";
  // Neither drained nor replaced by the re-attach.
  EXPECT_EQ(log.find("\"event\":\"child.spawn\""), std::string::npos) << log;
  EXPECT_EQ(log.find("\"event\":\"supervisor.orphan_term\""), std::string::npos) << log;
  const pid_t serving = c.IncumbentPid();
  EXPECT_EQ(serving, survivor);
  EXPECT_TRUE(ProcessRunning(survivor));
  EXPECT_EQ(ownership::RecordedHolder(c.dir() + "/data"), serving);
  auto next = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
}

class SupervisorCrashTest : public ::testing::TestWithParam<SupervisorCase> {};

TEST_P(SupervisorCrashTest, OrphansResolveAndANewSupervisorReattaches) {
  const SupervisorCase& sc = GetParam();
  ASSERT_TRUE(crashpoints::Find(sc.point)) << sc.point;
  Cluster::Options opts;
  opts.env = {std::string("BATON_CRASH_AT=") + sc.point};
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t group = c.supervisor_pid();
  const pid_t old_pid = c.IncumbentPid();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string binary =
      sc.rollback ? c.Script("failbegin", "exec " + BinPath("kvd") + " --fail-begin \"$@\"") : BinPath("kvd");
  auto r = c.Upgrade(binary);
  // The caller lost its supervisor mid-call: the outcome is unknown to it.
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  const int status = c.WaitSupervisorExit(std::chrono::seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == crashpoints::kCrashExitCode) << "status " << status;
  EXPECT_NE(c.SupervisorLog().find(std::string("baton crashpoint ") + sc.point), std::string::npos)
      << "the point never fired";
  ExpectOrphanRulesThenReattach(c, group, -1, old_pid, sc.survivor);
  ExpectCleanLoad(c.FinishLoad(), sc.successor_may_die_serving);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Points, SupervisorCrashTest,
    ::testing::Values(
        // Before Begin the incumbent is the owner of record: it resumes
        // (sealed: once the successor is gone) and the successor exits.
        SupervisorCase{"supervisor.after_spawn", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_recv_hello", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_send_hello_ack", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_send_warm", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_recv_warmed", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_send_prepare", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_recv_drained", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_send_seal", Survivor::kIncumbent, false},
        SupervisorCase{"supervisor.after_recv_seal_complete", Survivor::kIncumbent, false},
        // kvd's connections are in flight (held by the dying supervisor):
        // the incumbent resumes with its own references to them, and its
        // clients see nothing.
        SupervisorCase{"supervisor.after_recv_handover", Survivor::kIncumbent, false},
        // Begin sent: the successor exits if it notices the loss before its
        // Ready, and keeps the service if not; either way exactly one serves.
        SupervisorCase{"supervisor.after_send_begin", Survivor::kEither, false, true},
        // After Ready the successor owns the data; the incumbent exits.
        SupervisorCase{"supervisor.after_recv_ready", Survivor::kSuccessor, false},
        SupervisorCase{"supervisor.after_send_commit", Survivor::kSuccessor, false},
        SupervisorCase{"supervisor.after_recv_commit_ack", Survivor::kSuccessor, false},
        // A rollback (the successor's begin fails) interrupted after Resume.
        SupervisorCase{"supervisor.after_send_resume", Survivor::kIncumbent, true}),
    [](const auto& info) {
      return TestNameOf(info.param.point);
    });

TEST(SupervisorCrashCoverageTest, EverySupervisorPointIsCovered) {
  std::set<std::string> covered;
  for (const char* p : {"supervisor.after_spawn", "supervisor.after_recv_hello", "supervisor.after_send_hello_ack",
                        "supervisor.after_send_warm", "supervisor.after_recv_warmed", "supervisor.after_send_prepare",
                        "supervisor.after_recv_drained", "supervisor.after_send_seal",
                        "supervisor.after_recv_seal_complete", "supervisor.after_recv_handover",
                        "supervisor.after_send_begin",
                        "supervisor.after_recv_ready", "supervisor.after_send_commit",
                        "supervisor.after_recv_commit_ack", "supervisor.after_send_resume",
                        // reattach_test.cc
                        "supervisor.reattach_before_hello",
                        // self_upgrade_test.cc
                        "supervisor.self_before_exec", "supervisor.self_after_exec",
                        "supervisor.self_mid_resume"}) {
    covered.insert(p);
  }
  for (const auto& info : crashpoints::All()) {
    if (info.role == crashpoints::Role::kSupervisor) {
      EXPECT_TRUE(covered.count(std::string(info.name))) << info.name << " has no case";
    }
  }
}

// The supervisor stops (SIGSTOP: no heartbeats, no progress) mid-drain or
// mid-seal. The incumbent must notice by its liveness timeout and resume on
// its own deadline; the successor exits; whoever kills the stopped
// supervisor and starts a new one gets the service back under control.
class SupervisorHangTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SupervisorHangTest, IncumbentResumesByItsOwnDeadline) {
  const std::string point = GetParam();
  Cluster::Options opts;
  opts.env = {"BATON_CRASH_AT=" + point, "BATON_CRASH_ACTION=hang"};
  opts.supervise_args = {"--timeout", "heartbeat=250ms", "--timeout", "liveness=1500ms"};
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t group = c.supervisor_pid();
  const pid_t old_pid = c.IncumbentPid();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto upgrade = std::async(std::launch::async, [&c] { return c.Upgrade(BinPath("kvd")); });
  // Wait for the supervisor to reach the point, then stop it for good.
  ASSERT_TRUE(c.WaitForLog("baton crashpoint " + point, std::chrono::seconds(30))) << c.SupervisorLog().substr(0, 8000);
  ASSERT_EQ(::kill(group, SIGSTOP), 0);
  // The incumbent resumes by itself; the stopped supervisor is still there.
  auto left = SettledOrphans(group, group);
  ASSERT_EQ(left.size(), 1u) << c.SupervisorLog().substr(0, 8000);
  EXPECT_EQ(left[0], old_pid);
  // A stopped supervisor blocks a new one: it still owns the runtime dir.
  // Whoever notices (a watchdog, an operator) kills it first.
  auto second = RunCommand({BinPath("baton"), "supervise", "--listen", "http=tcp://127.0.0.1:0", "--data-dir",
                            c.dir() + "/data", "--runtime-dir", c.dir() + "/run", "--", BinPath("kvd")},
                           std::chrono::seconds(20));
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  EXPECT_NE(second.err.find("another supervisor (pid " + std::to_string(group) + ") is running"), std::string::npos)
      << second.err;
  c.KillSupervisor();
  auto r = upgrade.get();
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  ExpectOrphanRulesThenReattach(c, group, -1, old_pid, Survivor::kIncumbent);
  ExpectCleanLoad(c.FinishLoad());
}

INSTANTIATE_TEST_SUITE_P(Steps, SupervisorHangTest,
                         ::testing::Values("supervisor.after_send_prepare", "supervisor.after_send_seal"),
                         [](const auto& info) {
                           std::string n = info.param;
                           return n == "supervisor.after_send_prepare" ? std::string("MidDrain")
                                                                       : std::string("MidSeal");
                         });

}  // namespace
}  // namespace baton::harness
