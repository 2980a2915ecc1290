#include "protocol/child_env.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

namespace baton::protocol {
namespace {

constexpr std::string_view kPidPrefix = "LISTEN_PID=";
constexpr size_t kPidDigits = 20;

bool IsContractVariable(std::string_view entry) {
  const auto eq = entry.find('=');
  const std::string_view key = entry.substr(0, eq);
  for (auto v : kContractVariables) {
    if (key == v) return true;
  }
  return false;
}

Result<int> ParseInt(std::string_view var, const char* value) {
  if (value == nullptr) return Error(Errc::kFailedPrecondition, fmt::format("{} is not set", var));
  std::string_view s(value);
  int out = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || out < 0) {
    return Error(Errc::kFailedPrecondition, fmt::format("{}='{}' is not a non-negative integer", var, s));
  }
  return out;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    out.emplace_back(s.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

Status CheckSocket(int fd, std::string_view what, bool want_listening) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Error(Errc::kFailedPrecondition, fmt::format("fd {} ({}) is not open", fd, what));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error(Errc::kFailedPrecondition, fmt::format("fd {} ({}) is not a socket", fd, what));
  }
  const int type = SockOpt(fd, SO_TYPE);
  if (want_listening && type == SOCK_DGRAM) {
    // A udp:// listener: a datagram socket the supervisor bound to its
    // port, never connected (nothing listens on a datagram socket).
    switch (CheckDatagramListener(fd)) {
      case DatagramListenerDefect::kNone: return {};
      case DatagramListenerDefect::kNotInet:
        return Error(Errc::kFailedPrecondition,
                     fmt::format("fd {} ({}) is a datagram socket but not AF_INET or AF_INET6", fd, what));
      case DatagramListenerDefect::kNoPort:
        return Error(Errc::kFailedPrecondition, fmt::format("fd {} ({}) is a datagram socket bound to no port", fd, what));
      case DatagramListenerDefect::kConnected:
        return Error(Errc::kFailedPrecondition, fmt::format("fd {} ({}) is a connected datagram socket", fd, what));
    }
    return {};
  }
  if (type != SOCK_STREAM) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("fd {} ({}) is not a stream socket{}", fd, what,
                             want_listening ? " nor a bound datagram (udp) socket" : ""));
  }
  const bool listening = SockOpt(fd, SO_ACCEPTCONN) == 1;
  if (want_listening && !listening) {
    return Error(Errc::kFailedPrecondition, fmt::format("fd {} ({}) is not a listening socket", fd, what));
  }
  if (!want_listening) {
    if (listening) {
      return Error(Errc::kFailedPrecondition, fmt::format("fd {} ({}) is a listening socket", fd, what));
    }
    if (SockOpt(fd, SO_DOMAIN) != AF_UNIX) {
      return Error(Errc::kFailedPrecondition, fmt::format("fd {} ({}) is not an AF_UNIX socket", fd, what));
    }
  }
  return {};
}

Status SetCloexec(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0 || ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
    return ErrnoError(fmt::format("fcntl(fd {}, FD_CLOEXEC)", fd), errno);
  }
  return {};
}

void UnsetContract() {
  for (auto v : kContractVariables) ::unsetenv(std::string(v).c_str());
}

}  // namespace

std::string_view LaunchRoleName(LaunchRole r) {
  switch (r) {
    case LaunchRole::kNone: return "none";
    case LaunchRole::kCold: return "cold";
    case LaunchRole::kSuccessor: return "successor";
  }
  return "unknown";
}

Result<ChildLaunch> ChildLaunch::Create(std::vector<ListenerFd> listeners, int control_fd, LaunchRole role,
                                        const std::vector<std::string>& base_env) {
  // kNone: systemd's contract alone (LISTEN_*), for a daemon that does not
  // speak the control protocol; it has no control fd.
  if (role == LaunchRole::kNone && control_fd >= 0) {
    return Error(Errc::kInvalidArgument, "child launch: a control fd needs the role cold or successor");
  }
  if (role != LaunchRole::kNone && control_fd < 0) return Error(Errc::kInvalidArgument, "child launch: no control fd");
  std::set<std::string> seen;
  std::string names;
  ChildLaunch launch;
  for (const auto& l : listeners) {
    if (l.name.empty() || l.name.find(':') != std::string::npos || l.name.find('=') != std::string::npos) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("child launch: listener name '{}' must be non-empty without ':' or '='", l.name));
    }
    if (!seen.insert(l.name).second) {
      return Error(Errc::kInvalidArgument, fmt::format("child launch: duplicate listener name '{}'", l.name));
    }
    if (l.fd < 0) return Error(Errc::kInvalidArgument, fmt::format("child launch: listener '{}' has no fd", l.name));
    if (!names.empty()) names.push_back(':');
    names += l.name;
    launch.sources_.push_back(l.fd);
  }
  if (control_fd >= 0) launch.sources_.push_back(control_fd);
  for (const auto& e : base_env) {
    if (!IsContractVariable(e)) launch.env_.push_back(e);
  }
  const size_t n = listeners.size();
  launch.env_.push_back(fmt::format("LISTEN_FDS={}", n));
  launch.env_.push_back(fmt::format("LISTEN_FDNAMES={}", names));
  launch.pid_index_ = launch.env_.size();
  launch.env_.push_back(std::string(kPidPrefix) + std::string(kPidDigits, '0'));
  if (control_fd >= 0) {
    launch.env_.push_back(fmt::format("BATON_CONTROL_FD={}", 3 + n));
    launch.env_.push_back(fmt::format("BATON_ROLE={}", LaunchRoleName(role)));
  }
  for (const auto& e : launch.env_) launch.envp_.push_back(e.c_str());
  launch.envp_.push_back(nullptr);
  return launch;
}

boost::system::error_code ChildLaunch::PlaceInChild() noexcept {
  // Runs between fork and exec: only async-signal-safe calls, no allocation.
  // First lift every source above the target range (3 .. 3+total-1) so that
  // no dup2 can clobber a source that already sits on a target number (for
  // example listener B at fd 3 while listener A must land there). The
  // temporaries are O_CLOEXEC and vanish at exec.
  const int total = static_cast<int>(sources_.size());
  int tmp[64];
  int* temps = tmp;
  if (total > 64) return {E2BIG, boost::system::system_category()};
  for (int i = 0; i < total; ++i) {
    temps[i] = ::fcntl(sources_[static_cast<size_t>(i)], F_DUPFD_CLOEXEC, 3 + total);
    if (temps[i] < 0) return {errno, boost::system::system_category()};
  }
  for (int i = 0; i < total; ++i) {
    // dup2 leaves the new fd without FD_CLOEXEC: it survives exec.
    if (::dup2(temps[i], 3 + i) < 0) return {errno, boost::system::system_category()};
  }
  // Nothing else of the supervisor's may survive exec: a descriptor opened
  // without O_CLOEXEC (Asio's acceptors and accepted admin connections are)
  // would leak into the daemon, and a leaked admin socket outlives a dead
  // supervisor and blocks the next one. Marked, not closed: the launcher's
  // exec-error pipe is among them and is already close-on-exec. Best effort
  // on kernels before 5.11 (no CLOSE_RANGE_CLOEXEC).
  constexpr unsigned kCloseRangeCloexec = 1U << 2;  // CLOSE_RANGE_CLOEXEC, <linux/close_range.h>
  ::syscall(SYS_close_range, static_cast<unsigned>(3 + total), ~0U, kCloseRangeCloexec);
  // LISTEN_PID must be our own pid, known only now.
  char* slot = env_[pid_index_].data() + kPidPrefix.size();
  char digits[kPidDigits];
  int len = 0;
  for (unsigned long pid = static_cast<unsigned long>(::getpid()); pid > 0 && len < static_cast<int>(kPidDigits);
       pid /= 10) {
    digits[len++] = static_cast<char>('0' + pid % 10);
  }
  for (int i = 0; i < len; ++i) slot[i] = digits[len - 1 - i];
  slot[len] = '\0';
  return {};
}

int SockOpt(int fd, int opt) {
  int v = -1;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0) return -1;
  return v;
}

DatagramListenerDefect CheckDatagramListener(int fd) {
  const int domain = SockOpt(fd, SO_DOMAIN);
  if (domain != AF_INET && domain != AF_INET6) return DatagramListenerDefect::kNotInet;
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  const bool bound = ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
                     (ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                              : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port) != 0;
  if (!bound) return DatagramListenerDefect::kNoPort;
  len = sizeof(ss);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) return DatagramListenerDefect::kConnected;
  return DatagramListenerDefect::kNone;
}

std::string ReattachSocketPath(std::string_view dir, long pid) { return fmt::format("{}/gen-{}.sock", dir, pid); }

Result<ChildEnvironment> TakeChildEnvironment() {
  ChildEnvironment out;
  const char* role_env = std::getenv("BATON_ROLE");
  const char* control_env = std::getenv("BATON_CONTROL_FD");
  const bool baton = role_env != nullptr || control_env != nullptr;
  const char* pid_env = std::getenv("LISTEN_PID");
  const char* fds_env = std::getenv("LISTEN_FDS");

  if (!baton) {
    // No supervisor. Honour plain systemd socket activation meant for us.
    if (pid_env == nullptr || fds_env == nullptr) return out;
    auto pid = ParseInt("LISTEN_PID", pid_env);
    if (!pid || *pid != static_cast<int>(::getpid())) return out;  // not for us: leave it alone
  }

  if (baton) {
    if (role_env == nullptr) return Error(Errc::kFailedPrecondition, "BATON_CONTROL_FD is set but BATON_ROLE is not");
    if (control_env == nullptr) return Error(Errc::kFailedPrecondition, "BATON_ROLE is set but BATON_CONTROL_FD is not");
    const std::string_view role(role_env);
    if (role == "cold") {
      out.role = LaunchRole::kCold;
    } else if (role == "successor") {
      out.role = LaunchRole::kSuccessor;
    } else {
      return Error(Errc::kFailedPrecondition, fmt::format("BATON_ROLE='{}': expected cold or successor", role));
    }
    auto pid = ParseInt("LISTEN_PID", pid_env);
    if (!pid) return pid.error();
    if (*pid != static_cast<int>(::getpid())) {
      return Error(Errc::kFailedPrecondition,
                   fmt::format("LISTEN_PID={} but this process is pid {}: the environment was not meant for it",
                               *pid, ::getpid()));
    }
  }

  auto n = ParseInt("LISTEN_FDS", fds_env);
  if (!n) return n.error();
  if (*n > 1000) return Error(Errc::kFailedPrecondition, fmt::format("LISTEN_FDS={} is implausibly large", *n));
  std::vector<std::string> names;
  if (const char* names_env = std::getenv("LISTEN_FDNAMES"); names_env != nullptr && *n > 0) {
    names = Split(names_env, ':');
  } else if (baton && *n > 0) {
    return Error(Errc::kFailedPrecondition, "LISTEN_FDNAMES is not set");
  }
  if (names.empty() && !baton) names.assign(static_cast<size_t>(*n), "unknown");
  if (static_cast<int>(names.size()) != *n) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("LISTEN_FDNAMES has {} names for LISTEN_FDS={}", names.size(), *n));
  }
  std::set<std::string> seen;
  for (int i = 0; i < *n; ++i) {
    const std::string& name = names[static_cast<size_t>(i)];
    const int fd = 3 + i;
    if (baton) {
      if (name.empty()) return Error(Errc::kFailedPrecondition, fmt::format("listener at fd {} has an empty name", fd));
      if (!seen.insert(name).second) {
        return Error(Errc::kFailedPrecondition, fmt::format("LISTEN_FDNAMES names '{}' twice", name));
      }
    }
    if (auto st = CheckSocket(fd, fmt::format("listener '{}'", name), true); !st) return st.error();
    out.listeners.push_back({name, fd});
  }
  if (baton) {
    auto control = ParseInt("BATON_CONTROL_FD", control_env);
    if (!control) return control.error();
    if (*control != 3 + *n) {
      return Error(Errc::kFailedPrecondition,
                   fmt::format("BATON_CONTROL_FD={} but the contract places it at {} (after {} listeners)", *control,
                               3 + *n, *n));
    }
    if (auto st = CheckSocket(*control, "control channel", false); !st) return st.error();
    out.control_fd = *control;
    if (const char* dir = std::getenv("BATON_REATTACH_DIR"); dir != nullptr) out.reattach_dir = dir;
    ::unsetenv("BATON_REATTACH_DIR");
  }
  // Validated: make sure nothing we inherited leaks into our own children.
  for (const auto& l : out.listeners) {
    if (auto st = SetCloexec(l.fd); !st) return st.error();
  }
  if (out.control_fd >= 0) {
    if (auto st = SetCloexec(out.control_fd); !st) return st.error();
  }
  UnsetContract();
  return out;
}

}  // namespace baton::protocol
