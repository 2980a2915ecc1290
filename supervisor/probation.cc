// SupervisorImpl, part 4 (supervisor_impl.h): after the commit
// (docs/design.md §16). The probation of a new generation, the automatic
// revert to the previous pinned binary, `baton rollback`, the crash-loop
// limit and the daemon's own health report.
#include <signal.h>

#include <fmt/format.h>

#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {
namespace {

uint64_t Ms(Duration d) { return static_cast<uint64_t>(std::max<int64_t>(0, ToMillis(d))); }

std::string KindName(HandoffKind k) {
  switch (k) {
    case HandoffKind::kUpgrade: return "upgrade";
    case HandoffKind::kRevert: return "revert";
    case HandoffKind::kRollback: return "rollback";
  }
  return "upgrade";
}

std::string Describe(const PinnedBinary& p) {
  return p.build_id.empty() ? p.path : fmt::format("{} (build id {})", p.path, p.build_id.substr(0, 12));
}

}  // namespace

v1::ProbationReport SupervisorImpl::Report(const std::string& outcome) const {
  v1::ProbationReport rep;
  rep.set_outcome(outcome);
  if (!probation_) return rep;
  rep.set_check(probation_->check);
  rep.set_reason(probation_->reason);
  rep.set_window_ms(Ms(probation_->window));
  const TimePoint end = probation_->check.empty() ? RealClock().Now() : probation_->failed_at;
  rep.set_elapsed_ms(Ms(end - probation_->started));
  if (probation_->previous) rep.set_reverted_to(probation_->previous->path);
  return rep;
}

void SupervisorImpl::StartProbation(Duration window, std::shared_ptr<AdminConnection> client,
                                    const v1::UpgradeResult& r) {
  probation_ = std::make_unique<Probation>();
  probation_->seq = ++probation_seq_;
  probation_->generation = incumbent_;
  probation_->previous = pins_.previous();
  probation_->window = window;
  probation_->started = RealClock().Now();
  probation_->client = std::move(client);
  probation_->result = r;
  Emit(MakeEvent(Level::kInfo, "probation.start", "generation pid {} is on probation for {} ms (revert to {})",
                 incumbent_->pid, ToMillis(window), Describe(*probation_->previous))
           .With("pid", int64_t{incumbent_->pid})
           .With("window_ms", ToMillis(window)));
  probation_timer_.expires_after(window);
  probation_timer_.async_wait([this, seq = probation_->seq](const boost::system::error_code& ec) {
    if (ec || !probation_ || probation_->seq != seq || !probation_->check.empty()) return;
    Emit(MakeEvent(Level::kInfo, "probation.passed", "generation pid {} passed its probation",
                   probation_->generation->pid)
             .With("pid", int64_t{probation_->generation->pid}));
    EndProbation(v1::COMMITTED, Report("passed"));
  });
  if (opts_.probation.probe_enabled) ArmProbationProbe();
}

void SupervisorImpl::ArmProbationProbe() {
  probation_probe_timer_.expires_after(opts_.probation.probe_interval);
  probation_probe_timer_.async_wait([this, seq = probation_->seq](const boost::system::error_code& ec) {
    if (ec || !probation_ || probation_->seq != seq || !probation_->check.empty()) return;
    RunProbe(io_, opts_.probation.probe, probation_->generation->pid, opts_.probation.probe_interval,
             [this, seq](bool ok, const std::string& why) {
               if (!probation_ || probation_->seq != seq || !probation_->check.empty()) return;
               if (ok) {
                 probation_->probe_failures = 0;
               } else if (++probation_->probe_failures >= opts_.probation.probe_failures) {
                 return FailProbation("probe", fmt::format("{} probes failed in a row, the last: {}",
                                                           probation_->probe_failures, why));
               }
               ArmProbationProbe();
             });
  });
}

void SupervisorImpl::FailProbation(const std::string& check, const std::string& reason) {
  if (!probation_ || probation_->reverting) return;
  if (probation_->check.empty()) {
    probation_->check = check;
    probation_->reason = reason;
    probation_->failed_at = RealClock().Now();
  }
  probation_timer_.cancel();
  probation_probe_timer_.cancel();
  Emit(MakeEvent(Level::kWarn, "probation.failed", "generation pid {} failed its probation ({}): {}",
                 probation_->generation->pid, probation_->check, probation_->reason)
           .With("pid", int64_t{probation_->generation->pid})
           .With("check", probation_->check)
           .With("reason", probation_->reason));
  probation_->reverting = true;
  const auto target = probation_->previous;
  if (auto refused = RevertTo(target, HandoffKind::kRevert, probation_->check, probation_->reason, nullptr, false);
      !refused.empty()) {
    auto rep = Report("revert_refused");
    rep.set_reason(probation_->reason + "; revert refused: " + refused);
    EndProbation(v1::FAILED, rep);
  }
}

void SupervisorImpl::EndProbation(v1::Outcome outcome, v1::ProbationReport report) {
  if (!probation_) return;
  probation_timer_.cancel();
  probation_probe_timer_.cancel();
  auto p = std::move(probation_);
  v1::UpgradeResult r = p->result;
  r.set_outcome(outcome);
  if (outcome != v1::COMMITTED) {
    r.set_reason(fmt::format("probation: {} ({}): {}", report.outcome(), report.check(), report.reason()));
  }
  *r.mutable_probation() = std::move(report);
  Emit(MakeEvent(outcome == v1::COMMITTED ? Level::kInfo : Level::kWarn, "probation.end", "{}", r.reason())
           .With("outcome", r.probation().outcome())
           .With("check", r.probation().check()));
  if (p->client) Reply(p->client, r);
}

std::string SupervisorImpl::RevertTo(const std::shared_ptr<PinnedBinary>& target, HandoffKind kind,
                                     const std::string& check, const std::string& reason,
                                     std::shared_ptr<AdminConnection> client, bool progress) {
  if (!target) return "no previous binary is pinned";
  // The data must stay readable: the previous build's schema range has to
  // cover the newest schema the serving generation may have written.
  if (incumbent_ && incumbent_->said_hello && target->schema) {
    const uint32_t written = incumbent_->hello.state_schema().max();
    if (written < target->schema->min || written > target->schema->max) {
      const std::string why = fmt::format(
          "the serving generation may have written state schema {}, which the previous build {} cannot read "
          "(it reads {})",
          written, Describe(*target), target->schema->ToString());
      Emit(MakeEvent(Level::kError, "revert.refused", "{} ({}): {}", KindName(kind), check, why)
               .With("check", check)
               .With("reason", why));
      return why;
    }
  }
  Emit(MakeEvent(Level::kWarn, "revert.start", "{} to {} ({}): {}", KindName(kind), Describe(*target), check, reason)
           .With("check", check)
           .With("reason", reason));
  // A daemon of protocol notify has no control channel: its handoff is the
  // notify machine's, and it can take part whenever it is serving.
  const bool can_hand_off = !handoff_ && incumbent_ && incumbent_->alive && Serving(*incumbent_) &&
                            (plain() || (incumbent_->channel && !incumbent_->channel->closed()));
  if (can_hand_off) {
    BeginHandoff(kind, target, target->args, std::move(client), progress, std::nullopt);
    return "";
  }
  if (incumbent_ && incumbent_->alive) {
    // It cannot take part (hung, channel gone): it is ended, and the revert
    // is a cold start once it has exited (OnServingExit).
    incumbent_->proc->Signal(SIGKILL);
    return "";
  }
  ColdRevert(target, check, reason);
  return "";
}

void SupervisorImpl::ColdRevert(const std::shared_ptr<PinnedBinary>& target, const std::string& check,
                                const std::string& reason) {
  if (stopping_) return;
  const auto from = pins_.current();
  auto g = Spawn(ChildRole::kCold, target);
  if (!g) {
    Emit(MakeEvent(Level::kError, "child.spawn_failed", "revert: cold start of {} failed: {}", target->path,
                   g.error().message));
    // The caller restarts what it can (OnServingExit, Finished).
    if (probation_) EndProbation(v1::FAILED, Report("revert_failed"));
    return;
  }
  incumbent_ = *g;
  ++generation_number_;
  restart_delay_ = opts_.restart_backoff_min;
  OnReverted(check, reason, from, target);
  // Done once it says Hello (supervisor.cc); a daemon of protocol notify has
  // none, so its revert ends here.
  if (probation_) {
    probation_->restored = *g;
    if (plain()) EndProbation(v1::REVERTED, Report("reverted"));
  }
}

void SupervisorImpl::OnReverted(const std::string& check, const std::string& reason,
                                const std::shared_ptr<PinnedBinary>& from, const std::shared_ptr<PinnedBinary>& to) {
  pins_.Serving(to);
  // Never retried by itself: restarts run the pin at the front.
  if (from && from != to) pins_.Forget(from);
  serving_exits_.clear();
  last_revert_ = fmt::format("reverted from {} to {} ({}): {}", from ? Describe(*from) : "?", Describe(*to), check,
                             reason);
  Emit(MakeEvent(Level::kWarn, "revert", "{}", last_revert_).With("check", check).With("reason", reason));
}

void SupervisorImpl::FinishRevertHandoff(const v1::UpgradeResult& r) {
  const std::string check = handoff_->kind == HandoffKind::kRollback ? "operator"
                            : probation_                            ? probation_->check
                                                                    : "crash_loop";
  const std::string reason = probation_ && handoff_->kind == HandoffKind::kRevert ? probation_->reason : r.reason();
  if (r.outcome() == v1::COMMITTED) {
    OnReverted(check, reason, handoff_->incumbent ? handoff_->incumbent->pin : nullptr, handoff_->pin);
    if (probation_) {
      auto rep = Report("reverted");
      *rep.mutable_revert() = r;
      EndProbation(v1::REVERTED, rep);
    }
    return;
  }
  if (!probation_) return;
  auto rep = Report("revert_failed");
  *rep.mutable_revert() = r;
  rep.set_reason(fmt::format("{}; the revert {}: {}", probation_->reason,
                             r.outcome() == v1::ROLLED_BACK ? "rolled back" : "failed", r.reason()));
  // The new generation died during the revert: the previous binary is
  // cold-started once the handoff is released (Do(Finished)).
  if (!handoff_->incumbent || !handoff_->incumbent->alive) return;
  EndProbation(v1::FAILED, rep);
}

void SupervisorImpl::OnRollback(std::shared_ptr<AdminConnection> conn, const v1::RollbackRequest& req) {
  v1::UpgradeResult refused;
  refused.set_outcome(v1::REFUSED);
  const bool on_probation = probation_ != nullptr;
  std::string busy = BusyReason();
  if (on_probation && !handoff_ && !probation_->reverting) busy.clear();  // a rollback ends the probation
  if (!busy.empty()) {
    refused.set_reason(busy);
    return Reply(conn, refused);
  }
  const auto target = pins_.previous();
  const std::string why = req.reason().empty() ? "requested by the operator" : req.reason();
  if (on_probation) {
    probation_->check = "operator";
    probation_->reason = why;
    probation_->failed_at = RealClock().Now();
    probation_->reverting = true;
    probation_timer_.cancel();
    probation_probe_timer_.cancel();
  }
  if (auto refusal = RevertTo(target, HandoffKind::kRollback, "operator", why, conn, req.progress());
      !refusal.empty()) {
    if (on_probation) {
      auto rep = Report("revert_refused");
      rep.set_reason(refusal);
      EndProbation(v1::FAILED, rep);
    }
    refused.set_reason("rollback: " + refusal);
    return Reply(conn, refused);
  }
}

void SupervisorImpl::OnHealthReport(const std::shared_ptr<Child>& g, const v1::HealthReport& h) {
  Emit(MakeEvent(h.healthy() ? Level::kInfo : Level::kWarn, "child.health", "pid {} reports {}{}", g->pid,
                 h.healthy() ? "healthy" : "unhealthy", h.reason().empty() ? "" : ": " + h.reason())
           .With("pid", int64_t{g->pid})
           .With("healthy", std::string(h.healthy() ? "true" : "false"))
           .With("reason", h.reason()));
  if (!h.healthy() && probation_ && g == probation_->generation && !handoff_) {
    FailProbation("health", h.reason().empty() ? "the daemon reported itself unhealthy" : h.reason());
  }
}

void SupervisorImpl::OnServingExit(const std::shared_ptr<Child>& g, const std::string& how, TimePoint now) {
  if (probation_ && g == probation_->generation) {
    if (!probation_->reverting) {
      FailProbation("exit", "the new generation " + how);
    } else {
      ColdRevert(probation_->previous, probation_->check, probation_->reason);  // it was ended for the revert
    }
  } else {
    if (probation_ && g == probation_->restored) EndProbation(v1::FAILED, Report("revert_failed"));
    // The crash-loop limit: so many exits so fast that restarting the same
    // binary again is pointless; go back to the previous one if there is one.
    serving_exits_.push_back(now);
    while (!serving_exits_.empty() && now - serving_exits_.front() > opts_.probation.crash_loop_window) {
      serving_exits_.pop_front();
    }
    const uint32_t limit = opts_.probation.crash_loop_limit;
    if (opts_.probation.crash_loop_revert && limit > 0 && serving_exits_.size() >= limit && pins_.previous()) {
      const std::string reason = fmt::format("{} exits within {} ms, the last: {}", serving_exits_.size(),
                                             ToMillis(opts_.probation.crash_loop_window), how);
      (void)RevertTo(pins_.previous(), HandoffKind::kRevert, "crash_loop", reason, nullptr, false);
    }
  }
  // Nothing replaced it (no revert, refused, or its cold start failed): the
  // usual restart with back-off.
  if (incumbent_ == g) ScheduleRestart();
}

}  // namespace baton::supervisor
