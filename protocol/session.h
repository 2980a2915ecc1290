// Types shared by the daemon-side session state machines (successor/ and
// incumbent/): the actions a pure session asks its driver to perform.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"
#include "protocol/control.pb.h"
#include "protocol/frame.h"

namespace baton::protocol {

enum class HookKind { kWarm, kDrain, kSeal, kBegin, kResume, kRetire };
std::string_view HookName(HookKind h);

// Send one envelope to the supervisor.
struct SendAction {
  v1::Envelope env;
};
// Run a daemon hook on the hook thread; report HookDone when it returns.
struct RunHookAction {
  HookKind hook;
  uint64_t deadline_ms = 0;  // drain
  v1::Begin sealed;          // begin
  bool data_changed = false; // resume
};
// The process should exit with this code (after flushing sends).
struct ExitAction {
  int code = 0;
  std::string reason;
};
// Watch this pid (pidfd) and report when it is gone.
struct WatchPidAction {
  int pid = 0;
};
// The daemon may serve now (cold start done, or the successor is Ready).
struct ServingAction {};
// Drive the process's Postgres lease (docs/design.md §8); the driver reports
// LeaseDone for kQuiesce, kTransfer and kConfirm. kCampaign and kResume
// are fire-and-forget.
enum class LeaseOp { kCampaign, kQuiesce, kTransfer, kConfirm, kResume };
struct LeaseAction {
  LeaseOp op;
  std::string to;       // kTransfer: the successor's holder id
  uint64_t epoch = 0;   // kConfirm: the epoch the incumbent handed over
  Duration budget{};    // kTransfer, kConfirm: from when the driver starts it
};
// A fact worth logging.
struct LogAction {
  std::string event;
  std::string message;
};

using SessionAction =
    std::variant<SendAction, RunHookAction, ExitAction, WatchPidAction, ServingAction, LogAction, LeaseAction>;
using SessionActions = std::vector<SessionAction>;

// The outcome of a hook, fed back to the session.
struct HookDone {
  HookKind hook;
  Status status;
  uint64_t revision = 0;    // seal, begin
  std::string fingerprint;  // seal
};

// The outcome of a LeaseAction, fed back to the session.
struct LeaseDone {
  LeaseOp op;
  Status status;
  uint64_t epoch = 0;  // kTransfer: the epoch now held by the successor (0 = we held none)
};

}  // namespace baton::protocol
