// The crash matrix with the Postgres leader lease on: kvd under `baton
// supervise` with a [lease] on a real PostgreSQL 15 this binary starts,
// under baton-load. One process dies at each point around the lease's
// handoff (the transfer inside Seal, the confirm at Begin); once the
// service converges the checks of crash_matrix_test.cc apply (one serving
// flock holder, nothing acknowledged lost, the next upgrade commits), plus
// the lease invariants:
//
// * at most one holder at every instant: the leader intervals every process
//   logs (lease.leader_start / leader_end, monotonic µs) never overlap; a
//   process that died at a point ends its interval at its death (the crash
//   point's marker line carries the same clock);
// * epochs only grow: along the intervals, in the lease row polled from
//   Postgres the whole time (and one holder per epoch there), and in the WAL;
// * the serving generation holds the lease at the end (the row names it,
//   its /healthz shows the row's epoch) at the epoch the design predicts;
// * the leaderless gap: below kImmediateGapUs (2 s) where the design hands the lease
//   over at once (a transfer, a confirm, a reclaim by the incumbent, or an
//   acquire of a row that already names the successor), and within
//   [TTL/2, TTL + poll + slack] where the dead holder's lease must expire.
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "crashpoints/crashpoints.h"
#include "tests/crash/converge.h"
#include "tests/integration/integration_util.h"
#include "tests/lease/lease_cluster_util.h"
#include "tests/lease/lease_test_util.h"

namespace baton::testing {
namespace {

using harness::Cluster;
using harness::LeaderInterval;

constexpr int64_t kTtlUs = 10'000'000;  // the [lease] ttl below
// Where the handover is immediate, the gap is a process reaped, a control
// message or two and one fenced UPDATE: tens of ms on loopback. A fifth of
// the TTL leaves room for a loaded machine (sanitizer builds, parallel
// tests) while failing on any wait for an expiry (at least 2/3 of a TTL).
constexpr int64_t kImmediateGapUs = kTtlUs / 5;
// A dead holder's row expires a TTL after its last renew, at most TTL/3
// (the renew interval) before it died; a standby polls every TTL/4.
constexpr int64_t kTtlGapMinUs = kTtlUs / 2;
constexpr int64_t kTtlGapMaxUs = kTtlUs + kTtlUs / 4 + 3'000'000;

enum class Gap { kImmediate, kTtl };

struct LeaseCrashCase {
  const char* point;
  int exit_code;              // `baton upgrade`
  bool process_dies_serving;  // connections it held may be reset
  Gap gap;
  uint64_t epoch_bumps;       // lease epoch once converged, minus the one before the upgrade
  bool successor_leads;       // the successor serves and holds the lease at the end (else the incumbent)
  // Writes may be answered 503 ("not the leader") for a while: a serving
  // generation that campaigns, or resumes, runs beside the lease call.
  bool writes_may_be_refused;
  size_t leaders;             // leader intervals once converged (the dead process's included)
};

// ctest lists each case by its point, not its bytes.
void PrintTo(const LeaseCrashCase& cc, std::ostream* os) { *os << cc.point; }

// The pid in a holder id ("<host>/<pid>/<random>", a label may come first).
pid_t PidOfHolder(const std::string& holder) {
  const size_t last = holder.rfind('/');
  if (last == std::string::npos || last == 0) return -1;
  const size_t prev = holder.rfind('/', last - 1);
  const size_t from = prev == std::string::npos ? 0 : prev + 1;
  return static_cast<pid_t>(std::atoi(holder.substr(from, last - from).c_str()));
}

// Ends the open leader interval of the process that died at `point` when it
// died (the marker "baton crashpoint NAME pid P mono_us T"). false when the
// marker is missing.
bool EndAtCrash(std::vector<LeaderInterval>& iv, const std::string& log, const std::string& point) {
  const std::string key = "baton crashpoint " + point + " pid ";
  const size_t at = log.find(key);
  if (at == std::string::npos) return false;
  int pid = 0;
  long long mono_us = 0;
  if (std::sscanf(log.c_str() + at + key.size(), "%d mono_us %lld", &pid, &mono_us) != 2) return false;
  for (auto& i : iv) {
    if (i.open() && PidOfHolder(i.holder) == pid) i.end_us = mono_us;
  }
  return true;
}

std::string Show(const std::vector<LeaderInterval>& iv) {
  std::string s;
  for (const auto& i : iv) {
    s += "  epoch " + std::to_string(i.epoch) + " pid " + std::to_string(PidOfHolder(i.holder)) + " [" +
         std::to_string(i.start_us) + ", " + (i.open() ? std::string("open") : std::to_string(i.end_us)) + "]\n";
  }
  return s;
}

// Polls the lease row on a connection and a thread of its own for as long
// as it lives and keeps every change: the database's view, beside the
// processes' logs.
class LeaseRowWatcher {
 public:
  struct Row {
    std::string holder;  // "" = free
    uint64_t epoch = 0;
  };
  LeaseRowWatcher(const std::string& dsn, std::string name) : name_(std::move(name)) {
    conn_ = PQconnectdb(dsn.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) {
      error_ = PQerrorMessage(conn_);
      return;
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~LeaseRowWatcher() {
    Stop();
    PQfinish(conn_);
  }
  LeaseRowWatcher(const LeaseRowWatcher&) = delete;
  LeaseRowWatcher& operator=(const LeaseRowWatcher&) = delete;

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // The changes seen so far, and the error that ended the polling ("" if none).
  std::vector<Row> rows() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rows_;
  }
  std::string error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  void Run() {
    const char* params[] = {name_.c_str()};
    while (!stop_) {
      PGresult* r = PQexecParams(conn_, "SELECT coalesce(holder, ''), epoch FROM baton_lease WHERE name = $1", 1,
                                 nullptr, params, nullptr, nullptr, 0);
      std::lock_guard<std::mutex> lock(mu_);
      if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        error_ = PQresultErrorMessage(r);
        PQclear(r);
        return;
      }
      if (PQntuples(r) == 1) {
        Row row{PQgetvalue(r, 0, 0), std::stoull(PQgetvalue(r, 0, 1))};
        if (rows_.empty() || rows_.back().holder != row.holder || rows_.back().epoch != row.epoch) {
          rows_.push_back(std::move(row));
        }
      }
      PQclear(r);
    }
  }

  const std::string name_;
  PGconn* conn_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<Row> rows_;  // guarded by mu_
  std::string error_;      // guarded by mu_
};

// The row's epochs never fall, and each epoch names one holder.
void ExpectRowHistoryMonotonic(const std::vector<LeaseRowWatcher::Row>& rows) {
  std::string shown;
  for (const auto& r : rows) shown += "  " + std::to_string(r.epoch) + " " + (r.holder.empty() ? "<free>" : r.holder) + "\n";
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_GT(rows[i].epoch, rows[i - 1].epoch) << "the lease row went from epoch " << rows[i - 1].epoch << " ("
                                                << rows[i - 1].holder << ") to " << rows[i].epoch << " ("
                                                << rows[i].holder << "); all changes seen:\n"
                                                << shown;
  }
}

// The lease invariants once converged: intervals never overlap (the dead
// holder's ends at its death), their epochs grow, the last one is open and
// the serving generation's, the row and /healthz agree with it. Returns the
// leaderless gaps (µs) and the serving epoch.
struct LeaseState {
  std::vector<int64_t> gaps;
  uint64_t epoch = 0;
};
LeaseState ExpectOneServingHolder(Cluster& c, harness::PgServer& pg, const std::string& lease,
                                  const std::string& point) {
  LeaseState out;
  const std::string log = c.SupervisorLog();
  auto iv = LeaderIntervals(log);
  EXPECT_TRUE(EndAtCrash(iv, log, point)) << "no crash marker for " << point;
  out.gaps = ExpectNoOverlap(iv);
  for (size_t i = 1; i < iv.size(); ++i) EXPECT_GT(iv[i].epoch, iv[i - 1].epoch) << Show(iv);
  if (iv.empty() || !iv.back().open()) {
    ADD_FAILURE() << "nobody leads at the end:\n" << Show(iv);
    return out;
  }
  const LeaderInterval& last = iv.back();
  out.epoch = last.epoch;
  EXPECT_EQ(PidOfHolder(last.holder), c.IncumbentPid()) << "the lease is not the serving generation's:\n" << Show(iv);
  EXPECT_EQ(LeaseRow(pg, lease), last.holder + " " + std::to_string(last.epoch));
  EXPECT_EQ(ServingEpoch(c), static_cast<int64_t>(last.epoch));
  std::cout << point << ": leader intervals (mono µs):\n" << Show(iv);
  return out;
}

class LeaseCrashMatrixTest : public ::testing::TestWithParam<LeaseCrashCase> {};

TEST_P(LeaseCrashMatrixTest, InvariantsHold) {
  const LeaseCrashCase& cc = GetParam();
  auto target = crashpoints::ParseTarget(cc.point);
  ASSERT_TRUE(target) << cc.point;
  const std::string name(target->info->name);
  const bool successor = target->info->role == crashpoints::Role::kSuccessor;
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();

  // The supervisor's [lease], handed to every generation (kvd configures none).
  std::string lease = name;
  for (auto& ch : lease) ch = ch == '.' ? '_' : ch;
  const harness::TempDir conf("lcm");
  const std::string conf_path = conf.path() + "/baton.toml";
  std::ofstream(conf_path) << "[lease]\ndsn = \"" << pg.dsn() << "\"\nname = \"" << lease
                           << "\"\nttl = \"" << kTtlUs / 1'000'000 << "s\"\n";
  Cluster::Options opts{.kvd_args = {}, .supervise_args = {"--config", conf_path}, .env = {}};
  // Incumbent points through the supervisor (the first cold start gets it),
  // successor points through a wrapper binary.
  if (!successor) opts.env = {std::string("BATON_CRASH_AT=") + cc.point};
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  ASSERT_TRUE(WaitForLeader(c)) << c.SupervisorLog();
  const int64_t before = ServingEpoch(c);
  const pid_t incumbent = c.IncumbentPid();

  LeaseRowWatcher watcher(pg.dsn(), lease);
  ASSERT_TRUE(watcher.error().empty()) << watcher.error();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string binary =
      !successor ? harness::BinPath("kvd")
                 : c.Script("armed", std::string("BATON_CRASH_AT=") + cc.point + " exec " + harness::BinPath("kvd") +
                                         " \"$@\"");
  auto r = c.Upgrade(binary);
  EXPECT_EQ(r.exit_code, cc.exit_code) << r.out << r.err;
  EXPECT_TRUE(c.WaitForLog("baton crashpoint " + name, std::chrono::seconds(10))) << "the point never fired";

  // One serving flock holder, which then leads (after the dead holder's
  // TTL at most).
  ASSERT_NO_FATAL_FAILURE(harness::ExpectConvergesToOneOwner(c));
  ASSERT_TRUE(WaitForLeader(c, std::chrono::milliseconds((kTtlGapMaxUs + 5'000'000) / 1000))) << c.SupervisorLog();
  const pid_t serving = c.IncumbentPid();
  if (cc.successor_leads) {
    EXPECT_NE(serving, incumbent);
  } else {
    EXPECT_EQ(serving, incumbent);
  }
  LeaseState st = ExpectOneServingHolder(c, pg, lease, name);
  EXPECT_EQ(st.epoch, static_cast<uint64_t>(before) + cc.epoch_bumps);
  ASSERT_EQ(st.gaps.size() + 1, cc.leaders);
  std::string shown;
  for (int64_t g : st.gaps) shown += " " + std::to_string(g);
  std::cout << name << ": leaderless gaps (µs):" << shown << "\n";
  for (int64_t g : st.gaps) EXPECT_GE(g, 0) << shown;
  if (cc.gap == Gap::kImmediate) {
    for (int64_t g : st.gaps) EXPECT_LT(g, kImmediateGapUs) << "a leaderless gap of " << g << " µs";
  } else {
    // The dead incumbent never handed its lease over: its row had to expire.
    ASSERT_EQ(st.gaps.size(), 1u) << shown;
    EXPECT_GE(st.gaps[0], kTtlGapMinUs);
    EXPECT_LT(st.gaps[0], kTtlGapMaxUs);
  }

  // A clean upgrade to the plain binary commits and hands the lease over.
  auto next = c.Upgrade(harness::BinPath("kvd"));
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  ASSERT_TRUE(WaitForLeader(c)) << c.SupervisorLog();
  LeaseState after = ExpectOneServingHolder(c, pg, lease, name);
  EXPECT_EQ(after.epoch, st.epoch + 1);

  // Resets only from a process that died serving, 503s only where a
  // generation serves beside a lease call in flight.
  auto load = c.FinishLoad();
  std::cout << "load: " << load.out << "\n";
  harness::ExpectCleanLoad(load, cc.process_dies_serving, cc.writes_may_be_refused);
  watcher.Stop();
  EXPECT_TRUE(watcher.error().empty()) << watcher.error();
  const auto rows = watcher.rows();
  ASSERT_FALSE(rows.empty());
  ExpectRowHistoryMonotonic(rows);
  EXPECT_EQ(rows.back().epoch, after.epoch);
  EXPECT_EQ(PidOfHolder(rows.back().holder), c.IncumbentPid());

  // Every acknowledged write carries its writer's epoch: never 0, never
  // smaller than an earlier record's.
  auto epochs = WalEpochs(c.dir() + "/data");
  ASSERT_FALSE(epochs.empty());
  EXPECT_EQ(std::count(epochs.begin(), epochs.end(), 0u), 0);
  EXPECT_TRUE(std::is_sorted(epochs.begin(), epochs.end()));
  EXPECT_EQ(harness::ZombiesAfterSettling(c.supervisor_pid()), 0);
}

// Epochs, from E held by the incumbent before the upgrade: a transfer, a
// successor's acquire, a reclaim and an expired-row acquire each add one; a
// confirm adds none.
INSTANTIATE_TEST_SUITE_P(
    Points, LeaseCrashMatrixTest,
    ::testing::Values(
        // O dies in its seal hook, quiesced but still the row's holder: N
        // gets Begin(sealed=false) and campaigns; the row expires first.
        LeaseCrashCase{"incumbent.in_seal", 0, true, Gap::kTtl, 1, true, true, 2},
        // O dies after the transfer (row: N at E+1), holding the flock: N
        // gets Begin(sealed=false) and its acquire takes the row that names
        // it at once (E+2).
        LeaseCrashCase{"incumbent.after_lease_transfer", 0, true, Gap::kImmediate, 2, true, true, 2},
        LeaseCrashCase{"incumbent.after_flock_release", 0, true, Gap::kImmediate, 2, true, true, 2},
        // O reported: N confirms E+1 before it serves.
        LeaseCrashCase{"incumbent.after_seal_complete", 0, true, Gap::kImmediate, 1, true, false, 2},
        // N dies before its confirm, or after it (then it led, briefly): O
        // is told to resume and reclaims the row from N (E+2).
        LeaseCrashCase{"successor.after_begin", 3, false, Gap::kImmediate, 2, false, true, 2},
        LeaseCrashCase{"successor.after_lease_confirm", 3, false, Gap::kImmediate, 2, false, true, 3},
        LeaseCrashCase{"successor.after_flock", 3, false, Gap::kImmediate, 2, false, true, 3}),
    [](const auto& info) {
      return harness::TestNameOf(info.param.point);
    });

}  // namespace
}  // namespace baton::testing
