// kvd's checkpoints under load with a crash at each of their points
// (examples/kvd/checkpointer.h): the checkpoint child dying before its
// rename, kvd dying with a new snapshot in place before removing old files,
// and kvd dying halfway through removing old WAL segments. Each time:
// nothing acknowledged is lost, the service converges to one owner, later
// checkpoints remove the old WAL, and a successor warms up from a snapshot
// instead of the whole history.
#include <filesystem>
#include <thread>

#include "tests/crash/converge.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

struct CheckpointCase {
  const char* point;
  bool kills_server;  // kvd itself dies (else only its checkpoint child)
};

void PrintTo(const CheckpointCase& c, std::ostream* os) { *os << c.point; }

class CheckpointCrashTest : public ::testing::TestWithParam<CheckpointCase> {};

bool WaitFor(const std::function<bool()>& cond, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

TEST_P(CheckpointCrashTest, NothingAcknowledgedIsLost) {
  const CheckpointCase& cc = GetParam();
  Cluster::Options opts;
  // The supervisor arms a daemon point in its first generation only.
  opts.env = {std::string("BATON_CRASH_AT=") + cc.point};
  // Small snapshots and segments, so that checkpoints and segment removal
  // happen within seconds of load.
  opts.kvd_args = {"--checkpoint-bytes", "32768", "--rotate-bytes", "65536"};
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const std::string data = c.dir() + "/data";
  c.StartLoad(8, "600s");
  ASSERT_TRUE(c.WaitForLog(std::string("baton crashpoint ") + cc.point, std::chrono::seconds(120)))
      << "the point never fired\n"
      << c.SupervisorLog().substr(0, 8000);
  ASSERT_NO_FATAL_FAILURE(ExpectConvergesToOneOwner(c));

  // An upgrade moves the service to an unarmed generation (when the first
  // one is still serving), which then checkpoints and removes the WAL up to
  // its older kept snapshot.
  auto first = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(WaitFor([&] { return !std::filesystem::exists(data + "/wal-000001.log"); }, std::chrono::seconds(120)))
      << "the first WAL segment was never removed\n"
      << c.SupervisorLog().substr(0, 8000);

  // The next successor starts from a snapshot, not from revision 1.
  const std::string before = c.SupervisorLog();
  auto second = c.Upgrade(BinPath("kvd"));
  EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(c.SupervisorLog().find("kvd.snapshot.loaded", before.size()), std::string::npos)
      << c.SupervisorLog().substr(before.size(), 8000);

  ExpectCleanLoad(c.FinishLoad(), cc.kills_server);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(Points, CheckpointCrashTest,
                         ::testing::Values(CheckpointCase{"kvd.checkpoint_before_rename", false},
                                           CheckpointCase{"kvd.checkpoint_before_gc", true},
                                           CheckpointCase{"kvd.checkpoint_mid_gc", true}),
                         [](const auto& info) {
                           std::string n = info.param.point;
                           for (auto& ch : n) ch = ch == '.' ? '_' : ch;
                           return n;
                         });

}  // namespace
}  // namespace baton::harness
