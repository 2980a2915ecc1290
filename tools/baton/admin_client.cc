#include "tools/baton/admin_client.h"

#include "tools/baton/commands.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace baton::cli {

std::string DefaultRuntimeDir() {
  if (const char* d = std::getenv("BATON_RUNTIME_DIR"); d != nullptr && *d != '\0') return d;
  if (::geteuid() == 0) return "/run/baton";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') return std::string(x) + "/baton";
  return fmt::format("/tmp/baton-{}", ::geteuid());
}

Result<AdminClient> AdminClient::Connect(const std::string& runtime_dir) {
  const std::string path = runtime_dir + "/baton.sock";
  sockaddr_un a{};
  if (path.size() >= sizeof(a.sun_path)) {
    return Error(Errc::kInvalidArgument, fmt::format("admin socket path {} is too long", path));
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno);
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    const int err = errno;
    ::close(fd);
    return Error(err == EACCES ? Errc::kPermissionDenied : Errc::kUnavailable,
                 fmt::format("cannot reach the supervisor at {}: {}", path, std::strerror(err)));
  }
  return AdminClient(fd);
}

AdminClient::~AdminClient() {
  if (fd_ >= 0) ::close(fd_);
}

Status AdminClient::Send(const v1::Envelope& env) {
  auto frame = protocol::EncodeFrame(env);
  if (!frame) return frame.error();
  std::string_view left = *frame;
  while (!left.empty()) {
    ssize_t n = ::send(fd_, left.data(), left.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("send to the supervisor", errno);
    }
    left.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<v1::Envelope> AdminClient::Receive(std::optional<std::chrono::milliseconds> timeout) {
  const auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout : std::chrono::steady_clock::time_point::max();
  for (;;) {
    auto r = decoder_.Next();
    if (auto* env = std::get_if<v1::Envelope>(&r)) return std::move(*env);
    if (auto* err = std::get_if<protocol::FrameError>(&r)) return err->ToError();
    int wait_ms = -1;
    if (timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return Error(Errc::kDeadlineExceeded, "timed out waiting for the supervisor");
      wait_ms = static_cast<int>(left.count());
    }
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, wait_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll", errno);
    }
    if (rc == 0) continue;
    char buf[65536];
    ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read from the supervisor", errno);
    }
    if (n == 0) return Error(Errc::kUnavailable, "the supervisor closed the connection");
    decoder_.Feed(std::string_view(buf, static_cast<size_t>(n)));
  }
}

}  // namespace baton::cli
