#include "supervisor/handoff_machine.h"

#include <signal.h>

#include <algorithm>

#include <fmt/format.h>

#include "crashpoints/crashpoints.h"
#include "protocol/handover.h"
#include "supervisor/hello.h"

namespace baton::supervisor {
namespace {

// Beyond the budget it was given, the time the incumbent has to say it
// finished draining (Drained) or sealing (SealComplete) before we give up.
constexpr Duration kDrainReportTime = seconds(5);
constexpr Duration kSealReportTime = seconds(2);

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kCommitted: return "committed";
    case Outcome::kRolledBack: return "rolled_back";
    case Outcome::kRefused: return "refused";
    case Outcome::kFailed: return "failed";
  }
  return "unknown";
}

v1::Outcome ToProto(Outcome o) {
  switch (o) {
    case Outcome::kCommitted: return v1::COMMITTED;
    case Outcome::kRolledBack: return v1::ROLLED_BACK;
    case Outcome::kRefused: return v1::REFUSED;
    case Outcome::kFailed: return v1::FAILED;
  }
  return v1::OUTCOME_UNSPECIFIED;
}

std::string_view StateName(HandoffMachine::State s) {
  using S = HandoffMachine::State;
  switch (s) {
    case S::kIdle: return "idle";
    case S::kSpawning: return "spawning";
    case S::kWarming: return "warming";
    case S::kDraining: return "draining";
    case S::kSealing: return "sealing";
    case S::kBeginning: return "beginning";
    case S::kCommitting: return "committing";
    case S::kStoppingSuccessor: return "stopping_successor";
    case S::kResuming: return "resuming";
    case S::kDone: return "done";
  }
  return "unknown";
}

HandoffMachine::HandoffMachine(HandoffParams params) : params_(std::move(params)) {
  incumbent_alive_ = params_.incumbent_schema.has_value();
}

void HandoffMachine::Enter(State s, TimePoint now, Duration timeout) {
  state_ = s;
  state_deadline_ = now + timeout;
}

void HandoffMachine::Phase(Actions& out, const char* name, TimePoint now) {
  out.push_back(PhaseDone{name, now - phase_started_});
  phase_started_ = now;
}

std::optional<TimePoint> HandoffMachine::NextDeadline() const {
  if (state_ == State::kDone || state_ == State::kIdle) return std::nullopt;
  std::optional<TimePoint> d = state_deadline_;
  if (handoff_deadline_ && (!d || *handoff_deadline_ < *d)) d = handoff_deadline_;
  return d;
}

Actions HandoffMachine::Start(TimePoint now) {
  started_ = now;
  phase_started_ = now;
  handoff_deadline_ = now + params_.timeouts.handoff;
  Enter(State::kSpawning, now, params_.timeouts.hello);
  return {SpawnSuccessor{}};
}

Actions HandoffMachine::OnSpawned(uint32_t pid, TimePoint now) {
  successor_pid_ = pid;
  successor_alive_ = true;
  Actions out;
  Phase(out, "spawn", now);
  BATON_CRASH_POINT(kSupervisorAfterSpawn);
  return out;
}

Actions HandoffMachine::OnSpawnFailed(const Error& e, TimePoint /*now*/) {
  // Nothing was touched: the incumbent never heard of this handoff.
  return Finish(Outcome::kRefused, fmt::format("spawn: {}", e.message));
}

Actions HandoffMachine::Finish(Outcome o, std::string reason) {
  state_ = State::kDone;
  state_deadline_.reset();
  return {Finished{o, std::move(reason)}};
}

bool HandoffMachine::successor_accepts_handover() const {
  const auto& caps = successor_hello_.capabilities();
  return std::find(caps.begin(), caps.end(), protocol::kCapabilityHandover) != caps.end();
}

Actions HandoffMachine::OnSuccessorMessage(const v1::Envelope& env, TimePoint now) {
  if (state_ == State::kDone || state_ == State::kStoppingSuccessor || state_ == State::kResuming) return {};
  if (env.has_abort()) return RollBack(fmt::format("successor gave up: {}", env.abort().reason()), now);
  if (env.has_error()) return RollBack(fmt::format("successor reported: {}", env.error().message()), now);
  Actions out;
  switch (state_) {
    case State::kSpawning: {
      if (!env.has_hello()) break;
      BATON_CRASH_POINT(kSupervisorAfterRecvHello);
      successor_hello_ = env.hello();
      Phase(out, "hello", now);
      HelloAnswer answer = AnswerHello(
          env.hello(), {params_.protocol, params_.incumbent_schema, params_.liveness, params_.handoff_id, "successor"});
      out.push_back(SendToSuccessor{std::move(answer.ack)});
      if (answer.refusal) {
        // Refused before any side effect on the incumbent.
        refused_ = true;
        auto more = RollBack(answer.refusal->message, now);
        out.insert(out.end(), more.begin(), more.end());
        return out;
      }
      v1::Envelope warm;
      warm.mutable_warm()->set_handoff_id(params_.handoff_id);
      warm.mutable_warm()->set_deadline_ms(static_cast<uint64_t>(ToMillis(params_.timeouts.warm)));
      out.push_back(SendToSuccessor{std::move(warm)});
      Enter(State::kWarming, now, params_.timeouts.warm);
      return out;
    }
    case State::kWarming: {
      if (!env.has_warmed() || env.warmed().handoff_id() != params_.handoff_id) break;
      BATON_CRASH_POINT(kSupervisorAfterRecvWarmed);
      successor_warmed_ = true;
      Phase(out, "warm", now);
      if (!incumbent_alive_) {
        auto more = SendBegin(false, now);
        out.insert(out.end(), more.begin(), more.end());
        return out;
      }
      v1::Envelope prep;
      auto* p = prep.mutable_prepare();
      p->set_handoff_id(params_.handoff_id);
      p->set_drain_deadline_ms(static_cast<uint64_t>(ToMillis(params_.timeouts.drain)));
      p->set_successor_pid(successor_pid_);
      p->set_successor_accepts_handover(successor_accepts_handover());
      // The incumbent's own deadline: ours plus a slack, so it acts only when we cannot.
      const Duration left = *handoff_deadline_ - now;
      p->set_handoff_deadline_ms(static_cast<uint64_t>(std::max<int64_t>(0, ToMillis(left))) +
                                 static_cast<uint64_t>(ToMillis(params_.timeouts.term_grace)) +
                                 static_cast<uint64_t>(ToMillis(params_.liveness.liveness_timeout)));
      incumbent_prepared_ = true;
      out.push_back(SendToIncumbent{std::move(prep)});
      Enter(State::kDraining, now, params_.timeouts.drain + kDrainReportTime);
      return out;
    }
    case State::kBeginning: {
      if (!env.has_ready() || env.ready().handoff_id() != params_.handoff_id) break;
      BATON_CRASH_POINT(kSupervisorAfterRecvReady);
      Phase(out, "begin", now);
      out.push_back(PromoteSuccessor{});
      if (!incumbent_alive_) {
        auto more = Finish(Outcome::kCommitted, "committed (the old generation had died)");
        out.insert(out.end(), more.begin(), more.end());
        return out;
      }
      v1::Envelope commit;
      commit.mutable_commit()->set_handoff_id(params_.handoff_id);
      out.push_back(SendToIncumbent{std::move(commit)});
      Enter(State::kCommitting, now, params_.timeouts.commit);
      return out;
    }
    default:
      break;
  }
  return RollBack(fmt::format("unexpected {} from the successor while {}", protocol::MessageName(env),
                              StateName(state_)),
                  now);
}

Actions HandoffMachine::SendBegin(bool sealed, TimePoint now) {
  Actions out;
  v1::Envelope begin;
  auto* b = begin.mutable_begin();
  b->set_handoff_id(params_.handoff_id);
  b->set_sealed(sealed);
  if (sealed) {
    b->set_revision(sealed_.revision());
    b->set_fingerprint(sealed_.fingerprint());
    b->set_lease_epoch(sealed_.lease_epoch());
    b->set_data_generation(sealed_.data_generation());
  }
  out.push_back(SendToSuccessor{std::move(begin)});
  Enter(State::kBeginning, now, params_.timeouts.begin);
  return out;
}

Actions HandoffMachine::OnIncumbentMessage(const v1::Envelope& env, TimePoint now) {
  Actions out;
  switch (state_) {
    case State::kDraining:
      if (env.has_drained() && env.drained().handoff_id() == params_.handoff_id) {
        BATON_CRASH_POINT(kSupervisorAfterRecvDrained);
        Phase(out, "drain", now);
        v1::Envelope seal;
        seal.mutable_seal()->set_handoff_id(params_.handoff_id);
        seal.mutable_seal()->set_successor_lease_holder_id(successor_hello_.lease_holder_id());
        seal.mutable_seal()->set_budget_ms(static_cast<uint64_t>(ToMillis(params_.timeouts.seal)));
        out.push_back(SendToIncumbent{std::move(seal)});
        Enter(State::kSealing, now, params_.timeouts.seal + kSealReportTime);
        return out;
      }
      break;
    case State::kSealing:
      if (env.has_seal_complete() && env.seal_complete().handoff_id() == params_.handoff_id) {
        BATON_CRASH_POINT(kSupervisorAfterRecvSealComplete);
        Phase(out, "seal", now);
        sealed_ = env.seal_complete();
        auto more = SendBegin(true, now);
        out.insert(out.end(), more.begin(), more.end());
        return out;
      }
      break;
    case State::kCommitting:
      if (env.has_commit_ack()) {
        BATON_CRASH_POINT(kSupervisorAfterRecvCommitAck);
        Phase(out, "commit", now);
        auto more = Finish(Outcome::kCommitted, "committed");
        out.insert(out.end(), more.begin(), more.end());
        return out;
      }
      break;
    case State::kResuming:
      if (env.has_resumed()) {
        auto more = Finish(Outcome::kRolledBack, reason_);
        out.insert(out.end(), more.begin(), more.end());
        return out;
      }
      break;
    default:
      break;
  }
  if (env.has_seal_failed() && (state_ == State::kDraining || state_ == State::kSealing)) {
    // The incumbent kept the flock and resumed by itself.
    incumbent_self_resumed_ = true;
    return RollBack(fmt::format("incumbent could not seal: {}", env.seal_failed().reason()), now);
  }
  // Anything else from the incumbent is ignored: it stays the owner of record.
  return out;
}

Actions HandoffMachine::RollBack(std::string reason, TimePoint now) {
  if (state_ == State::kDone || state_ == State::kStoppingSuccessor || state_ == State::kResuming) return {};
  reason_ = std::move(reason);
  Actions out;
  if (successor_alive_) {
    if (!refused_) {
      v1::Envelope abort;
      abort.mutable_abort()->set_handoff_id(params_.handoff_id);
      abort.mutable_abort()->set_reason(reason_);
      out.push_back(SendToSuccessor{std::move(abort)});
    }
    out.push_back(SignalSuccessor{SIGTERM});
    Enter(State::kStoppingSuccessor, now, params_.timeouts.term_grace);
    return out;
  }
  auto more = AfterSuccessorGone(now);
  out.insert(out.end(), more.begin(), more.end());
  return out;
}

Actions HandoffMachine::AfterSuccessorGone(TimePoint now) {
  if (refused_) return Finish(Outcome::kRefused, reason_);
  if (!incumbent_alive_) {
    return Finish(Outcome::kFailed, fmt::format("{}; and the old generation is gone too", reason_));
  }
  if (incumbent_prepared_ && !incumbent_self_resumed_) {
    v1::Envelope resume;
    resume.mutable_resume()->set_handoff_id(params_.handoff_id);
    resume.mutable_resume()->set_reason(reason_);
    Actions out{SendToIncumbent{std::move(resume)}};
    Enter(State::kResuming, now, params_.timeouts.resume);
    return out;
  }
  return Finish(Outcome::kRolledBack, reason_);
}

Actions HandoffMachine::OnSuccessorChannelClosed(const Error& why, TimePoint now) {
  if (state_ == State::kCommitting || state_ == State::kDone) return {};
  return RollBack(fmt::format("successor channel closed: {}", why.message), now);
}

Actions HandoffMachine::OnSuccessorExited(const ChildExit& exit, TimePoint now) {
  successor_alive_ = false;
  const std::string how = exit.Describe();
  if (state_ == State::kStoppingSuccessor) {
    // Say how it ended unless we ended it.
    if (!refused_ && !killed_successor_ && !exit.SignalledBy(SIGTERM)) {
      reason_ += fmt::format(" (successor {})", how);
    }
    return AfterSuccessorGone(now);
  }
  if (state_ == State::kDone || state_ == State::kResuming) return {};
  if (state_ == State::kCommitting) {
    return Finish(Outcome::kFailed, fmt::format("the new generation {} after Ready, before the commit", how));
  }
  return RollBack(fmt::format("successor {}", how), now);
}

Actions HandoffMachine::OnIncumbentChannelClosed(const Error& why, TimePoint /*now*/) {
  if (!incumbent_alive_ || state_ == State::kDone) return {};
  switch (state_) {
    case State::kDraining:
    case State::kSealing:
    case State::kCommitting:
      // A silent incumbent mid-handoff is hung or dying: make sure it is
      // dead (the kernel then frees its flock) and go on with the successor.
      if (!incumbent_killed_) {
        incumbent_killed_ = true;
        return {SignalIncumbent{SIGKILL}};
      }
      return {};
    case State::kResuming: {
      // An incumbent we cannot talk to must not keep the data: end it so the
      // supervisor restarts a generation (docs/design.md §4.4: converge without a human).
      Actions out{SignalIncumbent{SIGKILL}};
      auto more = Finish(Outcome::kFailed,
                         fmt::format("{}; the incumbent's channel closed while resuming: {}", reason_, why.message));
      out.insert(out.end(), more.begin(), more.end());
      return out;
    }
    default:
      return {};  // before Prepare the incumbent is untouched; its supervisor-side restart logic applies
  }
}

Actions HandoffMachine::OnIncumbentExited(const ChildExit& exit, TimePoint now) {
  incumbent_alive_ = false;
  const std::string how = exit.Describe();
  Actions out;
  switch (state_) {
    case State::kDraining:
    case State::kSealing:
      // Every acknowledged write was fsynced; the kernel released its flock.
      if (successor_warmed_ && successor_alive_) return SendBegin(false, now);
      return RollBack(fmt::format("incumbent {}", how), now);
    case State::kCommitting:
      Phase(out, "commit", now);
      {
        auto more = Finish(Outcome::kCommitted, "committed");
        out.insert(out.end(), more.begin(), more.end());
      }
      return out;
    case State::kResuming:
      return Finish(Outcome::kFailed, fmt::format("{}; the incumbent {} while resuming", reason_, how));
    default:
      return {};  // earlier: Warmed will go straight to Begin; later: nothing depends on it
  }
}

Actions HandoffMachine::OnAbort(const std::string& reason, TimePoint now) {
  switch (state_) {
    case State::kSpawning:
    case State::kWarming:
    case State::kDraining:
    case State::kSealing:
    case State::kBeginning:
      return RollBack(fmt::format("aborted: {}", reason), now);
    default:
      return {};
  }
}

Actions HandoffMachine::OnTimer(TimePoint now) {
  if (state_ == State::kDone) return {};
  const bool handoff_expired = handoff_deadline_ && now >= *handoff_deadline_;
  const bool state_expired = state_deadline_ && now >= *state_deadline_;
  if (!handoff_expired && !state_expired) return {};
  switch (state_) {
    case State::kSpawning:
      return RollBack(handoff_expired ? "handoff deadline passed" : "successor did not say Hello in time", now);
    case State::kWarming:
      return RollBack(handoff_expired ? "handoff deadline passed" : "successor did not finish warming in time", now);
    case State::kDraining:
      return RollBack("incumbent did not finish draining in time", now);
    case State::kSealing:
      return RollBack("incumbent did not seal in time", now);
    case State::kBeginning:
      return RollBack("successor did not become ready in time", now);
    case State::kCommitting: {
      // N owns the data; a stuck old generation must not hold the service hostage.
      Actions out{SignalIncumbent{SIGKILL}};
      auto more = Finish(Outcome::kCommitted, "committed (the old generation did not acknowledge; killed)");
      out.insert(out.end(), more.begin(), more.end());
      return out;
    }
    case State::kStoppingSuccessor:
      if (!killed_successor_) {
        killed_successor_ = true;
        Enter(State::kStoppingSuccessor, now, params_.timeouts.term_grace);
        return {SignalSuccessor{SIGKILL}};
      }
      return Finish(Outcome::kFailed, fmt::format("{}; the successor could not be reaped", reason_));
    case State::kResuming: {
      // A hung incumbent (e.g. stuck in a hook) never resumes: end it so the
      // supervisor restarts a generation instead of leaving nobody serving.
      Actions out{SignalIncumbent{SIGKILL}};
      auto more = Finish(Outcome::kFailed,
                         fmt::format("{}; the incumbent did not resume in time and was killed", reason_));
      out.insert(out.end(), more.begin(), more.end());
      return out;
    }
    default:
      return {};
  }
}

}  // namespace baton::supervisor
