// `baton lease run|status|release|transfer` with real processes against a
// real PostgreSQL 15: CMD runs only while its process leads, with the epoch
// in its environment; SIGTERM stops it and hands the lease to a standby
// process before that one's CMD starts; CMD's status is passed on; lost
// leadership, an unreachable Postgres and bad usage have exit codes of
// their own; the operator commands refuse what would break fencing.
#include <sys/wait.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/lease/lease_test_util.h"
#include "tests/lease/pg_sql.h"
#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::testing {
namespace {

using harness::BinPath;
using harness::RunProgram;

template <class Pred>
bool Eventually(Pred p, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p();
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Exit code of a wait status (128+N for a signal), -1 on a timeout.
int Code(int ws) {
  if (ws == -1) return -1;
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

class LeaseRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.running()) << pg_.error();
    dsn_ = FreshDatabase(pg_);
  }
  void TearDown() override {
    for (pid_t p : pids_) {
      ::kill(-p, SIGKILL);
      harness::WaitFor(p, std::chrono::seconds(5));
    }
  }
  // A CMD that appends "start <epoch>" to the shared log, and "end <epoch>"
  // when SIGTERM stops it.
  std::vector<std::string> LoggingCmd() {
    const std::string log = dir_.path() + "/cmd.log";
    return {"/bin/sh", "-c",
            "echo start $BATON_LEASE_EPOCH >> " + log + "; trap 'echo end $BATON_LEASE_EPOCH >> " + log +
                "; exit 0' TERM; while :; do sleep 0.05; done"};
  }
  pid_t Run(const std::string& tag, std::vector<std::string> cmd, std::vector<std::string> flags = {}) {
    std::vector<std::string> argv = {BinPath("baton"), "lease", "run", "--name", "job", "--dsn", dsn_};
    argv.insert(argv.end(), flags.begin(), flags.end());
    argv.push_back("--");
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    pid_t p = harness::SpawnBackground(argv, {}, dir_.path() + "/" + tag + ".out", dir_.path() + "/" + tag + ".err");
    pids_.push_back(p);
    return p;
  }
  harness::RunResult Admin(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinPath("baton"), "lease"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--dsn");
    argv.push_back(dsn_);
    return RunProgram(argv);
  }
  std::string Sql(const std::string& sql) { return SqlOn(dsn_, sql); }
  std::string Holder() { return Sql("SELECT coalesce(holder, '') FROM baton_lease WHERE name = 'job'"); }
  std::string Epoch() { return Sql("SELECT epoch FROM baton_lease WHERE name = 'job'"); }
  int Candidates() {
    return std::stoi("0" + Sql("SELECT count(*) FROM baton_lease_candidate WHERE name = 'job' AND expires_at > now() "
                               "AND holder IS DISTINCT FROM (SELECT holder FROM baton_lease WHERE name = 'job')"));
  }
  std::string CmdLog() { return Slurp(dir_.path() + "/cmd.log"); }

  harness::PgServer& pg_ = SharedPg();
  std::string dsn_;
  harness::TempDir dir_{"lrun"};
  std::vector<pid_t> pids_;
};

TEST_F(LeaseRunTest, SigtermStopsCmdAndHandsTheLeaseToTheStandbyProcess) {
  pid_t a = Run("a", LoggingCmd());
  ASSERT_TRUE(Eventually([&] { return CmdLog() == "start 1\n"; })) << CmdLog() << Slurp(dir_.path() + "/a.err");
  pid_t b = Run("b", LoggingCmd());
  ASSERT_TRUE(Eventually([&] { return Candidates() == 1; })) << Slurp(dir_.path() + "/b.err");
  EXPECT_EQ(CmdLog(), "start 1\n");  // the standby's CMD does not run

  const auto t0 = std::chrono::steady_clock::now();
  ::kill(a, SIGTERM);
  EXPECT_EQ(Code(harness::WaitFor(a, std::chrono::seconds(15))), 0) << Slurp(dir_.path() + "/a.err");
  // Handed over (one NOTIFY), far below the TTL (10 s): A's CMD ended before B's started.
  ASSERT_TRUE(Eventually([&] { return CmdLog() == "start 1\nend 1\nstart 2\n"; }, std::chrono::seconds(5)))
      << CmdLog() << Slurp(dir_.path() + "/b.err");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(Slurp(dir_.path() + "/a.err").find("lease.handed_over"), std::string::npos);
  EXPECT_EQ(Epoch(), "2");

  ::kill(b, SIGTERM);
  EXPECT_EQ(Code(harness::WaitFor(b, std::chrono::seconds(15))), 0);
  EXPECT_EQ(CmdLog(), "start 1\nend 1\nstart 2\nend 2\n");
  EXPECT_EQ(Holder(), "");  // nobody left: released
  EXPECT_EQ(Epoch(), "3");
}

TEST_F(LeaseRunTest, CmdsOwnStatusIsPassedOnAndTheLeaseReleased) {
  pid_t a = Run("a", {"/bin/sh", "-c", "test \"$BATON_LEASE_EPOCH\" = 1 && test -n \"$BATON_LEASE_HOLDER\" && "
                                       "test \"$BATON_LEASE_RUN_NAME\" = job && exit 7; exit 9"});
  EXPECT_EQ(Code(harness::WaitFor(a, std::chrono::seconds(15))), 7) << Slurp(dir_.path() + "/a.err");
  EXPECT_EQ(Holder(), "");
  EXPECT_EQ(Epoch(), "2");
}

TEST_F(LeaseRunTest, LostLeadershipStopsCmdAndExits75) {
  pid_t a = Run("a", LoggingCmd(), {"--ttl", "1500ms"});
  ASSERT_TRUE(Eventually([&] { return CmdLog() == "start 1\n"; })) << Slurp(dir_.path() + "/a.err");
  auto r = Admin({"release", "job"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("nobody acquires it before"), std::string::npos) << r.out;
  // Fenced out at its next renew (TTL/3).
  EXPECT_EQ(Code(harness::WaitFor(a, std::chrono::seconds(15))), 75) << Slurp(dir_.path() + "/a.err");
  EXPECT_EQ(CmdLog(), "start 1\nend 1\n");
  auto again = Admin({"release", "job"});
  EXPECT_EQ(again.exit_code, 4) << again.err;  // not held: refused
}

TEST_F(LeaseRunTest, TransferGoesOnlyToALiveCandidate) {
  pid_t a = Run("a", LoggingCmd(), {"--ttl", "1500ms"});
  ASSERT_TRUE(Eventually([&] { return CmdLog() == "start 1\n"; }));
  pid_t b = Run("b", LoggingCmd(), {"--ttl", "1500ms"});
  ASSERT_TRUE(Eventually([&] { return Candidates() == 1; }));
  const std::string b_id = Sql("SELECT holder FROM baton_lease_candidate WHERE expires_at > now() AND holder <> '" +
                               Holder() + "'");
  auto st = Admin({"status", "job", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_NE(st.out.find("\"epoch\":1"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find(b_id), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("\"live\":true"), std::string::npos) << st.out;

  auto bad = Admin({"transfer", "job", "--to", "somebody/else/1"});
  EXPECT_EQ(bad.exit_code, 4) << bad.err;
  EXPECT_NE(bad.err.find("not a live candidate"), std::string::npos) << bad.err;
  EXPECT_EQ(Epoch(), "1");

  auto ok = Admin({"transfer", "job", "--to", b_id, "--json"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(Holder(), b_id);
  // A stepped down (its CMD stopped first) and exits as having lost leadership.
  EXPECT_EQ(Code(harness::WaitFor(a, std::chrono::seconds(15))), 75) << Slurp(dir_.path() + "/a.err");
  ASSERT_TRUE(Eventually([&] { return CmdLog() == "start 1\nend 1\nstart 2\n"; })) << CmdLog();
  ::kill(b, SIGTERM);
  EXPECT_EQ(Code(harness::WaitFor(b, std::chrono::seconds(15))), 0);
}

TEST_F(LeaseRunTest, UsageAndUnreachablePostgresHaveTheirOwnExitCodes) {
  auto no_cmd = RunProgram({BinPath("baton"), "lease", "run", "--name", "job"});
  EXPECT_EQ(no_cmd.exit_code, 2) << no_cmd.err;
  auto bad_ttl = RunProgram({BinPath("baton"), "lease", "run", "--name", "job", "--ttl", "10", "--", "true"});
  EXPECT_EQ(bad_ttl.exit_code, 2);
  EXPECT_NE(bad_ttl.err.find("--ttl"), std::string::npos) << bad_ttl.err;
  auto bad_dsn = RunProgram({BinPath("baton"), "lease", "run", "--name", "job", "--dsn",
                             "postgresql://app:s3cr%zzet@db/app", "--", "true"});
  EXPECT_EQ(bad_dsn.exit_code, 2) << bad_dsn.err;
  EXPECT_EQ(bad_dsn.err.find("s3cr"), std::string::npos) << bad_dsn.err;  // no piece of the password
  auto away = RunProgram({BinPath("baton"), "lease", "run", "--name", "job", "--dsn",
                          "host=" + dir_.path() + "/nowhere port=5432 dbname=x", "--connect-timeout", "1s", "--",
                          "true"});
  EXPECT_EQ(away.exit_code, 69) << away.err;
  EXPECT_NE(away.err.find("could not reach PostgreSQL"), std::string::npos) << away.err;
  auto status_away = RunProgram({BinPath("baton"), "lease", "status", "job", "--dsn",
                                 "host=" + dir_.path() + "/nowhere port=5432 dbname=x"});
  EXPECT_EQ(status_away.exit_code, 1) << status_away.err;
  auto spawn = RunProgram({BinPath("baton"), "lease", "run", "--name", "job", "--dsn", dsn_, "--",
                           dir_.path() + "/no-such-binary"});
  EXPECT_EQ(spawn.exit_code, 127) << spawn.err;
  EXPECT_EQ(Holder(), "");  // stepped down at once
}

}  // namespace
}  // namespace baton::testing
