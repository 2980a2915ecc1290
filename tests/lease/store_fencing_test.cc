// Fencing in the store (docs/lease.md "Fencing writes in the same
// PostgreSQL"): a daemon whose data lives in the lease's database checks the
// lease row FOR SHARE in the same transaction as its write. A write under a
// stale epoch is rejected, and a handover cannot commit while a write
// checked under the old epoch is still open: it waits for it.
#include <libpq-fe.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/lease/lease_test_util.h"
#include "tests/lease/pg_sql.h"

namespace baton::testing {
namespace {

using ownership::Holding;
using ownership::LeaseStore;
using ownership::MaybeEpoch;

// One application connection, as the daemon would hold it.
class App {
 public:
  explicit App(const std::string& dsn) : c_(PQconnectdb(dsn.c_str())) {}
  ~App() { PQfinish(c_); }
  bool Exec(const std::string& sql) {
    PGresult* r = PQexec(c_, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    return ok;
  }
  // The doc's pattern, step 1: inside BEGIN, lock the lease row if it still
  // names us at our epoch. 1 = still the leader, 0 = fenced out.
  int Check(const std::string& holder, uint64_t epoch) {
    const std::string e = std::to_string(epoch);
    const char* params[] = {"job", holder.c_str(), e.c_str()};
    PGresult* r = PQexecParams(c_,
                               "SELECT count(*) FROM (SELECT 1 FROM public.baton_lease WHERE name = $1 AND holder = $2 "
                               "AND epoch = $3::bigint FOR SHARE) AS still_leader",
                               3, nullptr, params, nullptr, nullptr, 0);
    const int n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
  }
  // The whole pattern: BEGIN; check; write; COMMIT (or ROLLBACK when fenced out).
  bool FencedWrite(const std::string& holder, uint64_t epoch, const std::string& value) {
    if (!Exec("BEGIN")) return false;
    if (Check(holder, epoch) != 1) {
      Exec("ROLLBACK");
      return false;
    }
    const bool ok = Exec("INSERT INTO app_data (value, epoch) VALUES ('" + value + "', " + std::to_string(epoch) + ")");
    return Exec(ok ? "COMMIT" : "ROLLBACK") && ok;
  }

 private:
  PGconn* c_;
};

class StoreFencingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.running()) << pg_.error();
    dsn_ = FreshDatabase(pg_);
    store_ = std::make_unique<LeaseStore>(io_.get_executor(), ConnInfo(dsn_));
    ASSERT_TRUE(RunSync(io_, store_->EnsureSchema(In(seconds(5)))).has_value());
    bool ok = false;
    SqlOn(dsn_, "CREATE TABLE app_data (value text, epoch bigint)", &ok);
    ASSERT_TRUE(ok);
  }
  std::string Data() { return SqlOn(dsn_, "SELECT string_agg(value || '@' || epoch, ',' ORDER BY value) FROM app_data"); }

  harness::PgServer& pg_ = SharedPg();
  std::string dsn_;
  boost::asio::io_context io_;
  std::unique_ptr<LeaseStore> store_;
};

TEST_F(StoreFencingTest, AStaleEpochsWriteIsRejected) {
  auto a = RunSync(io_, store_->Acquire("job", "a", seconds(10), In(seconds(5))));
  ASSERT_TRUE(a.has_value() && *a == MaybeEpoch{1});
  App app_a(dsn_), app_b(dsn_);
  EXPECT_TRUE(app_a.FencedWrite("a", 1, "x"));
  // Handed to b (epoch 2): a's writes under epoch 1 are rejected from now on.
  auto moved = RunSync(io_, store_->Move("job", {"a", 1}, {"a", 1}, "b", seconds(10), In(seconds(5))));
  ASSERT_TRUE(moved.has_value() && *moved == MaybeEpoch{2});
  EXPECT_FALSE(app_a.FencedWrite("a", 1, "y"));
  EXPECT_TRUE(app_b.FencedWrite("b", 2, "z"));
  EXPECT_EQ(Data(), "x@1,z@2");
}

TEST_F(StoreFencingTest, AHandoverWaitsForAWriteCheckedUnderTheOldEpoch) {
  auto a = RunSync(io_, store_->Acquire("job", "a", seconds(10), In(seconds(5))));
  ASSERT_TRUE(a.has_value() && *a == MaybeEpoch{1});
  App app(dsn_);
  ASSERT_TRUE(app.Exec("BEGIN"));
  ASSERT_EQ(app.Check("a", 1), 1);
  // The handover runs on its own connection and thread meanwhile.
  std::atomic<bool> moved{false};
  MaybeEpoch got;
  std::thread t([&] {
    boost::asio::io_context io;
    LeaseStore other(io.get_executor(), ConnInfo(dsn_, seconds(10)));
    auto r = RunSync(io, other.Move("job", {"a", 1}, {"a", 1}, "b", seconds(10), In(seconds(20))));
    if (r) got = *r;
    moved = true;
  });
  // It waits on the row lock the write's check took...
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::string waiting;
  while (std::chrono::steady_clock::now() < deadline &&
         (waiting = SqlOn(dsn_, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND "
                                "query LIKE '%baton_lease%'")) != "1") {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(waiting, "1");
  EXPECT_FALSE(moved);
  // ... so the write under epoch 1 commits before epoch 2 exists.
  EXPECT_TRUE(app.Exec("INSERT INTO app_data VALUES ('w', 1)"));
  EXPECT_TRUE(app.Exec("COMMIT"));
  t.join();
  EXPECT_EQ(got, MaybeEpoch{2});
  EXPECT_FALSE(app.FencedWrite("a", 1, "late"));
  EXPECT_EQ(Data(), "w@1");
}

}  // namespace
}  // namespace baton::testing
