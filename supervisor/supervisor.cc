#include "supervisor/supervisor.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "crashpoints/crashpoints.h"
#include "protocol/channel.h"
#include "protocol/child_process.h"
#include "protocol/launch.h"
#include "supervisor/adoption.h"
#include "supervisor/admin_server.h"
#include "supervisor/child_policy.h"
#include "supervisor/generation.h"
#include "supervisor/journal.h"

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

// How the journal names this process.
JournalEntry SelfEntry() {
  auto e = EntryFor(::getpid(), "");
  return e ? *e : JournalEntry{::getpid(), 0, ""};
}

// Ends orphans right now, blocking: used only before we serve, when their
// listeners could not be taken over and must be bound afresh.
void EndOrphansNow(const std::vector<Orphan>& orphans, const HandoffTimeouts& t) {
  for (const auto& o : orphans) (void)o.Signal(SIGTERM);
  const auto wait_all = [&](Duration limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      bool any = false;
      for (const auto& o : orphans) any = any || o.Running();
      if (!any) return true;
      ::usleep(10000);
    }
    return false;
  };
  if (wait_all(t.drain + t.term_grace)) return;
  for (const auto& o : orphans) (void)o.Signal(SIGKILL);
  wait_all(seconds(5));
}

class SupervisorImpl final : public Supervisor {
 public:
  SupervisorImpl(asio::io_context& io, SupervisorOptions opts, LogSink& log, std::vector<Listener> listeners,
                 CrashRoute crash_route, std::vector<Orphan> orphans)
      : io_(io),
        opts_(std::move(opts)),
        log_(log),
        listeners_(std::move(listeners)),
        handoff_timer_(io),
        restart_timer_(io),
        orphan_timer_(io),
        started_(RealClock().Now()),
        crash_route_(std::move(crash_route)),
        orphans_(std::move(orphans)),
        journal_path_(JournalPath(opts_.runtime_dir)),
        self_(SelfEntry()) {}

  void SetAdmin(std::unique_ptr<AdminServer> admin) { admin_ = std::move(admin); }

  void Start() override {
    Emit(MakeEvent(Level::kInfo, "supervisor.start", "supervising {} on {}", opts_.binary, fmt::join(Addresses(), ", "))
             .With("pid", int64_t{::getpid()}));
    if (orphans_.empty()) {
      UpdateJournal();
      ColdStart();
    } else {
      AdoptOrphans();
    }
  }

  // ---- a previous supervisor's generations (adoption.h) ----------------------

  void AdoptOrphans() {
    std::vector<std::string> pids;
    for (const auto& o : orphans_) pids.push_back(fmt::format("{} ({})", o.pid(), o.role()));
    Emit(MakeEvent(Level::kWarn, "supervisor.orphans",
                   "a previous supervisor left {} running; serving through their listeners until they end",
                   fmt::join(pids, ", "))
             .With("count", static_cast<int64_t>(orphans_.size())));
    UpdateJournal();
    // The orphan rules of DESIGN §3 resolve a handoff the old supervisor left
    // half done within the liveness timeout plus the incumbent's orphan grace
    // (10 s); let them, then end whatever still runs.
    orphan_settle_deadline_ = RealClock().Now() + milliseconds(opts_.liveness_timeout_ms) + seconds(11);
    CheckOrphans();
  }

  void CheckOrphans() {
    if (orphans_.empty()) return;
    size_t running = 0;
    for (const auto& o : orphans_) running += o.Running() ? 1 : 0;
    const TimePoint now = RealClock().Now();
    if (running == 0) {
      Emit(MakeEvent(Level::kInfo, "supervisor.orphans_gone", "the previous supervisor's generations have ended"));
      orphans_.clear();
      orphan_timer_.cancel();
      UpdateJournal();
      ColdStart();
      return;
    }
    if (!orphans_signalled_ && (running <= 1 || now >= orphan_settle_deadline_)) {
      // Graceful: the orphan drains its connections at response boundaries
      // and exits; the listeners stay open in us meanwhile.
      orphans_signalled_ = true;
      for (const auto& o : orphans_) {
        if (!o.Running()) continue;
        Emit(MakeEvent(Level::kInfo, "supervisor.orphan_term", "ending orphan pid {} (SIGTERM)", o.pid())
                 .With("pid", int64_t{o.pid()}));
        (void)o.Signal(SIGTERM);
      }
      orphan_kill_deadline_ = now + opts_.timeouts.drain + opts_.timeouts.term_grace;
    }
    if (orphans_signalled_ && now >= orphan_kill_deadline_) {
      for (const auto& o : orphans_) {
        if (o.Running()) (void)o.Signal(SIGKILL);
      }
    }
    // Orphans are not our children, so nothing tells us they ended: poll
    // (which also reaches the deadlines).
    orphan_timer_.expires_after(milliseconds(50));
    orphan_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) CheckOrphans();
    });
  }

  void UpdateJournal() {
    JournalState state;
    state.supervisor = self_;
    for (const auto& o : orphans_) state.children.push_back(o.entry());
    for (const auto& [n, g] : generations_) {
      if (g->alive) state.children.push_back(g->journal);
    }
    if (auto st = WriteJournal(journal_path_, state); !st) {
      Emit(MakeEvent(Level::kWarn, "supervisor.journal", "{}", st.error().message));
    }
  }

  std::vector<std::pair<std::string, int>> ListenerFds() const override {
    std::vector<std::pair<std::string, int>> out;
    for (const auto& l : listeners_) out.emplace_back(l.name(), l.fd());
    return out;
  }

  void UpgradeTo(const std::string& binary, const std::vector<std::string>& args) override {
    v1::UpgradeRequest req;
    req.set_binary(binary);
    for (const auto& a : args) req.add_args(a);
    OnUpgrade(nullptr, req);
  }

  std::vector<std::string> Addresses() const override {
    std::vector<std::string> out;
    for (const auto& l : listeners_) out.push_back(l.name() + "=" + l.Address());
    return out;
  }

  void Stop(std::function<void()> done) override {
    stopping_ = true;
    Emit(MakeEvent(Level::kInfo, "supervisor.stop", "stopping: draining the serving generation, then exiting"));
    restart_timer_.cancel();
    orphan_timer_.cancel();
    for (const auto& o : orphans_) (void)o.Signal(SIGTERM);
    orphans_.clear();
    if (handoff_) Execute(handoff_->OnAbort("supervisor stopping", RealClock().Now()));
    for (auto& [n, g] : generations_) {
      if (g->alive) g->proc->Signal(SIGTERM);
    }
    stop_done_ = std::move(done);
    // SIGTERM asks the daemon to drain and exit; it gets the drain grace for
    // that before the term grace runs out and SIGKILL follows.
    auto deadline = std::make_shared<asio::steady_timer>(io_, opts_.timeouts.drain + opts_.timeouts.term_grace);
    deadline->async_wait([this, deadline](const boost::system::error_code&) {
      for (auto& [n, g] : generations_) {
        if (g->alive) g->proc->Signal(SIGKILL);
      }
    });
    MaybeStopped();
  }

  // ---- admin requests -------------------------------------------------------

  void OnAdminRequest(std::shared_ptr<AdminConnection> conn, const v1::Envelope& env) {
    switch (env.msg_case()) {
      case v1::Envelope::kUpgradeRequest: return OnUpgrade(std::move(conn), env.upgrade_request());
      case v1::Envelope::kStatusRequest: {
        v1::Envelope reply;
        FillStatus(reply.mutable_status_reply());
        return conn->SendAndClose(reply);
      }
      case v1::Envelope::kAbortRequest: {
        v1::Envelope reply;
        reply.mutable_abort_reply()->set_aborted(handoff_ != nullptr);
        if (handoff_) {
          reply.mutable_abort_reply()->set_handoff_id(handoff_->handoff_id());
          const std::string why = env.abort_request().reason().empty() ? "requested by the operator"
                                                                       : env.abort_request().reason();
          Execute(handoff_->OnAbort(why, RealClock().Now()));
        }
        return conn->SendAndClose(reply);
      }
      case v1::Envelope::kMetricsRequest: {
        v1::Envelope reply;
        reply.mutable_metrics_reply()->set_text(opts_.metrics_text ? opts_.metrics_text() : "");
        return conn->SendAndClose(reply);
      }
      case v1::Envelope::kEventsRequest: {
        for (const auto& line : recent_events_) {
          v1::Envelope e;
          e.mutable_event_record()->set_json(line);
          conn->Send(e);
        }
        if (env.events_request().follow()) {
          followers_.push_back(conn);
        } else {
          conn->CloseAfterWrites();
        }
        return;
      }
      default: {
        v1::Envelope reply;
        reply.mutable_error()->set_code(v1::Error::UNRECOGNISED);
        reply.mutable_error()->set_message(
            fmt::format("admin: {} is not a request this supervisor serves", protocol::MessageName(env)));
        return conn->SendAndClose(reply);
      }
    }
  }

  void Reply(const std::shared_ptr<AdminConnection>& conn, v1::UpgradeResult result) {
    if (result.outcome() == v1::REFUSED) {
      Emit(MakeEvent(Level::kWarn, "handoff.refused", "{}", result.reason()).With("reason", result.reason()));
    }
    if (!conn) return;  // SIGHUP: events only
    v1::Envelope e;
    *e.mutable_upgrade_result() = std::move(result);
    conn->SendAndClose(e);
  }

  void OnUpgrade(std::shared_ptr<AdminConnection> conn, const v1::UpgradeRequest& req) {
    v1::UpgradeResult refused;
    refused.set_outcome(v1::REFUSED);
    if (handoff_) {
      refused.set_reason(fmt::format("busy: handoff {} is in progress", handoff_->handoff_id()));
      return Reply(conn, refused);
    }
    if (stopping_) {
      refused.set_reason("the supervisor is stopping");
      return Reply(conn, refused);
    }
    if (!incumbent_ || !incumbent_->alive || !incumbent_->said_hello) {
      refused.set_reason("no generation is serving right now (starting or restarting); try again");
      return Reply(conn, refused);
    }
    const std::string requested = req.binary().empty() ? opts_.binary : req.binary();
    if (auto st = protocol::CheckExecutable(requested); !st) {
      refused.set_reason(st.error().message);
      return Reply(conn, refused);
    }
    auto allowed = CheckAllowedBinary(opts_.allowed_binaries, requested);
    if (!allowed) {
      refused.set_reason(allowed.error().message);
      return Reply(conn, refused);
    }
    const std::string binary = *allowed;  // canonical when an allow-list applies
    HandoffParams params;
    params.handoff_id = NewHandoffId();
    params.timeouts = opts_.timeouts;
    params.incumbent_schema =
        protocol::VersionRange{incumbent_->hello.state_schema().min(), incumbent_->hello.state_schema().max()};
    params.heartbeat_interval_ms = opts_.heartbeat_interval_ms;
    params.liveness_timeout_ms = opts_.liveness_timeout_ms;
    handoff_ = std::make_unique<HandoffMachine>(params);
    handoff_binary_ = binary;
    handoff_args_ = req.args_size() > 0 ? std::vector<std::string>(req.args().begin(), req.args().end()) : opts_.args;
    handoff_incumbent_ = incumbent_;
    handoff_client_ = conn;
    handoff_progress_ = req.progress();
    handoff_started_ = RealClock().Now();
    current_phases_.Clear();
    Emit(MakeEvent(Level::kInfo, "handoff.start", "handoff {} to {}", params.handoff_id, binary)
             .With("handoff_id", params.handoff_id)
             .With("old_pid", int64_t{incumbent_->pid}));
    Execute(handoff_->Start(RealClock().Now()));
  }

  void FillStatus(v1::StatusReply* s) {
    const TimePoint now = RealClock().Now();
    s->set_generation(generation_count_);
    s->set_supervisor_pid(static_cast<uint32_t>(::getpid()));
    s->set_uptime_ms(static_cast<uint64_t>(ToMillis(now - started_)));
    s->set_restarts(restarts_);
    if (incumbent_ && incumbent_->alive) {
      s->set_incumbent_pid(static_cast<uint32_t>(incumbent_->pid));
      s->set_build_id(incumbent_->hello.build_id());
      s->set_incumbent_uptime_ms(static_cast<uint64_t>(ToMillis(now - incumbent_->started)));
      s->set_binary(incumbent_->binary);
    }
    if (handoff_) s->set_handoff_in_progress(handoff_->handoff_id());
    if (last_result_) *s->mutable_last_handoff() = *last_result_;
  }

  // ---- children -------------------------------------------------------------

  Result<std::shared_ptr<Generation>> Spawn(const std::string& role, const std::string& binary,
                                            const std::vector<std::string>& args) {
    SpawnSpec spec;
    spec.number = ++spawned_;
    spec.role = role;
    spec.binary = binary;
    spec.args = args;
    spec.data_dir = opts_.data_dir;
    spec.crash_at = crash_route_.TakeFor(role);
    spec.base_env = opts_.child_environment;
    spec.liveness = {milliseconds(opts_.heartbeat_interval_ms), milliseconds(opts_.liveness_timeout_ms),
                     milliseconds(opts_.liveness_timeout_ms)};
    // Until its Hello, a child has the hello timeout to speak.
    spec.liveness.liveness_timeout = std::max(spec.liveness.liveness_timeout, opts_.timeouts.hello);
    auto g = SpawnGeneration(io_, listeners_, spec,
                             {[this](const auto& g, const v1::Envelope& env) { OnChildMessage(g, env); },
                              [this](const auto& g, const Error& e) { OnChildClosed(g, e); },
                              [this](const auto& g, const std::string& how) { OnChildExit(g, how); }});
    if (!g) return g.error();
    if (auto e = EntryFor((*g)->pid, role); e) (*g)->journal = *e;
    generations_[(*g)->number] = *g;
    UpdateJournal();
    Emit(MakeEvent(Level::kInfo, "child.spawn", "spawned {} {} as pid {}", role, binary, (*g)->pid)
             .With("pid", int64_t{(*g)->pid})
             .With("role", role));
    return g;
  }

  void ColdStart() {
    if (stopping_) return;
    auto g = Spawn("cold", opts_.binary, opts_.args);
    if (!g) {
      Emit(MakeEvent(Level::kError, "child.spawn_failed", "cold start failed: {}", g.error().message));
      ScheduleRestart();
      return;
    }
    incumbent_ = *g;
    ++generation_count_;
  }

  void ScheduleRestart() {
    if (stopping_) return;
    const Duration delay = restart_delay_;
    restart_delay_ = std::min(restart_delay_ * 2, opts_.restart_backoff_max);
    ++restarts_;
    Emit(MakeEvent(Level::kWarn, "child.restart", "restarting the daemon in {} ms", ToMillis(delay))
             .With("delay_ms", ToMillis(delay)));
    restart_timer_.expires_after(delay);
    restart_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) ColdStart();
    });
  }

  void OnChildMessage(const std::shared_ptr<Generation>& g, const v1::Envelope& env) {
    const TimePoint now = RealClock().Now();
    if (env.has_hello()) {
      if (env.hello().pid() != static_cast<uint32_t>(g->pid)) {
        g->channel->SendErrorAndClose(v1::Error::UNEXPECTED,
                                      Error(Errc::kProtocolError, fmt::format("Hello claims pid {} but the child is pid {}",
                                                                              env.hello().pid(), g->pid)));
        OnChildClosed(g, Error(Errc::kProtocolError, "Hello with the wrong pid"));
        return;
      }
      g->hello = env.hello();
      g->said_hello = true;
    }
    if (handoff_ && g == successor_) {
      Execute(handoff_->OnSuccessorMessage(env, now));
      return;
    }
    if (handoff_ && g == handoff_incumbent_) {
      Execute(handoff_->OnIncumbentMessage(env, now));
      return;
    }
    if (env.has_hello() && g->role == "cold") {
      v1::Envelope ack;
      auto* a = ack.mutable_hello_ack();
      auto version = protocol::Negotiate({protocol::kProtocolMin, protocol::kProtocolMax},
                                         {env.hello().protocol().min(), env.hello().protocol().max()}, "protocol",
                                         "supervisor", "daemon");
      a->set_accepted(version.has_value());
      if (version) a->set_protocol_version(*version);
      if (!version) a->set_refusal(version.error().message);
      a->set_heartbeat_interval_ms(opts_.heartbeat_interval_ms);
      a->set_liveness_timeout_ms(opts_.liveness_timeout_ms);
      g->channel->Send(ack);
      if (version) {
        g->channel->SetLivenessOptions({milliseconds(opts_.heartbeat_interval_ms),
                                        milliseconds(opts_.liveness_timeout_ms),
                                        milliseconds(opts_.liveness_timeout_ms)});
        Emit(MakeEvent(Level::kInfo, "child.hello", "generation pid {} ({}) is up", g->pid, env.hello().build_id())
                 .With("pid", int64_t{g->pid}));
      } else {
        Emit(MakeEvent(Level::kError, "child.refused", "{}", version.error().message));
      }
      return;
    }
    if (env.has_error()) {
      Emit(MakeEvent(Level::kWarn, "child.error", "pid {} says: {}", g->pid, env.error().message()));
    }
  }

  void OnChildClosed(const std::shared_ptr<Generation>& g, const Error& e) {
    const TimePoint now = RealClock().Now();
    if (g->retired) {
      // A retired generation closes its channel on its way out; its exit
      // (or the retire deadline) follows.
      Emit(MakeEvent(Level::kInfo, "child.channel_closed", "pid {} (retired): {}", g->pid, e.message)
               .With("pid", int64_t{g->pid}));
      return;
    }
    // While the service stops, a generation closing its channel is the drain
    // we asked for, not a fault.
    Emit(MakeEvent(stopping_ ? Level::kInfo : Level::kWarn, "child.channel_closed", "pid {}: {}", g->pid, e.message)
             .With("pid", int64_t{g->pid}));
    if (handoff_ && g == successor_) {
      Execute(handoff_->OnSuccessorChannelClosed(e, now));
      return;
    }
    if (handoff_ && g == handoff_incumbent_) {
      Execute(handoff_->OnIncumbentChannelClosed(e, now));
      return;
    }
    // A generation we can no longer talk to (hung, or broken channel) must
    // not keep the data: end it; its exit triggers a restart. While the
    // service stops, a daemon draining after SIGTERM closes its channel
    // first; Stop()'s deadline bounds it instead.
    if (g->alive && !stopping_) g->proc->Signal(SIGKILL);
  }

  void OnChildExit(const std::shared_ptr<Generation>& g, const std::string& how) {
    g->alive = false;
    if (auto it = retire_timers_.find(g->pid); it != retire_timers_.end()) {
      it->second->cancel();
      retire_timers_.erase(it);
    }
    g->channel->Close();
    generations_.erase(g->number);
    UpdateJournal();
    Emit(MakeEvent(Level::kInfo, "child.exit", "pid {} {}", g->pid, how).With("pid", int64_t{g->pid}).With("how", how));
    const TimePoint now = RealClock().Now();
    if (handoff_ && g == successor_) {
      Execute(handoff_->OnSuccessorExited(how, now));
    } else if (handoff_ && g == handoff_incumbent_) {
      Execute(handoff_->OnIncumbentExited(how, now));
    } else if (g == incumbent_ && !handoff_) {
      if (now - g->started > seconds(10)) restart_delay_ = opts_.restart_backoff_min;
      ScheduleRestart();
    }
    MaybeStopped();
  }

  void MaybeStopped() {
    if (!stopping_ || !stop_done_) return;
    for (auto& [n, g] : generations_) {
      if (g->alive) return;
    }
    ::unlink(journal_path_.c_str());  // nothing left to adopt
    auto done = std::move(stop_done_);
    stop_done_ = nullptr;
    asio::post(io_, done);
  }

  // ---- the handoff ------------------------------------------------------------

  void Execute(Actions actions) {
    for (auto& action : actions) {
      std::visit([this](auto& a) { Do(a); }, action);
    }
    ArmHandoffTimer();
  }

  void Do(SpawnSuccessor&) {
    auto g = Spawn("successor", handoff_binary_, handoff_args_);
    if (!g) {
      Execute(handoff_->OnSpawnFailed(g.error(), RealClock().Now()));
      return;
    }
    successor_ = *g;
    Execute(handoff_->OnSpawned(static_cast<uint32_t>(successor_->pid), RealClock().Now()));
  }
  void Do(SendToSuccessor& a) {
    if (successor_ && !successor_->channel->closed()) {
      v1::Envelope env = a.env;
      successor_->channel->Send(a.env, [env] { AfterSentCrashPoint(env); });
      if (env.has_hello_ack() && env.hello_ack().accepted()) {
        successor_->channel->SetLivenessOptions({milliseconds(opts_.heartbeat_interval_ms),
                                                 milliseconds(opts_.liveness_timeout_ms),
                                                 milliseconds(opts_.liveness_timeout_ms)});
      }
    }
  }
  void Do(SendToIncumbent& a) {
    if (handoff_incumbent_ && !handoff_incumbent_->channel->closed()) {
      v1::Envelope env = a.env;
      handoff_incumbent_->channel->Send(a.env, [env] { AfterSentCrashPoint(env); });
    }
  }
  void Do(SignalSuccessor& a) {
    if (successor_ && successor_->alive) successor_->proc->Signal(a.signal);
  }
  void Do(SignalIncumbent& a) {
    if (handoff_incumbent_ && handoff_incumbent_->alive) handoff_incumbent_->proc->Signal(a.signal);
  }
  void Do(PhaseDone& a) {
    auto* p = current_phases_.add_phases();
    p->set_phase(a.phase);
    p->set_duration_us(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(a.duration).count()));
    Emit(MakeEvent(Level::kInfo, "handoff.phase", "{} took {:.3f} ms", a.phase,
                   std::chrono::duration<double, std::milli>(a.duration).count())
             .With("handoff_id", handoff_->handoff_id())
             .With("phase", a.phase)
             .With("duration_us", static_cast<int64_t>(p->duration_us())));
    if (handoff_progress_ && handoff_client_ && !handoff_client_->closed()) {
      v1::Envelope e;
      e.mutable_upgrade_progress()->set_handoff_id(handoff_->handoff_id());
      *e.mutable_upgrade_progress()->mutable_phase() = *p;
      handoff_client_->Send(e);
    }
  }
  void Do(PromoteSuccessor&) {
    incumbent_ = successor_;
    // From now on this binary is the service: restarts and later upgrades
    // without --binary use it.
    opts_.binary = handoff_binary_;
    opts_.args = handoff_args_;
    ++generation_count_;
    restart_delay_ = opts_.restart_backoff_min;
  }
  void Do(Finished& a) {
    v1::UpgradeResult r = current_phases_;
    r.set_handoff_id(handoff_->handoff_id());
    r.set_outcome(ToProto(a.outcome));
    r.set_reason(a.reason);
    r.set_old_pid(handoff_incumbent_ ? static_cast<uint32_t>(handoff_incumbent_->pid) : 0);
    r.set_new_pid(successor_ ? static_cast<uint32_t>(successor_->pid) : 0);
    r.set_total_us(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(RealClock().Now() - handoff_started_).count()));
    Emit(MakeEvent(a.outcome == Outcome::kCommitted ? Level::kInfo : Level::kWarn, "handoff.end", "{}: {}",
                   OutcomeName(a.outcome), a.reason)
             .With("handoff_id", r.handoff_id())
             .With("outcome", std::string(OutcomeName(a.outcome)))
             .With("reason", a.reason)
             .With("old_pid", static_cast<int64_t>(r.old_pid()))
             .With("new_pid", static_cast<int64_t>(r.new_pid()))
             .With("total_us", static_cast<int64_t>(r.total_us())));
    last_result_ = r;
    if (a.outcome == Outcome::kCommitted && handoff_incumbent_ && handoff_incumbent_->alive) {
      Retire(handoff_incumbent_);
    }
    if (handoff_client_) Reply(handoff_client_, r);
    handoff_client_.reset();
    // Release everything from this handoff after the current call stack.
    asio::post(io_, [this] {
      handoff_.reset();
      successor_.reset();
      handoff_incumbent_.reset();
      handoff_timer_.cancel();
      if (!incumbent_ || !incumbent_->alive) ColdStart();
    });
  }

  // The old generation has committed: it runs its retire hook and exits on
  // its own. It gets the drain grace and the term grace for that, like a
  // stopping service, then SIGKILL.
  void Retire(const std::shared_ptr<Generation>& g) {
    g->retired = true;
    const auto grace = opts_.timeouts.drain + opts_.timeouts.term_grace;
    auto deadline = std::make_shared<asio::steady_timer>(io_, grace);
    retire_timers_[g->pid] = deadline;
    deadline->async_wait([this, weak = std::weak_ptr<Generation>(g), grace](const boost::system::error_code& ec) {
      auto g = weak.lock();
      if (ec || !g || !g->alive) return;
      Emit(MakeEvent(Level::kWarn, "child.retire_timeout", "pid {} still running {} ms after it retired; killing it",
                     g->pid, std::chrono::duration_cast<std::chrono::milliseconds>(grace).count())
               .With("pid", int64_t{g->pid}));
      g->proc->Signal(SIGKILL);
    });
  }

  void ArmHandoffTimer() {
    if (!handoff_) return;
    auto d = handoff_->NextDeadline();
    if (!d) {
      handoff_timer_.cancel();
      return;
    }
    handoff_timer_.expires_at(*d);
    handoff_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !handoff_) return;
      Execute(handoff_->OnTimer(RealClock().Now()));
    });
  }

  void Emit(Event e) {
    log_.Emit(e);
    const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    std::string json = ToJson(e, wall_ms);
    if (opts_.on_event) opts_.on_event(e, json);
    recent_events_.push_back(json);
    if (recent_events_.size() > 1000) recent_events_.pop_front();
    for (auto it = followers_.begin(); it != followers_.end();) {
      if ((*it)->closed()) {
        it = followers_.erase(it);
        continue;
      }
      v1::Envelope rec;
      rec.mutable_event_record()->set_json(json);
      (*it)->Send(rec);
      ++it;
    }
  }

  asio::io_context& io_;
  SupervisorOptions opts_;
  LogSink& log_;
  std::vector<Listener> listeners_;
  std::map<pid_t, std::shared_ptr<asio::steady_timer>> retire_timers_;  // by pid of a retired generation
  std::unique_ptr<AdminServer> admin_;
  asio::steady_timer handoff_timer_;
  asio::steady_timer restart_timer_;
  asio::steady_timer orphan_timer_;
  TimePoint started_;
  CrashRoute crash_route_;
  std::vector<Orphan> orphans_;
  bool orphans_signalled_ = false;
  TimePoint orphan_settle_deadline_;
  TimePoint orphan_kill_deadline_;
  std::string journal_path_;
  JournalEntry self_;  // how the journal names us

  std::map<uint64_t, std::shared_ptr<Generation>> generations_;
  std::shared_ptr<Generation> incumbent_;
  uint64_t spawned_ = 0;
  uint64_t generation_count_ = 0;
  uint32_t restarts_ = 0;
  Duration restart_delay_ = milliseconds(100);

  std::unique_ptr<HandoffMachine> handoff_;
  std::shared_ptr<Generation> successor_;
  std::shared_ptr<Generation> handoff_incumbent_;
  std::shared_ptr<AdminConnection> handoff_client_;
  bool handoff_progress_ = false;
  std::string handoff_binary_;
  std::vector<std::string> handoff_args_;
  TimePoint handoff_started_;
  v1::UpgradeResult current_phases_;
  std::optional<v1::UpgradeResult> last_result_;

  std::deque<std::string> recent_events_;
  std::vector<std::shared_ptr<AdminConnection>> followers_;
  bool stopping_ = false;
  std::function<void()> stop_done_;
};

}  // namespace

Result<std::unique_ptr<Supervisor>> Supervisor::Create(asio::io_context& io, SupervisorOptions opts, LogSink& log) {
  if (opts.binary.empty()) return Error(Errc::kInvalidArgument, "no daemon binary given (after --)");
  if (auto st = protocol::CheckExecutable(opts.binary); !st) return st.error();
  if (opts.data_dir.empty()) return Error(Errc::kInvalidArgument, "--data-dir is required");
  struct stat st {};
  if (::stat(opts.data_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(Errc::kInvalidArgument, fmt::format("--data-dir {}: not an existing directory", opts.data_dir));
  }
  if (opts.runtime_dir.empty()) return Error(Errc::kInvalidArgument, "--runtime-dir is required");
  if (opts.listeners.empty()) return Error(Errc::kInvalidArgument, "at least one --listen is required");
  auto crash_route = CrashRoute::FromEnvironment();
  if (!crash_route) return crash_route.error();
  // A previous supervisor of this runtime dir: refuse while it runs; take
  // over what it left running when it is gone (adoption.h).
  std::vector<Orphan> orphans;
  auto journal = ReadJournal(JournalPath(opts.runtime_dir));
  if (!journal) {
    log.Emit(MakeEvent(Level::kWarn, "supervisor.journal", "ignoring it: {}", journal.error().message));
  } else if (*journal) {
    const JournalEntry& prev = (*journal)->supervisor;
    if (prev.pid != ::getpid() && StillRunning(prev)) {
      return Error(Errc::kFailedPrecondition,
                   fmt::format("another supervisor (pid {}) is running for runtime dir {}; stop it first "
                               "(a hung one must be killed)",
                               prev.pid, opts.runtime_dir));
    }
    orphans = FindOrphans(**journal);
  }
  std::vector<Listener> listeners;
  for (const auto& spec : opts.listeners) {
    for (const auto& l : listeners) {
      if (l.name() == spec.name) return Error(Errc::kInvalidArgument, fmt::format("listener name '{}' used twice", spec.name));
    }
    // A socket systemd handed us (activation or the FD store) is the same
    // socket the orphans hold; only the others are taken from them.
    if (!orphans.empty() && spec.inherited_fd < 0) {
      if (auto fd = TakeListener(orphans, spec); fd) {
        log.Emit(MakeEvent(Level::kInfo, "supervisor.listener_adopted",
                           "listener {}: took over the socket a previous generation still holds", spec.name));
        listeners.push_back(Listener::Adopt(spec, *fd));
        continue;
      } else {
        log.Emit(MakeEvent(Level::kWarn, "supervisor.listener_not_adopted",
                           "{}; ending the previous generations before binding (connections may be refused "
                           "meanwhile)",
                           fd.error().message));
        EndOrphansNow(orphans, opts.timeouts);
        orphans.clear();
      }
    }
    auto l = Listener::Bind(spec);
    if (!l) return l.error();
    listeners.push_back(std::move(*l));
  }
  opts.admin_uids.insert(::geteuid());
  opts.admin_uids.insert(0);
  auto impl = std::make_unique<SupervisorImpl>(io, opts, log, std::move(listeners), std::move(*crash_route),
                                               std::move(orphans));
  auto* raw = impl.get();
  auto admin = AdminServer::Create(io, opts.runtime_dir, opts.admin_uids,
                                   [raw](std::shared_ptr<AdminConnection> c, const v1::Envelope& e) {
                                     raw->OnAdminRequest(std::move(c), e);
                                   });
  if (!admin) return admin.error();
  impl->SetAdmin(std::move(*admin));
  return std::unique_ptr<Supervisor>(std::move(impl));
}

}  // namespace baton::supervisor
