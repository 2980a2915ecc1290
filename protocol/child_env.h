// The child environment contract (docs/design.md §1), systemd-compatible so an
// unmodified daemon calling sd_listen_fds() sees its listeners:
//
//   fd 3 .. 3+n-1      the listeners, in order      LISTEN_FDS=<n>
//                      (listening stream sockets; a udp:// listener is a
//                      bound, unconnected SOCK_DGRAM socket)
//                                                   LISTEN_FDNAMES=a:b:...
//                                                   LISTEN_PID=<child's own pid>
//   fd 3+n             the child's end of its control socketpair
//                                                   BATON_CONTROL_FD=<3+n>
//                                                   BATON_ROLE=cold|successor
//                                                   BATON_REATTACH_DIR=<dir> (optional)
//
// BATON_REATTACH_DIR (set by the supervisor like BATON_DATA_DIR, not by
// ChildLaunch) is the supervisor's runtime dir: a generation whose
// supervisor is gone while it serves listens there, at
// ReattachSocketPath(dir, its pid), for the next supervisor to re-attach
// (docs/design.md §15).
//
// Parent side: ChildLaunch, a Boost.Process v2 initializer that prepares the
// environment before fork and, in the child between fork and exec, moves the
// FDs into place (async-signal-safe) and writes LISTEN_PID.
// Child side: TakeChildEnvironment() parses, validates, re-arms FD_CLOEXEC
// and removes the variables; call it once, before starting threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/system/error_code.hpp>

#include "base/errors.h"

namespace baton::protocol {

enum class LaunchRole { kNone, kCold, kSuccessor };
std::string_view LaunchRoleName(LaunchRole r);

// Variables the contract owns; stripped from any inherited environment.
inline constexpr std::string_view kContractVariables[] = {
    "LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "BATON_CONTROL_FD", "BATON_ROLE"};

// getsockopt(fd, SOL_SOCKET, opt) as an int; -1 when it fails.
int SockOpt(int fd, int opt);

// What keeps the datagram socket `fd` from being a udp:// listener, which
// is an AF_INET or AF_INET6 socket bound to a port and connected to no
// peer (checked in that order). Both sides check it: the supervisor with
// the listener's configuration, the child without.
enum class DatagramListenerDefect { kNone, kNotInet, kNoPort, kConnected };
DatagramListenerDefect CheckDatagramListener(int fd);

// Where an orphaned generation of pid `pid` waits for a new supervisor:
// `<dir>/gen-<pid>.sock`.
std::string ReattachSocketPath(std::string_view dir, long pid);

// ---- parent side ----------------------------------------------------------

struct ListenerFd {
  std::string name;  // non-empty, unique, no ':'
  int fd;            // owned by the caller; stays open in the parent
};

// Pass as an initializer to a boost::process::v2 launcher. The object must
// outlive the launch call; it is single-use.
class ChildLaunch {
 public:
  // `base_env` is the child's environment without the contract variables
  // (any that are present are dropped). `control_fd` is the child's end of
  // the socketpair. Validates names (kInvalidArgument). With role kNone and
  // control_fd -1 the child gets systemd's variables alone (LISTEN_*), for a
  // daemon that never speaks the control protocol (docs/design.md §14).
  static Result<ChildLaunch> Create(std::vector<ListenerFd> listeners, int control_fd, LaunchRole role,
                                    const std::vector<std::string>& base_env);

  ChildLaunch(ChildLaunch&&) = default;

  // Parent, before fork: point the launcher at our environment and keep the
  // target FD numbers open through the launcher's close-all.
  template <class Launcher, class Path>
  boost::system::error_code on_setup(Launcher& launcher, const Path&, const char* const*&) {
    launcher.env = envp_.data();
    for (size_t i = 0; i < sources_.size(); ++i) launcher.fd_whitelist.push_back(3 + static_cast<int>(i));
    return {};
  }

  // Child, after fork, before exec. Async-signal-safe.
  template <class Launcher, class Path>
  boost::system::error_code on_exec_setup(Launcher&, const Path&, const char* const*&) {
    return PlaceInChild();
  }

  // The environment as prepared (LISTEN_PID still a placeholder); for tests.
  std::vector<std::string> Environment() const { return env_; }

 private:
  ChildLaunch() = default;
  boost::system::error_code PlaceInChild() noexcept;

  std::vector<int> sources_;          // listener fds then the control fd
  std::vector<std::string> env_;      // storage; envp_ points into it
  std::vector<const char*> envp_;     // null-terminated
  size_t pid_index_ = 0;              // which env_ entry is LISTEN_PID=
};

// ---- child side -----------------------------------------------------------

struct InheritedListener {
  std::string name;
  int fd;
};

struct ChildEnvironment {
  LaunchRole role = LaunchRole::kNone;  // kNone: no supervisor, just run
  std::vector<InheritedListener> listeners;
  int control_fd = -1;                  // -1 when role is kNone
  std::string reattach_dir;             // BATON_REATTACH_DIR; "" = never listen for a re-attach
};

// Reads, validates and removes the contract variables. Errors name the
// variable or FD at fault (kFailedPrecondition). With no BATON_* variables
// the role is kNone; plain systemd socket activation (LISTEN_* for this
// pid) still yields the listeners.
Result<ChildEnvironment> TakeChildEnvironment();

}  // namespace baton::protocol
