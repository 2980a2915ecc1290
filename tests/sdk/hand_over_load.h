// The check every SDK's example daemon passes with --hand-over: keep-alive
// connections move to the next generation with their unread bytes, so the
// clients see no reconnect across upgrades; a failing begin after they
// moved gives them back to the incumbent, which serves them on.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/integration_util.h"

namespace baton::harness {

// `c`: a cluster of the daemon with --hand-over, not started yet.
// `failing`: the script body of a successor whose begin fails.
inline void ExpectHandOverWithNoReconnect(Cluster& c, const std::string& failing) {
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  for (int i = 0; i < 10; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 6000);
  }
  const pid_t before = c.IncumbentPid();
  auto r = c.Upgrade(c.Script("successor", failing));
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err << "\n" << c.SupervisorLog().substr(0, 6000);
  EXPECT_EQ(c.IncumbentPid(), before);
  r = c.Upgrade();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto load = c.FinishLoad();
  ExpectCleanLoad(load);
  EXPECT_EQ(JInt(load.json, {"reconnects"}), 0) << load.out;
  EXPECT_TRUE(c.WaitForLog("handover.passed", std::chrono::seconds(5))) << c.SupervisorLog().substr(0, 4000);
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

}  // namespace baton::harness
