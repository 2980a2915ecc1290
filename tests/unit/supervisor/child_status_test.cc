#include "supervisor/child_status.h"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

namespace baton::supervisor {
namespace {

TEST(ChildStatusTest, RolesAreNamedAsBatonRoleSpellsThem) {
  EXPECT_EQ(ChildRoleName(ChildRole::kCold), "cold");
  EXPECT_EQ(ChildRoleName(ChildRole::kSuccessor), "successor");
}

TEST(ChildStatusTest, ExitFromAWaitStatus) {
  // Wait statuses as the kernel builds them: code << 8, or the signal.
  auto exited = ChildExit::FromWaitStatus(3 << 8);
  ASSERT_TRUE(WIFEXITED(3 << 8));
  EXPECT_TRUE(exited.exited());
  EXPECT_EQ(exited.value(), 3);
  EXPECT_EQ(exited.Describe(), "exited with status 3");

  auto killed = ChildExit::FromWaitStatus(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(SIGKILL));
  EXPECT_TRUE(killed.signalled());
  EXPECT_TRUE(killed.SignalledBy(SIGKILL));
  EXPECT_FALSE(killed.SignalledBy(SIGTERM));
  EXPECT_EQ(killed.Describe(), "killed by signal 9");

  auto gone = ChildExit::FromWaitStatus(-1);
  EXPECT_FALSE(gone.exited());
  EXPECT_FALSE(gone.signalled());
  EXPECT_EQ(gone.Describe(), "vanished (not our child any more)");
}

TEST(ChildStatusTest, AnExitCodeIsNotASignal) {
  // Exit status 15 must not read as SIGTERM.
  EXPECT_FALSE(ChildExit::Exited(SIGTERM).SignalledBy(SIGTERM));
  EXPECT_TRUE(ChildExit::Signalled(SIGTERM).SignalledBy(SIGTERM));
}

}  // namespace
}  // namespace baton::supervisor
