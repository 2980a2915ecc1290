// After the commit (docs/design.md §16): a new generation that fails its
// probation is reverted to the previous pinned binary, with baton-load
// running and every acknowledged write read back; `baton rollback` does the
// same on demand; a crash loop outside the probation reverts too.
#include <unistd.h>

#include <fstream>
#include <thread>

#include "supervisor/pinned_binary.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

const std::string kKvd = BinPath("kvd");

std::string Str(const boost::json::value& v, std::initializer_list<const char*> path) {
  const boost::json::value* cur = &v;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->as_object().contains(k)) return "<missing>";
    cur = &cur->as_object().at(k);
  }
  return cur->is_string() ? std::string(cur->as_string()) : "<not a string>";
}

// A process that dies while serving resets its connections; the only thing
// that must hold is that nothing acknowledged is lost and nothing refused.
void ExpectNothingLost(const CommandResult& load) {
  ASSERT_TRUE(load.json.is_object()) << load.out << load.err;
  EXPECT_EQ(JInt(load.json, {"errors", "refused"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"lost_writes"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"verify_errors"}), 0) << load.out;
  EXPECT_GT(JInt(load.json, {"writes_acked"}), 0) << load.out;
}

std::string ElfBuildId(const std::string& path) {
  auto pin = supervisor::PinnedBinary::Open(path, {});
  return pin ? (*pin)->build_id : "<" + pin.error().message + ">";
}

// The serving generation's pinned binary, as `baton status --json` shows it.
std::string ServingPin(Cluster& c, const char* field) {
  auto s = c.Status();
  if (!s.json.is_object()) return "<no status>";
  const auto& pinned = s.json.at("pinned").as_array();
  if (pinned.empty()) return "<none>";
  return Str(pinned[0], {field});
}

CommandResult Rollback(Cluster& c) {
  return RunCommand({BinPath("baton"), "rollback", "--runtime-dir", c.dir() + "/run", "--json"},
                    std::chrono::seconds(120));
}

// Waits (bounded) until `pred` holds.
template <class Pred>
bool Eventually(Pred pred, std::chrono::seconds limit = std::chrono::seconds(60)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST(ProbationTest, PassesAndExitsZero) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  auto r = c.Upgrade("", {"--probation", "2s"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Str(r.json, {"probation", "outcome"}), "passed") << r.out;
  EXPECT_EQ(JInt(r.json, {"probation", "window_ms"}), 2000) << r.out;
  EXPECT_EQ(c.IncumbentPid(), static_cast<pid_t>(JInt(r.json, {"new_pid"})));
  ExpectCleanLoad(c.FinishLoad());
}

TEST(ProbationTest, CrashAfterCommitIsRevertedWithExitSix) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  c.StartLoad(8, "600s");
  const auto script = c.Script("crashes", "exec " + kKvd + " \"$@\" --exit-after-serving-ms 1000");
  auto r = c.Upgrade(script, {"--probation", "30s"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err << c.SupervisorLog().substr(0, 8000);
  EXPECT_EQ(Str(r.json, {"outcome"}), "reverted") << r.out;
  EXPECT_EQ(Str(r.json, {"probation", "check"}), "exit") << r.out;
  EXPECT_NE(Str(r.json, {"reason"}).find("exited with status 1"), std::string::npos) << r.out;
  EXPECT_GE(JInt(r.json, {"probation", "elapsed_ms"}), 900) << r.out;
  EXPECT_EQ(Str(r.json, {"probation", "reverted_to"}), kKvd) << r.out;
  // The previous binary serves again (a new process: the revert was cold).
  EXPECT_TRUE(c.Healthy());
  EXPECT_NE(c.IncumbentPid(), before);
  EXPECT_EQ(ServingPin(c, "path"), kKvd);
  auto s = c.Status();
  EXPECT_NE(Str(s.json, {"last_revert"}).find("(exit)"), std::string::npos) << s.out;
  auto m = RunCommand({BinPath("baton"), "metrics", "--runtime-dir", c.dir() + "/run"}, std::chrono::seconds(20));
  EXPECT_NE(m.out.find("baton_reverts_total{reason=\"exit\"} 1"), std::string::npos) << m.out;
  ExpectNothingLost(c.FinishLoad());
}

TEST(ProbationTest, UnhealthyReportIsRevertedByAHandoff) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  const auto script = c.Script("unhealthy", "exec " + kKvd + " \"$@\" --unhealthy-after-serving-ms 500");
  auto r = c.Upgrade(script, {"--probation", "30s"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err << c.SupervisorLog().substr(0, 8000);
  EXPECT_EQ(Str(r.json, {"probation", "check"}), "health") << r.out;
  EXPECT_NE(Str(r.json, {"probation", "reason"}).find("--unhealthy-after-serving-ms"), std::string::npos) << r.out;
  // A real handoff back: its phases are reported, and the failed generation
  // handed over to the new process of the previous binary.
  EXPECT_EQ(Str(r.json, {"probation", "revert", "outcome"}), "committed") << r.out;
  ASSERT_TRUE(r.json.is_object()) << r.out;
  const auto& revert = r.json.at("probation").at("revert");
  ASSERT_TRUE(revert.is_object()) << r.out;
  EXPECT_TRUE(revert.at("phases_ms").as_object().contains("seal")) << r.out;
  EXPECT_EQ(JInt(r.json, {"probation", "revert", "old_pid"}), JInt(r.json, {"new_pid"})) << r.out;
  EXPECT_EQ(c.IncumbentPid(), static_cast<pid_t>(JInt(r.json, {"probation", "revert", "new_pid"})));
  EXPECT_EQ(ServingPin(c, "path"), kKvd);
  // Zero refused, zero reset, nothing lost: a revert is a handoff.
  ExpectCleanLoad(c.FinishLoad());
}

TEST(ProbationTest, FailingExternalProbeIsReverted) {
  // The config names the cluster's port, known once the cluster exists.
  TempDir cfg_dir("probe-cfg");
  const std::string cfg = cfg_dir.path() + "/probation.toml";
  Cluster c({{}, {"--config", cfg}, {}});
  // The probe goes to the service's own listener: after the commit only the
  // new generation answers there.
  std::ofstream(cfg) << "[probation]\nprobe = \"http\"\nprobe_address = \"127.0.0.1:" << c.port()
                     << "\"\nprobe_path = \"/healthz\"\nprobe_interval = \"200ms\"\nprobe_failures = 3\n";
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  auto r = c.Upgrade(c.Script("bad-health", "exec " + kKvd + " \"$@\" --fail-healthz"), {"--probation", "30s"});
  EXPECT_EQ(r.exit_code, 6) << r.out << r.err << c.SupervisorLog().substr(0, 8000);
  EXPECT_EQ(Str(r.json, {"probation", "check"}), "probe") << r.out;
  EXPECT_NE(Str(r.json, {"probation", "reason"}).find("3 probes failed in a row, the last: status 503"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(Str(r.json, {"probation", "revert", "outcome"}), "committed") << r.out;
  EXPECT_TRUE(c.Healthy());
  ExpectCleanLoad(c.FinishLoad());
}

TEST(ProbationTest, RevertRunsThePinnedBytesAfterTheFileWasReplaced) {
  TempDir bin_dir("pinned-bin");
  const std::string old_kvd = bin_dir.path() + "/kvd-old";
  ASSERT_EQ(std::system(("cp " + kKvd + " " + old_kvd).c_str()), 0);
  const std::string expected = ElfBuildId(old_kvd);
  ASSERT_EQ(expected.size(), 40u) << expected;
  Cluster c({.binary = old_kvd});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  EXPECT_EQ(ServingPin(c, "build_id"), expected);
  c.StartLoad(8, "600s");
  auto up = c.Upgrade(kKvd);
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  // A deploy replaces the old file in place with something that cannot serve.
  ASSERT_EQ(::unlink(old_kvd.c_str()), 0);
  std::ofstream(old_kvd) << "#!/bin/sh\necho 'not the pinned bytes' >&2\nexit 1\n";
  ::chmod(old_kvd.c_str(), 0755);
  auto r = Rollback(c);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog().substr(0, 8000);
  EXPECT_EQ(Str(r.json, {"outcome"}), "committed") << r.out;
  const pid_t pid = c.IncumbentPid();
  EXPECT_EQ(pid, static_cast<pid_t>(JInt(r.json, {"new_pid"})));
  EXPECT_TRUE(c.Healthy());
  EXPECT_EQ(ServingPin(c, "build_id"), expected);
  // The process runs the pinned (now deleted) file, not the script.
  char exe[512] = {};
  ASSERT_GT(::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe - 1), 0);
  EXPECT_NE(std::string(exe).find("(deleted)"), std::string::npos) << exe;
  EXPECT_EQ(c.SupervisorLog().find("not the pinned bytes"), std::string::npos);
  ExpectCleanLoad(c.FinishLoad());
}

TEST(ProbationTest, RevertToABuildThatCannotReadTheSchemaIsRefused) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  // The new build reads schemas 1..2 (so the handoff to it is allowed) and
  // may write 2, which the previous build (1..1) cannot read.
  auto r = c.Upgrade(c.Script("schema2", "exec " + kKvd +
                                             " \"$@\" --schema-min 1 --schema-max 2 --unhealthy-after-serving-ms 300"),
                     {"--probation", "30s"});
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  EXPECT_EQ(Str(r.json, {"probation", "outcome"}), "revert_refused") << r.out;
  EXPECT_NE(Str(r.json, {"probation", "reason"}).find("state schema 2, which the previous build"), std::string::npos)
      << r.out;
  // The new generation keeps serving.
  EXPECT_EQ(c.IncumbentPid(), static_cast<pid_t>(JInt(r.json, {"new_pid"})));
  EXPECT_TRUE(c.Healthy());
  EXPECT_TRUE(c.WaitForLog("revert.refused", std::chrono::seconds(10)));
  // `baton rollback` is refused for the same reason, nothing changed.
  auto rb = Rollback(c);
  EXPECT_EQ(rb.exit_code, 4) << rb.out;
  EXPECT_NE(Str(rb.json, {"reason"}).find("cannot read"), std::string::npos) << rb.out;
  ExpectCleanLoad(c.FinishLoad());
}

TEST(ProbationTest, RollbackHandsBackAndThenHasNothingLeft) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  auto none = Rollback(c);
  EXPECT_EQ(none.exit_code, 4) << none.out;
  EXPECT_NE(Str(none.json, {"reason"}).find("no previous binary is pinned"), std::string::npos) << none.out;
  c.StartLoad(8, "600s");
  const auto script = c.Script("v2", "exec " + kKvd + " \"$@\" --build-id v2");
  auto up = c.Upgrade(script);
  ASSERT_EQ(up.exit_code, 0) << up.out;
  EXPECT_EQ(ServingPin(c, "path"), script);
  auto r = Rollback(c);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(ServingPin(c, "path"), kKvd);
  auto s = c.Status();
  EXPECT_EQ(Str(s.json, {"build_id"}), "kvd-dev") << s.out;
  EXPECT_NE(Str(s.json, {"last_revert"}).find("(operator)"), std::string::npos) << s.out;
  // The binary rolled back from is forgotten: no ping-pong.
  auto again = Rollback(c);
  EXPECT_EQ(again.exit_code, 4) << again.out;
  ExpectCleanLoad(c.FinishLoad());
}

TEST(ProbationTest, CrashLoopAfterProbationIsRevertedByTheLimit) {
  TempDir cfg_dir("crashloop-cfg");
  const std::string cfg = cfg_dir.path() + "/probation.toml";
  std::ofstream(cfg) << "[probation]\ncrash_loop_limit = 3\ncrash_loop_window = \"60s\"\n";
  Cluster c({{}, {"--config", cfg}, {}});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  // No probation: the upgrade returns at the commit, then the new build
  // dies 300 ms into every run.
  const auto script = c.Script("crash-loop", "exec " + kKvd + " \"$@\" --exit-after-serving-ms 300");
  auto up = c.Upgrade(script, {"--probation", "0"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  ASSERT_TRUE(Eventually([&] {
    auto s = c.Status();
    return Str(s.json, {"last_revert"}).find("(crash_loop)") != std::string::npos;
  })) << c.SupervisorLog().substr(0, 8000);
  EXPECT_TRUE(Eventually([&] { return c.Healthy() && ServingPin(c, "path") == kKvd; }));
  auto m = RunCommand({BinPath("baton"), "metrics", "--runtime-dir", c.dir() + "/run"}, std::chrono::seconds(20));
  EXPECT_NE(m.out.find("baton_reverts_total{reason=\"crash_loop\"} 1"), std::string::npos) << m.out;
  ExpectNothingLost(c.FinishLoad());
}

}  // namespace
}  // namespace baton::harness
