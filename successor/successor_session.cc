#include "successor/successor_session.h"

#include <fmt/format.h>

#include "base/check.h"
#include "crashpoints/crashpoints.h"
#include "protocol/handover.h"

namespace baton::successor {

using protocol::ExitAction;
using protocol::HookKind;
using protocol::LeaseAction;
using protocol::LeaseOp;
using protocol::LogAction;
using protocol::RunHookAction;
using protocol::SendAction;
using protocol::ServingAction;
using protocol::SessionActions;

std::string_view StateName(SuccessorSession::State s) {
  using S = SuccessorSession::State;
  switch (s) {
    case S::kInit: return "init";
    case S::kAwaitHelloAck: return "await_hello_ack";
    case S::kAwaitWarm: return "await_warm";
    case S::kWarming: return "warming";
    case S::kAwaitBegin: return "await_begin";
    case S::kConfirmingLease: return "confirming_lease";
    case S::kBeginning: return "beginning";
    case S::kServing: return "serving";
    case S::kExited: return "exited";
  }
  return "unknown";
}

SuccessorSession::SuccessorSession(protocol::LaunchRole role, HelloInfo hello, ownership::Ownership& ownership,
                                   SuccessorOptions opts)
    : role_(role), hello_(std::move(hello)), ownership_(ownership), opts_(opts) {}

v1::Envelope MakeHello(const HelloInfo& info, std::string_view role) {
  v1::Envelope env;
  auto* h = env.mutable_hello();
  h->mutable_protocol()->set_min(info.protocol.min);
  h->mutable_protocol()->set_max(info.protocol.max);
  h->mutable_state_schema()->set_min(info.state_schema.min);
  h->mutable_state_schema()->set_max(info.state_schema.max);
  h->set_build_id(info.build_id);
  h->set_pid(info.pid);
  h->set_lease_holder_id(info.lease_holder_id);
  if (!info.lease_holder_id.empty()) h->add_capabilities("lease");
  if (info.accepts_handover) h->add_capabilities(std::string(protocol::kCapabilityHandover));
  h->set_role(std::string(role));
  return env;
}

SessionActions SuccessorSession::Start() {
  BATON_CHECK(state_ == State::kInit);
  if (role_ == protocol::LaunchRole::kSuccessor) BATON_CRASH_POINT(kSuccessorBeforeHello);
  state_ = State::kAwaitHelloAck;
  return {SendAction{MakeHello(hello_, protocol::LaunchRoleName(role_))}};
}

SessionActions SuccessorSession::Fail(std::string reason, bool tell_supervisor) {
  SessionActions out;
  // Dropping the lock before exiting is only tidiness: exit releases it too.
  ownership_.Release();
  if (tell_supervisor) {
    v1::Envelope env;
    env.mutable_abort()->set_handoff_id(handoff_id_);
    env.mutable_abort()->set_reason(reason);
    out.push_back(SendAction{std::move(env)});
  }
  out.push_back(ExitAction{1, std::move(reason)});
  state_ = State::kExited;
  return out;
}

SessionActions SuccessorSession::TakeOwnership(SessionActions out) {
  // The supervisor guarantees the previous owner sealed (or died): the lock
  // must be free now, without waiting.
  if (auto st = ownership_.Acquire(); !st) {
    auto fail = Fail(fmt::format("take the data-dir lock: {}", st.error().message), true);
    out.insert(out.end(), fail.begin(), fail.end());
    return out;
  }
  if (role_ == protocol::LaunchRole::kSuccessor) BATON_CRASH_POINT(kSuccessorAfterFlock);
  auto gen = ownership_.Bump();
  if (!gen) {
    auto fail = Fail(fmt::format("bump the data generation: {}", gen.error().message), true);
    out.insert(out.end(), fail.begin(), fail.end());
    return out;
  }
  generation_ = *gen;
  return out;
}

SessionActions SuccessorSession::OnMessage(const v1::Envelope& env) {
  if (env.has_abort()) {
    return Fail(fmt::format("aborted by the supervisor: {}", env.abort().reason()), false);
  }
  if (env.has_error()) {
    return Fail(fmt::format("supervisor reported an error: {}", env.error().message()), false);
  }
  switch (state_) {
    case State::kAwaitHelloAck: {
      if (!env.has_hello_ack()) break;
      ack_ = env.hello_ack();
      if (!ack_.accepted()) return Fail(fmt::format("refused by the supervisor: {}", ack_.refusal()), false);
      handoff_id_ = ack_.handoff_id();
      if (role_ == protocol::LaunchRole::kCold) {
        SessionActions out = TakeOwnership({});
        if (state_ == State::kExited) return out;
        state_ = State::kServing;
        if (!hello_.lease_holder_id.empty()) out.push_back(LeaseAction{LeaseOp::kCampaign, {}, 0, {}});
        out.push_back(LogAction{"daemon.cold_start", fmt::format("data generation {}", generation_)});
        out.push_back(ServingAction{});
        return out;
      }
      state_ = State::kAwaitWarm;
      return {};
    }
    case State::kAwaitWarm:
      if (!env.has_warm() || env.warm().handoff_id() != handoff_id_) break;
      state_ = State::kWarming;
      return {RunHookAction{HookKind::kWarm, env.warm().deadline_ms(), {}, false}};
    case State::kAwaitBegin: {
      if (!env.has_begin() || env.begin().handoff_id() != handoff_id_) break;
      BATON_CRASH_POINT(kSuccessorAfterBegin);
      if (!hello_.lease_holder_id.empty() && env.begin().sealed() && env.begin().lease_epoch() != 0) {
        // Confirm the epoch the incumbent handed us first: the lease is
        // leaderless until then, and the confirm needs no data ownership
        // (the lock and the generation bump follow, then the begin hook,
        // before any write).
        begin_ = env.begin();
        state_ = State::kConfirmingLease;
        return {LeaseAction{LeaseOp::kConfirm, {}, env.begin().lease_epoch(), opts_.lease_confirm_budget}};
      }
      SessionActions out = TakeOwnership({});
      if (state_ == State::kExited) return out;
      if (!hello_.lease_holder_id.empty()) {
        // Nothing handed over (the incumbent held no lease, or died before
        // sealing): become leader the ordinary way.
        out.push_back(LeaseAction{LeaseOp::kCampaign, {}, 0, {}});
      }
      state_ = State::kBeginning;
      out.push_back(RunHookAction{HookKind::kBegin, 0, env.begin(), false});
      return out;
    }
    default:
      break;
  }
  return Fail(fmt::format("unexpected {} in state {}", protocol::MessageName(env), StateName(state_)), true);
}

SessionActions SuccessorSession::OnHookDone(const protocol::HookDone& done) {
  if (state_ == State::kWarming && done.hook == HookKind::kWarm) {
    if (!done.status) return Fail(fmt::format("warm: {}", done.status.error().message), true);
    v1::Envelope env;
    env.mutable_warmed()->set_handoff_id(handoff_id_);
    env.mutable_warmed()->set_revision(done.revision);
    state_ = State::kAwaitBegin;
    return {SendAction{std::move(env)}};
  }
  if (state_ == State::kBeginning && done.hook == HookKind::kBegin) {
    if (!done.status) return Fail(fmt::format("begin: {}", done.status.error().message), true);
    BATON_CRASH_POINT(kSuccessorBeforeReady);
    v1::Envelope env;
    env.mutable_ready()->set_handoff_id(handoff_id_);
    env.mutable_ready()->set_data_generation(generation_);
    env.mutable_ready()->set_revision(done.revision);
    env.mutable_ready()->set_lease_epoch(lease_epoch_);
    state_ = State::kServing;
    return {SendAction{std::move(env)}, ServingAction{}};
  }
  return {};  // a hook finishing after we gave up: nothing to do
}

SessionActions SuccessorSession::OnLeaseDone(const protocol::LeaseDone& done) {
  if (state_ != State::kConfirmingLease || done.op != LeaseOp::kConfirm) return {};
  if (!done.status) return Fail(fmt::format("begin: {}", done.status.error().message), true);
  lease_epoch_ = begin_.lease_epoch();
  // We lead (lease.leader_start is logged) but own no data yet.
  BATON_CRASH_POINT(kSuccessorAfterLeaseConfirm);
  SessionActions out = TakeOwnership({});
  if (state_ == State::kExited) return out;
  state_ = State::kBeginning;
  out.push_back(RunHookAction{HookKind::kBegin, 0, begin_, false});
  return out;
}

SessionActions SuccessorSession::OnChannelClosed(const Error& why) {
  if (state_ == State::kServing || state_ == State::kExited) return {};
  // N without S before Ready exits (docs/design.md §3).
  return Fail(fmt::format("supervisor gone before Ready: {}", why.message), false);
}

}  // namespace baton::successor
