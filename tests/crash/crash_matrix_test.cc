// Kill the incumbent or the successor at each of its named crash points
// during an upgrade under load, then check docs/design.md §4: exactly one flock
// holder, alive and serving; no refused connection; every acknowledged
// write readable; the documented exit code; the service converges within
// the liveness timeout plus a grace; the next clean upgrade commits.
//
// The supervisor's own points are in supervisor_crash_test.cc.
#include <signal.h>

#include <set>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "ownership/data_dir.h"
#include "tests/crash/converge.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

struct CrashCase {
  const char* point;          // as BATON_CRASH_AT takes it (daemon points may name a role)
  std::set<int> exit_codes;   // documented outcome(s) of the upgrade
  bool process_dies_serving;  // connections it held may be reset
  bool fires_before_upgrade = false;  // in the write path: the first write kills the incumbent
};

class CrashMatrixTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CrashMatrixTest, InvariantsHold) {
  const CrashCase& cc = GetParam();
  auto target = crashpoints::ParseTarget(cc.point);
  ASSERT_TRUE(target) << cc.point;
  const std::string name(target->info->name);
  const bool successor = target->info->role == crashpoints::Role::kSuccessor;
  // Incumbent and daemon points are armed through the supervisor, which
  // routes each to the first child of its role only; successor points
  // through a wrapper binary.
  Cluster::Options opts;
  if (!successor) opts.env = {std::string("BATON_CRASH_AT=") + cc.point};
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (cc.fires_before_upgrade) {
    // The first write killed the cold generation; the supervisor restarts
    // it (without the point) and the upgrade then meets a healthy service.
    bool back = false;
    for (int i = 0; i < 500 && !back; ++i) {
      auto s = c.Status();
      back = JInt(s.json, {"restarts"}) >= 1 && JInt(s.json, {"incumbent_pid"}) > 0 && c.Healthy();
      if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(back) << c.SupervisorLog().substr(0, 8000);
  }
  const std::string binary =
      !successor ? BinPath("kvd")
                 : c.Script("armed", std::string("BATON_CRASH_AT=") + cc.point + " exec " + BinPath("kvd") + " \"$@\"");
  auto r = c.Upgrade(binary);
  EXPECT_TRUE(cc.exit_codes.count(r.exit_code)) << "exit " << r.exit_code << ": " << r.out << r.err;
  // An "after sending" point may fire a moment after the supervisor already
  // answered (the frame was out; the callback runs on the daemon's next turn).
  EXPECT_TRUE(c.WaitForLog("baton crashpoint " + name, std::chrono::seconds(10))) << "the point never fired";

  // Converges to one serving generation within liveness (5 s) + grace.
  ASSERT_NO_FATAL_FAILURE(ExpectConvergesToOneOwner(c));

  // A clean upgrade to the plain binary (an armed successor that got Ready
  // became the service's binary, so name the clean one explicitly).
  auto next = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  auto load = c.FinishLoad();
  ExpectCleanLoad(load, cc.process_dies_serving);
  // No connection was served by two generations, nor closed under its
  // client: kvd hands them over, and a rollback gives every one back.
  if (!cc.process_dies_serving) {
    EXPECT_EQ(JInt(load.json, {"reconnects"}), 0) << load.out;
  }
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Points, CrashMatrixTest,
    ::testing::Values(
        // The incumbent dies mid-handoff: its flock goes with it and the
        // warm successor takes over (docs/design.md §3) — committed.
        CrashCase{"incumbent.in_drain", {0}, true}, CrashCase{"incumbent.in_seal", {0}, true},
        CrashCase{"incumbent.after_flock_release", {0}, true},
        CrashCase{"incumbent.after_seal_complete", {0}, true}, CrashCase{"incumbent.after_commit", {0}, true},
        // Its connections were handed over, SealComplete not sent: not
        // sealed, so the supervisor closes what it holds (they die with the
        // incumbent, as any connection of a crashed process).
        CrashCase{"incumbent.after_send_handover", {0}, true},
        // The successor dies before Ready: rolled back to the incumbent.
        CrashCase{"successor.before_hello", {3}, false}, CrashCase{"successor.in_warm", {3}, false},
        CrashCase{"successor.after_begin", {3}, false}, CrashCase{"successor.after_flock", {3}, false},
        // The connections reached it (it serves none before Ready): every
        // one goes back to the incumbent, and no client sees anything.
        CrashCase{"successor.after_recv_handover", {3}, false},
        CrashCase{"successor.before_ready", {3}, true},
        // After Ready the successor owns the data. Its death races the old
        // generation's CommitAck: committed (then restarted) or failed (5);
        // either way the supervisor restarts a generation.
        CrashCase{"successor.after_ready", {0, 5}, true},
        // kvd's own hooks. Dying inside its seal is the incumbent dying
        // mid-seal (committed); inside its begin replay, the successor
        // failing before Ready (rolled back); after a WAL append but before
        // the fsync, an incumbent dying outside a handoff with a write not
        // yet acknowledged (restarted; nothing acknowledged is lost).
        CrashCase{"kvd.in_seal_fsync", {0}, true}, CrashCase{"kvd.in_begin_replay@successor", {3}, false},
        CrashCase{"kvd.after_wal_append", {0}, true, true}),
    [](const auto& info) {
      return TestNameOf(info.param.point);
    });

// Every incumbent, successor and daemon (kvd) point of the registry is in
// the matrix, or, for the points that fire only with a lease, in
// lease_crash_matrix_test.cc, or, for kvd's checkpoints, in
// checkpoint_crash_test.cc, or, for the re-attach after a supervisor's
// death, in reattach_test.cc.
TEST(CrashMatrixCoverageTest, EveryDaemonSidePointIsCovered) {
  std::set<std::string> covered = {"incumbent.in_drain", "incumbent.in_seal", "incumbent.after_flock_release",
                                   "incumbent.after_lease_transfer", "successor.after_lease_confirm",
                                   "incumbent.after_seal_complete", "incumbent.after_commit",
                                   "incumbent.after_send_handover", "successor.after_recv_handover",
                                   "successor.before_hello", "successor.in_warm", "successor.after_begin",
                                   "successor.after_flock", "successor.before_ready", "successor.after_ready",
                                   "kvd.in_seal_fsync", "kvd.in_begin_replay", "kvd.after_wal_append",
                                   "kvd.checkpoint_before_rename", "kvd.checkpoint_before_gc",
                                   "kvd.checkpoint_mid_gc", "incumbent.reattach_accepted"};
  for (const auto& info : crashpoints::All()) {
    if (info.role == crashpoints::Role::kIncumbent || info.role == crashpoints::Role::kSuccessor ||
        info.role == crashpoints::Role::kDaemon) {
      EXPECT_TRUE(covered.count(std::string(info.name))) << info.name << " has no matrix case";
    }
  }
}

}  // namespace
}  // namespace baton::harness
