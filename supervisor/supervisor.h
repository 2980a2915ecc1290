// The supervisor `S`: owns the listeners, the daemon generations (children),
// the admin socket, and drives one handoff at a time through the pure
// HandoffMachine. See docs/design.md §1-3.
//
// Threading: everything runs on the one io_context passed to Create(), from
// one thread. Children are spawned with Boost.Process v2 and reaped through
// their pidfds (process handle async_wait), so there are no zombies and no
// SIGCHLD handler.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/errors.h"
#include "base/log.h"
#include "protocol/liveness.h"
#include "supervisor/handoff_machine.h"
#include "supervisor/listeners.h"
#include "supervisor/notify_options.h"
#include "supervisor/probation_options.h"

namespace baton::supervisor {

struct SupervisorOptions {
  std::vector<ListenerSpec> listeners;
  std::string data_dir;
  std::string runtime_dir;
  std::string binary;
  std::vector<std::string> args;
  HandoffTimeouts timeouts;
  // The most descriptors (connections, state) an incumbent may hand over in
  // one handoff (docs/protocol.md, "Descriptor handover"); more is bad input.
  size_t max_handover_fds = 1024;
  // Heartbeats and liveness on every child's channel (after its Hello).
  protocol::LivenessOptions liveness;
  Duration restart_backoff_min = milliseconds(100);
  Duration restart_backoff_max = seconds(5);
  std::set<uid_t> admin_uids;  // always includes our own uid and root
  // ---- operator surface (wired by supervisor/ops/operator_surface.h) ----
  // Canonical paths or patterns an upgrade may exec; empty = any executable
  // (supervisor/child_policy.h).
  std::vector<std::string> allowed_binaries;
  // The base environment of every child (already sanitized); empty = ours.
  std::vector<std::string> child_environment;
  // Every event, after it is logged, with its JSON line.
  std::function<void(const Event&, const std::string& json)> on_event;
  // The Prometheus text for `baton metrics`.
  std::function<std::string()> metrics_text;
  // Events that only feed counters (a rejected notify datagram after the
  // first of its kind): never logged or journaled, so a flood cannot push
  // real events out. Null: dropped.
  std::function<void(const Event&)> on_counted;
  // ---- the daemon's protocol, notify socket, FD store, watchdog (§14)
  NotifyOptions notify;
  // ---- probation, revert, pinned binaries, crash-loop limit (§16)
  ProbationOptions probation;
  // ---- re-executed in place by `baton upgrade --self` (docs/design.md §15):
  // the sealed memfd of the state and the previous binary, both inherited
  // (-1: a normal start).
  int resume_state_fd = -1;
  int resume_previous_fd = -1;
  // The socket activation the resumed image was given (LISTEN_*), handed
  // on to a fallback.
  std::vector<std::string> activation_env;
  // The listening socket of GET /metrics, carried across a self-upgrade
  // (null or -1: none).
  std::function<int()> metrics_fd;
  // The metrics' counters as bytes to carry, and back in the new image
  // (null: none).
  std::function<std::string()> save_metrics;
  std::function<void(const std::string&)> load_metrics;
};

class Supervisor {
 public:
  virtual ~Supervisor() = default;
  // Binds the listeners and the admin socket, checks the binary; nothing is
  // started yet. Errors name what is wrong (bad address, busy port, ...).
  static Result<std::unique_ptr<Supervisor>> Create(boost::asio::io_context& io, SupervisorOptions opts,
                                                    LogSink& log);
  // Cold-starts the first generation; the io_context then runs the service.
  virtual void Start() = 0;
  // Graceful stop: terminate every child (SIGTERM, SIGKILL after the term
  // grace), then `done` is called.
  virtual void Stop(std::function<void()> done) = 0;
  // The addresses actually bound (port 0 resolved), in listener order.
  virtual std::vector<std::string> Addresses() const = 0;
  // (name, fd) of every listener, e.g. to park them in systemd's FD store.
  // The fds stay owned by the supervisor.
  virtual std::vector<std::pair<std::string, int>> ListenerFds() const = 0;
  // SIGHUP: hand over to `binary` with `args` (empty: the current ones, as
  // `baton upgrade` without --binary); the outcome is only reported as events.
  virtual void UpgradeTo(const std::string& binary, const std::vector<std::string>& args) = 0;
  // SIGUSR2: re-execute `binary` (empty: the path we were started from) in
  // place, as `baton upgrade --self`; the outcome is only reported as events.
  virtual void SelfUpgrade(const std::string& binary) = 0;
  // After a self-upgrade: the metrics listener the previous image served
  // (take it over instead of binding --metrics-listen again); -1 otherwise.
  virtual int InheritedMetricsFd() const = 0;
};

}  // namespace baton::supervisor
