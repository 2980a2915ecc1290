// SupervisorImpl, part 2 (supervisor_impl.h): upgrades. Accepts or refuses one,
// feeds the HandoffMachine, executes its actions, reports the outcome.
#include <signal.h>

#include <random>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "crashpoints/crashpoints.h"
#include "supervisor/launch.h"
#include "supervisor/child_policy.h"
#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {
namespace {

namespace asio = boost::asio;

std::string NewHandoffId() {
  static std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:012x}", rng() & 0xffffffffffffULL);
}

// Which "after sending X" crash point fires once X is written.
void AfterSentCrashPoint(const v1::Envelope& env) {
  switch (env.msg_case()) {
    case v1::Envelope::kHelloAck: BATON_CRASH_POINT(kSupervisorAfterSendHelloAck); break;
    case v1::Envelope::kWarm: BATON_CRASH_POINT(kSupervisorAfterSendWarm); break;
    case v1::Envelope::kPrepare: BATON_CRASH_POINT(kSupervisorAfterSendPrepare); break;
    case v1::Envelope::kSeal: BATON_CRASH_POINT(kSupervisorAfterSendSeal); break;
    case v1::Envelope::kBegin: BATON_CRASH_POINT(kSupervisorAfterSendBegin); break;
    case v1::Envelope::kCommit: BATON_CRASH_POINT(kSupervisorAfterSendCommit); break;
    case v1::Envelope::kResume: BATON_CRASH_POINT(kSupervisorAfterSendResume); break;
    default: break;
  }
}

}  // namespace

void SupervisorImpl::UpgradeTo(const std::string& binary, const std::vector<std::string>& args) {
  v1::UpgradeRequest req;
  req.set_binary(binary);
  for (const auto& a : args) req.add_args(a);
  OnUpgrade(nullptr, req);
}

void SupervisorImpl::Reply(const std::shared_ptr<AdminConnection>& conn, v1::UpgradeResult result) {
  if (result.outcome() == v1::REFUSED) {
    Emit(MakeEvent(Level::kWarn, "handoff.refused", "{}", result.reason()).With("reason", result.reason()));
  }
  if (!conn) return;  // SIGHUP: events only
  v1::Envelope e;
  *e.mutable_upgrade_result() = std::move(result);
  conn->SendAndClose(e);
}

std::string SupervisorImpl::BusyReason(bool self) const {
  if (handoff_) return fmt::format("busy: handoff {} is in progress", handoff_->machine.handoff_id());
  if (self_upgrade_ && !self) return "busy: the supervisor is upgrading itself (baton upgrade --self)";
  if (stopping_) return "the supervisor is stopping";
  if (probation_) {
    return fmt::format("busy: generation pid {} is on probation (`baton rollback` reverts it now)",
                       probation_->generation ? probation_->generation->pid : 0);
  }
  if (!incumbent_ || !incumbent_->alive || !Serving(*incumbent_)) {
    return "no generation is serving right now (starting or restarting); try again";
  }
  return "";
}

void SupervisorImpl::OnUpgrade(std::shared_ptr<AdminConnection> conn, const v1::UpgradeRequest& req) {
  v1::UpgradeResult refused;
  refused.set_outcome(v1::REFUSED);
  if (auto busy = BusyReason(); !busy.empty()) {
    refused.set_reason(busy);
    return Reply(conn, refused);
  }
  const std::string requested = req.binary().empty() ? opts_.binary : req.binary();
  if (auto st = CheckExecutable(requested); !st) {
    refused.set_reason(st.error().message);
    return Reply(conn, refused);
  }
  auto allowed = CheckAllowedBinary(opts_.allowed_binaries, requested);
  if (!allowed) {
    refused.set_reason(allowed.error().message);
    return Reply(conn, refused);
  }
  // Pinned now: the bytes checked here are the bytes that run, whatever
  // happens to the path meanwhile.
  auto pin = PinnedBinary::Open(*allowed,  // canonical when an allow-list applies
                                req.args_size() > 0 ? std::vector<std::string>(req.args().begin(), req.args().end())
                                                    : opts_.args);
  if (!pin) {
    refused.set_reason(pin.error().message);
    return Reply(conn, refused);
  }
  std::optional<Duration> probation;
  if (req.has_probation_ms()) probation = std::chrono::milliseconds(req.probation_ms());
  auto args = (*pin)->args;
  BeginHandoff(HandoffKind::kUpgrade, *pin, std::move(args), std::move(conn), req.progress(), probation);
}

void SupervisorImpl::BeginHandoff(HandoffKind kind, std::shared_ptr<PinnedBinary> pin, std::vector<std::string> args,
                                  std::shared_ptr<AdminConnection> conn, bool progress,
                                  std::optional<Duration> probation) {
  const std::string binary = pin->path;
  HandoffParams params;
  params.handoff_id = NewHandoffId();
  params.timeouts = opts_.timeouts;
  params.incumbent_schema =
      protocol::VersionRange{incumbent_->hello.state_schema().min(), incumbent_->hello.state_schema().max()};
  // A daemon of protocol notify has no Hello: its handoff is the notify
  // machine's (docs/design.md §14).
  std::unique_ptr<NotifyHandoffMachine> notify;
  if (plain()) {
    NotifyHandoffParams np;
    np.handoff_id = params.handoff_id;
    np.strategy = opts_.notify.strategy;
    np.stop_signal = opts_.notify.stop_signal;
    np.ready = opts_.notify.ready;
    np.drain = opts_.timeouts.drain;
    np.term_grace = opts_.timeouts.term_grace;
    np.handoff = opts_.timeouts.handoff;
    notify = std::make_unique<NotifyHandoffMachine>(np);
  }
  params.liveness = opts_.liveness;
  handoff_ = std::make_unique<Handoff>(Handoff{
      .machine = HandoffMachine(params),
      .binary = binary,
      .args = std::move(args),
      .pin = std::move(pin),
      .kind = kind,
      .probation = probation,
      .incumbent = incumbent_,
      .successor = nullptr,
      .client = conn,
      .progress = progress,
      .started = RealClock().Now(),
      .phases = {},
      .notify = std::move(notify),
      .restored = nullptr,
  });
  Emit(MakeEvent(Level::kInfo, "handoff.start", "handoff {} to {}", params.handoff_id, binary)
           .With("handoff_id", params.handoff_id)
           .With("old_pid", int64_t{incumbent_->pid})
           .With("kind", std::string(kind == HandoffKind::kUpgrade ? "upgrade"
                                     : kind == HandoffKind::kRevert ? "revert"
                                                                     : "rollback")));
  const TimePoint now = RealClock().Now();
  Route([&](HandoffMachine& m) { return m.Start(now); }, [&](NotifyHandoffMachine& m) { return m.Start(now); });
}

void SupervisorImpl::Route(const std::function<Actions(HandoffMachine&)>& native,
                           const std::function<Actions(NotifyHandoffMachine&)>& notify) {
  if (!handoff_) return;
  Execute(handoff_->notify ? notify(*handoff_->notify) : native(handoff_->machine));
}

void SupervisorImpl::Execute(Actions actions) {
  // In the order the machine gave them. Running one may feed the machine
  // again (a spawn reports OnSpawned): what that returns queues behind, and
  // this loop, not a nested call, runs it.
  for (auto& action : actions) pending_.push_back(std::move(action));
  if (executing_) return;
  executing_ = true;
  while (!pending_.empty()) {
    Action action = std::move(pending_.front());
    pending_.pop_front();
    std::visit([this](auto& a) { Do(a); }, action);
  }
  executing_ = false;
  ArmHandoffTimer();
}

void SupervisorImpl::Do(SpawnSuccessor&) {
  auto g = Spawn(ChildRole::kSuccessor, handoff_->pin);
  const TimePoint now = RealClock().Now();
  if (!g) {
    Route([&](HandoffMachine& m) { return m.OnSpawnFailed(g.error(), now); },
          [&](NotifyHandoffMachine& m) { return m.OnSpawnFailed(g.error().message, now); });
    return;
  }
  handoff_->successor = *g;
  Route([&](HandoffMachine& m) { return m.OnSpawned(static_cast<uint32_t>(handoff_->successor->pid), now); },
        [&](NotifyHandoffMachine& m) { return m.OnSpawned(now); });
}

// Sequential rollback of a notify daemon: the old generation is gone, so its
// binary is cold-started again; it is the service from now on, and the
// handoff ends once it is ready (notify_driver.cc routes that).
void SupervisorImpl::Do(SpawnRestore&) {
  auto g = Spawn(ChildRole::kCold, handoff_->incumbent->pin);
  const TimePoint now = RealClock().Now();
  if (!g) {
    Execute(handoff_->notify->OnRestoreSpawnFailed(g.error().message, now));
    return;
  }
  handoff_->restored = *g;
  incumbent_ = *g;
  ++generation_number_;
  Execute(handoff_->notify->OnRestoreSpawned(now));
}

void SupervisorImpl::Do(SendToSuccessor& a) {
  if (handoff_->successor && handoff_->successor->channel && !handoff_->successor->channel->closed()) {
    if (a.env.has_begin()) SendHeld(handoff_->successor, a.env);
    v1::Envelope env = a.env;
    handoff_->successor->channel->Send(a.env, [env] { AfterSentCrashPoint(env); });
    if (env.has_hello_ack() && env.hello_ack().accepted()) {
      handoff_->successor->channel->SetLivenessOptions(opts_.liveness);
    }
  }
}

void SupervisorImpl::Do(SendToIncumbent& a) {
  if (handoff_->incumbent && handoff_->incumbent->channel && !handoff_->incumbent->channel->closed()) {
    if (a.env.has_resume()) SendHeld(handoff_->incumbent, a.env);
    v1::Envelope env = a.env;
    handoff_->incumbent->channel->Send(a.env, [env] { AfterSentCrashPoint(env); });
  }
}

void SupervisorImpl::Do(SignalSuccessor& a) {
  if (handoff_->successor && handoff_->successor->alive) handoff_->successor->proc->Signal(a.signal);
}

void SupervisorImpl::Do(SignalIncumbent& a) {
  if (handoff_->incumbent && handoff_->incumbent->alive) handoff_->incumbent->proc->Signal(a.signal);
}

void SupervisorImpl::Do(PhaseDone& a) {
  auto* p = handoff_->phases.add_phases();
  p->set_phase(a.phase);
  p->set_duration_us(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(a.duration).count()));
  Emit(MakeEvent(Level::kInfo, "handoff.phase", "{} took {:.3f} ms", a.phase,
                 std::chrono::duration<double, std::milli>(a.duration).count())
           .With("handoff_id", handoff_->machine.handoff_id())
           .With("phase", a.phase)
           .With("duration_us", static_cast<int64_t>(p->duration_us())));
  if (handoff_->progress && handoff_->client && !handoff_->client->closed()) {
    v1::Envelope e;
    e.mutable_upgrade_progress()->set_handoff_id(handoff_->machine.handoff_id());
    *e.mutable_upgrade_progress()->mutable_phase() = *p;
    handoff_->client->Send(e);
  }
}

void SupervisorImpl::Do(PromoteSuccessor&) {
  CloseHeld("the successor is ready and has its own");
  incumbent_ = handoff_->successor;
  // From now on this binary is the service: restarts and later upgrades
  // without --binary use it.
  opts_.binary = handoff_->binary;
  opts_.args = handoff_->args;
  ++generation_number_;
  restart_delay_ = opts_.restart_backoff_min;
  serving_exits_.clear();
  pins_.Serving(handoff_->pin);
}

void SupervisorImpl::Do(Finished& a) {
  CloseHeld(a.outcome == Outcome::kCommitted ? "committed" : "the incumbent is gone");
  v1::UpgradeResult r = handoff_->phases;
  r.set_handoff_id(handoff_->machine.handoff_id());
  r.set_outcome(ToProto(a.outcome));
  r.set_reason(a.reason);
  r.set_old_pid(handoff_->incumbent ? static_cast<uint32_t>(handoff_->incumbent->pid) : 0);
  r.set_new_pid(handoff_->successor ? static_cast<uint32_t>(handoff_->successor->pid) : 0);
  r.set_total_us(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(RealClock().Now() - handoff_->started).count()));
  Emit(MakeEvent(a.outcome == Outcome::kCommitted ? Level::kInfo : Level::kWarn, "handoff.end", "{}: {}",
                 OutcomeName(a.outcome), a.reason)
           .With("handoff_id", r.handoff_id())
           .With("outcome", std::string(OutcomeName(a.outcome)))
           .With("reason", a.reason)
           .With("old_pid", static_cast<int64_t>(r.old_pid()))
           .With("new_pid", static_cast<int64_t>(r.new_pid()))
           .With("total_us", static_cast<int64_t>(r.total_us())));
  if (handoff_->notify && opts_.notify.strategy == NotifyStrategy::kSequential) {
    const Duration window = handoff_->notify->not_ready();
    Emit(MakeEvent(Level::kInfo, "handoff.not_ready", "the service was not ready for {:.3f} ms",
                   std::chrono::duration<double, std::milli>(window).count())
             .With("handoff_id", r.handoff_id())
             .With("duration_us", static_cast<int64_t>(
                                      std::chrono::duration_cast<std::chrono::microseconds>(window).count())));
  }
  last_result_ = r;
  if (a.outcome == Outcome::kCommitted && handoff_->incumbent && handoff_->incumbent->alive) {
    Retire(handoff_->incumbent);
  }
  if (handoff_->kind != HandoffKind::kUpgrade) {
    FinishRevertHandoff(r);
  } else if (a.outcome == Outcome::kCommitted) {
    // Probation (docs/design.md §16): a window given with the request holds
    // the answer until it ends; the configured one runs after the answer.
    const Duration window = handoff_->probation.value_or(opts_.probation.window);
    if (window > Duration::zero() && pins_.previous() && incumbent_ && incumbent_->alive) {
      auto waiting = handoff_->probation ? handoff_->client : nullptr;
      if (waiting) handoff_->client.reset();
      StartProbation(window, waiting, r);
      if (!waiting) *r.mutable_probation() = Report("pending");
    } else if (window > Duration::zero()) {
      *r.mutable_probation() = Report("none");
    }
  }
  if (handoff_->client) Reply(handoff_->client, r);
  handoff_->client.reset();
  // Release everything from this handoff after the current call stack.
  asio::post(io_, [this] {
    handoff_.reset();
    handoff_timer_.cancel();
    if (incumbent_ && incumbent_->alive) return;
    // A revert whose handoff could not finish because the new generation
    // died: the previous binary is started cold instead.
    if (probation_ && probation_->reverting && probation_->previous) {
      ColdRevert(probation_->previous, probation_->check, probation_->reason);
      if (incumbent_ && incumbent_->alive) return;
    }
    ColdStart();
  });
}

// The old generation has committed: it runs its retire hook and exits on
// its own. It gets the drain grace and the term grace for that, like a
// stopping service, then SIGKILL.
void SupervisorImpl::Retire(const std::shared_ptr<Child>& g) {
  g->retired = true;
  const auto grace = opts_.timeouts.drain + opts_.timeouts.term_grace;
  auto deadline = std::make_shared<asio::steady_timer>(io_, grace);
  retire_timers_[g->pid] = deadline;
  deadline->async_wait([this, weak = std::weak_ptr<Child>(g), grace](const boost::system::error_code& ec) {
    auto g = weak.lock();
    if (ec || !g || !g->alive) return;
    Emit(MakeEvent(Level::kWarn, "child.retire_timeout", "pid {} still running {} ms after it retired; killing it",
                   g->pid, std::chrono::duration_cast<std::chrono::milliseconds>(grace).count())
             .With("pid", int64_t{g->pid}));
    g->proc->Signal(SIGKILL);
  });
}

void SupervisorImpl::ArmHandoffTimer() {
  if (!handoff_) return;
  auto d = handoff_->notify ? handoff_->notify->NextDeadline() : handoff_->machine.NextDeadline();
  if (!d) {
    handoff_timer_.cancel();
    return;
  }
  handoff_timer_.expires_at(*d);
  handoff_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !handoff_) return;
    const TimePoint now = RealClock().Now();
    Route([&](HandoffMachine& m) { return m.OnTimer(now); }, [&](NotifyHandoffMachine& m) { return m.OnTimer(now); });
  });
}

}  // namespace baton::supervisor
