// Faults around the lease hand-off, with real processes and a real
// PostgreSQL: Postgres stopped before and during Seal, a statement held up
// by a row lock, the lease connection's backend terminated or SIGSTOPped
// mid-transfer, the successor crashing right after the transfer, the
// supervisor crashing after it. Each ends bounded, with at most one holder
// (never two leader intervals at once), and the next handoff commits.
#include <libpq-fe.h>
#include <signal.h>

#include <future>
#include <iostream>
#include <thread>

#include "tests/lease/lease_cluster_util.h"
#include "tests/lease/lease_test_util.h"
#include "tools/harness/subprocess.h"

namespace baton::testing {
namespace {

using harness::Cluster;
using harness::CommandResult;
using Clock = std::chrono::steady_clock;

// Each case gets its own server: some stop it.
class LeaseFaultTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(pg_.Start()) << pg_.error(); }

  // A supervised kvd with a lease whose seal takes `seal_delay_ms`, so a
  // fault can be injected while it runs.
  std::unique_ptr<Cluster> StartCluster(int seal_delay_ms = 0, std::vector<std::string> env = {}) {
    std::vector<std::string> extra;
    if (seal_delay_ms > 0) extra = {"--seal-delay-ms", std::to_string(seal_delay_ms)};
    auto c = std::make_unique<Cluster>(
        Cluster::Options{.kvd_args = LeaseKvdArgs(pg_, "kv", extra), .supervise_args = {}, .env = std::move(env)});
    EXPECT_TRUE(c->Start()) << c->SupervisorLog();
    EXPECT_TRUE(WaitForLeader(*c)) << c->SupervisorLog();
    return c;
  }

  // Runs `baton upgrade` in the background.
  std::future<CommandResult> UpgradeAsync(Cluster& c, const std::string& binary = "") {
    return std::async(std::launch::async, [&c, binary] { return c.Upgrade(binary); });
  }

  // Waits until the supervisor logged that drain finished (Seal is next).
  bool WaitForSeal(Cluster& c, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      const std::string log = c.SupervisorLog();
      if (log.find("\"phase\":\"drain\"") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // The lease backends of the process holding it now.
  std::vector<pid_t> HolderBackends(Cluster& c) {
    const std::string holder = CurrentHolder(c.SupervisorLog());
    EXPECT_FALSE(holder.empty());
    return pg_.Backends(("baton-lease " + holder).substr(0, 63));
  }

  // Converged: one leader interval open, serving, the row names it.
  void ExpectOneHolder(Cluster& c, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline && ServingEpoch(c) <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::string log = c.SupervisorLog();
    ASSERT_GT(ServingEpoch(c), 0) << log;
    auto iv = LeaderIntervals(log);
    ExpectNoOverlap(iv);
    ASSERT_FALSE(iv.empty());
    ASSERT_TRUE(iv.back().open()) << log;
    EXPECT_EQ(LeaseRow(pg_, "kv"), iv.back().holder + " " + std::to_string(ServingEpoch(c)));
  }

  void ExpectNextHandoffCommits(Cluster& c) {
    auto r = c.Upgrade(harness::BinPath("kvd"));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog();
    ExpectOneHolder(c);
  }

  harness::PgServer pg_;
};

TEST_F(LeaseFaultTest, PostgresStoppedBeforeSealRollsBackWithinTheBudget) {
  auto c = StartCluster();
  pg_.Stop();
  const auto t0 = Clock::now();
  auto r = c->Upgrade();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("lease"), std::string::npos) << r.out;
  ASSERT_TRUE(pg_.Start()) << pg_.error();
  ExpectOneHolder(*c);  // the incumbent resolved the unknown outcome back to itself
  ExpectNextHandoffCommits(*c);
}

TEST_F(LeaseFaultTest, PostgresStoppedDuringSealRollsBack) {
  auto c = StartCluster(800);
  auto up = UpgradeAsync(*c);
  ASSERT_TRUE(WaitForSeal(*c));
  pg_.Stop();
  auto r = up.get();
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  ASSERT_TRUE(pg_.Start()) << pg_.error();
  ExpectOneHolder(*c);
  ExpectNextHandoffCommits(*c);
}

TEST_F(LeaseFaultTest, ARowLockHoldingUpTheTransferRollsBackInTime) {
  auto c = StartCluster(300);
  PGconn* tx = PQconnectdb(pg_.dsn().c_str());
  ASSERT_EQ(PQstatus(tx), CONNECTION_OK);
  auto up = UpgradeAsync(*c);
  ASSERT_TRUE(WaitForSeal(*c));
  PQclear(PQexec(tx, "BEGIN"));
  PQclear(PQexec(tx, "SELECT * FROM baton_lease WHERE name = 'kv' FOR UPDATE"));
  const auto t0 = Clock::now();
  auto r = up.get();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(8));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  PQclear(PQexec(tx, "ROLLBACK"));
  PQfinish(tx);
  ExpectOneHolder(*c);
  ExpectNextHandoffCommits(*c);
}

TEST_F(LeaseFaultTest, TheLeaseBackendTerminatedMidTransferIsRetriedOnANewConnection) {
  auto c = StartCluster(500);
  auto up = UpgradeAsync(*c);
  ASSERT_TRUE(WaitForSeal(*c));
  auto backends = HolderBackends(*c);
  ASSERT_FALSE(backends.empty());
  for (pid_t b : backends) pg_.Query("SELECT pg_terminate_backend(" + std::to_string(b) + ")");
  auto r = up.get();
  // The transfer reconnects within the budget: usually committed; a
  // rollback is also correct. Either way one holder, then a clean handoff.
  std::cout << "outcome after the backend was terminated: exit " << r.exit_code << "\n";
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.out << r.err;
  ExpectOneHolder(*c);
  ExpectNextHandoffCommits(*c);
}

TEST_F(LeaseFaultTest, TheLeaseBackendStoppedMidTransferEndsBounded) {
  auto c = StartCluster(500);
  auto up = UpgradeAsync(*c);
  ASSERT_TRUE(WaitForSeal(*c));
  auto backends = HolderBackends(*c);
  ASSERT_FALSE(backends.empty());
  for (pid_t b : backends) ::kill(b, SIGSTOP);
  const auto t0 = Clock::now();
  auto r = up.get();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(8));
  std::cout << "outcome with the backend stopped: exit " << r.exit_code << "\n";
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.out << r.err;
  for (pid_t b : backends) ::kill(b, SIGCONT);
  ExpectOneHolder(*c);
  ExpectNextHandoffCommits(*c);
}

TEST_F(LeaseFaultTest, SuccessorCrashRightAfterTheTransferIsReclaimed) {
  auto c = StartCluster();
  const std::string holder = CurrentHolder(c->SupervisorLog());
  const std::string armed =
      c->Script("armed", "BATON_CRASH_AT=successor.after_begin exec " + harness::BinPath("kvd") + " \"$@\"");
  auto r = c->Upgrade(armed);
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(c->SupervisorLog().find("baton crashpoint successor.after_begin"), std::string::npos);
  ExpectOneHolder(*c);
  // Handed over at 2, taken back at 3, by the same incumbent.
  EXPECT_EQ(LeaseRow(pg_, "kv"), holder + " 3");
  ExpectNextHandoffCommits(*c);
}

TEST_F(LeaseFaultTest, SupervisorCrashAfterTheTransferLeavesExactlyOneHolder) {
  auto c = StartCluster(0, {"BATON_CRASH_AT=supervisor.after_recv_seal_complete"});
  const std::string holder = CurrentHolder(c->SupervisorLog());
  const pid_t incumbent = c->IncumbentPid();
  auto r = c->Upgrade();
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  // The successor exits (no supervisor before Ready), releasing the row it
  // never confirmed (2 → free at 3); the sealed incumbent re-takes the
  // flock once it is gone and takes the lease back: a reclaim at 3 if the
  // successor's release did not get through, else an acquire at 4.
  auto back = [&] { return LeaseRow(pg_, "kv") == holder + " 3" || LeaseRow(pg_, "kv") == holder + " 4"; };
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline && !back()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(back()) << LeaseRow(pg_, "kv") << "\n" << c->SupervisorLog();
  const int64_t epoch = std::stoll(LeaseRow(pg_, "kv").substr(holder.size() + 1));
  EXPECT_EQ(::kill(incumbent, 0), 0) << "the incumbent should still serve";
  auto iv = LeaderIntervals(c->SupervisorLog());
  ExpectNoOverlap(iv);
  ASSERT_FALSE(iv.empty());
  EXPECT_TRUE(iv.back().open());
  EXPECT_EQ(iv.back().holder, holder);
  for (const auto& i : iv) EXPECT_EQ(i.holder, holder) << "the successor must never have led";
  // The incumbent serves writes again under the epoch it took back.
  const auto serving = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < serving && ServingEpoch(*c) != epoch) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ServingEpoch(*c), epoch);
  // A new supervisor re-attaches to the orphan, which serves on with its
  // lease, and the next handoff commits.
  ASSERT_TRUE(c->WaitForReattachSocket(incumbent, std::chrono::seconds(30))) << c->SupervisorLog();
  ASSERT_TRUE(c->RestartSupervisor()) << c->SupervisorLog();
  EXPECT_EQ(c->IncumbentPid(), incumbent) << "the orphan was replaced instead of re-attached";
  auto next = c->Upgrade();
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  ExpectNoOverlap(LeaderIntervals(c->SupervisorLog()));
}

}  // namespace
}  // namespace baton::testing
