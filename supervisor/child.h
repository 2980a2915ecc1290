// A child: one daemon generation as the supervisor sees it, a process watched
// through its pidfd, and the supervisor's end of its control channel.
//
// Threading: created and used on the supervisor's executor only.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/clock.h"
#include "base/errors.h"
#include "protocol/channel.h"
#include "supervisor/child_process.h"
#include "supervisor/child_status.h"
#include "supervisor/adoption_record.h"
#include "supervisor/launch.h"
#include "supervisor/listeners.h"
#include "supervisor/notify_socket.h"
#include "supervisor/pinned_binary.h"

namespace baton::supervisor {

struct Child {
  uint64_t number = 0;
  pid_t pid = 0;
  ChildRole role = ChildRole::kCold;
  std::string binary;
  // The exact executable it runs (kept open: docs/design.md §15).
  std::shared_ptr<PinnedBinary> pin;
  std::unique_ptr<ChildProcess> proc;
  // Null for a daemon of protocol notify (it has no control channel).
  std::shared_ptr<protocol::Channel> channel;
  // Its NOTIFY_SOCKET (every child has one, docs/design.md §14).
  std::shared_ptr<NotifySocket> notify;
  bool plain = false;      // protocol notify: systemd's conventions only
  bool ready = false;      // protocol notify: READY=1 or a passing probe
  std::string status;      // its last STATUS=
  // Protocol notify: the ready deadline and the probe; every child: the
  // watchdog. Cancelled when it exits.
  std::unique_ptr<boost::asio::steady_timer> ready_timer;
  std::unique_ptr<boost::asio::steady_timer> probe_timer;
  std::unique_ptr<boost::asio::steady_timer> watchdog_timer;
  v1::Hello hello;
  bool said_hello = false;
  bool alive = true;
  // Committed away from: it has handed everything over and is on its way
  // out. Its channel closing is expected, not a fault.
  bool retired = false;
  TimePoint started;
  RecordedProcess record;  // how the adoption record names it (pid + start time)
  // A previous supervisor's generation we connected to and whose Hello we
  // await (supervisor/reattach.h); not ours until it said Hello.
  bool reattaching = false;
};

struct SpawnSpec {
  uint64_t number = 0;
  ChildRole role = ChildRole::kCold;
  // What to run: the pinned file (by its descriptor unless it is a script,
  // then by its path) with `args`.
  std::shared_ptr<PinnedBinary> pin;
  std::vector<std::string> args;
  std::string data_dir;
  protocol::LivenessOptions liveness;  // until Hello: at least the hello timeout
  std::string crash_at;                // BATON_CRASH_AT for this child only ("" = none)
  std::vector<std::string> base_env;   // the child's environment before the contract; empty = ours
  // docs/design.md §14: no control channel (systemd's variables alone), the
  // notify socket's path, descriptors from the FD store placed after the
  // listeners (plain children only), the watchdog (0 = none).
  bool plain = false;
  std::string notify_path;
  std::vector<std::pair<std::string, int>> stored_fds;
  Duration watchdog = Duration::zero();
  // BATON_REATTACH_DIR: where it waits for the next supervisor if we die
  // while it serves ("" = it never does).
  std::string reattach_dir;
};

// Routes the supervisor's own BATON_CRASH_AT to children (docs/design.md §9): the
// point goes once, to the first child spawned in the role it targets
// (crashpoints::Target), so a restarted generation never inherits it.
class CrashRoute {
 public:
  // From BATON_CRASH_AT in our environment; an unknown point is an error.
  static Result<CrashRoute> FromEnvironment();
  // The value for a child of `role` about to be spawned, "" when none. The
  // first non-empty answer is the last.
  std::string TakeFor(ChildRole role);

 private:
  std::string text_;        // as given, with any @role suffix
  std::string child_role_;  // "" when no child gets it
  bool delivered_ = false;
};

// Called on the executor with the generation they concern.
struct ChildCallbacks {
  std::function<void(const std::shared_ptr<Child>&, const v1::Envelope&)> on_message;
  // A frame that carried descriptors (now owned by the callee).
  std::function<void(const std::shared_ptr<Child>&, v1::Envelope, std::vector<OwnedFd>)> on_message_with_fds;
  std::function<void(const std::shared_ptr<Child>&, const Error&)> on_closed;
  std::function<void(const std::shared_ptr<Child>&, const ChildExit& how)> on_exit;
};

// The child's environment: `base` (ours unless the config sanitizes it)
// minus BATON_CRASH_AT and systemd's NOTIFY_SOCKET/WATCHDOG_* (ours, not the
// child's), plus the routed `crash_at` (if any), BATON_DATA_DIR and, when
// given, the child's own NOTIFY_SOCKET, WATCHDOG_USEC and BATON_REATTACH_DIR.
std::vector<std::string> ChildEnvironment(const std::string& crash_at, const std::string& data_dir,
                                         std::vector<std::string> base = CurrentEnvironment(),
                                         const std::string& notify_path = "", Duration watchdog = Duration::zero(),
                                         const std::string& reattach_dir = "");

// Starts `spec.binary` with the listeners and a fresh control socketpair
// (the child environment contract), and starts watching its channel and
// its exit. Errors leave nothing behind.
Result<std::shared_ptr<Child>> SpawnChild(boost::asio::io_context& io, const std::vector<Listener>& listeners,
                                          const SpawnSpec& spec, ChildCallbacks callbacks);

// A generation a previous supervisor started, reached through `control_fd`
// (a connected re-attach socket, taken over): watched through a pidfd of its
// own (it is not our child: its exit reads as "vanished") and its channel
// started with `liveness`. Marked `reattaching` until its Hello is accepted.
Result<std::shared_ptr<Child>> AttachChild(boost::asio::io_context& io, pid_t pid, int control_fd,
                                           const protocol::LivenessOptions& liveness, ChildCallbacks callbacks);

// The serving generation, still our child, after our own exec
// (docs/design.md §15): its channel on the inherited `control_fd`, the
// bytes the previous image had read but not decoded fed first.
Result<std::shared_ptr<Child>> ResumeChild(boost::asio::io_context& io, pid_t pid, int control_fd,
                                           std::string_view unconsumed, const protocol::LivenessOptions& liveness,
                                           ChildCallbacks callbacks);
// The same for a generation of protocol notify (`plain`): no channel, only
// the watch on its exit (`callbacks.on_exit`).
Result<std::shared_ptr<Child>> ResumePlainChild(boost::asio::io_context& io, pid_t pid, ChildCallbacks callbacks);

}  // namespace baton::supervisor
