#include "supervisor/child_process.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cerrno>

#include <fmt/format.h>

namespace baton::supervisor {

Result<std::unique_ptr<ChildProcess>> ChildProcess::Adopt(boost::asio::any_io_executor exec, pid_t pid) {
  // glibc 2.36 declares pidfd_open without C linkage for C++; use the syscall.
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // O_CLOEXEC by definition
  if (fd < 0) return ErrnoError(fmt::format("pidfd_open({})", pid), errno);
  return std::unique_ptr<ChildProcess>(new ChildProcess(std::move(exec), pid, fd));
}

ChildProcess::ChildProcess(boost::asio::any_io_executor exec, pid_t pid, int pidfd)
    : pid_(pid), pidfd_(exec, pidfd) {}

void ChildProcess::AsyncWaitExit(std::function<void(int)> done) {
  done_ = std::move(done);
  Arm();
}

void ChildProcess::Arm() {
  pidfd_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
    if (ec == boost::asio::error::operation_aborted) return;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == 0 && !ec) {
      Arm();  // spurious readiness: still running
      return;
    }
    exited_ = true;
    if (r < 0) status = -1;  // not our child any more; report it as gone
    if (done_) {
      auto done = std::move(done_);
      done(status);
    }
  });
}

bool ChildProcess::Signal(int sig) {
  if (exited_) return false;
  return ::kill(pid_, sig) == 0;
}

}  // namespace baton::supervisor
