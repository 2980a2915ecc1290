// 50 consecutive upgrades under load, keep-alive and one connection per
// request: every upgrade commits, the load tool sees no error of any kind,
// every acknowledged write reads back, the supervisor's FD count does not
// grow and no zombie is left.
#include <thread>

#include "tests/integration/integration_util.h"

namespace baton::harness {
namespace {

void FiftyUpgradesUnderLoad(bool close_mode) {
  Cluster c({});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  // Warm up one handoff so lazily opened FDs (admin socket etc.) are counted.
  ASSERT_EQ(c.Upgrade().exit_code, 0);
  const int fds_before = CountFds(c.supervisor_pid());
  c.StartLoad(32, "600s", close_mode);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::vector<double> totals;
  pid_t last_new = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 4000);
    EXPECT_EQ(Outcome(r), "committed");
    const pid_t old_pid = static_cast<pid_t>(JInt(r.json, {"old_pid"}));
    if (last_new != 0) {
      EXPECT_EQ(old_pid, last_new) << "each upgrade replaces the previous new generation";
    }
    last_new = static_cast<pid_t>(JInt(r.json, {"new_pid"}));
    ASSERT_TRUE(r.json.at("phases_ms").is_object());
    EXPECT_EQ(r.json.at("phases_ms").as_object().size(), 7u) << r.out;
  }
  auto load = c.FinishLoad();  // SIGINT: stop issuing, then verify every write
  ExpectCleanLoad(load);
  EXPECT_EQ(c.IncumbentPid(), last_new);
  // Old generations are all reaped: no zombies, no FD growth in S (the last
  // old generation may still be exiting: give it a moment).
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
  // Every old generation left on its own once it had retired: none was
  // killed, none overstayed.
  const std::string log = c.SupervisorLog();
  EXPECT_EQ(log.find("killed by signal"), std::string::npos) << log.substr(0, 4000);
  EXPECT_EQ(log.find("child.retire_timeout"), std::string::npos);
  int fds_after = CountFds(c.supervisor_pid());
  for (int i = 0; i < 250 && fds_after > fds_before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    fds_after = CountFds(c.supervisor_pid());
  }
  EXPECT_LE(fds_after, fds_before) << "supervisor FDs grew";
}

TEST(HappyPathTest, FiftyUpgradesUnderKeepAliveLoad) { FiftyUpgradesUnderLoad(false); }
TEST(HappyPathTest, FiftyUpgradesUnderConnectionPerRequestLoad) { FiftyUpgradesUnderLoad(true); }

}  // namespace
}  // namespace baton::harness
