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

#include "protocol/child_env.h"

namespace baton::supervisor {

namespace {

constexpr const char* kExpected = "expected NAME=tcp://HOST:PORT, NAME=udp://HOST:PORT or NAME=unix:PATH";

// HOST:PORT after "tcp://" or "udp://" into spec.host and spec.port.
Status ParseHostPort(const std::string& text, const std::string& scheme, const std::string& hp, ListenerSpec& spec) {
  if (!hp.empty() && hp.front() == '[' && hp.find(']') == std::string::npos) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("--listen '{}': bad host '{}' (an IPv6 address goes in brackets: [::1])", text, hp));
  }
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon + 1 == hp.size() || hp.back() == ']') {
    return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': expected {}://HOST:PORT (no port)", text, scheme));
  }
  std::string host = hp.substr(0, colon);
  if (host.empty()) {
    return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': expected {}://HOST:PORT (no host)", text, scheme));
  }
  const bool bracketed = host.front() == '[' || host.back() == ']';
  if (bracketed) {
    in6_addr a6{};
    if (host.size() < 3 || host.front() != '[' || host.back() != ']' ||
        ::inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6) != 1) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("--listen '{}': bad host '{}' (an IPv6 address goes in brackets: [::1])", text, host));
    }
    host = host.substr(1, host.size() - 2);
  } else {
    // A name or an IPv4 address (a bare IPv6 address is still taken).
    for (char c : host) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '-' || c == '_' || c == ':';
      if (!ok) return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': bad host '{}'", text, host));
    }
  }
  spec.host = host;
  const std::string port = hp.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), spec.port);
  if (ec != std::errc() || ptr != port.data() + port.size() || spec.port < 0 || spec.port > 65535) {
    return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': bad port '{}'", text, port));
  }
  return {};
}

// "tcp://127.0.0.1:8080", "udp://[::1]:53", "unix:/run/x.sock" for a bound
// address; "" if it is none of these.
std::string Describe(const sockaddr_storage& ss, ListenerSpec::Kind kind) {
  const char* scheme = kind == ListenerSpec::Kind::kUdp ? "udp" : "tcp";
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return fmt::format("{}://{}:{}", scheme, host, ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return fmt::format("{}://[{}]:{}", scheme, host, ntohs(in6->sin6_port));
  }
  if (ss.ss_family == AF_UNIX) return fmt::format("unix:{}", reinterpret_cast<const sockaddr_un*>(&ss)->sun_path);
  return "";
}

// Whether the inet address in `ss` is where `spec` says (port 0 = any port;
// a host name: the port decides; an empty host: the wildcard address).
bool SameInetAddress(const sockaddr_storage& ss, const ListenerSpec& spec) {
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    if (spec.port != 0 && ntohs(in->sin_port) != spec.port) return false;
    in_addr want{};
    if (spec.host.empty()) return in->sin_addr.s_addr == htonl(INADDR_ANY);
    if (::inet_pton(AF_INET, spec.host.c_str(), &want) == 1) return want.s_addr == in->sin_addr.s_addr;
    return true;
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (spec.port != 0 && ntohs(in6->sin6_port) != spec.port) return false;
    in6_addr want{};
    if (::inet_pton(AF_INET6, spec.host.c_str(), &want) == 1) return std::memcmp(&want, &in6->sin6_addr, sizeof(want)) == 0;
    return true;
  }
  return false;
}

}  // namespace

const char* KindName(ListenerSpec::Kind kind) {
  switch (kind) {
    case ListenerSpec::Kind::kTcp: return "tcp";
    case ListenerSpec::Kind::kUdp: return "udp";
    case ListenerSpec::Kind::kUnix: return "unix";
  }
  return "?";
}

Result<ListenerSpec> ParseListener(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': {}", text, kExpected));
  }
  ListenerSpec spec;
  spec.name = text.substr(0, eq);
  if (spec.name.find(':') != std::string::npos) {
    return Error(Errc::kInvalidArgument, fmt::format("--listen '{}': the name may not contain ':'", text));
  }
  const std::string addr = text.substr(eq + 1);
  for (auto [scheme, kind] : {std::pair{"tcp", ListenerSpec::Kind::kTcp}, std::pair{"udp", ListenerSpec::Kind::kUdp}}) {
    const std::string prefix = std::string(scheme) + "://";
    if (addr.rfind(prefix, 0) != 0) continue;
    spec.kind = kind;
    if (auto st = ParseHostPort(text, scheme, addr.substr(prefix.size()), spec); !st) return st.error();
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
               fmt::format("--listen '{}': unknown scheme (use tcp://HOST:PORT, udp://HOST:PORT or unix:PATH)", text));
}

Status CheckListenerSocket(int fd, const ListenerSpec& spec) {
  const std::string what = fmt::format("listener {} ({})", spec.name, KindName(spec.kind));
  auto bad = [&](const std::string& why) { return Error(Errc::kFailedPrecondition, fmt::format("{}: fd {} {}", what, fd, why)); };
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return bad(spec.kind == ListenerSpec::Kind::kUdp ? "is not a bound datagram socket (not an open socket at all)"
                                                     : "is not a listening socket (not an open socket at all)");
  }
  const int type = protocol::SockOpt(fd, SO_TYPE);
  const int domain = protocol::SockOpt(fd, SO_DOMAIN);
  const bool listening = protocol::SockOpt(fd, SO_ACCEPTCONN) == 1;
  const bool inet = domain == AF_INET || domain == AF_INET6;
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return bad("has no local address");
  switch (spec.kind) {
    case ListenerSpec::Kind::kUdp: {
      if (type != SOCK_DGRAM) return bad("is not a datagram (SOCK_DGRAM) socket");
      switch (protocol::CheckDatagramListener(fd)) {
        case protocol::DatagramListenerDefect::kNone: break;
        case protocol::DatagramListenerDefect::kNotInet: return bad("is not an AF_INET or AF_INET6 socket");
        case protocol::DatagramListenerDefect::kNoPort: return bad("is not bound to a port");
        case protocol::DatagramListenerDefect::kConnected: return bad("is connected to a peer");
      }
      break;
    }
    case ListenerSpec::Kind::kTcp:
      if (type != SOCK_STREAM) return bad(type == SOCK_DGRAM ? "is a datagram socket, not a stream socket" : "is not a stream socket");
      if (!inet) return bad("is not an AF_INET or AF_INET6 socket");
      if (!listening) return bad("is not a listening socket");
      break;
    case ListenerSpec::Kind::kUnix:
      if (domain != AF_UNIX) return bad("is not an AF_UNIX socket");
      if (!listening) return bad("is not a listening socket");
      break;
  }
  if (spec.inherited_fd >= 0 || spec.require_inherited) return {};  // systemd's address, whatever it is
  const bool same = spec.kind == ListenerSpec::Kind::kUnix
                        ? ss.ss_family == AF_UNIX && spec.path == reinterpret_cast<const sockaddr_un*>(&ss)->sun_path
                        : SameInetAddress(ss, spec);
  if (!same) {
    const std::string want = spec.kind == ListenerSpec::Kind::kUnix
                                 ? "unix:" + spec.path
                                 : fmt::format("{}://{}:{}", KindName(spec.kind),
                                               spec.host.find(':') != std::string::npos ? "[" + spec.host + "]" : spec.host,
                                               spec.port);
    return bad(fmt::format("is bound to {}, not {}", Describe(ss, spec.kind), want));
  }
  return {};
}

Result<Listener> Listener::Bind(const ListenerSpec& spec, int backlog) {
  if (spec.inherited_fd >= 0) {
    // Socket activation: systemd bound it; it must be a listening stream
    // socket, or a bound datagram socket for udp.
    if (auto st = CheckListenerSocket(spec.inherited_fd, spec); !st) {
      return Error(Errc::kInvalidArgument, "inherited from systemd: " + st.error().message);
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
  const bool udp = spec.kind == ListenerSpec::Kind::kUdp;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM;
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
    // TCP: SO_REUSEADDR lets a restarted supervisor bind while old
    // connections linger in TIME_WAIT. UDP has no TIME_WAIT, and there
    // SO_REUSEADDR would let a second socket bind the same port and take
    // its datagrams: a busy port must stay an error.
    int one = 1;
    if (!udp) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && (udp || ::listen(fd, backlog) == 0)) {
      ::freeaddrinfo(res);
      return Listener(spec, fd);
    }
    err = errno;
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ErrnoError(fmt::format("listener {}: bind {}://{}:{}", spec.name, KindName(spec.kind), spec.host, spec.port), err);
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

std::string Listener::Address() const {
  if (spec_.kind == ListenerSpec::Kind::kUnix) return "unix:" + spec_.path;
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return fmt::format("{}://?", KindName(spec_.kind));
  return Describe(ss, spec_.kind);
}

}  // namespace baton::supervisor
