// The tests' self-removing temp dir: it goes with everything in it, only
// in the process that made it, never through a symlink, and stays when asked.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

namespace fs = std::filesystem;

constexpr const char* kKeepVar = "BATON_KEEP_TEST_DIRS";

// Runs each test with BATON_KEEP_TEST_DIRS unset (a developer may have set
// it for the whole suite) and puts it back afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = std::getenv(kKeepVar)) saved_ = v;
    ::unsetenv(kKeepVar);
  }
  void TearDown() override {
    if (saved_) {
      ::setenv(kKeepVar, saved_->c_str(), 1);
    } else {
      ::unsetenv(kKeepVar);
    }
  }
  std::optional<std::string> saved_;
};

TEST_F(TempDirTest, RemovesTheWholeTreeWhenDestroyed) {
  std::string path;
  {
    const TempDir tmp("td");
    path = tmp.path();
    EXPECT_EQ(path.rfind("/tmp/bt-td-", 0), 0u) << path;
    ASSERT_TRUE(fs::is_directory(path));
    fs::create_directories(path + "/a/b/c");
    std::ofstream(path + "/a/b/c/file") << "x";
    std::ofstream(path + "/top") << "y";
    ASSERT_EQ(::chmod((path + "/a/b").c_str(), 0500), 0);  // read-only for its owner
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(TempDirTest, LeavesWhatItsSymlinksPointTo) {
  const TempDir outside("td");
  std::ofstream(outside.path() + "/precious") << "keep me";
  std::string path;
  {
    const TempDir tmp("td");
    path = tmp.path();
    fs::create_directory_symlink(outside.path(), path + "/to-dir");
    fs::create_symlink(outside.path() + "/precious", path + "/to-file");
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(outside.path() + "/precious"));
}

TEST_F(TempDirTest, TheEnvironmentVariableOrKeepLeavesItInPlace) {
  std::string by_env, by_call, by_empty;
  ::setenv(kKeepVar, "1", 1);
  { by_env = TempDir("td").path(); }
  ::setenv(kKeepVar, "", 1);  // empty: not set
  { by_empty = TempDir("td").path(); }
  ::unsetenv(kKeepVar);
  {
    TempDir tmp("td");
    by_call = tmp.path();
    tmp.Keep();
  }
  EXPECT_TRUE(fs::is_directory(by_env));
  EXPECT_TRUE(fs::is_directory(by_call));
  EXPECT_FALSE(fs::exists(by_empty));
  std::error_code ec;
  fs::remove_all(by_env, ec);
  fs::remove_all(by_call, ec);
}

TEST_F(TempDirTest, AForkedChildThatDestroysItLeavesItAlone) {
  auto* tmp = new TempDir("td");
  const std::string path = tmp->path();
  const pid_t child = ::fork();
  if (child == 0) {
    delete tmp;  // as a static's destructor would run in a child's exit()
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(fs::is_directory(path));
  delete tmp;
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(TempDirTest, OnlyTheLastOwnerRemovesIt) {
  std::string path, other_path;
  {
    std::optional<TempDir> second;
    {
      TempDir first("td");
      path = first.path();
      second.emplace(std::move(first));
    }
    EXPECT_TRUE(fs::is_directory(path));
    EXPECT_EQ(second->path(), path);
    TempDir third("td");
    other_path = third.path();
    third = std::move(*second);  // drops its own dir, takes over the first
    EXPECT_FALSE(fs::exists(other_path));
    second.reset();
    EXPECT_TRUE(fs::is_directory(path));
  }
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace baton::harness
