// SupervisorImpl, part 3 (supervisor_impl.h): what each admin request does.
#include <unistd.h>

#include <fmt/format.h>

#include "protocol/frame.h"
#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {

void SupervisorImpl::OnAdminRequest(std::shared_ptr<AdminConnection> conn, const v1::Envelope& env) {
  switch (env.msg_case()) {
    case v1::Envelope::kUpgradeRequest: return OnUpgrade(std::move(conn), env.upgrade_request());
    case v1::Envelope::kRollbackRequest: return OnRollback(std::move(conn), env.rollback_request());
    case v1::Envelope::kSelfUpgradeRequest: return StartSelfUpgrade(env.self_upgrade_request().binary(), std::move(conn));
    case v1::Envelope::kStatusRequest: {
      v1::Envelope reply;
      FillStatus(reply.mutable_status_reply());
      return conn->SendAndClose(reply);
    }
    case v1::Envelope::kAbortRequest: {
      v1::Envelope reply;
      reply.mutable_abort_reply()->set_aborted(handoff_ != nullptr);
      if (handoff_) {
        reply.mutable_abort_reply()->set_handoff_id(handoff_->machine.handoff_id());
        const std::string why = env.abort_request().reason().empty() ? "requested by the operator"
                                                                     : env.abort_request().reason();
        const TimePoint now = RealClock().Now();
        Route([&](HandoffMachine& m) { return m.OnAbort(why, now); },
              [&](NotifyHandoffMachine& m) { return m.OnAbort(why, now); });
      }
      return conn->SendAndClose(reply);
    }
    case v1::Envelope::kMetricsRequest: {
      v1::Envelope reply;
      reply.mutable_metrics_reply()->set_text(opts_.metrics_text ? opts_.metrics_text() : "");
      return conn->SendAndClose(reply);
    }
    case v1::Envelope::kEventsRequest: return events_.Serve(conn, env.events_request().follow());
    default: {
      v1::Envelope reply;
      reply.mutable_error()->set_code(v1::Error::UNRECOGNISED);
      reply.mutable_error()->set_message(
          fmt::format("admin: {} is not a request this supervisor serves", protocol::MessageName(env)));
      return conn->SendAndClose(reply);
    }
  }
}

void SupervisorImpl::FillStatus(v1::StatusReply* s) {
  const TimePoint now = RealClock().Now();
  s->set_generation(generation_number_);
  s->set_supervisor_pid(static_cast<uint32_t>(::getpid()));
  s->set_uptime_ms(static_cast<uint64_t>(ToMillis(now - started_)));
  s->set_restarts(restarts_);
  if (incumbent_ && incumbent_->alive) {
    s->set_incumbent_pid(static_cast<uint32_t>(incumbent_->pid));
    s->set_build_id(incumbent_->hello.build_id());
    s->set_incumbent_uptime_ms(static_cast<uint64_t>(ToMillis(now - incumbent_->started)));
    s->set_binary(incumbent_->binary);
    s->set_daemon_status(incumbent_->status);
  }
  if (stopping_) {
    s->set_state("stopping");
  } else if (!incumbent_ || !incumbent_->alive) {
    s->set_state("down");
  } else {
    s->set_state(Serving(*incumbent_) ? "serving" : "starting");
  }
  if (handoff_) s->set_handoff_in_progress(handoff_->machine.handoff_id());
  s->set_protocol(std::string(ChildProtocolName(opts_.notify.protocol)));
  if (plain()) s->set_strategy(std::string(NotifyStrategyName(opts_.notify.strategy)));
  if (last_result_) *s->mutable_last_handoff() = *last_result_;
  for (const auto& pin : pins_.all()) {
    auto* p = s->add_pinned();
    p->set_path(pin->path);
    for (const auto& a : pin->args) p->add_args(a);
    p->set_build_id(pin->build_id);
    p->set_script(pin->script);
    if (pin->schema) {
      p->mutable_state_schema()->set_min(pin->schema->min);
      p->mutable_state_schema()->set_max(pin->schema->max);
    }
  }
  if (probation_ && !probation_->reverting) {
    const Duration left = probation_->started + probation_->window - now;
    s->set_probation_left_ms(static_cast<uint64_t>(std::max<int64_t>(1, ToMillis(left))));
  }
  s->set_last_revert(last_revert_);
  s->set_takeover(takeover_);
  for (const auto& a : Addresses()) s->add_listeners(a);
}

}  // namespace baton::supervisor
