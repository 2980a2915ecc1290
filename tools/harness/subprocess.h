// Harness: run a program as a real child process and capture its output.
// Used by the tests and the benchmarks (both run from the build tree).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace baton::harness {

struct RunResult {
  bool exited = false;   // normal exit
  int exit_code = -1;    // when exited
  int signal = 0;        // when killed by a signal
  bool timed_out = false;  // we killed it after the timeout
  std::string out;       // stdout
  std::string err;       // stderr
};

struct RunOptions {
  std::vector<std::string> env;  // complete environment ("K=V"); empty = inherit
  bool inherit_env = true;       // when env is non-empty: add it to the current environment
  std::chrono::milliseconds timeout{20000};
  // Runs in the child after fork, before exec (keep it async-signal-safe).
  std::function<void()> in_child;
};

RunResult RunProgram(const std::vector<std::string>& argv, const RunOptions& opts = {});

// A fresh, short temporary directory /tmp/bt-<tag>-XXXXXX (socket paths in
// it must fit in 108 bytes), removed with everything in it when the object
// goes away, unless BATON_KEEP_TEST_DIRS is set to a non-empty value or
// Keep() was called: then it stays, and its path goes to stderr, for a
// post-mortem. Removal ignores errors (a process killed just before may
// still be writing into it), never follows a symlink out of the dir, and
// happens only in the process that made the dir: a forked child running
// destructors leaves it alone. Movable, not copyable; not thread-safe.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // Leave it in place when destroyed.
  void Keep() { keep_ = true; }

 private:
  void Remove();
  std::string path_;  // empty once moved from
  pid_t owner_ = -1;
  bool keep_ = false;
};

// Path of a test helper or an installed binary.
std::string HelperPath(const std::string& name);
std::string BinPath(const std::string& name);

}  // namespace baton::harness
