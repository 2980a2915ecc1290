// baton::LeaseRunner, the lease without a Daemon, against a real
// PostgreSQL 15: callbacks that alternate, a stop that hands the lease to a
// standby (one NOTIFY, not a TTL), never two leaders among three runners,
// epochs that only grow, an operator's transfer request honored at the
// holder's renew, and the errors Create reports.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "baton/lease.h"
#include "tests/lease/lease_test_util.h"
#include "tests/lease/pg_sql.h"

namespace baton::testing {
namespace {

// What one runner's callbacks saw, in order; the steady clock in µs.
struct Seen {
  struct Change {
    bool start;
    uint64_t epoch;
    LeaseEndReason why;
    int64_t at_us;
  };
  std::mutex mu;
  std::vector<Change> changes;
  std::atomic<uint64_t> leading{0};

  LeaseCallbacks Callbacks() {
    return {.on_start = [this](uint64_t e) { Add(true, e, LeaseEndReason::kStopped); },
            .on_end = [this](uint64_t e, LeaseEndReason why) { Add(false, e, why); }};
  }
  void Add(bool start, uint64_t e, LeaseEndReason why) {
    std::lock_guard<std::mutex> lock(mu);
    changes.push_back({start, e, why, NowUs()});
    leading = start ? e : 0;
  }
  std::vector<Change> Get() {
    std::lock_guard<std::mutex> lock(mu);
    return changes;
  }
  static int64_t NowUs() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A sink that drops everything (the runners' events are not checked here).
class Quiet final : public LogSink {
 public:
  void Emit(const Event&) override {}
};

template <class Pred>
bool Eventually(Pred p, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return p();
}

class LeaseRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.running()) << pg_.error();
    dsn_ = FreshDatabase(pg_);
  }
  std::unique_ptr<LeaseRunner> Runner(Seen& seen, std::chrono::milliseconds ttl = std::chrono::seconds(10)) {
    auto r = LeaseRunner::Create({.name = "job", .dsn = dsn_, .ttl = ttl}, seen.Callbacks(), &quiet_);
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? std::move(*r) : nullptr;
  }
  // Live candidacies of `holder`.
  bool Candidate(const std::string& holder) {
    return SqlOn(dsn_, "SELECT count(*) FROM baton_lease_candidate WHERE name = 'job' AND expires_at > now() "
                       "AND holder = '" + holder + "'") == "1";
  }
  std::string Row() { return SqlOn(dsn_, "SELECT coalesce(holder, '<free>') || ' ' || epoch FROM baton_lease"); }

  harness::PgServer& pg_ = SharedPg();
  std::string dsn_;
  Quiet quiet_;
};

TEST_F(LeaseRunnerTest, StopHandsTheLeaseToTheStandbyAtOnce) {
  Seen a_seen, b_seen;
  auto a = Runner(a_seen);
  ASSERT_TRUE(a);
  ASSERT_TRUE(Eventually([&] { return a->epoch() == 1; }));
  EXPECT_TRUE(a->reachable());
  auto b = Runner(b_seen);
  ASSERT_TRUE(b);
  ASSERT_TRUE(Eventually([&] { return Candidate(b->holder_id()); }));
  EXPECT_EQ(b->epoch(), 0u);

  const auto t0 = std::chrono::steady_clock::now();
  a->Stop();
  EXPECT_EQ(a->epoch(), 0u);
  // One NOTIFY away, not the TTL (10 s): the standby was handed the lease.
  ASSERT_TRUE(Eventually([&] { return b->epoch() == 2; }, std::chrono::seconds(3))) << Row();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(Row(), b->holder_id() + " 2");

  auto as = a_seen.Get();
  ASSERT_EQ(as.size(), 2u);
  EXPECT_TRUE(as[0].start);
  EXPECT_EQ(as[0].epoch, 1u);
  EXPECT_FALSE(as[1].start);
  EXPECT_EQ(as[1].why, LeaseEndReason::kStopped);
  auto bs = b_seen.Get();
  ASSERT_EQ(bs.size(), 1u);
  EXPECT_LE(as[1].at_us, bs[0].at_us);  // A ended before B started
  b->Stop();
  EXPECT_EQ(Row(), "<free> 3");  // no standby left: released
  b->Stop();                      // idempotent
}

TEST_F(LeaseRunnerTest, NeverTwoLeadersAmongThreeAndEpochsOnlyGrow) {
  Seen seen[3];
  std::vector<std::unique_ptr<LeaseRunner>> r;
  for (auto& s : seen) {
    r.push_back(Runner(s, std::chrono::milliseconds(3000)));
    ASSERT_TRUE(r.back());
  }
  std::atomic<bool> done{false};
  std::atomic<int> overlaps{0};
  std::thread watcher([&] {
    while (!done) {
      int leaders = 0;
      for (auto& x : r) leaders += x && x->epoch() != 0 ? 1 : 0;
      if (leaders > 1) ++overlaps;
      std::this_thread::yield();
    }
  });
  // Stop the leader, twice: each time the lease goes to a standby.
  std::vector<bool> stopped(r.size(), false);
  for (int round = 0; round < 2; ++round) {
    size_t leader = r.size();
    ASSERT_TRUE(Eventually([&] {
      for (size_t i = 0; i < r.size(); ++i) {
        if (r[i] && r[i]->epoch() != 0) leader = i;
      }
      return leader != r.size();
    }));
    for (size_t i = 0; i < r.size(); ++i) {
      if (i != leader && !stopped[i]) {
        ASSERT_TRUE(Eventually([&] { return Candidate(r[i]->holder_id()); }));
      }
    }
    r[leader]->Stop();
    stopped[leader] = true;
  }
  ASSERT_TRUE(Eventually([&] {
    for (auto& x : r) {
      if (x && x->epoch() != 0) return true;
    }
    return false;
  }, std::chrono::seconds(3)));
  done = true;
  watcher.join();
  EXPECT_EQ(overlaps, 0);
  // Every start took a higher epoch than any before; intervals never overlap.
  std::vector<Seen::Change> starts, ends;
  for (auto& s : seen) {
    for (auto& c : s.Get()) (c.start ? starts : ends).push_back(c);
  }
  std::sort(starts.begin(), starts.end(), [](auto& x, auto& y) { return x.at_us < y.at_us; });
  ASSERT_EQ(starts.size(), 3u);
  for (size_t i = 1; i < starts.size(); ++i) EXPECT_GT(starts[i].epoch, starts[i - 1].epoch);
  ASSERT_EQ(ends.size(), 2u);
  std::sort(ends.begin(), ends.end(), [](auto& x, auto& y) { return x.at_us < y.at_us; });
  for (size_t i = 0; i < ends.size(); ++i) EXPECT_LE(ends[i].at_us, starts[i + 1].at_us);
  EXPECT_EQ(starts.back().epoch, 3u);  // one bump per handover, no campaign in between
}

TEST_F(LeaseRunnerTest, AnOperatorsTransferRequestIsHonoredAtTheNextRenew) {
  Seen a_seen, b_seen, c_seen;
  auto a = Runner(a_seen, std::chrono::milliseconds(1500));
  ASSERT_TRUE(Eventually([&] { return a->epoch() == 1; }));
  auto b = Runner(b_seen, std::chrono::milliseconds(1500));
  auto c = Runner(c_seen, std::chrono::milliseconds(1500));
  ASSERT_TRUE(Eventually([&] { return Candidate(b->holder_id()) && Candidate(c->holder_id()); }));
  bool ok = false;
  SqlOn(dsn_, "UPDATE baton_lease_candidate SET requested_at = now() WHERE holder = '" + c->holder_id() + "'", &ok);
  ASSERT_TRUE(ok);
  ASSERT_TRUE(Eventually([&] { return c->epoch() == 2; }, std::chrono::seconds(5))) << Row();
  EXPECT_EQ(a->epoch(), 0u);
  EXPECT_EQ(b->epoch(), 0u);
  auto as = a_seen.Get();
  ASSERT_EQ(as.size(), 2u);
  EXPECT_EQ(as[1].why, LeaseEndReason::kHandedOver);
  EXPECT_LE(as[1].at_us, c_seen.Get().at(0).at_us);
  // The old holder stands by as a candidate again.
  EXPECT_TRUE(Eventually([&] { return Candidate(a->holder_id()); }));
}

TEST_F(LeaseRunnerTest, CreateRejectsBadOptionsAndToleratesAnUnreachablePostgres) {
  Seen seen;
  auto bad = LeaseRunner::Create({.name = "", .dsn = dsn_}, seen.Callbacks(), &quiet_);
  ASSERT_FALSE(bad.has_value());
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument)) << bad.error().message;
  auto bad_dsn = LeaseRunner::Create({.name = "job", .dsn = "host=/x nonsense=1"}, seen.Callbacks(), &quiet_);
  ASSERT_FALSE(bad_dsn.has_value());
  EXPECT_TRUE(bad_dsn.error().Is(Errc::kInvalidArgument)) << bad_dsn.error().message;
  auto away = LeaseRunner::Create({.name = "job", .dsn = "host=/nonexistent/dir port=5432 dbname=x",
                                   .op_timeout = std::chrono::milliseconds(200)},
                                  seen.Callbacks(), &quiet_);
  ASSERT_TRUE(away.has_value()) << away.error().message;
  EXPECT_FALSE((*away)->reachable());
  EXPECT_EQ((*away)->epoch(), 0u);
  (*away)->Stop();
  EXPECT_TRUE(seen.Get().empty());
  EXPECT_STREQ(LeaseEndReasonName(LeaseEndReason::kLapsed), "lapsed");
}

}  // namespace
}  // namespace baton::testing
