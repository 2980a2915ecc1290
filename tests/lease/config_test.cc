// kvd's lease configuration errors are clear and fail the start: a bad DSN
// or an unusable libpq (exit 2, before anything happens), missing
// privileges on the lease table (exit 1, naming the role and what it
// lacks); the DSN also comes from BATON_LEASE_DSN.
#include "tests/lease/lease_cluster_util.h"
#include "tests/lease/lease_test_util.h"
#include <signal.h>
#include <sys/wait.h>

#include "tools/harness/subprocess.h"

namespace baton::testing {
namespace {

using harness::RunProgram;

std::vector<std::string> Kvd(const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> a = {harness::BinPath("kvd"), "--data-dir", dir, "--standalone-listen", "127.0.0.1:0"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

TEST(LeaseConfigKvdTest, ABadDsnFailsAtOnceWithAClearError) {
  const harness::TempDir tmp("lc");
  const std::string& dir = tmp.path();
  harness::RunOptions o;
  o.timeout = std::chrono::seconds(10);
  auto r = RunProgram(Kvd(dir, {"--lease-name", "kv", "--lease-dsn", "host=/tmp port"}), o);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("lease DSN"), std::string::npos) << r.err;
  r = RunProgram(Kvd(dir, {"--lease-dsn", "host=/tmp"}), o);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("needs --lease-name"), std::string::npos) << r.err;
}

TEST(LeaseConfigKvdTest, AnUnusableLibpqFailsTheStartWithAClearError) {
  // kvd does not link libpq; a lease loads it at start. Here the loader
  // finds a libpq.so.5 without libpq's functions first.
  const harness::TempDir tmp("lc");
  const std::string& dir = tmp.path();
  harness::RunOptions o;
  o.env = {"LD_LIBRARY_PATH=" + std::string(BATON_TEST_BIN_DIR) + "/empty-libpq"};
  o.timeout = std::chrono::seconds(10);
  auto r = RunProgram(Kvd(dir, {"--lease-name", "kv", "--lease-dsn", "host=/tmp"}), o);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("the Postgres lease needs libpq (libpq.so.5, Debian package libpq5): "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("undefined symbol: PQ"), std::string::npos) << r.err;
}

TEST(LeaseConfigKvdTest, MissingPrivilegesFailTheStartNamingTheRole) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  bool ok = false;
  pg.Query("DO $$ BEGIN CREATE ROLE baton_weak LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$", &ok);
  ASSERT_TRUE(ok) << pg.error();
  // The table exists (an administrator created it); this role may not use it.
  pg.Query(std::string(ownership::LeaseStatements().front()), &ok);
  ASSERT_TRUE(ok) << pg.error();
  const harness::TempDir tmp("lc");
  const std::string& dir = tmp.path();
  // The DSN from the environment (no --lease-dsn).
  harness::RunOptions o;
  o.env = {"BATON_LEASE_DSN=" + pg.dsn_for("baton_weak")};
  o.timeout = std::chrono::seconds(15);
  auto r = RunProgram(Kvd(dir, {"--lease-name", "kv"}), o);
  EXPECT_TRUE(r.exited);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("role baton_weak lacks SELECT, INSERT, UPDATE on table baton_lease"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("lease 'kv'"), std::string::npos) << r.err;
}

TEST(LeaseConfigKvdTest, PgVariablesWorkAsTheDsn) {
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const harness::TempDir tmp("lc");
  const std::string& dir = tmp.path();
  const std::string port_file = dir + "/port";
  harness::RunOptions o;
  o.env = {"PGHOST=" + pg.dir(), "PGPORT=5432", "PGUSER=postgres", "PGDATABASE=postgres"};
  // Standalone kvd serving with the lease: exits 0 on SIGTERM after we saw it lead.
  const pid_t pid = harness::SpawnBackground(Kvd(dir, {"--lease-name", "pgvars", "--port-file", port_file}), o.env,
                                             dir + "/out", dir + "/err");
  int64_t epoch = -1;
  for (int i = 0; i < 500 && epoch <= 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::string p = harness::ReadAll(port_file);
    if (!p.empty()) epoch = harness::ServingEpoch(std::stoi(p));
  }
  ::kill(pid, SIGTERM);
  const int status = harness::WaitFor(pid, std::chrono::seconds(10));
  EXPECT_GT(epoch, 0) << harness::ReadAll(dir + "/err");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << harness::ReadAll(dir + "/err");
  // It released the lease on its way out: free, with a bumped epoch.
  EXPECT_EQ(LeaseRow(pg, "pgvars"), "<free> " + std::to_string(epoch + 1));
}

}  // namespace
}  // namespace baton::testing
