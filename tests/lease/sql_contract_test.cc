// The lease's SQL contract (docs/design.md §8) against a real PostgreSQL 15: one
// winner among concurrent acquirers, fenced renew/release/transfer, the
// renew-after-transfer race, epochs that only grow, no DELETE anywhere.
#include <libpq-fe.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <regex>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <gtest/gtest.h>

#include "tests/lease/lease_test_util.h"
#include "tools/harness/subprocess.h"

namespace baton::testing {
namespace {

namespace asio = boost::asio;
using ownership::Holding;
using ownership::LeaseStore;
using ownership::MaybeEpoch;

class SqlContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.running()) << pg_.error();
    dsn_ = FreshDatabase(pg_);
  }
  std::unique_ptr<LeaseStore> Store(Duration lock_timeout = milliseconds(500)) {
    return std::make_unique<LeaseStore>(io_.get_executor(), ConnInfo(dsn_, lock_timeout));
  }
  Status Schema(LeaseStore& s) { return RunSync(io_, s.EnsureSchema(In(seconds(5)))); }
  MaybeEpoch Acquire(LeaseStore& s, const std::string& holder, Duration ttl = seconds(10)) {
    auto r = RunSync(io_, s.Acquire("domain", holder, ttl, In(seconds(5))));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : MaybeEpoch{};
  }
  MaybeEpoch Renew(LeaseStore& s, Holding h) {
    auto r = RunSync(io_, s.Renew("domain", h, seconds(10), In(seconds(5))));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : MaybeEpoch{};
  }
  MaybeEpoch Release(LeaseStore& s, Holding h) {
    auto r = RunSync(io_, s.Release("domain", h, In(seconds(5))));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : MaybeEpoch{};
  }
  MaybeEpoch Transfer(LeaseStore& s, Holding from, const std::string& to) {
    auto r = RunSync(io_, s.Move("domain", from, from, to, seconds(10), In(seconds(5))));
    EXPECT_TRUE(r.has_value()) << r.error().message;
    return r ? *r : MaybeEpoch{};
  }
  // Runs SQL on this test's database as the superuser (blocking).
  std::string Sql(const std::string& sql, bool* ok = nullptr) {
    PGconn* c = PQconnectdb(dsn_.c_str());
    PGresult* r = PQexec(c, sql.c_str());
    const bool good = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    if (ok != nullptr) *ok = good;
    std::string out = good ? (PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "") : PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    return out;
  }

  harness::PgServer& pg_ = SharedPg();
  std::string dsn_;
  asio::io_context io_;
};

TEST_F(SqlContractTest, SixteenConcurrentAcquirersHaveExactlyOneWinner) {
  // Schema creation races too: every acquirer starts on an empty database.
  std::vector<std::unique_ptr<LeaseStore>> stores;
  std::vector<std::optional<Result<MaybeEpoch>>> results(16);
  for (int i = 0; i < 16; ++i) stores.push_back(Store());
  for (int i = 0; i < 16; ++i) {
    asio::co_spawn(
        io_,
        [&, i]() -> asio::awaitable<void> {
          auto st = co_await stores[i]->EnsureSchema(In(seconds(10)));
          if (!st) {
            results[i] = Result<MaybeEpoch>(st.error());
            co_return;
          }
          results[i] = co_await stores[i]->Acquire("domain", "holder-" + std::to_string(i), seconds(10),
                                                   In(seconds(10)));
        },
        asio::detached);
  }
  io_.run();
  int winners = 0;
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(results[i].has_value());
    ASSERT_TRUE(results[i]->has_value()) << i << ": " << results[i]->error().message;
    if (results[i]->value()) {
      ++winners;
      EXPECT_EQ(*results[i]->value(), 1u);
    }
  }
  EXPECT_EQ(winners, 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM baton_lease"), "1");
}

TEST_F(SqlContractTest, StaleRenewReleaseAndTransferAreRefused) {
  auto s = Store();
  ASSERT_TRUE(Schema(*s));
  auto e1 = Acquire(*s, "old");
  ASSERT_EQ(e1, MaybeEpoch{1});
  EXPECT_EQ(Acquire(*s, "other"), std::nullopt);  // held and not expired
  auto e2 = Transfer(*s, {"old", 1}, "new");
  ASSERT_EQ(e2, MaybeEpoch{2});

  EXPECT_EQ(Renew(*s, {"old", 1}), std::nullopt);
  EXPECT_EQ(Release(*s, {"old", 1}), std::nullopt);
  EXPECT_EQ(Transfer(*s, {"old", 1}, "thief"), std::nullopt);
  EXPECT_EQ(Renew(*s, {"new", 1}), std::nullopt);  // right holder, stale epoch
  EXPECT_EQ(Renew(*s, {"new", 3}), std::nullopt);  // right holder, future epoch
  EXPECT_EQ(Sql("SELECT holder || ' ' || epoch FROM baton_lease WHERE name = 'domain'"), "new 2");

  EXPECT_EQ(Renew(*s, {"new", 2}), MaybeEpoch{2});
  EXPECT_EQ(Release(*s, {"new", 2}), MaybeEpoch{3});
  EXPECT_EQ(Sql("SELECT coalesce(holder, '<free>') || ' ' || epoch FROM baton_lease"), "<free> 3");
  EXPECT_EQ(Acquire(*s, "next"), MaybeEpoch{4});  // free → acquirable, epoch+1
}

TEST_F(SqlContractTest, ARenewArrivingAfterATransferIsRefused) {
  auto s = Store(seconds(5));
  ASSERT_TRUE(Schema(*s));
  ASSERT_EQ(Acquire(*s, "old"), MaybeEpoch{1});
  // The transfer is in progress in another transaction (row locked) when
  // the old holder's renew arrives: "abort is not synchronous". The renew
  // waits for the row, then re-checks its fence against the committed row.
  PGconn* tx = PQconnectdb(dsn_.c_str());
  ASSERT_EQ(PQstatus(tx), CONNECTION_OK);
  PQclear(PQexec(tx, "BEGIN"));
  PGresult* u = PQexec(tx,
                       "UPDATE baton_lease SET holder = 'new', epoch = epoch + 1 "
                       "WHERE name = 'domain' AND holder = 'old' AND epoch = 1");
  ASSERT_EQ(PQresultStatus(u), PGRES_COMMAND_OK) << PQresultErrorMessage(u);
  PQclear(u);
  std::thread committer([tx] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    PQclear(PQexec(tx, "COMMIT"));
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto renewed = RunSync(io_, s->Renew("domain", {"old", 1}, seconds(10), In(seconds(5))));
  const auto waited = std::chrono::steady_clock::now() - t0;
  committer.join();
  PQfinish(tx);
  ASSERT_TRUE(renewed.has_value()) << renewed.error().message;
  EXPECT_EQ(*renewed, std::nullopt);
  EXPECT_GE(waited, milliseconds(200));  // it really waited for the transfer
  EXPECT_EQ(Sql("SELECT holder || ' ' || epoch FROM baton_lease"), "new 2");
}

TEST_F(SqlContractTest, AnExpiredLeaseGoesToTheNextAcquirerWithANewEpoch) {
  auto s = Store();
  ASSERT_TRUE(Schema(*s));
  ASSERT_EQ(Acquire(*s, "a", milliseconds(200)), MaybeEpoch{1});
  EXPECT_EQ(Acquire(*s, "b"), std::nullopt);
  std::this_thread::sleep_for(milliseconds(300));  // the database's clock passes expires_at
  EXPECT_EQ(Acquire(*s, "b"), MaybeEpoch{2});
  // The old holder's renew is fenced out even though it names the old epoch.
  EXPECT_EQ(Renew(*s, {"a", 1}), std::nullopt);
}

TEST_F(SqlContractTest, AnUnknownTransferOutcomeIsResolvedByAnotherFencedMove) {
  auto s = Store();
  ASSERT_TRUE(Schema(*s));
  ASSERT_EQ(Acquire(*s, "o"), MaybeEpoch{1});
  // Suppose the first transfer committed but its answer was lost: the retry
  // matches either row, and bumps once more.
  ASSERT_EQ(Transfer(*s, {"o", 1}, "n"), MaybeEpoch{2});
  auto retry = RunSync(io_, s->Move("domain", {"o", 1}, {"n", 2}, "n", seconds(10), In(seconds(5))));
  ASSERT_TRUE(retry.has_value());
  EXPECT_EQ(*retry, MaybeEpoch{3});
  // Reclaim (reverse transfer) after a rollback, also idempotent.
  auto back = RunSync(io_, s->Move("domain", {"n", 3}, {"o", 4}, "o", seconds(10), In(seconds(5))));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, MaybeEpoch{4});
  // A stale reclaim matches neither.
  auto stale = RunSync(io_, s->Move("domain", {"n", 3}, {"o", 3}, "o", seconds(10), In(seconds(5))));
  ASSERT_TRUE(stale.has_value());
  EXPECT_EQ(*stale, std::nullopt);
  // Acquiring a lease already held under our own holder id resolves it too.
  EXPECT_EQ(Acquire(*s, "o"), MaybeEpoch{5});
}

TEST_F(SqlContractTest, EpochsOnlyGrowAndRowsAreNeverDeleted) {
  auto s = Store();
  ASSERT_TRUE(Schema(*s));
  std::vector<uint64_t> epochs;
  epochs.push_back(Acquire(*s, "a").value_or(0));
  epochs.push_back(Transfer(*s, {"a", epochs.back()}, "b").value_or(0));
  epochs.push_back(Release(*s, {"b", epochs.back()}).value_or(0));
  epochs.push_back(Acquire(*s, "c").value_or(0));
  EXPECT_TRUE(std::is_sorted(epochs.begin(), epochs.end()));
  EXPECT_EQ(std::adjacent_find(epochs.begin(), epochs.end()), epochs.end());
  EXPECT_EQ(epochs.front(), 1u);

  // The guard trigger refuses what no lease operation may do, even to a superuser.
  bool ok = true;
  EXPECT_NE(Sql("DELETE FROM baton_lease", &ok).find("never deleted"), std::string::npos);
  EXPECT_FALSE(ok);
  EXPECT_NE(Sql("UPDATE baton_lease SET epoch = epoch - 1", &ok).find("epochs only grow"), std::string::npos);
  EXPECT_FALSE(ok);
  EXPECT_NE(Sql("UPDATE baton_lease SET holder = 'x'", &ok).find("new epoch"), std::string::npos);
  EXPECT_FALSE(ok);
  EXPECT_EQ(Sql("SELECT count(*) FROM baton_lease"), "1");

  // And no statement the lease runs deletes anything.
  const std::regex del(R"(\bDELETE\s+FROM\b)", std::regex::icase);
  for (auto sql : ownership::LeaseStatements()) {
    EXPECT_FALSE(std::regex_search(std::string(sql), del)) << sql;
  }
}

TEST_F(SqlContractTest, EveryChangeOfHolderNotifiesFromTheSameTransaction) {
  auto listener = Store();
  auto s = Store();
  ASSERT_TRUE(Schema(*s));
  ASSERT_TRUE(RunSync(io_, listener->Listen(In(seconds(5)))));
  ASSERT_EQ(Acquire(*s, "a"), MaybeEpoch{1});
  ASSERT_EQ(Transfer(*s, {"a", 1}, "b"), MaybeEpoch{2});
  ASSERT_EQ(Release(*s, {"b", 2}), MaybeEpoch{3});
  EXPECT_EQ(Renew(*s, {"b", 3}), std::nullopt);  // refused: no notification
  std::vector<std::string> got;
  const auto deadline = In(seconds(5));
  while (got.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    auto n = RunSync(io_, listener->WaitNotifications(In(milliseconds(500))));
    ASSERT_TRUE(n.has_value()) << n.error().message;
    got.insert(got.end(), n->begin(), n->end());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"domain 1 a", "domain 2 b", "domain 3 "}));
}

TEST_F(SqlContractTest, ABadDsnIsAClearInvalidArgument) {
  ownership::StoreSettings st;
  st.dsn = "host=/tmp port";
  auto r = ownership::BuildConnInfo(st);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << r.error().message;
  EXPECT_NE(r.error().message.find("lease DSN"), std::string::npos);
  st.dsn = "nosuchoption=1";
  r = ownership::BuildConnInfo(st);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("nosuchoption"), std::string::npos) << r.error().message;
  st.dsn = "postgresql://user:secret@[::1";
  r = ownership::BuildConnInfo(st);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message.find("secret"), std::string::npos) << r.error().message;
}

// libpq quotes fragments of a DSN it cannot parse, such as a password's
// bad percent-encoding; no part of a password reaches the message.
TEST_F(SqlContractTest, NoPieceOfAPasswordIsQuotedInADsnError) {
  for (const std::string dsn : {"postgresql://u:se%zzcret@h/db", "postgresql://u@h/db?password=se%zzcret",
                                "postgresql://u:se%00cret@h/db", "host=h password=se%zzcret bogus=1",
                                "host=h password='se%zzcret' bogus=1", "postgresql://u:se%63ret@[::1/db"}) {
    ownership::StoreSettings st;
    st.dsn = dsn;
    auto r = ownership::BuildConnInfo(st);
    ASSERT_FALSE(r.has_value()) << dsn;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << r.error().message;
    EXPECT_NE(r.error().message.find("lease DSN: "), std::string::npos) << r.error().message;
    for (const char* piece : {"se%", "cret", "secret", "zz"}) {
      EXPECT_EQ(r.error().message.find(piece), std::string::npos) << dsn << " -> " << r.error().message;
    }
  }
}

// A table made before the trigger function pinned its search_path gets the
// pinned function on the next start by a role that owns it (#19 defect 7).
TEST_F(SqlContractTest, AGuardFunctionWithoutAPinnedSearchPathIsReplaced) {
  auto s = Store();
  ASSERT_TRUE(Schema(*s));
  bool ok = false;
  Sql("ALTER FUNCTION public.baton_lease_guard() RESET search_path", &ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(Sql("SELECT coalesce(proconfig::text, '') FROM pg_proc WHERE proname = 'baton_lease_guard'"), "");
  auto again = Store();
  ASSERT_TRUE(Schema(*again));
  EXPECT_EQ(Sql("SELECT proconfig::text FROM pg_proc WHERE proname = 'baton_lease_guard'"),
            "{\"search_path=pg_catalog, pg_temp\"}");
  // The guard still guards.
  ASSERT_EQ(Acquire(*again, "a"), MaybeEpoch{1});
  Sql("UPDATE baton_lease SET epoch = 0", &ok);
  EXPECT_FALSE(ok);
}

TEST_F(SqlContractTest, MissingPrivilegesAreAClearPermissionDenied) {
  bool ok = false;
  pg_.Query("DO $$ BEGIN CREATE ROLE baton_nopriv LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$", &ok);
  ASSERT_TRUE(ok) << pg_.error();
  const std::string user_dsn = dsn_.substr(0, dsn_.rfind("user=")) + "user=baton_nopriv";
  // No table yet, and no right to create one (PostgreSQL 15: public is not writable).
  auto weak = std::make_unique<LeaseStore>(io_.get_executor(), ConnInfo(user_dsn));
  auto st = Schema(*weak);
  ASSERT_FALSE(st.has_value());
  EXPECT_TRUE(st.error().Is(Errc::kPermissionDenied)) << st.error().message;
  EXPECT_NE(st.error().message.find("permission denied"), std::string::npos) << st.error().message;
  // The table exists (created by an admin) but this role may not write it.
  auto admin = Store();
  ASSERT_TRUE(Schema(*admin));
  Sql("GRANT SELECT ON baton_lease TO baton_nopriv");
  st = Schema(*weak);
  ASSERT_FALSE(st.has_value());
  EXPECT_TRUE(st.error().Is(Errc::kPermissionDenied)) << st.error().message;
  EXPECT_NE(st.error().message.find("lacks INSERT, UPDATE"), std::string::npos) << st.error().message;
}

TEST_F(SqlContractTest, AStatementHeldUpByARowLockEndsWithinTheLockTimeout) {
  auto s = Store(milliseconds(300));
  ASSERT_TRUE(Schema(*s));
  ASSERT_EQ(Acquire(*s, "a"), MaybeEpoch{1});
  PGconn* tx = PQconnectdb(dsn_.c_str());
  PQclear(PQexec(tx, "BEGIN"));
  PQclear(PQexec(tx, "SELECT * FROM baton_lease FOR UPDATE"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunSync(io_, s->Renew("domain", {"a", 1}, seconds(10), In(seconds(5))));
  const auto took = std::chrono::steady_clock::now() - t0;
  PQclear(PQexec(tx, "ROLLBACK"));
  PQfinish(tx);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(Errc::kDeadlineExceeded)) << r.error().message;
  EXPECT_LT(took, seconds(3));
  // The connection is still usable and the fence still holds.
  EXPECT_EQ(Renew(*s, {"a", 1}), MaybeEpoch{1});
}

TEST_F(SqlContractTest, AnUnreachableServerFailsWithinTheClientDeadline) {
  // A Unix socket that listens but never accepts: connect hangs forever
  // unless our deadline ends it.
  const harness::TempDir tmp("pgx");
  const std::string& dir = tmp.path();
  const std::string path = dir + "/.s.PGSQL.5432";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  LeaseStore s(io_.get_executor(), ConnInfo("host=" + dir + " port=5432 dbname=postgres user=postgres"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunSync(io_, s.Acquire("domain", "a", seconds(10), In(milliseconds(300))));
  const auto took = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(Errc::kDeadlineExceeded)) << r.error().message;
  EXPECT_LT(took, seconds(2));
  // Nobody listening at all: a prompt kUnavailable.
  LeaseStore none(io_.get_executor(), ConnInfo("host=" + dir + " port=5432 dbname=postgres user=postgres"));
  auto r2 = RunSync(io_, none.Acquire("domain", "a", seconds(10), In(seconds(1))));
  ASSERT_FALSE(r2.has_value());
  EXPECT_TRUE(r2.error().Is(Errc::kUnavailable)) << r2.error().message;
}

}  // namespace
}  // namespace baton::testing
