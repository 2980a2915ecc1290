#include "incumbent/incumbent_session.h"

#include <fmt/format.h>

#include "crashpoints/crashpoints.h"

namespace baton::incumbent {

using protocol::ExitAction;
using protocol::HookKind;
using protocol::LeaseAction;
using protocol::LeaseOp;
using protocol::LogAction;
using protocol::RunHookAction;
using protocol::SendAction;
using protocol::SessionActions;
using protocol::WatchPidAction;

std::string_view StateName(IncumbentSession::State s) {
  using S = IncumbentSession::State;
  switch (s) {
    case S::kServing: return "serving";
    case S::kDraining: return "draining";
    case S::kDrained: return "drained";
    case S::kSealing: return "sealing";
    case S::kSealed: return "sealed";
    case S::kResuming: return "resuming";
    case S::kRetiring: return "retiring";
    case S::kOrphaned: return "orphaned";
    case S::kExited: return "exited";
  }
  return "unknown";
}

IncumbentSession::IncumbentSession(IncumbentOptions opts, ownership::Ownership& ownership, uint64_t data_generation)
    : opts_(opts), ownership_(ownership), generation_(data_generation) {}

SessionActions IncumbentSession::Unexpected(const v1::Envelope& env) {
  // The supervisor misbehaving must never wedge the owner of the data: say
  // so and carry on in the current state.
  v1::Envelope reply;
  reply.mutable_error()->set_code(v1::Error::UNEXPECTED);
  reply.mutable_error()->set_message(
      fmt::format("incumbent: unexpected {} in state {}", protocol::MessageName(env), StateName(state_)));
  // Copied first: the braced list moves `reply` before it builds the log.
  std::string message = reply.error().message();
  return {SendAction{std::move(reply)}, LogAction{"incumbent.unexpected", std::move(message)}};
}

SessionActions IncumbentSession::OnMessage(const v1::Envelope& env, TimePoint now) {
  const bool ours = [&] {
    switch (env.msg_case()) {
      case v1::Envelope::kSeal: return env.seal().handoff_id() == handoff_id_;
      case v1::Envelope::kCommit: return env.commit().handoff_id() == handoff_id_;
      case v1::Envelope::kResume: return env.resume().handoff_id() == handoff_id_;
      default: return true;
    }
  }();
  if (!ours) {
    v1::Envelope reply;
    reply.mutable_error()->set_code(v1::Error::WRONG_HANDOFF);
    reply.mutable_error()->set_message(fmt::format("incumbent: {} for another handoff (ours is '{}')",
                                                   protocol::MessageName(env), handoff_id_));
    return {SendAction{std::move(reply)}};
  }
  switch (state_) {
    case State::kServing:
      if (env.has_prepare()) {
        handoff_id_ = env.prepare().handoff_id();
        successor_pid_ = env.prepare().successor_pid();
        const uint64_t ms = env.prepare().handoff_deadline_ms();
        deadline_ = now + (ms > 0 ? Duration(milliseconds(ms)) : opts_.default_handoff_deadline);
        state_ = State::kDraining;
        return {RunHookAction{HookKind::kDrain, env.prepare().drain_deadline_ms(), {}, false}};
      }
      break;
    case State::kDrained:
      if (env.has_seal()) {
        state_ = State::kSealing;
        successor_holder_ = env.seal().successor_lease_holder_id();
        seal_started_ = now;
        seal_budget_ = env.seal().budget_ms() > 0 ? Duration(milliseconds(env.seal().budget_ms()))
                                                  : opts_.default_seal_budget;
        if (opts_.lease) {
          // Stop renewing and wait for a renew in flight before the hook.
          seal_step_ = SealStep::kQuiescing;
          return {LeaseAction{LeaseOp::kQuiesce, {}, 0, {}}};
        }
        seal_step_ = SealStep::kHook;
        return {RunHookAction{HookKind::kSeal, 0, {}, false}};
      }
      if (env.has_resume()) {
        resume_requested_ = true;
        state_ = State::kResuming;
        return WithLeaseResume({RunHookAction{HookKind::kResume, 0, {}, false}});
      }
      break;
    case State::kSealed:
      if (env.has_commit()) {
        BATON_CRASH_POINT(kIncumbentAfterCommit);
        state_ = State::kRetiring;
        deadline_.reset();
        return {RunHookAction{HookKind::kRetire, 0, {}, false}};
      }
      if (env.has_resume()) {
        // The supervisor reaped the successor before sending Resume: the
        // lock is free.
        return RetakeAndResume(true, now);
      }
      break;
    default:
      break;
  }
  return Unexpected(env);
}

SessionActions IncumbentSession::RetakeAndResume(bool tell_supervisor, TimePoint now) {
  (void)now;
  if (auto st = ownership_.Acquire(); !st) {
    // Somebody else owns the data: we must not serve. The supervisor
    // restarts a cold generation if needed.
    state_ = State::kExited;
    return {LogAction{"incumbent.retake_failed", st.error().message},
            ExitAction{1, fmt::format("re-take the data-dir lock: {}", st.error().message)}};
  }
  auto gen = ownership_.Generation();
  const bool changed = !gen || *gen != sealed_generation_;
  if (gen) generation_ = *gen;
  resume_requested_ = tell_supervisor;
  state_ = State::kResuming;
  // The lock is ours again: reclaim the lease we handed over (the
  // successor is gone), then resume serving.
  return WithLeaseResume({RunHookAction{HookKind::kResume, 0, {}, changed}});
}

SessionActions IncumbentSession::WithLeaseResume(SessionActions out) const {
  if (opts_.lease) out.insert(out.begin(), LeaseAction{LeaseOp::kResume, {}, 0, {}});
  return out;
}

SessionActions IncumbentSession::ResumeSelf(std::string why, TimePoint now) {
  (void)now;
  state_ = State::kResuming;
  resume_requested_ = false;
  seal_step_ = SealStep::kNone;
  return WithLeaseResume(
      {LogAction{"incumbent.resume_self", std::move(why)}, RunHookAction{HookKind::kResume, 0, {}, false}});
}

SessionActions IncumbentSession::AbandonHandoff(const protocol::HookDone& done, std::string_view step,
                                                TimePoint now) {
  const std::string why = !done.status ? fmt::format("{} failed: {}", step, done.status.error().message)
                                       : fmt::format("supervisor lost during {}", step);
  SessionActions out;
  if (!done.status && connected_) {
    v1::Envelope env;
    env.mutable_seal_failed()->set_handoff_id(handoff_id_);
    env.mutable_seal_failed()->set_reason(why);
    out.push_back(SendAction{std::move(env)});
  }
  auto more = ResumeSelf(why, now);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

SessionActions IncumbentSession::OnHookDone(const protocol::HookDone& done, TimePoint now) {
  switch (state_) {
    case State::kDraining: {
      if (done.hook != HookKind::kDrain) break;
      if (!done.status || orphan_pending_) return AbandonHandoff(done, "drain", now);
      state_ = State::kDrained;
      v1::Envelope env;
      env.mutable_drained()->set_handoff_id(handoff_id_);
      return {SendAction{std::move(env)}};
    }
    case State::kSealing: {
      if (done.hook != HookKind::kSeal) break;
      // Still holding the lock: resume, and tell the supervisor if it is there.
      if (!done.status || orphan_pending_) return AbandonHandoff(done, "seal", now);
      sealed_revision_ = done.revision;
      sealed_fingerprint_ = done.fingerprint;
      if (opts_.lease) {
        // The writer is closed: hand the lease over within what is left of
        // the seal budget (less the time to report a failure).
        seal_step_ = SealStep::kTransferring;
        const Duration left = seal_started_ + seal_budget_ - opts_.seal_report_margin - now;
        return {LeaseAction{LeaseOp::kTransfer, successor_holder_, 0, std::max(left, Duration(milliseconds(50)))}};
      }
      return FinishSeal(0);
    }
    case State::kResuming: {
      if (done.hook != HookKind::kResume) break;
      if (!done.status) {
        state_ = State::kExited;
        return {ExitAction{1, fmt::format("resume failed: {}", done.status.error().message)}};
      }
      state_ = State::kServing;
      deadline_.reset();
      orphan_pending_ = false;
      SessionActions out;
      if (resume_requested_ && connected_) {
        v1::Envelope env;
        env.mutable_resumed()->set_handoff_id(handoff_id_);
        env.mutable_resumed()->set_data_generation_changed(generation_ != sealed_generation_ && sealed_generation_ != 0);
        out.push_back(SendAction{std::move(env)});
      }
      out.push_back(LogAction{"incumbent.resumed", "serving again"});
      handoff_id_.clear();
      return out;
    }
    case State::kRetiring: {
      if (done.hook != HookKind::kRetire) break;
      state_ = State::kExited;
      SessionActions out;
      if (connected_) {
        v1::Envelope env;
        env.mutable_commit_ack()->set_handoff_id(handoff_id_);
        out.push_back(SendAction{std::move(env)});
      }
      out.push_back(ExitAction{0, "committed: retired"});
      return out;
    }
    default:
      break;
  }
  return {};
}

SessionActions IncumbentSession::FinishSeal(uint64_t lease_epoch) {
  seal_step_ = SealStep::kNone;
  auto gen = ownership_.Generation();
  sealed_generation_ = gen ? *gen : generation_;
  // Release the flock only after the seal hook fsynced and closed the writer
  // (and the lease, if any, is the successor's).
  ownership_.Release();
  BATON_CRASH_POINT(kIncumbentAfterFlockRelease);
  state_ = State::kSealed;
  v1::Envelope env;
  auto* sc = env.mutable_seal_complete();
  sc->set_handoff_id(handoff_id_);
  sc->set_revision(sealed_revision_);
  sc->set_fingerprint(sealed_fingerprint_);
  sc->set_data_generation(sealed_generation_);
  sc->set_lease_epoch(lease_epoch);
  return {SendAction{std::move(env)}};
}

SessionActions IncumbentSession::OnLeaseDone(const protocol::LeaseDone& done, TimePoint now) {
  if (state_ != State::kSealing) return {};
  if (seal_step_ == SealStep::kQuiescing && done.op == LeaseOp::kQuiesce) {
    seal_step_ = SealStep::kHook;
    return {RunHookAction{HookKind::kSeal, 0, {}, false}};
  }
  if (seal_step_ == SealStep::kTransferring && done.op == LeaseOp::kTransfer) {
    seal_step_ = SealStep::kNone;
    if (!done.status) {
      // We still hold the lock; the lease resolves back to us by itself.
      return AbandonHandoff(protocol::HookDone{HookKind::kSeal, done.status.error(), 0, {}}, "seal", now);
    }
    // The row names the successor; we still hold the flock.
    BATON_CRASH_POINT(kIncumbentAfterLeaseTransfer);
    if (orphan_pending_) {
      // The supervisor is gone, so the successor never gets Begin: take the
      // lease back and resume (the lease resume reclaims it).
      return AbandonHandoff(protocol::HookDone{HookKind::kSeal, {}, 0, {}}, "seal", now);
    }
    return FinishSeal(done.epoch);
  }
  return {};
}

SessionActions IncumbentSession::Orphaned(std::string why, TimePoint now) {
  switch (state_) {
    case State::kServing:
    case State::kResuming:
    case State::kRetiring:
    case State::kExited:
    case State::kOrphaned:
      return {LogAction{"incumbent.supervisor_lost", why}};
    case State::kDraining:
    case State::kSealing:
      // The hook is running; decide when it returns.
      orphan_pending_ = true;
      return {LogAction{"incumbent.supervisor_lost", why}};
    case State::kDrained:
      return ResumeSelf(why, now);
    case State::kSealed:
      // We released the lock. Wait for the successor to be gone, then take it back.
      state_ = State::kOrphaned;
      deadline_ = now + opts_.orphan_grace;
      if (successor_pid_ == 0) return RetakeAndResume(false, now);
      return {LogAction{"incumbent.supervisor_lost", why}, WatchPidAction{static_cast<int>(successor_pid_)}};
  }
  return {};
}

SessionActions IncumbentSession::OnChannelClosed(const Error& why, TimePoint now) {
  connected_ = false;
  return Orphaned(fmt::format("control channel closed: {}", why.message), now);
}

SessionActions IncumbentSession::OnSuccessorExited(TimePoint now) {
  if (state_ != State::kOrphaned) return {};
  return RetakeAndResume(false, now);
}

SessionActions IncumbentSession::OnTimer(TimePoint now) {
  if (!deadline_ || now < *deadline_) return {};
  deadline_.reset();
  if (state_ == State::kOrphaned) {
    // The successor outlived the grace: try the lock; if it holds it, it is
    // the owner now and we must go.
    if (auto st = ownership_.Acquire(); !st) {
      state_ = State::kExited;
      return {ExitAction{0, "the successor owns the data; exiting"}};
    }
    ownership_.Release();  // free after all: take it properly below
    return RetakeAndResume(false, now);
  }
  return Orphaned("the handoff deadline passed", now);
}

}  // namespace baton::incumbent
