// The SQL of the handover to a standby elsewhere and of the operator
// commands, against a real PostgreSQL 15: a handover goes to a live
// candidate in one fenced statement (or releases), an operator's release
// keeps the holder's expiry, an operator's transfer request is answered by
// the holder's renew, and dead candidacies are reused (no DELETE).
#include <thread>

#include <gtest/gtest.h>

#include "tests/lease/lease_test_util.h"
#include "tests/lease/pg_sql.h"

namespace baton::testing {
namespace {

using ownership::Handed;
using ownership::Holding;
using ownership::LeaseStore;
using ownership::MaybeEpoch;

class HandoverSqlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.running()) << pg_.error();
    dsn_ = FreshDatabase(pg_);
    store_ = std::make_unique<LeaseStore>(io_.get_executor(), ConnInfo(dsn_));
    ASSERT_TRUE(RunSync(io_, store_->EnsureSchema(In(seconds(5)))).has_value());
  }
  MaybeEpoch Acquire(const std::string& holder, Duration ttl = seconds(10)) {
    auto r = RunSync(io_, store_->Acquire("d", holder, ttl, In(seconds(5))));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : MaybeEpoch{};
  }
  MaybeEpoch Renew(Holding h, std::string* requested = nullptr) {
    auto r = RunSync(io_, store_->Renew("d", h, seconds(10), In(seconds(5)), requested));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : MaybeEpoch{};
  }
  void Register(const std::string& holder, Duration ttl = seconds(10)) {
    auto st = RunSync(io_, store_->Register("d", holder, ttl, In(seconds(5))));
    EXPECT_TRUE(st.has_value()) << st.error().message;
  }
  std::optional<Handed> Handover(Holding me, const std::string& target, bool release) {
    auto r = RunSync(io_, store_->Handover("d", me, target, seconds(10), release, In(seconds(5))));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : std::optional<Handed>{};
  }
  std::string Row() {
    const std::string r = Sql("SELECT coalesce(holder, '<free>') || ' ' || epoch FROM baton_lease WHERE name = 'd'");
    return r.empty() ? "<none>" : r;
  }
  std::string Sql(const std::string& sql) {
    bool ok = false;
    std::string out = SqlOn(dsn_, sql, &ok);
    EXPECT_TRUE(ok) << out;
    return out;
  }

  harness::PgServer& pg_ = SharedPg();
  std::string dsn_;
  boost::asio::io_context io_;
  std::unique_ptr<LeaseStore> store_;
};

TEST_F(HandoverSqlTest, HandoverGoesToALiveCandidateInOneFencedStatement) {
  ASSERT_EQ(Acquire("a"), MaybeEpoch{1});
  Register("b");
  Register("a");  // our own stale candidacy is never chosen
  auto h = Handover({"a", 1}, "", true);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->epoch, 2u);
  EXPECT_EQ(h->to, "b");
  EXPECT_EQ(Row(), "b 2");
  EXPECT_EQ(Renew({"a", 1}), MaybeEpoch{});   // the old holder is fenced out
  EXPECT_EQ(Renew({"b", 2}), MaybeEpoch{2});  // the candidate confirms the epoch it was handed
  // A stale holding hands over nothing.
  EXPECT_FALSE(Handover({"a", 1}, "", true).has_value());
  EXPECT_EQ(Row(), "b 2");
}

TEST_F(HandoverSqlTest, WithoutALiveCandidateItReleasesOrLeavesTheRow) {
  ASSERT_EQ(Acquire("a"), MaybeEpoch{1});
  Register("gone");
  auto st = RunSync(io_, store_->Unregister("d", "gone", In(seconds(5))));
  ASSERT_TRUE(st.has_value());
  EXPECT_FALSE(Handover({"a", 1}, "", false).has_value());  // no release asked: unchanged
  EXPECT_EQ(Row(), "a 1");
  auto h = Handover({"a", 1}, "", true);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->to, "");
  EXPECT_EQ(Row(), "<free> 2");
  EXPECT_EQ(Acquire("c"), MaybeEpoch{3});  // free at once
}

TEST_F(HandoverSqlTest, AnOperatorReleaseKeepsTheHoldersExpiry) {
  ASSERT_EQ(Acquire("a", milliseconds(1500)), MaybeEpoch{1});
  auto r = RunSync(io_, store_->OperatorRelease("d", {"a", 1}, In(seconds(5))));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, MaybeEpoch{2});
  EXPECT_EQ(Renew({"a", 1}), MaybeEpoch{});  // fenced out at its next renew
  // "a" may act until its expiry: nobody acquires before.
  EXPECT_EQ(Acquire("b"), MaybeEpoch{});
  EXPECT_EQ(Row(), "<free> 2");
  // A release fenced on a holding that moved on changes nothing.
  auto again = RunSync(io_, store_->OperatorRelease("d", {"a", 1}, In(seconds(5))));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, MaybeEpoch{});
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  MaybeEpoch got;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    got = Acquire("b");
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // until the expiry passes
  }
  EXPECT_EQ(got, MaybeEpoch{3});
  EXPECT_EQ(Sql("SELECT count(*) FROM baton_lease WHERE name = 'd' AND expires_at > now()"), "1");
}

TEST_F(HandoverSqlTest, AnOperatorRequestIsAnsweredByTheHoldersRenew) {
  ASSERT_EQ(Acquire("a"), MaybeEpoch{1});
  Register("b");
  Register("c");
  auto no = RunSync(io_, store_->RequestHandover("d", "nobody", In(seconds(5))));
  ASSERT_TRUE(no.has_value());
  EXPECT_FALSE(*no);  // not a live candidate
  auto yes = RunSync(io_, store_->RequestHandover("d", "c", In(seconds(5))));
  ASSERT_TRUE(yes.has_value());
  EXPECT_TRUE(*yes);
  std::string requested;
  EXPECT_EQ(Renew({"a", 1}, &requested), MaybeEpoch{1});
  EXPECT_EQ(requested, "c");
  auto h = Handover({"a", 1}, requested, false);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->to, "c");
  EXPECT_EQ(Row(), "c 2");
  EXPECT_EQ(Sql("SELECT count(*) FROM baton_lease_candidate WHERE requested_at IS NOT NULL"), "0");
  requested = "x";
  EXPECT_EQ(Renew({"c", 2}, &requested), MaybeEpoch{2});
  EXPECT_EQ(requested, "");
}

TEST_F(HandoverSqlTest, DeadCandidaciesAreReusedNotAccumulated) {
  for (int i = 0; i < 5; ++i) {
    const std::string h = "p" + std::to_string(i);
    Register(h);
    Register(h);  // a refresh, not a second row
    // The process goes away; a minute later its row is fair game.
    Sql("UPDATE baton_lease_candidate SET expires_at = now() - interval '2 minutes' WHERE holder = '" + h + "'");
  }
  EXPECT_EQ(Sql("SELECT count(*) FROM baton_lease_candidate"), "1");
  EXPECT_EQ(Sql("SELECT holder FROM baton_lease_candidate"), "p4");
}

}  // namespace
}  // namespace baton::testing
