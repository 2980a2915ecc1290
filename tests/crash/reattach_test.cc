// A restarted supervisor re-attaches to the generation its predecessor left
// serving (docs/design.md §15): SIGKILL the supervisor under load, start a
// new one with the same arguments, and the same daemon process serves on,
// under the new supervisor, with nothing drained or started. When re-attach
// is refused the new supervisor adopts the orphan as before (adoption.h),
// and still loses nothing. The crash points of the re-attach path leave the
// service as the orphan rules and adoption do.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/http.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

constexpr auto kSocketWait = std::chrono::seconds(30);
const std::string kReattached = "\"event\":\"supervisor.reattach\"";

// Kills the supervisor and waits for the serving generation's re-attach
// socket: it serves on, waiting for the next supervisor.
void KillAndAwaitSocket(Cluster& c, pid_t serving) {
  c.KillSupervisor();
  ASSERT_TRUE(c.WaitForReattachSocket(serving, kSocketWait)) << c.SupervisorLog().substr(0, 8000);
  EXPECT_TRUE(c.Healthy());
}


// Starts a new supervisor (RestartSupervisor: it serves); what it logged.
std::string Restart(Cluster& c) {
  const size_t log_from = c.SupervisorLog().size();
  EXPECT_TRUE(c.RestartSupervisor()) << c.SupervisorLog().substr(log_from);
  return c.SupervisorLog().substr(log_from);
}

// The new supervisor re-attached: neither drained nor started a generation.
void ExpectReattached(const std::string& log) {
  EXPECT_NE(log.find(kReattached), std::string::npos) << log;
  EXPECT_EQ(log.find("\"event\":\"child.spawn\""), std::string::npos) << "a generation was started:\n" << log;
  EXPECT_EQ(log.find("\"event\":\"supervisor.orphan_term\""), std::string::npos) << "a generation was drained:\n" << log;
}

// Starts a new supervisor and checks it re-attached to `serving`: same pid,
// serving under it, and nothing drained or spawned.
void ExpectReattach(Cluster& c, pid_t serving) {
  const std::string log = Restart(c);
  ExpectReattached(log);
  EXPECT_EQ(c.IncumbentPid(), serving) << "a different generation serves";
  EXPECT_TRUE(ProcessRunning(serving));
  auto status = c.Status();
  ASSERT_TRUE(status.json.is_object()) << status.out << status.err;
  EXPECT_EQ(std::string(status.json.at("takeover").as_string()), "re-attached to pid " + std::to_string(serving)) << status.out;
  EXPECT_EQ(log.find("\"event\":\"supervisor.listener_not_adopted\""), std::string::npos) << log;
  // Re-attached: the socket is gone until the next orphaned spell.
  struct stat st {};
  EXPECT_NE(::stat(c.ReattachSocket(serving).c_str(), &st), 0) << "the re-attach socket is still there";
}

// The fallback: adopted (drained and replaced), listeners taken over.
void ExpectAdoption(Cluster& c, pid_t orphan, const std::string& why) {
  const std::string log = Restart(c);
  EXPECT_NE(log.find("\"event\":\"supervisor.reattach_failed\""), std::string::npos) << log;
  EXPECT_NE(log.find(why), std::string::npos) << log;
  EXPECT_EQ(log.find(kReattached), std::string::npos) << log;
  EXPECT_NE(log.find("supervisor.listener_adopted"), std::string::npos) << log;
  EXPECT_NE(c.IncumbentPid(), orphan);
  auto status = c.Status();
  ASSERT_TRUE(status.json.is_object()) << status.out << status.err;
  EXPECT_EQ(std::string(status.json.at("takeover").as_string()), "adopted pid " + std::to_string(orphan) + " (cold)") << status.out;
  for (int i = 0; i < 500 && ProcessRunning(orphan); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(ProcessRunning(orphan)) << "the orphan outlived the adoption";
}

class ReattachTest : public ::testing::TestWithParam<bool> {};  // --close

TEST_P(ReattachTest, AKilledSupervisorsGenerationServesOnUnderTheNextOne) {
  Cluster c({});
  const pid_t serving = StartLoaded(c, GetParam());
  ASSERT_GT(serving, 0);
  KillAndAwaitSocket(c, serving);
  ExpectReattach(c, serving);
  // Under the new supervisor it is upgraded like any generation...
  auto up = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  const pid_t next = c.IncumbentPid();
  EXPECT_NE(next, serving);
  // ...and its successor re-attaches after the next kill.
  KillAndAwaitSocket(c, next);
  ExpectReattach(c, next);
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_EQ(c.Stop(), 0);
  EXPECT_FALSE(ProcessRunning(next)) << "a re-attached generation must stop with its supervisor";
}

INSTANTIATE_TEST_SUITE_P(Modes, ReattachTest, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "Close" : "KeepAlive"); });

// No socket (removed, as by an operator or a daemon that cannot re-attach):
// adoption, and nothing lost.
TEST(ReattachFallbackTest, NoSocketMeansAdoption) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  KillAndAwaitSocket(c, serving);
  ASSERT_EQ(::unlink(c.ReattachSocket(serving).c_str()), 0);
  ExpectAdoption(c, serving, "does not listen at");
  auto up = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  ExpectCleanLoad(c.FinishLoad());
}

// Another process holds the socket's path (here: this test): its pid is not
// the journal's, so the new supervisor does not talk to it.
TEST(ReattachFallbackTest, APeerWithTheWrongPidMeansAdoption) {
  Cluster c({});
  const pid_t serving = StartLoaded(c);
  KillAndAwaitSocket(c, serving);
  const std::string path = c.ReattachSocket(serving);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  const int impostor = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(impostor, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(impostor, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(impostor, 4), 0);
  ExpectAdoption(c, serving, "not by the journal's pid " + std::to_string(serving));
  ::close(impostor);
  ExpectCleanLoad(c.FinishLoad());
}

// The generation dies between accepting the re-attach connection and its
// Hello: the new supervisor, which took the listeners first, adopts (finds
// it gone) and cold-starts; its connections may be reset, no write is lost.
TEST(ReattachCrashTest, GenerationDiesAtTheReattach) {
  Cluster::Options opts;
  opts.env = {"BATON_CRASH_AT=incumbent.reattach_accepted"};
  Cluster c(opts);
  const pid_t serving = StartLoaded(c);
  KillAndAwaitSocket(c, serving);
  const std::string log = Restart(c);
  EXPECT_NE(log.find("baton crashpoint incumbent.reattach_accepted"), std::string::npos) << log;
  EXPECT_NE(log.find("\"event\":\"supervisor.reattach_failed\""), std::string::npos) << log;
  EXPECT_NE(log.find("supervisor.listener_adopted"), std::string::npos) << log;
  EXPECT_FALSE(ProcessRunning(serving));
  EXPECT_NE(c.IncumbentPid(), serving);
  auto up = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  ExpectCleanLoad(c.FinishLoad(), /*allow_resets=*/true);
}

// The new supervisor dies after connecting and taking the listeners, before
// the Hello: the generation keeps serving and listening, and the supervisor
// after it re-attaches.
TEST(ReattachCrashTest, SupervisorDiesBeforeTheHello) {
  Cluster::Options opts;
  opts.env = {"BATON_CRASH_AT=supervisor.reattach_before_hello"};
  Cluster c(opts);
  const pid_t serving = StartLoaded(c);
  KillAndAwaitSocket(c, serving);
  ASSERT_TRUE(c.RespawnSupervisor(/*keep_crash_env=*/true));
  const int status = c.WaitSupervisorExit(std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == crashpoints::kCrashExitCode) << "status " << status;
  EXPECT_NE(c.SupervisorLog().find("baton crashpoint supervisor.reattach_before_hello"), std::string::npos);
  EXPECT_TRUE(c.Healthy());
  ASSERT_TRUE(c.WaitForReattachSocket(serving, kSocketWait));
  ExpectReattach(c, serving);
  ExpectCleanLoad(c.FinishLoad());
}

// A supervisor restarted while the orphan rules still settle a handoff (it
// died after the successor's Ready; the old generation waits out its orphan
// grace): two orphans at its start, so it waits, and re-attaches to the one
// left instead of ending it.
TEST(ReattachSettleTest, RestartedMidHandoffReattachesToTheOneLeft) {
  Cluster::Options opts;
  opts.env = {"BATON_CRASH_AT=supervisor.after_recv_ready"};
  Cluster c(opts);
  const pid_t old_pid = StartLoaded(c);
  auto r = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(r.exit_code, 5) << r.out << r.err;
  const int status = c.WaitSupervisorExit(std::chrono::seconds(30));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == crashpoints::kCrashExitCode) << "status " << status;
  const std::string log = Restart(c);
  EXPECT_NE(log.find("2 generations still run"), std::string::npos) << log;
  ExpectReattached(log);
  const pid_t serving = c.IncumbentPid();
  EXPECT_NE(serving, old_pid) << "the successor owns the data after its Ready";
  EXPECT_FALSE(ProcessRunning(old_pid));
  auto up = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  ExpectCleanLoad(c.FinishLoad());
}

}  // namespace
}  // namespace baton::harness
