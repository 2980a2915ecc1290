// The incumbent killed outside a handoff: the supervisor restarts it with
// back-off while the listeners stay open, so clients never see a refused
// connection, and no acknowledged write is lost.
#include <signal.h>

#include <thread>

#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

TEST(RestartTest, KilledIncumbentIsRestartedWithoutRefusedConnections) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(16, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int round = 0; round < 3; ++round) {
    const pid_t victim = c.IncumbentPid();
    ASSERT_GT(victim, 0);
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    pid_t next = -1;
    for (int i = 0; i < 500; ++i) {
      next = c.IncumbentPid();
      if (next > 0 && next != victim && c.Healthy()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(next, 0);
    ASSERT_NE(next, victim) << c.SupervisorLog();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  auto load = c.FinishLoad();
  ASSERT_TRUE(load.json.is_object()) << load.out << load.err;
  // Requests in flight on the killed process may be reset; nothing may be
  // refused (the listener never closed) and nothing acknowledged lost.
  EXPECT_EQ(JInt(load.json, {"errors", "refused"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"lost_writes"}), 0) << load.out;
  EXPECT_EQ(JInt(load.json, {"verify_errors"}), 0) << load.out;
  auto status = c.Status();
  EXPECT_EQ(JInt(status.json, {"restarts"}), 3) << status.out;
  EXPECT_EQ(c.Upgrade().exit_code, 0);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

TEST(RestartTest, RestartAfterAnUpgradeRunsTheNewBinary) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const std::string copy = c.dir() + "/kvd-next";
  ASSERT_EQ(RunCommand({"/bin/cp", BinPath("kvd"), copy}, std::chrono::seconds(10)).exit_code, 0);
  ASSERT_EQ(c.Upgrade(copy).exit_code, 0);
  const pid_t victim = c.IncumbentPid();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  for (int i = 0; i < 500; ++i) {
    const pid_t now = c.IncumbentPid();
    if (now > 0 && now != victim && c.Healthy()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto status = c.Status();
  ASSERT_TRUE(status.json.is_object()) << status.out;
  EXPECT_EQ(std::string(status.json.at("binary").as_string()), copy);
}

}  // namespace
}  // namespace baton::harness
