// SupervisorImpl, descriptor handover (docs/protocol.md, "Descriptor
// handover"): the incumbent's descriptors arrive in Handover frames before
// its SealComplete; the supervisor holds them, passes copies to the
// successor before Begin, and either closes its own once the successor is
// Ready or sends them back to the incumbent before Resume. None is ever
// served by two generations: the incumbent gets them back only after the
// successor was reaped (the machine sends Resume only then).
#include <fmt/format.h>

#include "crashpoints/crashpoints.h"
#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {

void SupervisorImpl::RefuseChild(const std::shared_ptr<Child>& g, v1::Error::Code code, const Error& why) {
  Emit(MakeEvent(Level::kWarn, "handover.refused", "pid {}: {}", g->pid, why.message)
           .With("pid", int64_t{g->pid})
           .With("reason", why.message));
  if (g->channel) g->channel->SendErrorAndClose(code, why);
  OnChildClosed(g, why);
}

void SupervisorImpl::OnChildFds(const std::shared_ptr<Child>& g, v1::Envelope env, std::vector<OwnedFd> fds) {
  const bool allowed = !g->reattaching && PartOf(g) == HandoffPart::kIncumbent && !handoff_->notify &&
                       handoff_->machine.state() == HandoffMachine::State::kSealing && env.has_handover() &&
                       env.handover().handoff_id() == handoff_->machine.handoff_id();
  if (!allowed) {
    return RefuseChild(g, v1::Error::UNEXPECTED,
                       Error(Errc::kProtocolError,
                             fmt::format("a {} frame carried {} descriptors where none are allowed",
                                         protocol::MessageName(env), fds.size())));
  }
  const size_t count = fds.size();
  if (auto st = protocol::AcceptHandover(env.handover(), std::move(fds), opts_.max_handover_fds, handoff_->held);
      !st) {
    return RefuseChild(g, v1::Error::UNEXPECTED, st.error());
  }
  BATON_CRASH_POINT(kSupervisorAfterRecvHandover);
  Emit(MakeEvent(Level::kInfo, "handover.received", "{} descriptors from pid {} ({} held)", count, g->pid,
                 handoff_->held.size())
           .With("handoff_id", handoff_->machine.handoff_id())
           .With("count", static_cast<int64_t>(count)));
}

bool SupervisorImpl::CheckHandoverCount(const std::shared_ptr<Child>& g, const v1::Envelope& env) {
  if (env.has_handover()) {
    RefuseChild(g, v1::Error::UNEXPECTED,
                Error(Errc::kProtocolError, "a Handover frame without descriptors"));
    return false;
  }
  if (!env.has_seal_complete() || PartOf(g) != HandoffPart::kIncumbent || handoff_->notify) return true;
  const size_t announced = env.seal_complete().handover_count();
  if (announced == handoff_->held.size()) return true;
  RefuseChild(g, v1::Error::UNEXPECTED,
              Error(Errc::kProtocolError, fmt::format("SealComplete announces {} handed-over descriptors but {} arrived",
                                                      announced, handoff_->held.size())));
  return false;
}

void SupervisorImpl::SendHeld(const std::shared_ptr<Child>& to, v1::Envelope& env) {
  auto& held = handoff_->held;
  if (env.has_begin()) {
    if (!env.begin().sealed()) {
      // The incumbent died before it sealed: what it sent is not a state
      // anyone vouched for.
      CloseHeld("the incumbent died before sealing");
      return;
    }
    if (!held.empty() && !handoff_->machine.successor_accepts_handover()) {
      // An incumbent whose library ignored Prepare's "successor does not
      // accept" (an older one): passing them on would leave their clients
      // waiting on a process that never serves them. Keep them for a
      // rollback; at the commit they are closed, which the clients see.
      Emit(MakeEvent(Level::kWarn, "handover.not_accepted",
                     "the successor (pid {}) does not accept handed-over descriptors: {} kept back, closed at the "
                     "commit",
                     to ? to->pid : 0, held.size())
               .With("handoff_id", handoff_->machine.handoff_id())
               .With("count", static_cast<int64_t>(held.size())));
      env.mutable_begin()->set_handover_count(0);
      return;
    }
    env.mutable_begin()->set_handover_count(static_cast<uint32_t>(held.size()));
  } else {
    env.mutable_resume()->set_handover_count(static_cast<uint32_t>(held.size()));
  }
  if (held.empty() || !to || !to->channel || to->channel->closed()) return;
  for (auto& batch : protocol::MakeHandoverBatches(handoff_->machine.handoff_id(), held)) {
    if (auto st = to->channel->SendWithFds(batch.env, batch.fds); !st) {
      // The receiver sees fewer than the count and treats it as bad input.
      Emit(MakeEvent(Level::kError, "handover.send_failed", "to pid {}: {}", to->pid, st.error().message));
    }
  }
  Emit(MakeEvent(Level::kInfo, env.has_begin() ? "handover.passed" : "handover.returned",
                 "{} descriptors to pid {}", held.size(), to->pid)
           .With("handoff_id", handoff_->machine.handoff_id())
           .With("count", static_cast<int64_t>(held.size())));
  // Returned to the incumbent: they are its own again, our copies go.
  if (env.has_resume()) held.clear();
}

void SupervisorImpl::CloseHeld(const char* why) {
  if (!handoff_ || handoff_->held.empty()) return;
  Emit(MakeEvent(Level::kInfo, "handover.closed", "closed {} held descriptors: {}", handoff_->held.size(), why)
           .With("count", static_cast<int64_t>(handoff_->held.size())));
  handoff_->held.clear();
}

}  // namespace baton::supervisor
