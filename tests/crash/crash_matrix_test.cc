// Kill the incumbent or the successor at each of its named crash points
// during an upgrade under load, then check DESIGN §4: exactly one flock
// holder, alive and serving; no refused connection; every acknowledged
// write readable; the documented exit code; the service converges within
// the liveness timeout plus a grace; the next clean upgrade commits.
//
// Supervisor points need the supervisor-restart rules and are not in this
// matrix yet; see docs/reliability.md.
#include <signal.h>

#include <set>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "ownership/data_dir.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

struct CrashCase {
  const char* point;
  std::set<int> exit_codes;  // documented outcome(s) of the upgrade
  bool process_dies_serving;  // connections it held may be reset
};

class CrashMatrixTest : public ::testing::TestWithParam<CrashCase> {};

TEST_P(CrashMatrixTest, InvariantsHold) {
  const CrashCase& cc = GetParam();
  auto info = crashpoints::Find(cc.point);
  ASSERT_TRUE(info) << cc.point;
  const bool incumbent = (*info)->role == crashpoints::Role::kIncumbent;
  // Incumbent points are armed through the supervisor, which passes them to
  // the cold-started generation only; successor points through a wrapper.
  Cluster::Options opts;
  if (incumbent) opts.env = {std::string("BATON_CRASH_AT=") + cc.point};
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string binary =
      incumbent ? BinPath("kvd")
                : c.Script("armed", std::string("BATON_CRASH_AT=") + cc.point + " exec " + BinPath("kvd") + " \"$@\"");
  auto r = c.Upgrade(binary);
  EXPECT_TRUE(cc.exit_codes.count(r.exit_code)) << "exit " << r.exit_code << ": " << r.out << r.err;
  EXPECT_NE(c.SupervisorLog().find(std::string("baton crashpoint ") + cc.point), std::string::npos)
      << "the point never fired";

  // Converges to one serving generation within liveness (5 s) + grace.
  bool healthy = false;
  pid_t serving = -1;
  for (int i = 0; i < 750 && !healthy; ++i) {
    serving = c.IncumbentPid();
    healthy = serving > 0 && ::kill(serving, 0) == 0 && c.Healthy();
    if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(healthy) << c.SupervisorLog().substr(0, 8000);
  // Exactly one flock holder, and it is the serving generation.
  auto probe = ownership::DataDirLock::Acquire(c.dir() + "/data");
  EXPECT_FALSE(probe) << "nobody holds the data-dir lock";
  EXPECT_EQ(ownership::RecordedHolder(c.dir() + "/data"), serving);

  // A clean upgrade to the plain binary (an armed successor that got Ready
  // became the service's binary, so name the clean one explicitly).
  auto next = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  ExpectCleanLoad(c.FinishLoad(), cc.process_dies_serving);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Points, CrashMatrixTest,
    ::testing::Values(
        // The incumbent dies mid-handoff: its flock goes with it and the
        // warm successor takes over (DESIGN §3) — committed.
        CrashCase{"incumbent.in_drain", {0}, true}, CrashCase{"incumbent.in_seal", {0}, true},
        CrashCase{"incumbent.after_flock_release", {0}, true},
        CrashCase{"incumbent.after_seal_complete", {0}, true}, CrashCase{"incumbent.after_commit", {0}, true},
        // The successor dies before Ready: rolled back to the incumbent.
        CrashCase{"successor.before_hello", {3}, false}, CrashCase{"successor.in_warm", {3}, false},
        CrashCase{"successor.after_begin", {3}, false}, CrashCase{"successor.after_flock", {3}, false},
        CrashCase{"successor.before_ready", {3}, true},
        // After Ready the successor owns the data. Its death races the old
        // generation's CommitAck: committed (then restarted) or failed (5);
        // either way the supervisor restarts a generation.
        CrashCase{"successor.after_ready", {0, 5}, true}),
    [](const auto& info) {
      std::string n = info.param.point;
      for (auto& ch : n) ch = (ch == '.' ? '_' : ch);
      return n;
    });

// Every incumbent and successor point of the registry is in the matrix.
TEST(CrashMatrixCoverageTest, EveryDaemonSidePointIsCovered) {
  std::set<std::string> covered = {"incumbent.in_drain", "incumbent.in_seal", "incumbent.after_flock_release",
                                   "incumbent.after_seal_complete", "incumbent.after_commit",
                                   "successor.before_hello", "successor.in_warm", "successor.after_begin",
                                   "successor.after_flock", "successor.before_ready", "successor.after_ready"};
  for (const auto& info : crashpoints::All()) {
    if (info.role == crashpoints::Role::kIncumbent || info.role == crashpoints::Role::kSuccessor) {
      EXPECT_TRUE(covered.count(std::string(info.name))) << info.name << " has no matrix case";
    }
  }
}

}  // namespace
}  // namespace baton::harness
