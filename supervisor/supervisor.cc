#include "supervisor/supervisor.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "incumbent/incumbent_session.h"
#include "supervisor/hello.h"
#include "supervisor/launch.h"
#include "supervisor/reattach.h"
#include "supervisor/self_exec.h"
#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {
namespace {

namespace asio = boost::asio;

// Orphans are not our children, so nothing tells us they ended: we poll.
constexpr Duration kOrphanPollBlocking = milliseconds(10);
// How long a SIGKILLed orphan may take to be gone.
constexpr Duration kKilledOrphanWait = seconds(5);
// A generation that ran this long was not crash-looping: its restart starts
// over at the shortest back-off.
constexpr Duration kStableRun = seconds(10);

std::set<std::string> ListenerNames(const std::vector<Listener>& listeners) {
  std::set<std::string> out;
  for (const auto& l : listeners) out.insert(l.name());
  return out;
}

// How the adoption record names this process.
RecordedProcess SelfEntry() {
  auto e = EntryFor(::getpid(), "");
  return e ? *e : RecordedProcess{::getpid(), 0, ""};
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
      std::this_thread::sleep_for(kOrphanPollBlocking);
    }
    return false;
  };
  if (wait_all(t.drain + t.term_grace)) return;
  for (const auto& o : orphans) (void)o.Signal(SIGKILL);
  wait_all(kKilledOrphanWait);
}

}  // namespace

SupervisorImpl::SupervisorImpl(asio::io_context& io, SupervisorOptions opts, LogSink& log,
                               std::vector<Listener> listeners, CrashRoute crash_route, std::vector<Orphan> orphans,
                               OwnedFd reattach)
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
      record_path_(AdoptionRecordPath(opts_.runtime_dir)),
      self_(SelfEntry()),
      reattach_(std::move(reattach)),
      pins_(opts_.probation.keep_binaries),
      probation_timer_(io),
      probation_probe_timer_(io),
      fd_store_(opts_.notify.fd_store_max, ListenerNames(listeners_)),
      self_binary_(OwnBinaryPath()) {}

void SupervisorImpl::Start() {
  if (resumed_) return FinishResume();
  Emit(MakeEvent(Level::kInfo, "supervisor.start", "supervising {} on {}", opts_.binary, fmt::join(Addresses(), ", "))
           .With("pid", int64_t{::getpid()}));
  if (orphans_.empty()) {
    UpdateAdoptionRecord();
    ColdStart();
  } else if (reattach_.get() >= 0) {
    StartReattach();
  } else {
    // A handoff was in flight: the orphan rules leave one generation, which
    // then listens (a daemon of protocol notify never does).
    reattach_when_settled_ = orphans_.size() > 1 && !plain();
    AdoptOrphans();
  }
}

void SupervisorImpl::UpdateAdoptionRecord() {
  AdoptionRecord state;
  state.supervisor = self_;
  for (const auto& o : orphans_) state.children.push_back(o.entry());
  for (const auto& [n, g] : children_) {
    if (g->alive) state.children.push_back(g->record);
  }
  if (auto st = WriteAdoptionRecord(record_path_, state); !st) {
    Emit(MakeEvent(Level::kWarn, "supervisor.journal", "{}", st.error().message));
  }
}

std::vector<std::pair<std::string, int>> SupervisorImpl::ListenerFds() const {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& l : listeners_) out.emplace_back(l.name(), l.fd());
  return out;
}

std::vector<std::string> SupervisorImpl::Addresses() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(l.name() + "=" + l.Address());
  return out;
}

void SupervisorImpl::Stop(std::function<void()> done) {
  stopping_ = true;
  Emit(MakeEvent(Level::kInfo, "supervisor.stop", "stopping: draining the serving generation, then exiting"));
  restart_timer_.cancel();
  orphan_timer_.cancel();
  probation_timer_.cancel();
  probation_probe_timer_.cancel();
  for (const auto& o : orphans_) (void)o.Signal(SIGTERM);
  orphans_.clear();
  reattaching_.reset();
  if (handoff_) {
    const TimePoint now = RealClock().Now();
    Route([&](HandoffMachine& m) { return m.OnAbort("supervisor stopping", now); },
          [&](NotifyHandoffMachine& m) { return m.OnAbort("supervisor stopping", now); });
  }
  // A daemon of protocol notify gets its own graceful stop signal.
  const int stop_signal = plain() ? opts_.notify.stop_signal : SIGTERM;
  for (auto& [n, g] : children_) {
    if (g->alive) g->proc->Signal(stop_signal);
  }
  stop_done_ = std::move(done);
  // SIGTERM asks the daemon to drain and exit; it gets the drain grace for
  // that before the term grace runs out and SIGKILL follows.
  auto deadline = std::make_shared<asio::steady_timer>(io_, opts_.timeouts.drain + opts_.timeouts.term_grace);
  deadline->async_wait([this, deadline](const boost::system::error_code&) {
    for (auto& [n, g] : children_) {
      if (g->alive) g->proc->Signal(SIGKILL);
    }
  });
  MaybeStopped();
}

// ---- children -------------------------------------------------------------

ChildCallbacks SupervisorImpl::Callbacks() {
  return {[this](const auto& g, const v1::Envelope& env) { OnChildMessage(g, env); },
          [this](const auto& g, v1::Envelope env, std::vector<OwnedFd> fds) {
            OnChildFds(g, std::move(env), std::move(fds));
          },
          [this](const auto& g, const Error& e) { OnChildClosed(g, e); },
          [this](const auto& g, const ChildExit& how) { OnChildExit(g, how); }};
}

Result<std::shared_ptr<Child>> SupervisorImpl::Spawn(ChildRole role, const std::shared_ptr<PinnedBinary>& pin) {
  const std::string& binary = pin->path;
  SpawnSpec spec;
  spec.number = ++spawned_;
  spec.role = role;
  spec.pin = pin;
  spec.args = pin->args;
  spec.data_dir = opts_.data_dir;
  spec.crash_at = crash_route_.TakeFor(role);
  spec.base_env = opts_.child_environment;
  spec.liveness = opts_.liveness;
  // Until its Hello, a child has the hello timeout to speak.
  spec.liveness.liveness_timeout = std::max(spec.liveness.liveness_timeout, opts_.timeouts.hello);
  // Every child gets a NOTIFY_SOCKET of its own (docs/design.md §14); a
  // daemon of protocol notify also gets the FD store after its listeners.
  auto notify = NotifySocket::Bind(io_, fmt::format("{}/notify.{}", opts_.runtime_dir, spec.number));
  if (!notify) return notify.error();
  spec.notify_path = (*notify)->path();
  spec.plain = plain();
  if (spec.plain) spec.stored_fds = fd_store_.Entries();
  spec.watchdog = opts_.notify.watchdog;
  if (!spec.plain) spec.reattach_dir = std::filesystem::absolute(opts_.runtime_dir).string();
  auto g = SpawnChild(io_, listeners_, spec, Callbacks());
  if (!g) return g.error();
  if (auto e = EntryFor((*g)->pid, std::string(ChildRoleName(role))); e) (*g)->record = *e;
  (*g)->notify = std::move(*notify);
  children_[(*g)->number] = *g;
  UpdateAdoptionRecord();
  Emit(MakeEvent(Level::kInfo, "child.spawn", "spawned {} {} as pid {}", ChildRoleName(role), binary, (*g)->pid)
           .With("pid", int64_t{(*g)->pid})
           .With("role", std::string(ChildRoleName(role)))
           .With("build_id", pin->build_id));
  StartNotify(*g);
  return g;
}

void SupervisorImpl::ColdStart() {
  if (stopping_) return;
  // A restart runs the bytes that served (pinned), not whatever the path
  // holds now: a deploy's new file is started by an upgrade only, and a
  // reverted binary is never retried by itself.
  auto pin = pins_.current();
  if (!pin) {
    auto opened = PinnedBinary::Open(opts_.binary, opts_.args);
    if (!opened) {
      Emit(MakeEvent(Level::kError, "child.spawn_failed", "cold start failed: {}", opened.error().message));
      ScheduleRestart();
      return;
    }
    pin = *opened;
  }
  auto g = Spawn(ChildRole::kCold, pin);
  if (!g) {
    Emit(MakeEvent(Level::kError, "child.spawn_failed", "cold start failed: {}", g.error().message));
    ScheduleRestart();
    return;
  }
  incumbent_ = *g;
  ++generation_number_;
  pins_.Serving(pin);
}

void SupervisorImpl::ScheduleRestart() {
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

HandoffPart SupervisorImpl::PartOf(const std::shared_ptr<Child>& g) const {
  if (!handoff_) return HandoffPart::kNone;
  if (g == handoff_->successor) return HandoffPart::kSuccessor;
  if (g == handoff_->incumbent) return HandoffPart::kIncumbent;
  return HandoffPart::kNone;
}

void SupervisorImpl::OnChildMessage(const std::shared_ptr<Child>& g, const v1::Envelope& env) {
  if (g->reattaching) {
    if (g == reattaching_) OnReattachMessage(g, env);
    return;
  }
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
    if (g->pin) g->pin->schema = protocol::VersionRange{env.hello().state_schema().min(), env.hello().state_schema().max()};
  }
  if (!CheckHandoverCount(g, env)) return;
  // Not part of any handoff: the daemon's own health word (§16).
  if (env.has_health_report()) return OnHealthReport(g, env.health_report());
  switch (PartOf(g)) {
    case HandoffPart::kSuccessor: return Execute(handoff_->machine.OnSuccessorMessage(env, now));
    case HandoffPart::kIncumbent: return Execute(handoff_->machine.OnIncumbentMessage(env, now));
    case HandoffPart::kNone: break;
  }
  if (env.has_hello() && g->role == ChildRole::kCold) {
    HelloPolicy policy;
    policy.liveness = opts_.liveness;
    policy.child_name = "daemon";
    HelloAnswer answer = AnswerHello(env.hello(), policy);
    g->channel->Send(answer.ack);
    if (!answer.refusal) {
      g->channel->SetLivenessOptions(opts_.liveness);
      Emit(MakeEvent(Level::kInfo, "child.hello", "generation pid {} ({}) is up", g->pid, env.hello().build_id())
               .With("pid", int64_t{g->pid}));
      // A cold-started revert is done once the previous binary is up.
      if (probation_ && g == probation_->restored) EndProbation(v1::REVERTED, Report("reverted"));
    } else {
      Emit(MakeEvent(Level::kError, "child.refused", "{}", answer.refusal->message));
    }
    return;
  }
  if (env.has_error()) {
    Emit(MakeEvent(Level::kWarn, "child.error", "pid {} says: {}", g->pid, env.error().message()));
  }
}

void SupervisorImpl::OnChildClosed(const std::shared_ptr<Child>& g, const Error& e) {
  if (g->reattaching) {
    // Not ours yet: it keeps serving, and adoption takes over.
    if (g == reattaching_) ReattachFailed(fmt::format("the connection closed before Hello: {}", e.message));
    return;
  }
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
  switch (PartOf(g)) {
    case HandoffPart::kSuccessor: return Execute(handoff_->machine.OnSuccessorChannelClosed(e, now));
    case HandoffPart::kIncumbent: return Execute(handoff_->machine.OnIncumbentChannelClosed(e, now));
    case HandoffPart::kNone: break;
  }
  // On probation: a missed heartbeat fails it; the revert follows the exit
  // (a channel that merely closed is the process dying: its exit says how).
  if (probation_ && g == probation_->generation && probation_->check.empty() && e.Is(Errc::kDeadlineExceeded)) {
    probation_->check = "heartbeat";
    probation_->reason = "the new generation's channel closed: " + e.message;
    probation_->failed_at = now;
  }
  // A generation we can no longer talk to (hung, or broken channel) must
  // not keep the data: end it; its exit triggers a restart. While the
  // service stops, a daemon draining after SIGTERM closes its channel
  // first; Stop()'s deadline bounds it instead.
  if (g->alive && !stopping_) g->proc->Signal(SIGKILL);
}

void SupervisorImpl::OnChildExit(const std::shared_ptr<Child>& g, const ChildExit& exit) {
  if (g->reattaching) {
    // Adoption watches it (and finds it gone) from here on.
    if (g == reattaching_) ReattachFailed(fmt::format("pid {} ended before its Hello", g->pid));
    return;
  }
  // What it wrote before it died counts first: a SealComplete sent just
  // before a crash still hands over what it sealed (docs/design.md §3), a
  // descriptor stored on its way out stays stored (§14). The reaped exit
  // and a readable socket are events in no fixed order.
  if (g->channel) g->channel->DeliverBuffered();
  if (g->notify) g->notify->DeliverBuffered();
  const std::string how = exit.Describe();
  g->alive = false;
  if (auto it = retire_timers_.find(g->pid); it != retire_timers_.end()) {
    it->second->cancel();
    retire_timers_.erase(it);
  }
  if (g->channel) g->channel->Close();
  StopNotify(g);
  children_.erase(g->number);
  UpdateAdoptionRecord();
  Emit(MakeEvent(Level::kInfo, "child.exit", "pid {} {}", g->pid, how).With("pid", int64_t{g->pid}).With("how", how));
  const TimePoint now = RealClock().Now();
  const HandoffPart part = PartOf(g);
  if (part == HandoffPart::kSuccessor) {
    Route([&](HandoffMachine& m) { return m.OnSuccessorExited(exit, now); },
          [&](NotifyHandoffMachine& m) { return m.OnSuccessorExited(exit, now); });
  } else if (part == HandoffPart::kIncumbent) {
    Route([&](HandoffMachine& m) { return m.OnIncumbentExited(exit, now); },
          [&](NotifyHandoffMachine& m) { return m.OnIncumbentExited(exit, now); });
  } else if (handoff_ && handoff_->notify && g == handoff_->restored) {
    Execute(handoff_->notify->OnRestoreFailed("it " + how, now));
  } else if (g == incumbent_ && !handoff_) {
    if (now - g->started > kStableRun) restart_delay_ = opts_.restart_backoff_min;
    OnServingExit(g, how, now);
  }
  MaybeStopped();
}

void SupervisorImpl::MaybeStopped() {
  if (!stopping_ || !stop_done_) return;
  for (auto& [n, g] : children_) {
    if (g->alive) return;
  }
  ::unlink(record_path_.c_str());  // nothing left to adopt
  auto done = std::move(stop_done_);
  stop_done_ = nullptr;
  asio::post(io_, done);
}

void SupervisorImpl::Emit(Event e) {
  log_.Emit(e);
  const int64_t wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  std::string json = ToJson(e, wall_ms);
  if (opts_.on_event) opts_.on_event(e, json);
  events_.Publish(json);
}

Result<std::unique_ptr<Supervisor>> Supervisor::Create(asio::io_context& io, SupervisorOptions opts, LogSink& log) {
  if (opts.resume_state_fd >= 0) return CreateResumed(io, std::move(opts), log);
  if (opts.binary.empty()) return Error(Errc::kInvalidArgument, "no daemon binary given (after --)");
  if (auto st = CheckExecutable(opts.binary); !st) return st.error();
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
  auto journal = ReadAdoptionRecord(AdoptionRecordPath(opts.runtime_dir));
  if (!journal) {
    log.Emit(MakeEvent(Level::kWarn, "supervisor.journal", "ignoring it: {}", journal.error().message));
  } else if (*journal) {
    const RecordedProcess& prev = (*journal)->supervisor;
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
  // The listeners are ours first, so an orphan that dies while we
  // re-attach leaves no window of refused connections.
  OwnedFd reattach = ConnectToOrphan(opts.runtime_dir, orphans, log);
  opts.admin_uids.insert(::geteuid());
  opts.admin_uids.insert(0);
  auto impl = std::make_unique<SupervisorImpl>(io, opts, log, std::move(listeners), std::move(*crash_route),
                                               std::move(orphans), std::move(reattach));
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
