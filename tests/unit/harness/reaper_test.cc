// A test process that dies (SIGKILL: a ctest timeout, a ^C'd run) takes the
// cluster it started with it: no supervisor or daemon generation survives
// to hold ports and data dirs.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tools/harness/cluster.h"
#include "tools/harness/reaper.h"

namespace baton::harness {
namespace {

// What the doomed test process reports once its cluster serves.
struct Started {
  pid_t supervisor = -1;
  pid_t incumbent = -1;
  char dir[256] = {};
};

// Polls until none of `pids` runs; false after `timeout`.
bool AllGone(const std::vector<pid_t>& pids, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool any = false;
    for (pid_t p : pids) any = any || ProcessRunning(p);
    if (!any) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST(ReaperTest, AKilledTestProcessLeavesNoClusterBehind) {
  int report[2];
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  const pid_t test = ::fork();
  ASSERT_GE(test, 0);
  if (test == 0) {
    // The "test process": starts a cluster, reports, waits to be killed.
    ::close(report[0]);
    Started s;
    {
      Cluster c({});
      if (c.Start()) {
        s.supervisor = c.supervisor_pid();
        s.incumbent = c.IncumbentPid();
        std::snprintf(s.dir, sizeof(s.dir), "%s", c.dir().c_str());
        if (::write(report[1], &s, sizeof(s)) == static_cast<ssize_t>(sizeof(s))) ::pause();
      }
    }
    ::_exit(1);
  }
  ::close(report[1]);
  Started s;
  pollfd p{report[0], POLLIN, 0};
  const bool reported = ::poll(&p, 1, 60000) == 1 && ::read(report[0], &s, sizeof(s)) == static_cast<ssize_t>(sizeof(s));
  ::close(report[0]);
  if (!reported) {
    ::kill(test, SIGKILL);
    ::waitpid(test, nullptr, 0);
  }
  ASSERT_TRUE(reported) << "the cluster did not start";
  ASSERT_GT(s.supervisor, 0);
  ASSERT_GT(s.incumbent, 0);
  ASSERT_TRUE(ProcessRunning(s.supervisor));
  ASSERT_TRUE(ProcessRunning(s.incumbent));

  ASSERT_EQ(::kill(test, SIGKILL), 0);
  ASSERT_EQ(::waitpid(test, nullptr, 0), test);
  const bool gone = AllGone({s.supervisor, s.incumbent}, std::chrono::seconds(10));
  if (!gone) {
    // Do not leak them from this test either.
    ::kill(-s.supervisor, SIGKILL);
    ::kill(s.incumbent, SIGKILL);
  }
  EXPECT_TRUE(gone) << "supervisor " << s.supervisor << " or kvd " << s.incumbent
                    << " outlived the test process that started them";
  EXPECT_TRUE(AllGone(ProcessesInGroup(s.supervisor), std::chrono::seconds(10)));
  // The killed process could not remove its temp dir.
  std::error_code ec;
  std::filesystem::remove_all(s.dir, ec);
}

// A sleeping child in a process group of its own.
pid_t Sleeper() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::pause();
    ::_exit(0);
  }
  if (pid > 0) ::setpgid(pid, pid);
  return pid;
}

TEST(ReaperTest, AGroupEndedByItsOwnerIsForgotten) {
  // A forked "test process" registers two groups, forgets the first (as if
  // it had ended it and the number were reused since) and dies. The reaper
  // kills in registration order, so once the second group is dead the
  // first would have been killed before it, had it not been forgotten.
  const pid_t forgotten = Sleeper();
  const pid_t kept = Sleeper();
  ASSERT_GT(forgotten, 0);
  ASSERT_GT(kept, 0);
  const pid_t test = ::fork();
  ASSERT_GE(test, 0);
  if (test == 0) {
    KillGroupOnExit(forgotten);
    KillGroupOnExit(kept);
    ForgetGroup(forgotten);
    ::_exit(0);
  }
  ASSERT_EQ(::waitpid(test, nullptr, 0), test);
  int status = 0;
  EXPECT_EQ(WaitFor(kept, std::chrono::seconds(10)), SIGKILL) << "the registered group was not killed";
  EXPECT_EQ(::waitpid(forgotten, &status, WNOHANG), 0) << "the forgotten group was killed";
  ::kill(forgotten, SIGKILL);
  ::kill(kept, SIGKILL);
  ::waitpid(forgotten, nullptr, 0);
  ::waitpid(kept, nullptr, 0);
}

}  // namespace
}  // namespace baton::harness
