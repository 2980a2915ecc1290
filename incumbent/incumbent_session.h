// The daemon side of the generation that serves and owns the data: pure
// logic, no I/O, driven by (event, now). Created once the daemon serves
// (cold start or a successor that sent Ready).
//
//   serving --Prepare--> draining --[drain]--> drained --Seal--> sealing
//   --[seal, release lock]--> sealed --Commit--> retiring --[retire]--> exit 0
//
// With a Postgres lease, sealing is (docs/design.md §8): quiesce the lease (stop
// renewing, await a renew in flight) → seal hook → transfer the lease to the
// successor's holder id → release the lock → SealComplete{lease_epoch}. A
// failed or late transfer is a failed seal (SealFailed, resume). Every resume
// also resumes the lease: renewing again, or reclaiming what we handed over.
//   drained|sealed --Resume--> resuming --[resume]--> serving
//
// Failures (docs/design.md §3): a failed drain or seal resumes by itself and tells
// the supervisor (SealFailed). If the supervisor goes silent or its own
// deadline passes: not sealed → resume; sealed → watch the successor's pid
// and re-take the lock once it is gone, or exit if the successor owns the
// data (holds the lock past the grace).
//
// Threading: single-threaded; the driver calls it from its executor.
#pragma once

#include <optional>
#include <string>

#include "base/clock.h"
#include "ownership/ownership.h"
#include "protocol/session.h"

namespace baton::incumbent {

struct IncumbentOptions {
  Duration default_handoff_deadline = seconds(300);
  // After the supervisor is gone with the lock released: how long to wait
  // for the successor to exit before concluding it owns the data.
  Duration orphan_grace = seconds(10);
  // This process holds (or campaigns for) a Postgres lease.
  bool lease = false;
  // Used when Seal carries no budget.
  Duration default_seal_budget = seconds(3);
  // Reserved from the seal budget to report SealFailed in time.
  Duration seal_report_margin = milliseconds(250);
};

class IncumbentSession {
 public:
  enum class State { kServing, kDraining, kDrained, kSealing, kSealed, kResuming, kRetiring, kOrphaned, kExited };

  IncumbentSession(IncumbentOptions opts, ownership::Ownership& ownership, uint64_t data_generation);

  protocol::SessionActions OnMessage(const v1::Envelope& env, TimePoint now);
  protocol::SessionActions OnHookDone(const protocol::HookDone& done, TimePoint now);
  protocol::SessionActions OnLeaseDone(const protocol::LeaseDone& done, TimePoint now);
  protocol::SessionActions OnChannelClosed(const Error& why, TimePoint now);
  // The successor's process is gone (pidfd readable).
  protocol::SessionActions OnSuccessorExited(TimePoint now);
  // The deadline returned by NextDeadline() passed.
  protocol::SessionActions OnTimer(TimePoint now);

  // A new supervisor re-attached on a fresh channel (docs/design.md §15),
  // which the runtime accepts only while serving: talk to it again.
  void Reattached() { connected_ = true; }

  std::optional<TimePoint> NextDeadline() const { return deadline_; }
  State state() const { return state_; }
  const std::string& handoff_id() const { return handoff_id_; }

 private:
  protocol::SessionActions ResumeSelf(std::string why, TimePoint now);
  // A failed drain/seal hook, or the supervisor lost while it ran: report
  // SealFailed (when reachable) and resume by ourselves.
  protocol::SessionActions AbandonHandoff(const protocol::HookDone& done, std::string_view step, TimePoint now);
  protocol::SessionActions RetakeAndResume(bool tell_supervisor, TimePoint now);
  protocol::SessionActions Unexpected(const v1::Envelope& env);
  protocol::SessionActions Orphaned(std::string why, TimePoint now);
  protocol::SessionActions FinishSeal(uint64_t lease_epoch);
  // Appends a lease resume when this process has a lease.
  protocol::SessionActions WithLeaseResume(protocol::SessionActions out) const;

  enum class SealStep { kNone, kQuiescing, kHook, kTransferring };

  IncumbentOptions opts_;
  ownership::Ownership& ownership_;
  State state_ = State::kServing;
  std::string handoff_id_;
  uint32_t successor_pid_ = 0;
  uint64_t sealed_generation_ = 0;
  uint64_t generation_ = 0;
  bool connected_ = true;
  bool resume_requested_ = false;   // the supervisor asked (reply with Resumed)
  bool orphan_pending_ = false;     // supervisor lost mid-hook: act when it returns
  std::optional<TimePoint> deadline_;
  // Sealing.
  SealStep seal_step_ = SealStep::kNone;
  std::string successor_holder_;
  TimePoint seal_started_{};
  Duration seal_budget_{};
  uint64_t sealed_revision_ = 0;
  std::string sealed_fingerprint_;
};

std::string_view StateName(IncumbentSession::State s);

}  // namespace baton::incumbent
