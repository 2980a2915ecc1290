// A spawned child watched through its pidfd, reaped without ever blocking.
//
// Why not Boost.Process v2's async_wait: it follows a readable pidfd with a
// *blocking* waitpid. A spurious readiness (we have seen an event meant for
// a just-closed pidfd land on a new one in the same reactor batch) then
// blocks the supervisor's only thread until that child exits. Here every
// readiness is checked with waitpid(WNOHANG) and the wait is re-armed when
// the child is still running.
//
// Threading: the executor's thread only. Owns the pidfd (O_CLOEXEC). Does
// not kill the child on destruction.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "base/errors.h"

namespace baton::supervisor {

class ChildProcess {
 public:
  // Takes over watching `pid`, a child of this process not yet reaped.
  static Result<std::unique_ptr<ChildProcess>> Adopt(boost::asio::any_io_executor exec, pid_t pid);
  ~ChildProcess() = default;

  pid_t pid() const { return pid_; }
  bool exited() const { return exited_; }
  // Calls `done(wait_status)` once the child has exited and been reaped.
  void AsyncWaitExit(std::function<void(int wait_status)> done);
  // Sends `sig` unless the child was already reaped (then its pid may be
  // reused: never signal it). Returns false if not sent.
  bool Signal(int sig);

 private:
  ChildProcess(boost::asio::any_io_executor exec, pid_t pid, int pidfd);
  void Arm();

  pid_t pid_;
  bool exited_ = false;
  boost::asio::posix::stream_descriptor pidfd_;
  std::function<void(int)> done_;
};

}  // namespace baton::supervisor
