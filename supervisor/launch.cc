#include "supervisor/launch.h"

#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/process/v2/posix/default_launcher.hpp>
#include <fmt/format.h>

extern char** environ;

namespace baton::supervisor {

Result<std::pair<int, int>> MakeControlSocketPair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return ErrnoError("socketpair(AF_UNIX)", errno);
  }
  return std::make_pair(fds[0], fds[1]);
}

Status CheckExecutable(const std::string& path) {
  if (path.empty()) return Error(Errc::kInvalidArgument, "binary: empty path");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return Error(err == ENOENT ? Errc::kNotFound : Errc::kFailedPrecondition,
                 fmt::format("binary {}: {}", path, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Errc::kFailedPrecondition, fmt::format("binary {}: not a regular file", path));
  }
  if (::access(path.c_str(), X_OK) != 0) {
    return Error(Errc::kPermissionDenied, fmt::format("binary {}: not executable ({})", path, std::strerror(errno)));
  }
  return {};
}

namespace {

// A launcher initializer placed after the child contract: in the child, once
// the contract has moved the descriptors into place (and marked everything
// else close-on-exec), exec the file open at `fd`. Async-signal-safe. Its
// error (errno) reaches the parent through the launcher's error pipe.
struct ExecFromFd {
  int fd;
  template <class Launcher, class Path>
  boost::system::error_code on_exec_setup(Launcher& launcher, const Path&, const char* const*& argv) {
    ::syscall(SYS_execveat, fd, "", argv, launcher.env, AT_EMPTY_PATH);
    return {errno, boost::system::system_category()};
  }
};

}  // namespace

Result<Process> Launch(boost::asio::any_io_executor exec, const std::string& executable,
                       const std::vector<std::string>& args, protocol::ChildLaunch& contract, int exec_fd) {
  boost::process::v2::posix::default_launcher launcher;
  boost::system::error_code ec;
  Process proc{exec};
  if (exec_fd >= 0) {
    proc = launcher(exec, ec, executable, args, contract, ExecFromFd{exec_fd});
  } else {
    if (auto st = CheckExecutable(executable); !st) return st.error();
    proc = launcher(exec, ec, executable, args, contract);
  }
  if (ec) {
    return SystemError(ec, fmt::format("launch {}: {}", executable, ec.message()));
  }
  return proc;
}

std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) out.emplace_back(*e);
  return out;
}

}  // namespace baton::supervisor
