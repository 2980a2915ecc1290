// Connections move (docs/integrate.md, "Handing over connections"): kvd
// hands its keep-alive connections, idle or with a request partly read, to
// the next generation, so clients under load see no close, no reconnect and
// no error across upgrades; and when the handoff rolls back after the
// descriptors moved, every connection is the incumbent's again.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

const std::string kKvd = BinPath("kvd");

void ExpectNoReconnect(const CommandResult& load) {
  ExpectCleanLoad(load);
  EXPECT_EQ(JInt(load.json, {"reconnects"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"server_closed"}), 0) << load.out;
}

// Busy keep-alive connections: every request on the way is answered.
TEST(HandoverTest, UpgradesUnderKeepAliveLoadSeeNoReconnect) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(32, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 10; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << i << r.out << r.err << c.SupervisorLog().substr(0, 6000);
  }
  ExpectNoReconnect(c.FinishLoad());
  EXPECT_TRUE(c.WaitForLog("handover.passed", std::chrono::seconds(5))) << c.SupervisorLog().substr(0, 4000);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

// Mostly idle keep-alive connections (a low total rate over many of them):
// they move between requests.
TEST(HandoverTest, IdleConnectionsMoveToo) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(64, "600s", false, 0.5, {"--rate-limit", "200"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 5; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << i << r.out << r.err;
  }
  ExpectNoReconnect(c.FinishLoad());
}

// A request whose first half is already read when the drain starts reaches
// the new generation with those bytes (kvd's unread bytes as metadata).
TEST(HandoverTest, APartlyReadRequestIsAnsweredByTheNextGeneration) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(s, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(c.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string first = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  ASSERT_EQ(::send(s, first.data(), first.size(), MSG_NOSIGNAL), static_cast<ssize_t>(first.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the incumbent read them
  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_NE(c.IncumbentPid(), before);
  const std::string rest = "\r\n";
  ASSERT_EQ(::send(s, rest.data(), rest.size(), MSG_NOSIGNAL), 2);
  std::string got;
  char buf[4096];
  timeval tv{10, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (got.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(s);
  EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
  EXPECT_EQ(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_TRUE(c.WaitForLog("kvd.adopted", std::chrono::seconds(5)));
}

struct RollbackCase {
  const char* name;
  std::string successor;  // the body of its wrapper script
  std::vector<std::string> supervise_args;
};

// The successor received every connection (and crashed or failed) before
// Ready: the incumbent gets them all back and clients see nothing.
void RollbackAfterTheDescriptorsMoved(const RollbackCase& rc) {
  Cluster c({{}, rc.supervise_args, {}});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const pid_t before = c.IncumbentPid();
  c.StartLoad(32, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = c.Upgrade(c.Script(rc.name, rc.successor));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << c.SupervisorLog().substr(0, 6000);
  EXPECT_EQ(c.IncumbentPid(), before);
  EXPECT_TRUE(c.WaitForLog("handover.returned", std::chrono::seconds(5))) << c.SupervisorLog().substr(0, 6000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto next = c.Upgrade();
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  ExpectNoReconnect(c.FinishLoad());
}

TEST(HandoverTest, SuccessorCrashAfterReceivingThemGivesEveryConnectionBack) {
  RollbackAfterTheDescriptorsMoved(
      {"crash", "BATON_CRASH_AT=successor.after_recv_handover exec " + kKvd + " \"$@\"", {}});
}

TEST(HandoverTest, SuccessorCrashBeforeReadyGivesEveryConnectionBack) {
  RollbackAfterTheDescriptorsMoved({"crash", "BATON_CRASH_AT=successor.before_ready exec " + kKvd + " \"$@\"", {}});
}

TEST(HandoverTest, FailedBeginGivesEveryConnectionBack) {
  RollbackAfterTheDescriptorsMoved({"fail-begin", "exec " + kKvd + " \"$@\" --fail-begin", {}});
}

// A successor that does not accept a handover (kvd --no-accept-handover:
// it never says so, and never takes any) is handed nothing: the incumbent
// drains as without handover, so clients see closes and reconnect, and no
// connection, idle or busy, waits on a process that will not serve it (a
// request on one would time out). The next upgrade, to a kvd that accepts
// again, hands over as usual.
TEST(HandoverTest, ASuccessorThatDoesNotAcceptIsHandedNothingAndNobodyWaits) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(32, "600s", false, 0.5, {"--idle-fraction", "0.5", "--burst", "300ms", "--idle", "1s"});
  ASSERT_TRUE(WaitUntilWriting(c)) << c.SupervisorLog().substr(0, 4000);
  auto r = c.Upgrade(c.Script("no-accept", "exec " + kKvd + " \"$@\" --no-accept-handover"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog().substr(0, 6000);
  // Long enough for every idle connection to send its next request (a
  // burst follows each 1 s idle period) to the new generation.
  std::this_thread::sleep_for(std::chrono::seconds(3));
  r = c.Upgrade(kKvd);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog().substr(0, 6000);
  auto load = c.FinishLoad();
  ExpectCleanLoad(load);
  EXPECT_GT(JInt(load.json, {"server_closed"}), 0) << load.out;
  EXPECT_GT(JInt(load.json, {"reconnects"}), 0) << load.out;
  const std::string log = c.SupervisorLog();
  // The first handoff passed nothing; the second did.
  EXPECT_EQ(log.find("handover.not_accepted"), std::string::npos) << "the incumbent handed over anyway\n" << log;
  EXPECT_NE(log.find("handover.passed"), std::string::npos) << log.substr(0, 6000);
  EXPECT_EQ(log.find("kvd.handover_failed"), std::string::npos) << log.substr(0, 6000);
}

// Without handover kvd closes keep-alive connections at response
// boundaries, and clients reconnect: what the handover saves.
TEST(HandoverTest, WithoutHandoverClientsReconnect) {
  Cluster c({{"--no-hand-over"}, {}, {}});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(32, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = c.Upgrade(c.Script("plain", "exec " + kKvd + " \"$@\" --no-hand-over"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto load = c.FinishLoad();
  ExpectCleanLoad(load);
  // The drain closed keep-alive connections politely: counted as closes by
  // the server, each followed by a new connection.
  EXPECT_GT(JInt(load.json, {"server_closed"}), 0) << load.out;
  EXPECT_GT(JInt(load.json, {"reconnects"}), 0) << load.out;
}

}  // namespace
}  // namespace baton::harness
