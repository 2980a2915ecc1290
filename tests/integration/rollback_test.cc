// Every rollback returns exit 3 (refusals exit 4) with the old generation
// still serving and nothing lost; the next clean upgrade commits.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "tests/integration/integration_util.h"
#include "tools/harness/slowdown.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

struct RollbackCase {
  const char* name;
  std::string script_body;  // the successor: a wrapper around kvd
  std::vector<std::string> supervise_args;
  int expected_exit;
  const char* reason_contains;
  bool allow_resets = false;  // the successor dies after it began serving
};

void RunRollback(const RollbackCase& rc, std::vector<std::string> kvd_args = {}, bool clean_upgrade_after = true) {
  Cluster c({kvd_args, rc.supervise_args, {}});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  ASSERT_GT(before, 0);
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string script = c.Script(rc.name, rc.script_body);
  auto r = c.Upgrade(script);
  EXPECT_EQ(r.exit_code, rc.expected_exit) << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 6000);
  EXPECT_NE(r.out.find(rc.reason_contains), std::string::npos) << r.out;
  // The old generation is still the one serving, and serving well.
  EXPECT_EQ(c.IncumbentPid(), before);
  EXPECT_TRUE(c.Healthy());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (clean_upgrade_after) {
    auto next = c.Upgrade();
    EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  }
  ExpectCleanLoad(c.FinishLoad(), rc.allow_resets);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

const std::string kKvd = BinPath("kvd");

TEST(RollbackTest, SuccessorExitsAtStart) {
  RunRollback({"exit-at-start", "exec " + kKvd + " \"$@\" --exit-at-start", {}, 3, "successor exited with status 1"});
}

// The deadlines below hold for the clean upgrade after the rollback too:
// long enough for a kvd that starts (and warms) on a loaded machine under a
// sanitizer, short enough to keep the test quick.
std::string Deadline(const char* phase) {
  return std::string(phase) + "=" + std::to_string(2 * kSanitizerSlowdown) + "s";
}

TEST(RollbackTest, SuccessorNeverSaysHello) {
  RunRollback({"silent", "exec sleep 600", {"--timeout", Deadline("hello")}, 3, "did not say Hello"});
}

TEST(RollbackTest, SuccessorHangsInWarmPastItsDeadline) {
  RunRollback({"hang-in-warm", "exec " + kKvd + " \"$@\" --hang-in-warm",
               {"--timeout", Deadline("warm"), "--timeout", "term-grace=1s"}, 3, "warming in time"});
}

TEST(RollbackTest, SuccessorCrashesAfterBegin) {
  RunRollback({"crash-after-begin", "BATON_CRASH_AT=successor.after_begin exec " + kKvd + " \"$@\"", {}, 3,
               "status 86"});
}

TEST(RollbackTest, SuccessorCrashesBeforeReady) {
  // kvd accepts in its begin hook, so connections it took are reset when it
  // dies; its acknowledged writes are fsynced and the incumbent reloads them.
  RunRollback({"crash-before-ready", "BATON_CRASH_AT=successor.before_ready exec " + kKvd + " \"$@\"", {}, 3,
               "status 86", true});
}

TEST(RollbackTest, IncumbentSealFails) {
  // Every generation of this cluster fails its seal, so no clean upgrade after.
  RunRollback({"plain", "exec " + kKvd + " \"$@\"", {}, 3, "could not seal"}, {"--fail-seal"}, false);
}

TEST(RollbackTest, IncompatibleStateSchemaIsRefusedWithoutDrainingTheIncumbent) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const pid_t before = c.IncumbentPid();
  c.StartLoad(8, "600s");
  auto r = c.Upgrade(c.Script("schema2", "exec " + kKvd + " \"$@\" --schema-min 2 --schema-max 2"));
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("no common state schema version: incumbent speaks [1,1], successor speaks [2,2]"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(c.IncumbentPid(), before);
  // The incumbent never drained: it never even heard of the handoff.
  EXPECT_EQ(c.SupervisorLog().find("kvd.http.drain"), std::string::npos);
  EXPECT_EQ(c.Upgrade().exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
}

TEST(RollbackTest, MissingOrNonExecutableBinaryIsRefused) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const pid_t before = c.IncumbentPid();
  auto r = c.Upgrade(c.dir() + "/no-such-kvd");
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_NE(r.out.find("No such file"), std::string::npos) << r.out;
  const std::string plain = c.dir() + "/not-executable";
  ::close(::creat(plain.c_str(), 0644));
  r = c.Upgrade(plain);
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_EQ(c.IncumbentPid(), before);
}

TEST(RollbackTest, SecondUpgradeWhileOneRunsIsRefusedAtOnce) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const std::string slow = c.Script("slow-warm", "exec " + kKvd + " \"$@\" --warm-delay-ms 3000");
  auto first = std::async(std::launch::async, [&] { return c.Upgrade(slow); });
  // Until the supervisor has the first handoff (a guessed 500 ms was too
  // short on a busy machine: the second upgrade then came first).
  bool running = false;
  for (int i = 0; i < 500 && !running; ++i) {
    const auto s = c.Status();
    running = s.json.is_object() && !s.json.at("handoff_in_progress").as_string().empty();
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(running) << "the first upgrade did not start";
  const auto t0 = std::chrono::steady_clock::now();
  auto second = c.Upgrade();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(second.exit_code, 4) << second.out;
  EXPECT_NE(second.out.find("busy"), std::string::npos) << second.out;
  EXPECT_LT(took, std::chrono::seconds(2));  // at once, not after the first
  EXPECT_EQ(first.get().exit_code, 0);
}

}  // namespace
}  // namespace baton::harness
