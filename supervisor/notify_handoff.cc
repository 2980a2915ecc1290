#include "supervisor/notify_handoff.h"

#include <signal.h>

#include <fmt/format.h>

namespace baton::supervisor {
namespace {

int64_t Ms(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

}  // namespace

std::string_view NotifyStrategyName(NotifyStrategy s) {
  return s == NotifyStrategy::kOverlap ? "overlap" : "sequential";
}

std::string_view StateName(NotifyHandoffMachine::State s) {
  using S = NotifyHandoffMachine::State;
  switch (s) {
    case S::kIdle: return "idle";
    case S::kStoppingOld: return "stopping_old";
    case S::kKillingOld: return "killing_old";
    case S::kSpawning: return "spawning";
    case S::kWaitReady: return "wait_ready";
    case S::kStoppingNew: return "stopping_new";
    case S::kRestoring: return "restoring";
    case S::kDone: return "done";
  }
  return "unknown";
}

void NotifyHandoffMachine::Enter(State s, TimePoint now, Duration timeout) {
  state_ = s;
  state_deadline_ = now + timeout;
}

void NotifyHandoffMachine::Phase(Acts& out, const char* name, TimePoint now) {
  out.push_back(Action{PhaseDone{name, now - phase_started_}});
  phase_started_ = now;
}

std::optional<TimePoint> NotifyHandoffMachine::NextDeadline() const {
  if (state_ == State::kDone || state_ == State::kIdle) return std::nullopt;
  std::optional<TimePoint> d = state_deadline_;
  if (handoff_deadline_ && (!d || *handoff_deadline_ < *d)) d = handoff_deadline_;
  return d;
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::Start(TimePoint now) {
  if (state_ != State::kIdle) return {};
  phase_started_ = now;
  handoff_deadline_ = now + params_.handoff;
  if (params_.strategy == NotifyStrategy::kSequential) return StopOld(now);
  Enter(State::kSpawning, now, params_.ready);
  return {Action{SpawnSuccessor{}}};
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::StopOld(TimePoint now) {
  stop_sent_ = now;
  Enter(State::kStoppingOld, now, params_.drain);
  return {Action{SignalIncumbent{params_.stop_signal}}};
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnSpawned(TimePoint now) {
  if (state_ != State::kSpawning) return {};
  new_alive_ = true;
  Acts out;
  Phase(out, "spawn", now);
  Enter(State::kWaitReady, now, params_.ready);
  return out;
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnSpawnFailed(const std::string& why, TimePoint now) {
  if (state_ != State::kSpawning) return {};
  return Fail("spawn failed: " + why, now);
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnSuccessorReady(TimePoint now) {
  if (state_ != State::kWaitReady) return {};
  Acts out;
  Phase(out, "ready", now);
  out.push_back(Action{PromoteSuccessor{}});
  promoted_ = true;
  if (params_.strategy == NotifyStrategy::kSequential) {
    not_ready_ = now - stop_sent_;
    auto fin = Finish(Outcome::kCommitted,
                      fmt::format("the new generation is ready; the service was not ready for {} ms", Ms(not_ready_)),
                      now);
    out.insert(out.end(), fin.begin(), fin.end());
    return out;
  }
  if (!old_alive_) {
    auto fin = Finish(Outcome::kCommitted, "the new generation is ready (the old one had already exited)", now);
    out.insert(out.end(), fin.begin(), fin.end());
    return out;
  }
  auto stop = StopOld(now);
  out.insert(out.end(), stop.begin(), stop.end());
  return out;
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnSuccessorFailed(const std::string& why, TimePoint now) {
  if (state_ != State::kSpawning && state_ != State::kWaitReady) return {};
  return Fail(why, now);
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::Fail(std::string reason, TimePoint now) {
  reason_ = std::move(reason);
  if (!new_alive_) return AfterNewGone(now);
  // The daemon has no protocol to be asked to stop in: it never served, so
  // nothing is lost by not letting it drain.
  Enter(State::kStoppingNew, now, params_.term_grace);
  return {Action{SignalSuccessor{SIGKILL}}};
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::AfterNewGone(TimePoint now) {
  if (params_.strategy == NotifyStrategy::kOverlap) {
    if (old_alive_) return Finish(Outcome::kRolledBack, reason_, now);
    return Finish(Outcome::kRolledBack,
                  reason_ + "; the old generation had exited meanwhile and is started again", now);
  }
  // Sequential: the old generation is gone; bring its binary back.
  phase_started_ = now;
  Enter(State::kRestoring, now, params_.ready);
  return {SpawnRestore{}};
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnSuccessorExited(const ChildExit& how, TimePoint now) {
  new_alive_ = false;
  switch (state_) {
    case State::kSpawning:
    case State::kWaitReady: return Fail("the new generation " + how.Describe() + " before it was ready", now);
    case State::kStoppingNew: return AfterNewGone(now);
    default: return {};  // after it was ready: it is the service now, supervised as such
  }
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnIncumbentExited(const ChildExit&, TimePoint now) {
  old_alive_ = false;
  if (state_ != State::kStoppingOld && state_ != State::kKillingOld) return {};
  Acts out;
  Phase(out, "stop", now);
  if (params_.strategy == NotifyStrategy::kOverlap) {
    auto fin = Finish(Outcome::kCommitted, "the new generation is ready and the old one exited", now);
    out.insert(out.end(), fin.begin(), fin.end());
    return out;
  }
  if (aborting_) {
    auto more = Fail(reason_, now);
    out.insert(out.end(), more.begin(), more.end());
    return out;
  }
  Enter(State::kSpawning, now, params_.ready);
  out.push_back(Action{SpawnSuccessor{}});
  return out;
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnRestoreSpawned(TimePoint) { return {}; }

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnRestoreSpawnFailed(const std::string& why, TimePoint now) {
  if (state_ != State::kRestoring) return {};
  return Finish(Outcome::kFailed, fmt::format("{}; starting the previous binary again failed: {}", reason_, why), now);
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnRestoreReady(TimePoint now) {
  if (state_ != State::kRestoring) return {};
  Acts out;
  Phase(out, "restore", now);
  not_ready_ = now - stop_sent_;
  auto fin = Finish(Outcome::kRolledBack,
                    fmt::format("{}; the previous binary serves again, the service was not ready for {} ms", reason_,
                                Ms(not_ready_)),
                    now);
  out.insert(out.end(), fin.begin(), fin.end());
  return out;
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnRestoreFailed(const std::string& why, TimePoint now) {
  if (state_ != State::kRestoring) return {};
  return Finish(Outcome::kFailed, fmt::format("{}; the previous binary, started again, failed too: {}", reason_, why),
                now);
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnExtend(Duration d, TimePoint now) {
  if (state_ != State::kWaitReady && state_ != State::kRestoring) return {};
  if (!state_deadline_ || *state_deadline_ < now + d) state_deadline_ = now + d;
  return {};
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnAbort(const std::string& reason, TimePoint now) {
  switch (state_) {
    case State::kSpawning:
    case State::kWaitReady: return Fail("aborted: " + reason, now);
    case State::kStoppingOld:
    case State::kKillingOld:
      // Overlap: N is ready and the owner already; nothing to undo.
      // Sequential: the stop cannot be taken back; restore once O is gone.
      if (params_.strategy == NotifyStrategy::kSequential) {
        aborting_ = true;
        reason_ = "aborted: " + reason;
      }
      return {};
    default: return {};
  }
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::OnTimer(TimePoint now) {
  const bool state_due = state_deadline_ && now >= *state_deadline_;
  const bool handoff_due = handoff_deadline_ && now >= *handoff_deadline_;
  if (!state_due && !handoff_due) return {};
  switch (state_) {
    case State::kStoppingOld:
      if (!state_due) return {};
      Enter(State::kKillingOld, now, params_.term_grace);
      return {Action{SignalIncumbent{SIGKILL}}};
    case State::kKillingOld:
      if (!state_due) return {};
      if (params_.strategy == NotifyStrategy::kOverlap) {
        return Finish(Outcome::kCommitted, "the new generation is ready; the old one did not exit after SIGKILL", now);
      }
      return Finish(Outcome::kFailed,
                    "the old generation did not exit after SIGKILL; the new one is not started beside it", now);
    case State::kSpawning:
    case State::kWaitReady:
      if (handoff_due && !state_due) return Fail("the handoff deadline passed before the new generation was ready", now);
      return Fail(fmt::format("the new generation was not ready within {} ms", Ms(params_.ready)), now);
    case State::kStoppingNew:
      if (!state_due) return {};
      return Finish(Outcome::kFailed, reason_ + "; the new generation did not exit after SIGKILL", now);
    case State::kRestoring:
      if (!state_due) return {};
      return Finish(Outcome::kFailed,
                    fmt::format("{}; the previous binary was not ready within {} ms", reason_, Ms(params_.ready)),
                    now);
    default: return {};
  }
}

NotifyHandoffMachine::Acts NotifyHandoffMachine::Finish(Outcome o, std::string reason, TimePoint now) {
  if (params_.strategy == NotifyStrategy::kSequential && not_ready_ == Duration::zero()) {
    not_ready_ = now - stop_sent_;
  }
  state_ = State::kDone;
  state_deadline_.reset();
  return {Action{Finished{o, std::move(reason)}}};
}

}  // namespace baton::supervisor
