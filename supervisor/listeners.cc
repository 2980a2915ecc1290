#include "supervisor/listeners.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace baton::supervisor {

Result<ListenerSpec> ParseListener(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("--listen '{}': expected NAME=tcp://HOST:PORT or NAME=unix:PATH", text));
  }
  ListenerSpec spec;
  spec.name = text.substr(0, eq);
  if (spec.name.find(':') != std::string::npos) {
    return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': the name may not contain ':'", text));
  }
  const std::string addr = text.substr(eq + 1);
  if (addr.rfind("tcp://", 0) == 0) {
    const std::string hp = addr.substr(6);
    const auto colon = hp.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': expected tcp://HOST:PORT", text));
    }
    spec.kind = ListenerSpec::Kind::kTcp;
    spec.host = hp.substr(0, colon);
    if (spec.host.size() > 2 && spec.host.front() == '[' && spec.host.back() == ']') {
      spec.host = spec.host.substr(1, spec.host.size() - 2);
    }
    const std::string port = hp.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), spec.port);
    if (ec != std::errc() || ptr != port.data() + port.size() || spec.port < 0 || spec.port > 65535) {
      return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': bad port '{}'", text, port));
    }
    return spec;
  }
  if (addr.rfind("unix:", 0) == 0) {
    spec.kind = ListenerSpec::Kind::kUnix;
    spec.path = addr.substr(5);
    if (spec.path.empty() || spec.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': unix path empty or too long", text));
    }
    return spec;
  }
  return Error(Errc::kInvalidArgument,
               fmt::format("--listen '{}': unknown scheme (use tcp://HOST:PORT or unix:PATH)", text));
}

Result<Listener> Listener::Bind(const ListenerSpec& spec, int backlog) {
  if (spec.inherited_fd >= 0) {
    // Socket activation: systemd bound it; it must be a listening stream socket.
    int listening = 0;
    socklen_t len = sizeof(listening);
    if (::getsockopt(spec.inherited_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("listener {}: inherited fd {} is not a listening socket", spec.name, spec.inherited_fd));
    }
    ::fcntl(spec.inherited_fd, F_SETFD, FD_CLOEXEC);
    return Listener(spec, spec.inherited_fd);
  }
  if (spec.require_inherited) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("listener {} is configured as \"systemd\" but systemd passed no socket of that name "
                             "(LISTEN_FDNAMES; FileDescriptorName= in the .socket unit)",
                             spec.name));
  }
  if (spec.kind == ListenerSpec::Kind::kUnix) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoError("socket(AF_UNIX)", errno);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, spec.path.c_str(), sizeof(a.sun_path) - 1);
    struct stat st {};
    if (::lstat(spec.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(spec.path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, backlog) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoError(fmt::format("listener {}: bind/listen unix:{}", spec.name, spec.path), err);
    }
    return Listener(spec, fd);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(spec.port);
  if (int rc = ::getaddrinfo(spec.host.empty() ? nullptr : spec.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Error(Errc::kInvalidArgument, fmt::format("listener {}: resolve {}: {}", spec.name, spec.host, gai_strerror(rc)));
  }
  int err = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, backlog) == 0) {
      ::freeaddrinfo(res);
      return Listener(spec, fd);
    }
    err = errno;
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ErrnoError(fmt::format("listener {}: bind tcp://{}:{}", spec.name, spec.host, spec.port), err);
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Listener::Address() const {
  if (spec_.kind == ListenerSpec::Kind::kUnix) return "unix:" + spec_.path;
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    port = ntohs(in->sin_port);
    return fmt::format("tcp://{}:{}", host, port);
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
  port = ntohs(in6->sin6_port);
  return fmt::format("tcp://[{}]:{}", host, port);
}

}  // namespace baton::supervisor
