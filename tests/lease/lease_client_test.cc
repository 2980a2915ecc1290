// The lease actor against a real PostgreSQL 15: campaign and standby
// take-over by NOTIFY, transfer/confirm without overlap, reclaim after a
// rollback, local validity when Postgres is gone, and a transfer that fails
// within its budget and resolves back by itself.
#include "ownership/lease_client.h"

#include <time.h>

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "tests/lease/lease_test_util.h"
#include "tests/lease/reply_dropping_proxy.h"

namespace baton::testing {
namespace {

namespace asio = boost::asio;
using ownership::LeaseClient;

int64_t FieldInt(const Event& e, const char* key) {
  const FieldValue* v = e.Get(key);
  if (v == nullptr) return -1;
  if (auto* i = std::get_if<int64_t>(v)) return *i;
  if (auto* u = std::get_if<uint64_t>(v)) return static_cast<int64_t>(*u);
  return -1;
}
std::string FieldStr(const Event& e, const char* key) {
  const FieldValue* v = e.Get(key);
  if (v == nullptr) return "";
  if (auto* s = std::get_if<std::string>(v)) return *s;
  return "";
}

template <class Pred>
bool Eventually(Pred p, Duration limit = seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return p();
}

class LeaseClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    for (auto& c : clients_) {
      std::promise<void> stopped;
      c->Stop(In(seconds(2)), [&] { stopped.set_value(); });
      stopped.get_future().wait_for(std::chrono::seconds(5));
    }
    work_.reset();
    io_.stop();
    thread_.join();
    clients_.clear();
  }

  LeaseClient& Client(const std::string& dsn, LeaseOptions o = {}, const Clock& validity = ownership::BootClock()) {
    if (o.name.empty()) o.name = "domain";
    o.dsn = dsn;
    auto cfg = ownership::MakeLeaseConfig(o);
    EXPECT_TRUE(cfg.has_value()) << cfg.error().message;
    clients_.push_back(std::make_unique<LeaseClient>(io_.get_executor(), *cfg, RealClock(), sink_, validity));
    clients_.back()->Start();
    return *clients_.back();
  }

  Result<uint64_t> Transfer(LeaseClient& c, const std::string& to, Duration budget = seconds(3)) {
    std::promise<Result<uint64_t>> p;
    std::promise<void> q;
    c.Quiesce([&] { q.set_value(); });
    q.get_future().wait();
    c.Transfer(to, In(budget), [&](Result<uint64_t> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  Status Confirm(LeaseClient& c, uint64_t epoch) {
    std::promise<Status> p;
    c.Confirm(epoch, In(seconds(2)), [&](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
  Status Open(LeaseClient& c) {
    std::promise<Status> p;
    c.Open(In(seconds(5)), [&](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
  void Stop(LeaseClient& c) {
    std::promise<void> p;
    c.Stop(In(seconds(2)), [&] { p.set_value(); });
    p.get_future().wait();
  }
  // Every event so far, one per line, for a failure's message.
  std::string EventLog() {
    std::string out;
    for (const auto& e : sink_.Events()) out += e.name + " holder=" + FieldStr(e, "holder") + " " + e.message + "\n";
    return out;
  }
  bool Logged(const std::string& name, const std::string& holder) {
    for (const auto& e : sink_.Events()) {
      if (e.name == name && FieldStr(e, "holder") == holder) return true;
    }
    return false;
  }
  Status Resume(LeaseClient& c) {
    std::promise<Status> p;
    c.Resume(In(seconds(2)), [&](Status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
  std::vector<Event> Leadership(const std::string& holder) {
    std::vector<Event> out;
    for (const auto& e : sink_.Events()) {
      if ((e.name == "lease.leader_start" || e.name == "lease.leader_end") && FieldStr(e, "holder") == holder) {
        out.push_back(e);
      }
    }
    return out;
  }

  RecordingSink sink_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::thread thread_;
  // A server of the test's own, outliving the clients (TearDown stops them).
  harness::PgServer& OwnPg() { return *(own_pg_ = std::make_unique<harness::PgServer>()); }
  std::unique_ptr<harness::PgServer> own_pg_;
  // Clocks a test hands to Client(): they must outlive the clients, whose
  // loop reads them until TearDown stopped it (a clock local to the test
  // body was gone by then: UBSan, "does not point to an object of type").
  template <class C>
  C& KeepClock() {
    auto c = std::make_shared<C>();
    clocks_.push_back(c);
    return *c;
  }
  std::vector<std::shared_ptr<const Clock>> clocks_;
  std::vector<std::unique_ptr<LeaseClient>> clients_;
};

TEST_F(LeaseClientTest, AStandbyTakesOverAtOnceWhenTheLeaderReleases) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  auto& a = Client(dsn);
  a.Campaign();
  ASSERT_TRUE(Eventually([&] { return a.epoch() != 0; })) << "a never became leader";
  // A poll interval far longer than the test: only the NOTIFY can wake b.
  auto& b = Client(dsn, {.poll_interval = std::chrono::milliseconds(8000)});
  b.Campaign();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(b.epoch(), 0u);
  const uint64_t ea = a.epoch();
  std::promise<void> stopped;
  a.Stop(In(seconds(2)), [&] { stopped.set_value(); });
  stopped.get_future().wait();
  EXPECT_EQ(a.epoch(), 0u);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return b.epoch() != 0; }, seconds(4))) << "b was not woken";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(4));
  // b stood by as a candidate: the stopping leader handed it the lease
  // (one bump) rather than releasing it for a campaign (two).
  EXPECT_EQ(b.epoch(), ea + 1);
}

TEST_F(LeaseClientTest, TransferHandsTheLeaseOverWithoutOverlap) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  auto& o = Client(dsn);
  auto& n = Client(dsn);
  o.Campaign();
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }));
  const uint64_t e1 = o.epoch();
  auto e2 = Transfer(o, n.holder_id());
  ASSERT_TRUE(e2.has_value()) << e2.error().message;
  EXPECT_EQ(*e2, e1 + 1);
  EXPECT_EQ(o.epoch(), 0u);
  EXPECT_EQ(n.epoch(), 0u);  // not before it confirmed
  ASSERT_TRUE(Confirm(n, *e2));
  EXPECT_EQ(n.epoch(), *e2);

  auto lo = Leadership(o.holder_id());
  auto ln = Leadership(n.holder_id());
  ASSERT_EQ(lo.size(), 2u);
  ASSERT_EQ(ln.size(), 1u);
  EXPECT_EQ(lo[1].name, "lease.leader_end");
  EXPECT_EQ(ln[0].name, "lease.leader_start");
  EXPECT_LE(FieldInt(lo[1], "mono_us"), FieldInt(ln[0], "mono_us"));
  EXPECT_EQ(FieldInt(ln[0], "epoch"), static_cast<int64_t>(*e2));
}

TEST_F(LeaseClientTest, ConfirmingAnEpochThatIsNotOursFails) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  auto& o = Client(dsn);
  auto& n = Client(dsn);
  o.Campaign();
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }));
  auto st = Confirm(n, o.epoch());
  ASSERT_FALSE(st.has_value());
  EXPECT_TRUE(st.error().Is(Errc::kFailedPrecondition)) << st.error().message;
  EXPECT_EQ(n.epoch(), 0u);
  EXPECT_NE(o.epoch(), 0u);
}

TEST_F(LeaseClientTest, ResumeReclaimsALeaseHandedToASuccessorThatNeverConfirmed) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  auto& o = Client(dsn);
  o.Campaign();
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }));
  const uint64_t e1 = o.epoch();
  auto e2 = Transfer(o, "successor-that-died");
  ASSERT_TRUE(e2.has_value()) << e2.error().message;
  ASSERT_TRUE(Resume(o));
  EXPECT_EQ(o.epoch(), e1 + 2);  // handed over at e1+1, taken back at e1+2
}

TEST_F(LeaseClientTest, LeadershipLapsesLocallyWhenPostgresIsGoneAndComesBackAtTheSameEpoch) {
  harness::PgServer& pg = OwnPg();
  ASSERT_TRUE(pg.Start()) << pg.error();
  auto& o = Client(pg.dsn(), {.ttl = std::chrono::milliseconds(900),
                              .renew_interval = std::chrono::milliseconds(200),
                              .op_timeout = std::chrono::milliseconds(250)});
  o.Campaign();
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }));
  const uint64_t e1 = o.epoch();
  pg.Stop();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return o.epoch() == 0; }, seconds(3)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2000));  // at most one TTL, plus slack
  ASSERT_TRUE(pg.Start()) << pg.error();
  // The fenced renew proves nobody else held it meanwhile.
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }, seconds(5)));
  EXPECT_EQ(o.epoch(), e1);
  auto l = Leadership(o.holder_id());
  ASSERT_GE(l.size(), 3u);
  EXPECT_EQ(l[1].name, "lease.leader_end");
  EXPECT_EQ(l[2].name, "lease.leader_start");
}

TEST_F(LeaseClientTest, ATransferWithPostgresDownFailsWithinItsBudgetAndResolvesBackLater) {
  harness::PgServer& pg = OwnPg();
  ASSERT_TRUE(pg.Start()) << pg.error();
  auto& o = Client(pg.dsn(), {.ttl = std::chrono::milliseconds(3000),
                              .op_timeout = std::chrono::milliseconds(300)});
  auto& n = Client(pg.dsn());
  o.Campaign();
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }));
  const uint64_t e1 = o.epoch();
  pg.Stop();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Transfer(o, n.holder_id(), milliseconds(800));
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.has_value());
  EXPECT_LT(took, milliseconds(1500));
  EXPECT_NE(r.error().message.find("lease transfer"), std::string::npos) << r.error().message;
  EXPECT_EQ(o.epoch(), 0u);  // not a leader while the outcome is unknown
  // A second handoff meanwhile must not hand over "nothing": it fails too.
  auto again = Transfer(o, n.holder_id(), milliseconds(300));
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().message.find("not resolved"), std::string::npos) << again.error().message;
  ASSERT_TRUE(pg.Start()) << pg.error();
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }, seconds(5)));
  EXPECT_EQ(o.epoch(), e1 + 1);  // resolved by a fenced, epoch-bumping move
  EXPECT_FALSE(Confirm(n, e1 + 1).has_value());
}

// #19 defect 6: a holder id set by the user used to be taken as is, so two
// processes configured alike both matched the acquire's "already ours" and
// both led. It is now a label in front of a per-process unique id.
TEST_F(LeaseClientTest, TwoProcessesWithTheSameConfiguredHolderIdNeverBothLead) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  const LeaseOptions same{.holder_id = "reconciler", .poll_interval = std::chrono::milliseconds(100)};
  auto& a = Client(dsn, same);
  a.Campaign();
  ASSERT_TRUE(Eventually([&] { return a.epoch() != 0; })) << "a never became leader";
  const uint64_t ea = a.epoch();
  auto& b = Client(dsn, same);
  EXPECT_NE(a.holder_id(), b.holder_id());
  EXPECT_EQ(a.holder_id().rfind("reconciler/", 0), 0u) << a.holder_id();
  b.Campaign();
  auto standby = [&] {
    for (const auto& e : sink_.Events()) {
      if (e.name == "lease.standby" && FieldStr(e, "holder") == b.holder_id()) return true;
    }
    return false;
  };
  EXPECT_TRUE(Eventually(standby)) << "b never stood by";
  EXPECT_EQ(b.epoch(), 0u);
  EXPECT_EQ(a.epoch(), ea);
  EXPECT_TRUE(Leadership(b.holder_id()).empty());
}

// #19 defect 4: notifications arrive with every result (LISTEN stays on
// and every lease of the database shares the channel) but were taken only
// while campaigning, so a long-lived holder kept every one of them.
TEST_F(LeaseClientTest, NotificationsDoNotPileUpWhileHolding) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  auto& a = Client(pg.dsn(), {.name = "backlog", .ttl = std::chrono::milliseconds(3000),
                              .renew_interval = std::chrono::milliseconds(50)});
  a.Campaign();
  ASSERT_TRUE(Eventually([&] { return a.epoch() != 0; }));
  // Other leases of the same database change holders a thousand times.
  bool ok = false;
  pg.Query("SELECT count(pg_notify('baton_lease', 'other ' || g)) FROM generate_series(1, 1000) g", &ok);
  ASSERT_TRUE(ok) << pg.error();
  // Two renews later the holder has read every one of them.
  auto updated = [&] {
    auto rows = pg.Query("SELECT updated_at FROM baton_lease WHERE name = 'backlog'");
    return rows.empty() ? std::string() : rows[0];
  };
  for (int renews = 0; renews < 2; ++renews) {
    const std::string before = updated();
    ASSERT_TRUE(Eventually([&] { return updated() != before; })) << "no renew";
  }
  std::promise<size_t> pending;
  asio::post(io_, [&] { pending.set_value(a.pending_notifications()); });
  EXPECT_LE(pending.get_future().get(), ownership::pg::kMaxPendingNotifications);
  EXPECT_NE(a.epoch(), 0u);
}

// #19 defect 7: the lease's SQL named baton_lease through the role's
// search_path ("$user", public), so a schema named after the role, created
// by someone else, could hold a baton_lease of its own and hand this role a
// second lease while the real one is held.
TEST_F(LeaseClientTest, ATableInASchemaNamedAfterTheRoleCannotStandInForTheLease) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  auto& a = Client(pg.dsn(), {.name = "hijack"});
  a.Campaign();
  ASSERT_TRUE(Eventually([&] { return a.epoch() != 0; }));
  for (const char* sql : {"CREATE ROLE hj_evil LOGIN", "CREATE ROLE hj_app LOGIN",
                          "GRANT SELECT, INSERT, UPDATE ON public.baton_lease TO hj_app",
                          "GRANT SELECT, INSERT, UPDATE ON public.baton_lease_candidate TO hj_app",
                          "CREATE SCHEMA hj_app AUTHORIZATION hj_evil",
                          "CREATE TABLE hj_app.baton_lease (LIKE public.baton_lease INCLUDING ALL)",
                          "ALTER TABLE hj_app.baton_lease OWNER TO hj_evil",
                          "GRANT USAGE ON SCHEMA hj_app TO hj_app",
                          "GRANT SELECT, INSERT, UPDATE ON hj_app.baton_lease TO hj_app"}) {
    bool ok = false;
    pg.Query(sql, &ok);
    ASSERT_TRUE(ok) << sql << ": " << pg.error();
  }
  auto& b = Client(pg.dsn_for("hj_app"), {.name = "hijack", .poll_interval = std::chrono::milliseconds(100)});
  b.Campaign();
  auto standby = [&] {
    for (const auto& e : sink_.Events()) {
      if (e.name == "lease.standby" && FieldStr(e, "holder") == b.holder_id()) return true;
    }
    return false;
  };
  EXPECT_TRUE(Eventually(standby)) << "b never stood by";
  EXPECT_EQ(b.epoch(), 0u);
  EXPECT_NE(a.epoch(), 0u);
  EXPECT_EQ(pg.Query("SELECT count(*) FROM hj_app.baton_lease"), std::vector<std::string>{"0"});
}

// Boot time with an offset a test moves: a host suspended for `d` sees
// boot time jump by `d` while the monotonic clock stood still.
class SuspendableClock final : public Clock {
 public:
  TimePoint Now() const override { return ownership::BootClock().Now() + Duration(slept_.load()); }
  void Suspend(Duration d) { slept_ += d.count(); }

 private:
  std::atomic<Duration::rep> slept_{0};
};

// #19 defect 7: local validity was measured on the monotonic clock, which
// stops while the host is suspended, so a host waking after its lease
// expired in the database still reported itself leader until the next
// renew failed.
TEST_F(LeaseClientTest, AHostThatWasSuspendedIsNotLeaderWhenItWakes) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  auto& boot = KeepClock<SuspendableClock>();
  auto& a = Client(FreshDatabase(pg), {.ttl = std::chrono::milliseconds(6000)}, boot);
  a.Campaign();
  ASSERT_TRUE(Eventually([&] { return a.epoch() != 0; }));
  const uint64_t e1 = a.epoch();
  boot.Suspend(seconds(7));
  EXPECT_EQ(a.epoch(), 0u);  // at once, before any renew
  // Not really suspended, so the database still names us: the next fenced
  // renew restores leadership at the same epoch.
  ASSERT_TRUE(Eventually([&] { return a.epoch() != 0; }, seconds(6)));
  EXPECT_EQ(a.epoch(), e1);
}

TEST(LeaseClockTest, BootClockIsClockBoottime) {
  timespec ts{};
  ASSERT_EQ(::clock_gettime(CLOCK_BOOTTIME, &ts), 0);
  const auto boottime = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  const auto ours = ownership::BootClock().Now().time_since_epoch();
  EXPECT_GE(ours, boottime);
  EXPECT_LT(ours - boottime, milliseconds(100));
}

// #19 defect 5: a handoff that stops between the transfer and the
// successor's confirm (the supervisor stopping: both generations exit)
// left the row naming the successor, which never released it, so a
// standby elsewhere waited for the TTL.
TEST_F(LeaseClientTest, AHandoffStoppedBetweenTransferAndConfirmLeavesNoTtlLongGap) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  auto& o = Client(dsn);
  auto& n = Client(dsn);
  auto& s = Client(dsn, {.poll_interval = std::chrono::milliseconds(8000)});
  ASSERT_TRUE(Open(n));  // as a successor does at its start
  o.Campaign();
  ASSERT_TRUE(Eventually([&] { return o.epoch() != 0; }));
  s.Campaign();
  ASSERT_TRUE(Eventually([&] { return Logged("lease.standby", s.holder_id()); }));
  auto e = Transfer(o, n.holder_id());
  ASSERT_TRUE(e.has_value()) << e.error().message;
  Stop(n);  // never confirmed
  Stop(o);
  ASSERT_TRUE(Eventually([&] { return s.epoch() != 0; }, seconds(4)))
      << "the standby waited for the TTL; events:\n" << EventLog();
  EXPECT_GT(s.epoch(), *e);
}

// #19 defect 5: an acquire whose answer was lost (it committed) left the
// process believing it held nothing, so a Seal then handed over "nothing"
// and the successor waited for the TTL of a row naming the old holder.
TEST_F(LeaseClientTest, ATransferAfterAnAcquireWithALostAnswerHandsTheRowOver) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  harness::TempDir dir("proxy");
  ReplyDroppingProxy proxy(dir.path(), pg.dir(), "INSERT INTO public.baton_lease");
  ASSERT_TRUE(proxy.ok());
  std::string via_proxy = dsn;
  via_proxy.replace(via_proxy.find(pg.dir()), pg.dir().size(), dir.path());
  auto& o = Client(via_proxy, {.ttl = std::chrono::milliseconds(10000),
                               .poll_interval = std::chrono::milliseconds(8000)});
  auto& n = Client(dsn);
  ASSERT_TRUE(Open(n));  // creates the table
  ASSERT_TRUE(Open(o));
  o.Campaign();
  ASSERT_TRUE(Eventually([&] { return Logged("lease.error", o.holder_id()); })) << "the acquire's answer was not lost";
  ASSERT_GT(proxy.dropped(), 0u);
  EXPECT_EQ(o.epoch(), 0u);
  auto e = Transfer(o, n.holder_id());
  ASSERT_TRUE(e.has_value()) << e.error().message;
  EXPECT_EQ(*e, 2u);  // the lost acquire took epoch 1; handed over at 2
  EXPECT_TRUE(Confirm(n, *e));
  EXPECT_NE(n.epoch(), 0u);
}

TEST(LeaseConfigTest, HolderIdLabelsAreBounded) {
  auto r = ownership::MakeLeaseConfig({.name = "x", .holder_id = std::string(65, 'h')});
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(r.error().message.find("64 bytes"), std::string::npos) << r.error().message;
  r = ownership::MakeLeaseConfig({.name = "x", .holder_id = "a\nb"});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("control characters"), std::string::npos) << r.error().message;
  r = ownership::MakeLeaseConfig({.name = "x", .holder_id = std::string(64, 'h')});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  // label + '/' + host (<= 64) + pid + 16 hex digits: far below NOTIFY's 8000-byte payload limit.
  EXPECT_LE(r->holder_id.size(), 64u + 1 + 64 + 1 + 10 + 1 + 16);
  EXPECT_LE(ownership::GenerateHolderId().size(), 64u + 1 + 10 + 1 + 16);
}

TEST(LeaseConfigTest, OptionsAreValidatedWithClearErrors) {
  EXPECT_FALSE(ownership::MakeLeaseConfig({}).has_value());
  auto r = ownership::MakeLeaseConfig({.name = "x", .ttl = std::chrono::milliseconds(1000),
                                       .renew_interval = std::chrono::milliseconds(1000)});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("renew interval"), std::string::npos);
  r = ownership::MakeLeaseConfig({.name = "x", .dsn = "host="});
  EXPECT_TRUE(r.has_value());
  r = ownership::MakeLeaseConfig({.name = "x", .dsn = "not a dsn"});
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument));
  auto a = ownership::MakeLeaseConfig({.name = "x"});
  auto b = ownership::MakeLeaseConfig({.name = "x"});
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->holder_id, b->holder_id);
  ::setenv("BATON_LEASE_DSN", "host=/from/env", 1);
  EXPECT_EQ(ResolveLeaseDsn(""), "host=/from/env");
  EXPECT_EQ(ResolveLeaseDsn("host=/flag"), "host=/flag");
  ::unsetenv("BATON_LEASE_DSN");
  EXPECT_EQ(ResolveLeaseDsn(""), "");
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

TEST(LeaseErrorsTest, PostgresErrorsMapToCodesThatSayWhatToDo) {
  using ownership::pg::PgError;
  EXPECT_TRUE(PgError("q", "42501", "permission denied for table baton_lease").Is(Errc::kPermissionDenied));
  EXPECT_TRUE(PgError("connect", "", "FATAL:  password authentication failed for user \"x\"\n")
                  .Is(Errc::kPermissionDenied));
  EXPECT_TRUE(PgError("q", "55P03", "canceling statement due to lock timeout").Is(Errc::kDeadlineExceeded));
  EXPECT_TRUE(PgError("q", "57014", "canceling statement due to statement timeout").Is(Errc::kDeadlineExceeded));
  EXPECT_TRUE(PgError("q", "42P01", "relation \"baton_lease\" does not exist").Is(Errc::kFailedPrecondition));
  EXPECT_TRUE(PgError("q", "57P01", "terminating connection due to administrator command").Is(Errc::kUnavailable));
  EXPECT_TRUE(PgError("connect", "", "connection to server on socket failed: No such file or directory")
                  .Is(Errc::kUnavailable));
  const Error e = PgError("renew", "55P03", "canceling statement due to lock timeout\n");
  EXPECT_EQ(e.message, "renew: canceling statement due to lock timeout (SQLSTATE 55P03)");
}

}  // namespace
}  // namespace baton::testing
