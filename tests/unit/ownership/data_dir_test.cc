#include "ownership/data_dir.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tools/harness/subprocess.h"

namespace baton::ownership {
namespace {

using baton::harness::TempDir;

TEST(DataDirTest, OneHolderAtATime) {
  const TempDir tmp("dd");
  const std::string& dir = tmp.path();
  auto first = DataDirLock::Acquire(dir);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_TRUE(first->held());
  EXPECT_EQ(RecordedHolder(dir), ::getpid());
  // flock conflicts per open file description: a second open conflicts even
  // in the same process, exactly as another process would.
  auto second = DataDirLock::Acquire(dir);
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.error().Is(Errc::kFailedPrecondition));
  EXPECT_NE(second.error().message.find("locked by another process (pid " + std::to_string(::getpid())),
            std::string::npos);
  first->Release();
  EXPECT_FALSE(first->held());
  auto third = DataDirLock::Acquire(dir);
  EXPECT_TRUE(third) << third.error().message;
}

TEST(DataDirTest, AnotherProcessIsRefusedAndTheKernelReleasesOnDeath) {
  const TempDir tmp("dd");
  const std::string& dir = tmp.path();
  // The child says when it holds the lock (one byte on `held`), so the
  // parent tries exactly once, at a moment the child is known to hold it.
  int held[2];
  ASSERT_EQ(::pipe2(held, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(held[0]);
    auto lock = DataDirLock::Acquire(dir);
    if (!lock) ::_exit(1);  // the parent then reads EOF, not the byte
    if (::write(held[1], "h", 1) != 1) ::_exit(1);
    ::pause();  // hold it until killed
    ::_exit(0);
  }
  ::close(held[1]);
  pollfd p{held[0], POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 20000), 1) << "the child did not take the lock within 20 s";
  char byte = 0;
  const ssize_t n = ::read(held[0], &byte, 1);
  ::close(held[0]);
  if (n != 1) ::waitpid(child, nullptr, 0);
  ASSERT_EQ(n, 1) << "the child could not take the lock";
  auto refused = DataDirLock::Acquire(dir);
  EXPECT_FALSE(refused);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  auto after = DataDirLock::Acquire(dir);
  EXPECT_TRUE(after) << after.error().message;
}

// A daemon that forks (a snapshot child, system(), a helper) gives the child
// a reference to the lock's open file description until the child closes it
// or execs. Releasing must hand the data dir over anyway: a successor takes
// it at once while such a child still lives.
TEST(DataDirTest, ReleaseHandsOverWhileAForkedChildStillHoldsTheDescriptor) {
  const TempDir tmp("dd");
  const std::string& dir = tmp.path();
  auto lock = DataDirLock::Acquire(dir);
  ASSERT_TRUE(lock) << lock.error().message;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();  // keeps every inherited fd until killed
    ::_exit(0);
  }
  lock->Release();
  auto next = DataDirLock::Acquire(dir);
  EXPECT_TRUE(next) << next.error().message;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
}

TEST(DataDirTest, LockFdIsCloseOnExec) {
  const TempDir tmp("dd");
  const std::string& dir = tmp.path();
  auto lock = DataDirLock::Acquire(dir);
  ASSERT_TRUE(lock);
  int flags = -1;
  for (int fd = 3; fd < 256; ++fd) {
    char link[64], target[512];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = ::readlink(link, target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (std::string(target).ends_with(kLockFile)) flags = ::fcntl(fd, F_GETFD);
  }
  ASSERT_GE(flags, 0);
  EXPECT_TRUE(flags & FD_CLOEXEC);
}

TEST(DataDirTest, MissingDirectoryIsAClearError) {
  auto r = DataDirLock::Acquire("/nonexistent/baton-data");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/baton-data"), std::string::npos);
}

TEST(DataDirTest, GenerationStartsAtZeroAndBumpsDurably) {
  const TempDir tmp("dd");
  const std::string& dir = tmp.path();
  EXPECT_EQ(*ReadGeneration(dir), 0u);
  auto lock = DataDirLock::Acquire(dir);
  ASSERT_TRUE(lock);
  EXPECT_EQ(*BumpGeneration(*lock), 1u);
  EXPECT_EQ(*BumpGeneration(*lock), 2u);
  EXPECT_EQ(*ReadGeneration(dir), 2u);
  lock->Release();
  auto refused = BumpGeneration(*lock);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().Is(Errc::kFailedPrecondition));
}

TEST(DataDirTest, CorruptGenerationIsAnError) {
  const TempDir tmp("dd");
  const std::string& dir = tmp.path();
  std::ofstream(dir + "/" + kGenerationFile) << "twelve\n";
  auto r = ReadGeneration(dir);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("corrupt generation"), std::string::npos);
}

}  // namespace
}  // namespace baton::ownership
