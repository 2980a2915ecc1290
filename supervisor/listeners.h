// The service's listening sockets, bound once by the supervisor and kept
// open for its whole life: every generation inherits them, so clients never
// see a refused connection across handoffs (new connections wait in the
// kernel's accept queue while no generation accepts). A udp:// listener is a
// bound SOCK_DGRAM socket, never connected: datagrams wait in its receive
// buffer while no generation reads, and since the port stays bound the
// kernel never answers one with ICMP port unreachable.
#pragma once

#include <string>
#include <vector>

#include "base/errors.h"

namespace baton::supervisor {

struct ListenerSpec {
  std::string name;
  enum class Kind { kTcp, kUnix, kUdp } kind = Kind::kTcp;
  std::string host;  // tcp, udp (an IPv6 address without its brackets)
  int port = 0;      // tcp, udp; 0 = any free port
  std::string path;  // unix
  // Socket activation (supervisor/ops/socket_activation.h): >= 0 adopts this
  // already bound socket (taking ownership) instead of binding.
  int inherited_fd = -1;
  // The config said "systemd": binding it ourselves is an error.
  bool require_inherited = false;
};

// Parses "NAME=tcp://HOST:PORT", "NAME=udp://HOST:PORT" or "NAME=unix:PATH"
// (HOST: a name, an IPv4 address or an [IPv6] address in brackets); clear
// errors naming what is wrong.
Result<ListenerSpec> ParseListener(const std::string& text);

// "tcp", "udp" or "unix".
const char* KindName(ListenerSpec::Kind kind);

// Whether `fd` is a socket `spec` can stand for: tcp a listening
// SOCK_STREAM socket of AF_INET/AF_INET6, unix a listening AF_UNIX socket,
// udp a bound, unconnected SOCK_DGRAM socket of AF_INET/AF_INET6. For a
// spec the supervisor binds itself (no inherited_fd, not "systemd") the
// bound address must be the configured one too: the path, the port unless
// it is 0, the host when it is a numeric address. kFailedPrecondition naming
// the listener and what differs. Only getsockopt/getsockname; `fd` is not
// changed.
Status CheckListenerSocket(int fd, const ListenerSpec& spec);

// One bound socket: listening (tcp, unix) or receiving datagrams (udp).
// Owns `fd` (O_CLOEXEC): children get dups placed by the launch, never this
// fd itself.
class Listener {
 public:
  static Result<Listener> Bind(const ListenerSpec& spec, int backlog = 4096);
  // Takes ownership of `fd`, an already bound socket for `spec` (taken
  // over from a generation a previous supervisor left running).
  static Listener Adopt(ListenerSpec spec, int fd) { return Listener(std::move(spec), fd); }
  Listener(Listener&& o) noexcept : spec_(std::move(o.spec_)), fd_(o.fd_) { o.fd_ = -1; }
  Listener& operator=(Listener&&) = delete;
  ~Listener();

  const ListenerSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  int fd() const { return fd_; }
  // "tcp://127.0.0.1:8080" (or udp://, unix:) with the port actually bound
  // (port 0 resolved).
  std::string Address() const;

 private:
  Listener(ListenerSpec spec, int fd) : spec_(std::move(spec)), fd_(fd) {}
  ListenerSpec spec_;
  int fd_ = -1;
};

}  // namespace baton::supervisor
