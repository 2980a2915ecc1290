#include "tools/harness/fake_systemd.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace baton::harness {

FakeSystemd::FakeSystemd(std::string path) : path_(std::move(path)) {
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
  ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  int big = 1 << 20;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
}

FakeSystemd::~FakeSystemd() {
  for (int fd : fds_) ::close(fd);
  if (fd_ >= 0) ::close(fd_);
}

std::optional<std::string> FakeSystemd::Receive(std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    char ctrl[CMSG_SPACE(sizeof(int) * 16)];
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof(ctrl);
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) continue;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds_.push_back(fd);
      }
    }
    messages_.emplace_back(buf, static_cast<size_t>(n));
    return messages_.back();
  }
  return std::nullopt;
}

bool FakeSystemd::WaitFor(const std::string& needle, std::chrono::milliseconds timeout) {
  for (size_t i = seen_; i < messages_.size(); ++i) {
    if (messages_[i].find(needle) != std::string::npos) {
      seen_ = i + 1;
      return true;
    }
  }
  seen_ = messages_.size();
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    auto m = Receive(left);
    if (!m) return false;
    seen_ = messages_.size();
    if (m->find(needle) != std::string::npos) return true;
  }
  return false;
}

std::string FakeSystemd::All() const {
  std::string s;
  for (const auto& m : messages_) s += "[" + m + "]\n";
  return s;
}

}  // namespace baton::harness
