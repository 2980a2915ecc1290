#include "supervisor/notify_socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

namespace baton::supervisor {

namespace asio = boost::asio;

Result<std::shared_ptr<NotifySocket>> NotifySocket::Bind(asio::io_context& io, const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error(Errc::kInvalidArgument, fmt::format("notify socket {}: path too long for AF_UNIX", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoError("notify socket: socket(AF_UNIX, SOCK_DGRAM)", errno);
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("notify socket: SO_PASSCRED", err);
  }
  // A full receive queue must not lose a READY=1 sent in a burst.
  const int rcvbuf = 1 << 20;
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError(fmt::format("notify socket: bind {}", path), err);
  }
  return std::shared_ptr<NotifySocket>(new NotifySocket(io, path, fd));
}

NotifySocket::NotifySocket(asio::io_context& io, std::string path, int fd)
    : path_(std::move(path)), sock_(io, fd), buf_(kNotifyMaxBytes + 1) {}

NotifySocket::~NotifySocket() { Close(); }

void NotifySocket::Start(OnDatagram on_datagram) {
  on_datagram_ = std::move(on_datagram);
  Arm();
}

void NotifySocket::Close() {
  if (!sock_.is_open()) return;
  boost::system::error_code ec;
  sock_.close(ec);
  ::unlink(path_.c_str());
}

void NotifySocket::Arm() {
  if (!sock_.is_open()) return;
  sock_.async_wait(asio::posix::descriptor_base::wait_read,
                   [weak = weak_from_this()](const boost::system::error_code& ec) {
                     auto self = weak.lock();
                     if (ec || !self) return;
                     self->Drain();
                     self->Arm();
                   });
}

void NotifySocket::DeliverBuffered() {
  while (Drain()) {
  }
}

bool NotifySocket::Drain() {
  // Bounded per wake-up, so a flood cannot starve the rest of the executor.
  for (int i = 0; i < 64; ++i) {
    if (!sock_.is_open()) return false;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred)) + CMSG_SPACE(sizeof(int) * kNotifyMaxFds)];
    iovec iov{buf_.data(), buf_.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(sock_.native_handle(), &msg, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    if (n < 0) return false;  // EAGAIN (drained) or an error the next wake-up sees again
    NotifyDatagram d;
    std::vector<OwnedFd> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        d.sender_pid = cred.pid;
      } else if (c->cmsg_type == SCM_RIGHTS) {
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
          fds.emplace_back(fd);
        }
      }
    }
    d.length = static_cast<size_t>(n);
    d.payload = std::string_view(buf_.data(), std::min(static_cast<size_t>(n), buf_.size()));
    d.fds = fds.size();
    d.control_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
    if (on_datagram_) on_datagram_(d, std::move(fds));
  }
  return true;
}

}  // namespace baton::supervisor
