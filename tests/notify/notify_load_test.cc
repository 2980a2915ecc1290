// sdkv (an unmodified daemon: LISTEN_FDS + sd_notify only) upgraded again and
// again under baton-load: overlap with zero errors in keep-alive and
// new-connection modes, sequential with zero refused connections (and every
// acknowledged write read back) and its not-ready window reported.
#include "tests/notify/notify_util.h"

namespace baton::harness {
namespace {

using namespace std::chrono_literals;

int Upgrades() {
  const char* n = std::getenv("BATON_NOTIFY_UPGRADES");
  return n ? std::atoi(n) : 20;
}

// Runs `upgrades` upgrades under load; the load's JSON.
CommandResult UpgradeUnderLoad(NotifyCluster& nc, bool close_mode, std::vector<std::string>* reasons = nullptr) {
  nc->StartLoad(8, "300s", close_mode);
  // Let the load reach the daemon before the first upgrade.
  std::this_thread::sleep_for(300ms);
  for (int i = 0; i < Upgrades(); ++i) {
    auto r = nc->Upgrade();
    EXPECT_EQ(r.exit_code, 0) << i << ": " << r.out << r.err << nc->SupervisorLog();
    if (reasons) reasons->push_back(Reason(r));
  }
  return nc->FinishLoad();
}

TEST(NotifyLoadTest, OverlapKeepAliveHasNoErrors) {
  NotifyCluster nc("[notify]\nstrategy = \"overlap\"\n");
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ExpectCleanLoad(UpgradeUnderLoad(nc, false));
}

TEST(NotifyLoadTest, OverlapNewConnectionsHaveNoErrors) {
  NotifyCluster nc("[notify]\nstrategy = \"overlap\"\n");
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  ExpectCleanLoad(UpgradeUnderLoad(nc, true));
}

TEST(NotifyLoadTest, SequentialRefusesNoConnectionAndReportsTheWindow) {
  NotifyCluster nc("[notify]\nstrategy = \"sequential\"\n");
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog();
  std::vector<std::string> reasons;
  auto load = UpgradeUnderLoad(nc, true, &reasons);
  ExpectCleanLoad(load);
  for (const auto& r : reasons) EXPECT_NE(r.find("not ready for"), std::string::npos) << r;
  EXPECT_EQ(nc.CountEvents("handoff.not_ready"), static_cast<size_t>(Upgrades()));
  std::cout << "sequential: " << (reasons.empty() ? "" : reasons.back()) << "\n";
}

}  // namespace
}  // namespace baton::harness
