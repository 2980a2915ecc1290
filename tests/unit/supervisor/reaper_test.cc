#include "supervisor/reaper.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <gtest/gtest.h>

namespace baton::supervisor {
namespace {

pid_t ChildExiting(int code) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(code);
  return pid;
}

// Blocks until `pid` has exited, leaving it a zombie (WNOWAIT).
void AwaitZombie(pid_t pid) {
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Reaps `pid` now; its exit code, or -1 when it was not ours to reap any more.
int ReapNow(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ReaperTest, KnowsThePidsItHoldsPidfdsOf) {
  const pid_t child = ChildExiting(0);
  const int pidfd = PidfdOpen(child);
  ASSERT_GE(pidfd, 0);
  EXPECT_EQ(PidsWithPidfd().count(child), 1u);
  AwaitZombie(child);
  EXPECT_EQ(ReapNow(child), 0);
  ::close(pidfd);
  EXPECT_EQ(PidsWithPidfd().count(child), 0u);
}

// The stray child exited first: waitid(WNOWAIT) names it, it is reaped; the
// child with a pidfd keeps its exit status for its owner.
TEST(ReaperTest, ReapsAStrayChildAndLeavesOneWithAPidfd) {
  const pid_t stray = ChildExiting(3);
  AwaitZombie(stray);
  const pid_t own = ChildExiting(7);
  const int pidfd = PidfdOpen(own);
  ASSERT_GE(pidfd, 0);
  AwaitZombie(own);
  EXPECT_EQ(ReapStrayChildren(PidsWithPidfd()), 1);
  EXPECT_EQ(ReapNow(stray), -1);
  EXPECT_EQ(ReapNow(own), 7);
  ::close(pidfd);
}

// Our own zombie comes first in the kernel's list of children, hiding the
// strays behind it from waitid: they are found by their parent pid.
TEST(ReaperTest, FindsStrayChildrenBehindOneOfItsOwn) {
  const pid_t own = ChildExiting(7);
  const int pidfd = PidfdOpen(own);
  ASSERT_GE(pidfd, 0);
  AwaitZombie(own);
  const pid_t stray1 = ChildExiting(3);
  const pid_t stray2 = ChildExiting(4);
  AwaitZombie(stray1);
  AwaitZombie(stray2);
  EXPECT_EQ(ReapStrayChildren(PidsWithPidfd()), 2);
  EXPECT_EQ(ReapNow(stray1), -1);
  EXPECT_EQ(ReapNow(stray2), -1);
  EXPECT_EQ(ReapNow(own), 7);
  ::close(pidfd);
}

TEST(ReaperTest, NothingToReapIsNotAnError) { EXPECT_EQ(ReapStrayChildren({}), 0); }

}  // namespace
}  // namespace baton::supervisor
