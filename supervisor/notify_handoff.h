// The handoff of an unmodified daemon (`protocol = "notify"`, docs/design.md
// §14) as a pure state machine, beside the native one
// (supervisor/handoff_machine.h) and speaking the same actions and outcomes.
// The daemon knows nothing of baton: the only things heard from a child are
// "ready" (READY=1 or a passing probe), "failed" (ERRNO=, STOPPING=1 before
// ready, a missed watchdog) and its exit.
//
//   overlap:     spawn N --ready--> stop O (stop signal; SIGKILL after the
//                drain deadline) --O exited--> committed
//                N fails before ready: SIGKILL N, wait for it: rolled back,
//                O never touched.
//   sequential:  stop O --O exited--> spawn N --ready--> committed
//                N fails: SIGKILL N, wait for it, spawn the previous binary
//                (P) --P ready--> rolled back (P failing too: failed).
//
// Phases reported: overlap `spawn`, `ready`, `stop`; sequential `stop`,
// `spawn`, `ready` (and `restore` after a rollback). In sequential mode the
// service is not ready from O's stop signal until N (or P) is ready; that
// window is reported (not_ready()) and named in the outcome's reason.
//
// Threading: single-threaded, called from the supervisor's executor.
#pragma once

#include <optional>
#include <string>

#include "base/clock.h"
#include "supervisor/child_status.h"
#include "supervisor/handoff_machine.h"

namespace baton::supervisor {

enum class NotifyStrategy { kOverlap, kSequential };
std::string_view NotifyStrategyName(NotifyStrategy s);

struct NotifyHandoffParams {
  std::string handoff_id;
  NotifyStrategy strategy = NotifyStrategy::kOverlap;
  int stop_signal = 15;          // SIGTERM
  Duration ready = seconds(30);  // a generation must be ready within this after its spawn
  Duration drain = seconds(30);  // stop signal -> exit, then SIGKILL
  Duration term_grace = seconds(5);  // SIGKILL -> reaped, then give up on it
  Duration handoff = seconds(300);
};

class NotifyHandoffMachine {
 public:
  enum class State {
    kIdle, kStoppingOld, kKillingOld, kSpawning, kWaitReady, kStoppingNew, kRestoring, kDone
  };
  // The native machine's actions, plus SpawnRestore (the driver answers
  // OnRestoreSpawned / OnRestoreSpawnFailed, then OnRestoreReady or
  // OnRestoreFailed).
  using Acts = Actions;

  explicit NotifyHandoffMachine(NotifyHandoffParams params) : params_(std::move(params)) {}

  Acts Start(TimePoint now);
  Acts OnSpawned(TimePoint now);
  Acts OnSpawnFailed(const std::string& why, TimePoint now);
  Acts OnSuccessorReady(TimePoint now);
  // ERRNO=, STOPPING=1 before ready, a missed watchdog: N is not going to serve.
  Acts OnSuccessorFailed(const std::string& why, TimePoint now);
  Acts OnSuccessorExited(const ChildExit& how, TimePoint now);
  Acts OnIncumbentExited(const ChildExit& how, TimePoint now);
  Acts OnRestoreSpawned(TimePoint now);
  Acts OnRestoreSpawnFailed(const std::string& why, TimePoint now);
  Acts OnRestoreReady(TimePoint now);
  Acts OnRestoreFailed(const std::string& why, TimePoint now);
  // EXTEND_TIMEOUT_USEC= from the generation being waited for: its ready
  // deadline is at least `now + d`.
  Acts OnExtend(Duration d, TimePoint now);
  Acts OnAbort(const std::string& reason, TimePoint now);
  Acts OnTimer(TimePoint now);

  std::optional<TimePoint> NextDeadline() const;
  State state() const { return state_; }
  bool done() const { return state_ == State::kDone; }
  // Sequential: how long the service was not ready (O's stop signal until a
  // generation was ready again, or until the end); zero for overlap.
  Duration not_ready() const { return not_ready_; }
  // The successor is the owner of record (PromoteSuccessor was given).
  bool promoted() const { return promoted_; }

 private:
  Acts StopOld(TimePoint now);
  Acts AfterOldGone(TimePoint now);
  Acts Fail(std::string reason, TimePoint now);
  Acts AfterNewGone(TimePoint now);
  Acts Finish(Outcome o, std::string reason, TimePoint now);
  void Phase(Acts& out, const char* name, TimePoint now);
  void Enter(State s, TimePoint now, Duration timeout);

  NotifyHandoffParams params_;
  State state_ = State::kIdle;
  TimePoint phase_started_{};
  TimePoint stop_sent_{};
  std::optional<TimePoint> state_deadline_;
  std::optional<TimePoint> handoff_deadline_;
  bool old_alive_ = true;
  bool new_alive_ = false;
  bool promoted_ = false;
  bool aborting_ = false;  // sequential: abort while O stops; restore instead of N
  std::string reason_;     // why N failed
  Duration not_ready_ = Duration::zero();
};

std::string_view StateName(NotifyHandoffMachine::State s);

}  // namespace baton::supervisor
