// The real kvd binary, standalone: PUT, SIGTERM, restart, GET.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/unit/kvd/kvd_test_util.h"

extern char** environ;

namespace kvd {
namespace {

using testing::Client;
using testing::Eventually;
using testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// One kvd process; stderr goes to a file. Killed (SIGKILL) if still running
// when destroyed.
class Kvd {
 public:
  Kvd(const TempDir& dir, const std::string& name, std::vector<std::string> extra = {})
      : port_file_(dir.file(name + ".port")), log_(dir.file(name + ".log")) {
    std::filesystem::remove(port_file_);
    std::vector<std::string> args = {std::string(BATON_BIN_DIR) + "/kvd", "--data-dir", dir.path() + "/data",
                                     "--standalone-listen", "127.0.0.1:0", "--port-file", port_file_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::filesystem::create_directories(dir.path() + "/data");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // No supervisor contract may leak in from the test's own environment.
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view v(*e);
      if (!v.starts_with("LISTEN_") && !v.starts_with("BATON_")) env_strings.emplace_back(v);
    }
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Kvd() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }

  // The port once it serves; nullopt if it exited first.
  std::optional<uint16_t> Port() {
    if (!Eventually([&] { return std::filesystem::exists(port_file_) || Exited(); })) return std::nullopt;
    if (!std::filesystem::exists(port_file_)) return std::nullopt;
    return static_cast<uint16_t>(std::stoi(ReadFile(port_file_)));
  }
  bool Exited() {
    if (exit_code_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) exit_code_ = Decode(status);
    return exit_code_.has_value();
  }
  int Wait() {
    if (!exit_code_) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      exit_code_ = Decode(status);
    }
    return *exit_code_;
  }
  int Signal(int sig) {
    ::kill(pid_, sig);
    return Wait();
  }
  std::string log() const { return ReadFile(log_); }

 private:
  static int Decode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }
  std::string port_file_, log_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

TEST(KvdProcessTest, ValuesSurviveSigtermAndRestart) {
  TempDir dir;
  {
    Kvd kvd(dir, "first");
    auto port = kvd.Port();
    ASSERT_TRUE(port) << kvd.log();
    Client c(*port);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(c.Put(fmt::format("k{}", i), fmt::format("value {}", i)).result_int(), 200);
    EXPECT_EQ(kvd.Signal(SIGTERM), 0) << kvd.log();
  }
  Kvd kvd(dir, "second");
  auto port = kvd.Port();
  ASSERT_TRUE(port) << kvd.log();
  Client c(*port);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(c.Get(fmt::format("k{}", i)).body(), fmt::format("value {}", i));
  EXPECT_EQ(c.Put("k20", "more").body(), "21\n");
  EXPECT_EQ(kvd.Signal(SIGTERM), 0) << kvd.log();
}

TEST(KvdProcessTest, AcknowledgedWritesSurviveSigkill) {
  TempDir dir;
  {
    Kvd kvd(dir, "first");
    auto port = kvd.Port();
    ASSERT_TRUE(port) << kvd.log();
    Client c(*port);
    for (int i = 0; i < 10; ++i) ASSERT_EQ(c.Put(fmt::format("k{}", i), "v").result_int(), 200);
    EXPECT_EQ(kvd.Signal(SIGKILL), 128 + SIGKILL);
  }
  Kvd kvd(dir, "second");
  auto port = kvd.Port();
  ASSERT_TRUE(port) << kvd.log();
  Client c(*port);
  EXPECT_EQ(c.Get("k9").body(), "v");
}

TEST(KvdProcessTest, ASecondInstanceOnTheSameDataDirRefusesToStart) {
  TempDir dir;
  Kvd first(dir, "first");
  ASSERT_TRUE(first.Port()) << first.log();
  Kvd second(dir, "second");
  EXPECT_EQ(second.Wait(), 1) << second.log();
  EXPECT_EQ(first.Signal(SIGTERM), 0);
}

TEST(KvdProcessTest, ExitAtStartKnobExitsOne) {
  TempDir dir;
  Kvd kvd(dir, "knob", {"--exit-at-start"});
  EXPECT_EQ(kvd.Wait(), 1);
}

}  // namespace
}  // namespace kvd
