// A revert is a handoff (docs/design.md §16), so the crash-point matrix
// applies to it: the failed generation (the revert's incumbent) or the
// previous binary started again (its successor) dies at each named point
// while the revert runs under load. Checked: the documented exit code of
// `baton upgrade --probation`, one serving generation that alone holds the
// data-dir lock, nothing refused and every acknowledged write readable.
#include <set>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "ownership/data_dir.h"
#include "tests/crash/converge.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

struct RevertCrash {
  const char* point;
  std::set<int> exit_codes;
};

class ProbationCrashTest : public ::testing::TestWithParam<RevertCrash> {};

TEST_P(ProbationCrashTest, RevertHandoffKeepsTheInvariants) {
  const RevertCrash& rc = GetParam();
  auto target = crashpoints::ParseTarget(rc.point);
  ASSERT_TRUE(target) << rc.point;
  const bool in_successor = target->info->role == crashpoints::Role::kSuccessor;
  // A successor point is armed in the previous binary's own arguments (kvd
  // --crash-at): the cold generation never plays successor, so it fires
  // only when the revert starts that binary again. An incumbent point is
  // armed in the new build, which plays incumbent only in the revert.
  Cluster::Options opts;
  if (in_successor) opts.kvd_args = {"--crash-at", rc.point};
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  std::string body = "exec " + BinPath("kvd") + " --unhealthy-after-serving-ms 300";  // not "$@": no --crash-at
  if (!in_successor) body += std::string(" --crash-at ") + rc.point;
  auto r = c.Upgrade(c.Script("unhealthy", body), {"--probation", "30s"});
  EXPECT_TRUE(rc.exit_codes.count(r.exit_code)) << "exit " << r.exit_code << ": " << r.out << r.err;
  EXPECT_TRUE(c.WaitForLog("baton crashpoint " + std::string(target->info->name), std::chrono::seconds(10)))
      << "the point never fired";
  ASSERT_NO_FATAL_FAILURE(ExpectConvergesToOneOwner(c));
  auto load = c.FinishLoad();
  ASSERT_TRUE(load.json.is_object()) << load.out << load.err;
  EXPECT_EQ(JInt(load.json, {"errors", "refused"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"lost_writes"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"verify_errors"}), 0) << load.out;
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Points, ProbationCrashTest,
    ::testing::Values(
        // The failed generation dies inside the revert: the previous binary
        // takes over (warm successor, or a cold start) — reverted.
        RevertCrash{"incumbent.in_drain", {6}}, RevertCrash{"incumbent.in_seal", {6}},
        RevertCrash{"incumbent.after_flock_release", {6}}, RevertCrash{"incumbent.after_seal_complete", {6}},
        RevertCrash{"incumbent.after_commit", {6}},
        // The previous binary dies before Ready: the revert rolls back, the
        // failed generation still serves (exit 5, probation revert_failed).
        RevertCrash{"successor.before_hello", {5}}, RevertCrash{"successor.in_warm", {5}},
        RevertCrash{"successor.after_begin", {5}}, RevertCrash{"successor.after_flock", {5}},
        RevertCrash{"successor.before_ready", {5}},
        // After Ready it owns the data: reverted (then restarted), or failed.
        RevertCrash{"successor.after_ready", {5, 6}}),
    [](const auto& info) {
      return TestNameOf(info.param.point);
    });

}  // namespace
}  // namespace baton::harness
