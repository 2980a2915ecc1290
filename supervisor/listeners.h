// The service's listening sockets, bound once by the supervisor and kept
// open for its whole life: every generation inherits them, so clients never
// see a refused connection across handoffs (new connections wait in the
// kernel's accept queue while no generation accepts).
#pragma once

#include <string>
#include <vector>

#include "base/errors.h"

namespace baton::supervisor {

struct ListenerSpec {
  std::string name;
  enum class Kind { kTcp, kUnix } kind = Kind::kTcp;
  std::string host;  // tcp
  int port = 0;      // tcp
  std::string path;  // unix
  // Socket activation (supervisor/ops/socket_activation.h): >= 0 adopts this
  // already listening socket (taking ownership) instead of binding.
  int inherited_fd = -1;
  // The config said "systemd": binding it ourselves is an error.
  bool require_inherited = false;
};

// Parses "NAME=tcp://HOST:PORT" or "NAME=unix:PATH" (clear errors naming
// what is wrong).
Result<ListenerSpec> ParseListener(const std::string& text);

// One bound, listening socket. Owns `fd` (O_CLOEXEC): children get dups
// placed by the launch, never this fd itself.
class Listener {
 public:
  static Result<Listener> Bind(const ListenerSpec& spec, int backlog = 4096);
  // Takes ownership of `fd`, an already listening socket for `spec` (taken
  // over from a generation a previous supervisor left running).
  static Listener Adopt(ListenerSpec spec, int fd) { return Listener(std::move(spec), fd); }
  Listener(Listener&& o) noexcept : spec_(std::move(o.spec_)), fd_(o.fd_) { o.fd_ = -1; }
  Listener& operator=(Listener&&) = delete;
  ~Listener();

  const ListenerSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  int fd() const { return fd_; }
  // "tcp://127.0.0.1:8080" with the port actually bound (port 0 resolved).
  std::string Address() const;

 private:
  Listener(ListenerSpec spec, int fd) : spec_(std::move(spec)), fd_(fd) {}
  ListenerSpec spec_;
  int fd_ = -1;
};

}  // namespace baton::supervisor
