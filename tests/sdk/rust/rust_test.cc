// rustkvd, the Rust SDK's example daemon (sdk/rust/baton/examples/rustkvd),
// under a real `baton supervise` with baton-load: the SDK over libbaton's C
// ABI must keep every promise kvd keeps. 20 upgrades under load with no
// error and no lost write; each rollback leaves the old generation serving
// (exit 3); the daemon-side crash points keep the crash matrix's
// invariants; a successor with a disjoint state schema is refused (exit 4)
// before any side effect; with --hand-over, keep-alive connections move
// between generations with no reconnect.
#include <dirent.h>

#include <set>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "ownership/data_dir.h"
#include "tests/crash/converge.h"
#include "tests/integration/integration_util.h"
#include "tests/sdk/hand_over_load.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

const std::string kRustkvd = BinPath("rustkvd");

Cluster::Options RustkvdOptions(std::vector<std::string> args = {}, std::vector<std::string> env = {}) {
  Cluster::Options o;
  o.binary = kRustkvd;
  o.kvd_args = std::move(args);
  o.env = std::move(env);
  return o;
}

void TwentyUpgradesUnderLoad(bool close_mode) {
  Cluster c(RustkvdOptions());
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s", close_mode);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  pid_t last_new = c.IncumbentPid();
  for (int i = 0; i < 20; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 6000);
    EXPECT_EQ(Outcome(r), "committed");
    EXPECT_EQ(static_cast<pid_t>(JInt(r.json, {"old_pid"})), last_new) << "each upgrade replaces the last";
    last_new = static_cast<pid_t>(JInt(r.json, {"new_pid"}));
  }
  auto load = c.FinishLoad();
  ExpectCleanLoad(load);
  if (!close_mode) {
    // Every generation closed its keep-alive connections at a response
    // boundary: the clients reconnected at least once per upgrade.
    EXPECT_GE(JInt(load.json, {"reconnects"}), 20) << load.out;
  }
  EXPECT_EQ(c.IncumbentPid(), last_new);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
  // Every old generation retired and left by itself.
  const std::string log = c.SupervisorLog();
  EXPECT_EQ(log.find("killed by signal"), std::string::npos) << log.substr(0, 6000);
  EXPECT_EQ(log.find("child.retire_timeout"), std::string::npos);
  EXPECT_EQ(log.find("panicked"), std::string::npos) << log.substr(0, 6000);
}

TEST(RustSdkTest, TwentyUpgradesUnderKeepAliveLoad) { TwentyUpgradesUnderLoad(false); }
TEST(RustSdkTest, TwentyUpgradesUnderConnectionPerRequestLoad) { TwentyUpgradesUnderLoad(true); }

// rustkvd --hand-over (tests/sdk/hand_over_load.h).
TEST(RustSdkTest, HandOverMovesKeepAliveConnectionsWithNoReconnect) {
  Cluster c(RustkvdOptions({"--hand-over"}));
  ExpectHandOverWithNoReconnect(c, "exec " + kRustkvd + " \"$@\" --fail-begin");
}

// A rollback: exit 3 with `reason` in the output, the old generation still
// serving, nothing lost; then (if the cluster can) a clean upgrade commits.
void ExpectRollback(const std::vector<std::string>& args, const std::string& successor_flags,
                    const std::string& reason, bool clean_upgrade_after = true) {
  Cluster c(RustkvdOptions(args));
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  ASSERT_GT(before, 0);
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = c.Upgrade(c.Script("successor", "exec " + kRustkvd + " \"$@\" " + successor_flags));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 6000);
  EXPECT_NE(r.out.find(reason), std::string::npos) << r.out;
  EXPECT_EQ(c.IncumbentPid(), before);
  EXPECT_TRUE(c.Healthy());
  if (clean_upgrade_after) {
    auto next = c.Upgrade(kRustkvd);
    EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  }
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

TEST(RustSdkTest, SuccessorExitingAtStartRollsBack) {
  ExpectRollback({}, "--exit-at-start", "successor exited with status 1");
}

TEST(RustSdkTest, BeginFailingRollsBackAndTheIncumbentResumes) {
  // The incumbent has sealed by then: its resume hook reopens the writer.
  ExpectRollback({}, "--fail-begin", "begin: --fail-begin");
}

TEST(RustSdkTest, IncumbentSealFailingRollsBack) {
  // Every generation of this cluster fails its seal: no clean upgrade after.
  ExpectRollback({"--fail-seal"}, "", "seal: --fail-seal", false);
}

// ---- the state-schema check -----------------------------------------------

bool HasFileStartingWith(const std::string& dir, const std::string& prefix) {
  DIR* d = ::opendir(dir.c_str());
  bool found = false;
  while (dirent* e = d != nullptr ? ::readdir(d) : nullptr) found |= std::string(e->d_name).rfind(prefix, 0) == 0;
  if (d != nullptr) ::closedir(d);
  return found;
}

void ExpectSchemaRefusal(const std::string& successor, const char* message) {
  Cluster c(RustkvdOptions());
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = c.Upgrade(c.Script("other-schema", successor));
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find(message), std::string::npos) << r.out;
  EXPECT_EQ(c.IncumbentPid(), before);
  // No side effect: the incumbent never drained (not one keep-alive
  // connection was closed) and the successor never wrote its state.
  auto load = c.FinishLoad();
  ExpectCleanLoad(load);
  EXPECT_EQ(JInt(load.json, {"reconnects"}), 0) << load.out;
  EXPECT_FALSE(HasFileStartingWith(c.dir() + "/data", "wal-")) << "kvd wrote into rustkvd's data dir";
  EXPECT_EQ(c.Upgrade(kRustkvd).exit_code, 0);
}

TEST(RustSdkSchemaTest, RustkvdWithADisjointSchemaIsRefused) {
  ExpectSchemaRefusal("exec " + kRustkvd + " \"$@\" --schema-min 7 --schema-max 8",
                      "no common state schema version: incumbent speaks [2,2], successor speaks [7,8]");
}

// kvd's WAL is another format than rustkvd's kv.log: their default schema
// numbers (1 and 2) say so, and the pair is refused without any flag.
TEST(RustSdkSchemaTest, CppKvdIsRefusedBeforeAnySideEffect) {
  ExpectSchemaRefusal("exec " + BinPath("kvd") + " \"$@\"",
                      "no common state schema version: incumbent speaks [2,2], successor speaks [1,1]");
}

// ---- crash points ---------------------------------------------------------

struct CrashCase {
  const char* point;
  std::set<int> exit_codes;   // documented outcome(s) of the upgrade
  bool process_dies_serving;  // connections it held may be reset
};

class RustSdkCrashTest : public ::testing::TestWithParam<CrashCase> {};

// As tests/crash/crash_matrix_test.cc, with rustkvd: one flock holder,
// alive and serving; the documented exit code; convergence; a clean
// upgrade after; every acknowledged write readable.
TEST_P(RustSdkCrashTest, InvariantsHold) {
  const CrashCase& cc = GetParam();
  auto target = crashpoints::ParseTarget(cc.point);
  ASSERT_TRUE(target) << cc.point;
  const bool successor = target->info->role == crashpoints::Role::kSuccessor;
  // Incumbent points are armed through the supervisor (it arms them in the
  // first generation only), successor points through a wrapper.
  Cluster c(RustkvdOptions({}, successor ? std::vector<std::string>{}
                                         : std::vector<std::string>{std::string("BATON_CRASH_AT=") + cc.point}));
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string binary =
      successor ? c.Script("armed", std::string("BATON_CRASH_AT=") + cc.point + " exec " + kRustkvd + " \"$@\"")
                : kRustkvd;
  auto r = c.Upgrade(binary);
  EXPECT_TRUE(cc.exit_codes.count(r.exit_code)) << "exit " << r.exit_code << ": " << r.out << r.err;
  EXPECT_TRUE(c.WaitForLog("baton crashpoint " + std::string(target->info->name), std::chrono::seconds(10)))
      << "the point never fired";

  // Converges to one serving generation within liveness (5 s) + grace.
  ASSERT_NO_FATAL_FAILURE(ExpectConvergesToOneOwner(c));

  auto next = c.Upgrade(kRustkvd);
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  ExpectCleanLoad(c.FinishLoad(), cc.process_dies_serving);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Points, RustSdkCrashTest,
    ::testing::Values(
        // The incumbent dies mid-handoff: the warm successor takes over.
        CrashCase{"incumbent.in_seal", {0}, true}, CrashCase{"incumbent.after_flock_release", {0}, true},
        // The successor dies before Ready: rolled back to the incumbent.
        CrashCase{"successor.after_flock", {3}, false}, CrashCase{"successor.before_ready", {3}, true}),
    [](const auto& info) {
      return TestNameOf(info.param.point);
    });

}  // namespace
}  // namespace baton::harness
