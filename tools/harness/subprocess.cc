#include "tools/harness/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <utility>

extern char** environ;

namespace baton::harness {

RunResult RunProgram(const std::vector<std::string>& argv, const RunOptions& opts) {
  std::vector<std::string> env_storage;
  if (!opts.env.empty() && opts.inherit_env) {
    for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  }
  for (const auto& e : opts.env) env_storage.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    if (opts.in_child) opts.in_child();
    // A bare name ("dpkg", "pkg-config") is looked up in our PATH.
    if (opts.env.empty()) {
      ::execvp(argp[0], argp.data());
    } else {
      ::execvpe(argp[0], argp.data(), envp.data());
    }
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  RunResult r;
  const auto deadline = std::chrono::steady_clock::now() + opts.timeout;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      r.timed_out = true;
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    r.exited = true;
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

namespace {

// Gives the owner rwx on `dir` and every directory below it (never through
// a symlink), so that remove_all can empty the ones a test made read-only.
void OpenUp(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code st_ec;
    if (it->symlink_status(st_ec).type() == std::filesystem::file_type::directory) OpenUp(it->path());
  }
}

}  // namespace

TempDir::TempDir(const std::string& tag) : owner_(::getpid()) {
  std::string tmpl = "/tmp/bt-" + tag + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
  path_ = std::move(tmpl);
}

TempDir::~TempDir() { Remove(); }

TempDir::TempDir(TempDir&& other) noexcept
    : path_(std::exchange(other.path_, {})), owner_(other.owner_), keep_(other.keep_) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
    owner_ = other.owner_;
    keep_ = other.keep_;
  }
  return *this;
}

void TempDir::Remove() {
  if (path_.empty() || ::getpid() != owner_) return;
  const char* keep_env = std::getenv("BATON_KEEP_TEST_DIRS");
  if (keep_ || (keep_env != nullptr && *keep_env != '\0')) {
    std::fprintf(stderr, "kept temp dir %s\n", path_.c_str());
    return;
  }
  // remove_all deletes symlinks, not what they point to. A pass can fail
  // while a just-killed process still adds files, or on a read-only subdir:
  // open those up and try again a few times, then say so and go on.
  std::error_code ec;
  for (int pass = 0; pass < 4; ++pass) {
    ec.clear();
    std::filesystem::remove_all(path_, ec);
    if (!ec) break;
    OpenUp(path_);
    std::this_thread::sleep_for(std::chrono::milliseconds(10 << pass));
  }
  if (ec) std::fprintf(stderr, "could not remove %s: %s\n", path_.c_str(), ec.message().c_str());
  path_.clear();
}

std::string HelperPath(const std::string& name) { return std::string(BATON_TEST_BIN_DIR) + "/" + name; }
std::string BinPath(const std::string& name) { return std::string(BATON_BIN_DIR) + "/" + name; }

}  // namespace baton::harness
