// The supervisor's end of one child's NOTIFY_SOCKET (docs/design.md §14): an
// AF_UNIX datagram socket bound at <runtime-dir>/notify.<n>, with
// SO_PASSCRED so every datagram carries its sender's pid, read
// asynchronously. Each datagram goes to the callback with the descriptors
// that came with it (SCM_RIGHTS, received O_CLOEXEC and owned by the
// callee); judging it is supervisor/notify_message.h's job.
//
// Owns the socket (O_CLOEXEC: children get the path, never the fd) and
// unlinks the path when destroyed. Threading: the supervisor's executor.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "base/errors.h"
#include "supervisor/fd_store.h"
#include "supervisor/notify_message.h"

namespace baton::supervisor {

class NotifySocket : public std::enable_shared_from_this<NotifySocket> {
 public:
  using OnDatagram = std::function<void(const NotifyDatagram&, std::vector<OwnedFd> fds)>;

  // Binds `path` (an existing file there is replaced: it can only be a
  // stale socket of ours). Reading starts with Start().
  static Result<std::shared_ptr<NotifySocket>> Bind(boost::asio::io_context& io, const std::string& path);
  // Takes `fd`, a socket Bind() made at `path` before our own exec.
  static std::shared_ptr<NotifySocket> Adopt(boost::asio::io_context& io, const std::string& path, int fd) {
    return std::shared_ptr<NotifySocket>(new NotifySocket(io, path, fd));
  }
  int native_handle() { return sock_.native_handle(); }
  ~NotifySocket();

  void Start(OnDatagram on_datagram);
  // Stops reading and closes the socket; later datagrams are lost.
  void Close();
  // Hands every datagram still queued to the callback, now: for a child
  // whose exit was reaped, so that what it sent before it died (an
  // FDSTORE=1 on its way out, as systemd's services do) counts before its
  // death does. The queue is bounded by the receive buffer.
  void DeliverBuffered();
  const std::string& path() const { return path_; }

 private:
  NotifySocket(boost::asio::io_context& io, std::string path, int fd);
  void Arm();
  // Reads up to a bounded number of datagrams; true if it stopped at that
  // bound (more may be queued), false once the queue is empty or closed.
  bool Drain();

  std::string path_;
  boost::asio::posix::stream_descriptor sock_;
  OnDatagram on_datagram_;
  std::vector<char> buf_;
};

}  // namespace baton::supervisor
