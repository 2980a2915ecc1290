// Handover across simulated hosts: two `baton lease run` processes, each in
// a network namespace of its own joined to this one by a veth pair with
// addresses made for the test, reach one PostgreSQL over TCP (a forwarder
// on this side in front of its Unix socket). A SIGTERM to the leader hands
// the lease to the standby in the other namespace: the first CMD ends
// before the second starts, epochs only grow, far below the TTL. Root only.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/lease/lease_test_util.h"
#include "tests/lease/pg_sql.h"
#include "tests/lease/tcp_forwarder.h"
#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::testing {
namespace {

bool Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Namespace `ns` with veth `host_if` (10.219.<n>.1 here) <-> eth0 (10.219.<n>.2 there).
class SimulatedHost {
 public:
  SimulatedHost(const std::string& tag, int n) : ns_("bt" + tag), host_if_("vb" + tag), n_(n) {
    const std::string net = "10.219." + std::to_string(n) + ".";
    ok_ = Sh("ip netns add " + ns_) && Sh("ip link add " + host_if_ + " type veth peer name vp" + host_if_.substr(2)) &&
          Sh("ip link set vp" + host_if_.substr(2) + " netns " + ns_) &&
          Sh("ip addr add " + net + "1/24 dev " + host_if_) && Sh("ip link set " + host_if_ + " up") &&
          Sh("ip -n " + ns_ + " link set vp" + host_if_.substr(2) + " name eth0") &&
          Sh("ip -n " + ns_ + " addr add " + net + "2/24 dev eth0") && Sh("ip -n " + ns_ + " link set eth0 up") &&
          Sh("ip -n " + ns_ + " link set lo up");
  }
  ~SimulatedHost() {
    Sh("ip netns del " + ns_);  // takes its end of the pair, and so the pair, with it
    Sh("ip link del " + host_if_);
  }
  bool ok() const { return ok_; }
  const std::string& ns() const { return ns_; }
  std::string gateway() const { return "10.219." + std::to_string(n_) + ".1"; }
  std::string address() const { return "10.219." + std::to_string(n_) + ".2"; }

 private:
  std::string ns_, host_if_;
  int n_;
  bool ok_ = false;
};

// SIGKILLs the process groups it was given when it goes (a failed test).
struct Reap {
  std::vector<pid_t> pids;
  ~Reap() {
    for (pid_t p : pids) {
      if (::kill(-p, SIGKILL) == 0) harness::WaitFor(p, std::chrono::seconds(5));
    }
  }
};

TEST(LeaseNetnsTest, GracefulStopHandsTheLeaseToAStandbyOnAnotherHost) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root for network namespaces (CI runs the suite as root)";
  auto& pg = SharedPg();
  ASSERT_TRUE(pg.running()) << pg.error();
  const std::string dsn = FreshDatabase(pg);
  const std::string db = dsn.substr(dsn.find("dbname=") + 7, dsn.find(' ', dsn.find("dbname=")) - dsn.find("dbname=") - 7);
  const std::string tag = std::to_string(::getpid() % 100000);
  SimulatedHost a_host(tag + "a", 1), b_host(tag + "b", 2);
  ASSERT_TRUE(a_host.ok() && b_host.ok()) << "could not set up the namespaces";
  const int port = harness::FreePort();
  TcpForwarder fwd(port, pg.dir() + "/.s.PGSQL.5432");
  ASSERT_TRUE(fwd.ok());

  harness::TempDir dir("lnet");
  const std::string log = dir.path() + "/cmd.log";
  auto run = [&](const SimulatedHost& h, const std::string& who) {
    const std::string cmd = "echo start " + who + " $BATON_LEASE_EPOCH >> " + log + "; trap 'echo end " + who +
                            " $BATON_LEASE_EPOCH >> " + log + "; exit 0' TERM; while :; do sleep 0.05; done";
    return harness::SpawnBackground(
        {"/usr/sbin/ip", "netns", "exec", h.ns(), harness::BinPath("baton"), "lease", "run", "--name", "job", "--dsn",
         "host=" + h.gateway() + " port=" + std::to_string(port) + " dbname=" + db + " user=postgres", "--", "/bin/sh",
         "-c", cmd},
        {}, dir.path() + "/" + who + ".out", dir.path() + "/" + who + ".err");
  };
  auto eventually = [](auto p, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!p() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return p();
  };
  Reap reap;
  pid_t a = run(a_host, "a");
  reap.pids.push_back(a);
  ASSERT_TRUE(eventually([&] { return Slurp(log) == "start a 1\n"; }, std::chrono::seconds(15)))
      << Slurp(dir.path() + "/a.err");
  pid_t b = run(b_host, "b");
  reap.pids.push_back(b);
  ASSERT_TRUE(eventually([&] {
    return SqlOn(dsn, "SELECT count(*) FROM baton_lease_candidate WHERE expires_at > now()") == "1";
  }, std::chrono::seconds(15))) << Slurp(dir.path() + "/b.err");
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(a, SIGTERM);
  EXPECT_EQ(harness::WaitFor(a, std::chrono::seconds(15)), 0) << Slurp(dir.path() + "/a.err");
  EXPECT_TRUE(eventually([&] { return Slurp(log) == "start a 1\nend a 1\nstart b 2\n"; }, std::chrono::seconds(5)))
      << Slurp(log) << Slurp(dir.path() + "/b.err");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));  // the TTL is 10 s
  EXPECT_EQ(SqlOn(dsn, "SELECT epoch FROM baton_lease WHERE name = 'job'"), "2");
  const auto peers = fwd.peers();
  EXPECT_TRUE(peers.count(a_host.address()) == 1 && peers.count(b_host.address()) == 1)
      << "the processes did not reach Postgres from their own namespaces";
  ::kill(b, SIGTERM);
  EXPECT_EQ(harness::WaitFor(b, std::chrono::seconds(15)), 0);
  EXPECT_EQ(Slurp(log), "start a 1\nend a 1\nstart b 2\nend b 2\n");
}

}  // namespace
}  // namespace baton::testing
