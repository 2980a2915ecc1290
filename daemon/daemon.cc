// baton::Daemon: role detection and the runtime that drives the daemon-side
// sessions (successor/ then incumbent/) over the control channel.
//
// Threads: the io thread runs one io_context (the channel, heartbeats, the
// deadline timer, the pidfd watch) and every session call; the hook thread
// runs daemon hooks one at a time. The caller's thread only waits in
// Start() and WaitForExit().
#include "baton/daemon.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "crashpoints/crashpoints.h"
#include "daemon/daemon_impl.h"
#include "daemon/handover_link.h"
#include "daemon/hook_runner.h"
#include "daemon/reattach_point.h"
#include "incumbent/incumbent_session.h"
#include "ownership/lease_client.h"
#include "ownership/ownership.h"
#include "protocol/channel.h"
#include "protocol/child_env.h"
#include "protocol/frame.h"
#include "successor/successor_session.h"

namespace baton {
namespace {

namespace asio = boost::asio;

using protocol::HookDone;
using protocol::LeaseDone;
using protocol::LeaseOp;

class DaemonImpl final : public Daemon {
 public:
  DaemonImpl(DaemonOptions opts, protocol::ChildEnvironment env, std::unique_ptr<LogSink> own_log,
             std::optional<ownership::LeaseConfig> lease)
      : opts_(std::move(opts)),
        env_(std::move(env)),
        own_log_(std::move(own_log)),
        ownership_(opts_.data_dir),
        work_(asio::make_work_guard(io_)),
        timer_(io_),
        pidfd_(io_),
        flush_timer_(io_) {
    log_ = opts_.log != nullptr ? opts_.log : own_log_.get();
    handover_link_ = std::make_unique<detail::HandoverLink>(handover_, *log_);
    if (lease) {
      lease_op_timeout_ = lease->op_timeout;
      lease_ = std::make_unique<ownership::LeaseClient>(io_.get_executor(), std::move(*lease), RealClock(), *log_);
    }
    for (const auto& l : env_.listeners) listeners_.push_back({l.name, l.fd});
    switch (env_.role) {
      case protocol::LaunchRole::kNone: role_ = Role::kStandalone; break;
      case protocol::LaunchRole::kCold: role_ = Role::kColdStart; break;
      case protocol::LaunchRole::kSuccessor: role_ = Role::kSuccessor; break;
    }
  }

  ~DaemonImpl() override {
    if (lease_ && io_thread_.joinable()) {
      // Release the lease if we still hold it (a standby takes over at
      // once), bounded by one lease call.
      auto stopped = std::make_shared<std::promise<void>>();
      const Duration bound = lease_op_timeout_;
      asio::post(io_, [this, stopped, bound] {
        lease_->Stop(RealClock().Now() + bound, [stopped] { stopped->set_value(); });
      });
      stopped->get_future().wait_for(bound + milliseconds(500));
    }
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    hooks_runner_.reset();
    lease_.reset();
  }

  Role role() const override { return role_; }
  const std::vector<InheritedSocket>& listeners() const override { return listeners_; }
  Result<int> Listener(std::string_view name) const override {
    for (const auto& l : listeners_) {
      if (l.name == name) return l.fd;
    }
    return Error(Errc::kNotFound, fmt::format("no inherited listener named '{}'", name));
  }
  const std::string& data_dir() const override { return opts_.data_dir; }
  const Lease* lease() const override { return lease_.get(); }

  Status Start(Hooks& hooks) override {
    if (hooks_ != nullptr) return Error(Errc::kFailedPrecondition, "Daemon::Start called twice");
    hooks_ = &hooks;
    if (lease_) {
      if (auto st = OpenLease(); !st) return st;
    }
    if (role_ == Role::kStandalone) return StartStandalone();
    hooks_runner_ = std::make_unique<detail::HookRunner>();
    protocol::UnixSocket socket(io_);
    boost::system::error_code ec;
    socket.assign(asio::local::stream_protocol(), env_.control_fd, ec);
    if (ec) return SystemError(ec, fmt::format("control fd {}: {}", env_.control_fd, ec.message()));
    channel_ = MakeChannel(std::move(socket));
    successor::HelloInfo& hello = hello_info_;
    hello.state_schema = {opts_.state_schema_min, opts_.state_schema_max};
    hello.build_id = opts_.build_id;
    hello.accepts_handover = handover_.accepts();
    hello.pid = static_cast<uint32_t>(::getpid());
    if (lease_) hello.lease_holder_id = lease_->holder_id();
    successor_.emplace(env_.role, hello, ownership_);
    if (!env_.reattach_dir.empty()) {
      reattach_ = std::make_unique<detail::ReattachPoint>(
          io_, protocol::ReattachSocketPath(env_.reattach_dir, ::getpid()), *log_,
          [this](protocol::UnixSocket peer) { OnReattachPeer(std::move(peer)); });
    }
    asio::post(io_, [this] {
      channel_->Start();
      Execute(successor_->Start());
    });
    EnsureIoThread();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return start_result_.has_value(); });
    return *start_result_;
  }

  void RequestExit(int code) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!start_result_) start_result_ = Error(Errc::kAborted, "exit requested before the daemon could serve");
    if (!exit_code_) exit_code_ = code;
    cv_.notify_all();
  }

  Status HandOver(HandoverKind kind, std::string_view name, int fd, std::string_view metadata) override {
    return handover_.Give(kind, name, fd, metadata);
  }
  Status SetHandoverState(std::string_view bytes) override { return handover_.SetState(bytes); }
  std::vector<HandedOverFd> TakeHandedOver() override { return handover_.Take(); }
  std::optional<std::string> TakeHandoverState() override { return handover_.TakeState(); }
  Status AcceptHandover() override {
    if (hooks_ != nullptr) return Error(Errc::kFailedPrecondition, "AcceptHandover: only before Start()");
    handover_.SetAccepts(true);
    return {};
  }
  bool SuccessorAcceptsHandover() const override { return handover_.successor_accepts(); }

  Status ReportUnhealthy(std::string_view reason) override {
    if (role_ == Role::kStandalone) {
      return Error(Errc::kFailedPrecondition, "ReportUnhealthy: no supervisor (standalone)");
    }
    if (!health_reports_.load()) {
      return Error(Errc::kFailedPrecondition,
                   "ReportUnhealthy: the supervisor has not accepted this generation yet, or is too old to take "
                   "health reports");
    }
    v1::Envelope env;
    env.mutable_health_report()->set_healthy(false);
    env.mutable_health_report()->set_reason(std::string(reason));
    asio::post(io_, [this, env] {
      if (channel_ && !channel_->closed()) channel_->Send(env);
    });
    return {};
  }

  int WaitForExit() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return exit_code_.has_value(); });
    return *exit_code_;
  }

 private:
  Status StartStandalone() {
    if (auto st = ownership_.Acquire(); !st) return st.error();
    auto gen = ownership_.Bump();
    if (!gen) return gen.error();
    log_->Emit(MakeEvent(Level::kInfo, "daemon.start", "standalone start, data generation {}", *gen)
                   .With("generation", *gen));
    if (lease_) asio::post(io_, [this] { lease_->Campaign(); });
    return {};
  }

  void EnsureIoThread() {
    if (!io_thread_.joinable()) io_thread_ = std::thread([this] { io_.run(); });
  }

  // Starts the lease actor and checks the lease table is usable. Bad
  // configuration (privileges, schema) fails the start; an unreachable
  // Postgres does not: the lease keeps trying in the background.
  Status OpenLease() {
    EnsureIoThread();
    auto opened = std::make_shared<std::promise<Status>>();
    const TimePoint deadline = RealClock().Now() + 2 * lease_op_timeout_;
    asio::post(io_, [this, opened, deadline] {
      lease_->Start();
      lease_->Open(deadline, [opened](Status st) { opened->set_value(std::move(st)); });
    });
    Status st = opened->get_future().get();
    if (st) return st;
    const Error& e = st.error();
    if (e.Is(Errc::kPermissionDenied) || e.Is(Errc::kFailedPrecondition) || e.Is(Errc::kInvalidArgument)) {
      return Error(e.code, fmt::format("lease '{}': {}", lease_->name(), e.message));
    }
    log_->Emit(MakeEvent(Level::kWarn, "lease.unavailable", "lease '{}': {}; will keep trying", lease_->name(),
                         e.message));
    return {};
  }

  // ---- io thread -----------------------------------------------------------

  // A control channel whose callbacks fall silent once another replaced it.
  std::shared_ptr<protocol::Channel> MakeChannel(protocol::UnixSocket socket) {
    const uint64_t epoch = ++channel_epoch_;
    return protocol::Channel::Create(std::move(socket), {}, RealClock(),
                                     {[this, epoch](v1::Envelope env) {
                                        if (epoch == channel_epoch_) OnMessage(std::move(env));
                                      },
                                      [this, epoch](const Error& e) {
                                        if (epoch == channel_epoch_) OnClosed(e);
                                      },
                                      [this, epoch](v1::Envelope env, std::vector<OwnedFd> fds) {
                                        if (epoch == channel_epoch_) OnFds(std::move(env), std::move(fds));
                                      }});
  }

  // ---- re-attach (docs/design.md §15) --------------------------------------

  // Serving with no supervisor (and no handoff): wait for the next one.
  void MaybeAwaitSupervisor() {
    if (!reattach_ || reattach_->open() || reattach_broken_ || !incumbent_) return;
    if (incumbent_->state() != incumbent::IncumbentSession::State::kServing || !channel_->closed()) return;
    if (auto st = reattach_->Open(); !st) {
      reattach_broken_ = true;  // said once; adoption still works without it
      log_->Emit(MakeEvent(Level::kWarn, "daemon.reattach_unavailable", "{}", st.error().message));
      return;
    }
    log_->Emit(MakeEvent(Level::kInfo, "daemon.awaiting_supervisor", "serving on; a new supervisor can re-attach at {}",
                         reattach_->path()));
  }

  void OnReattachPeer(protocol::UnixSocket peer) {
    BATON_CRASH_POINT(kIncumbentReattachAccepted);
    log_->Emit(MakeEvent(Level::kInfo, "daemon.reattach_connected", "a supervisor connected to re-attach"));
    reattaching_ = true;
    channel_ = MakeChannel(std::move(peer));
    channel_->Start();
    channel_->Send(successor::MakeHello(hello_info_, "reattach"));
  }

  // The answer to our Hello on a re-attach connection.
  void FinishReattach(const v1::Envelope& env) {
    reattaching_ = false;
    if (!env.has_hello_ack() || !env.hello_ack().accepted()) {
      return ReattachFailed(env.has_hello_ack() ? "refused: " + env.hello_ack().refusal()
                                                : fmt::format("{} instead of HelloAck", protocol::MessageName(env)));
    }
    reattach_->Close();
    incumbent_->Reattached();
    log_->Emit(MakeEvent(Level::kInfo, "daemon.reattached", "a new supervisor re-attached; serving on"));
  }

  void ReattachFailed(const std::string& why) {
    reattaching_ = false;
    log_->Emit(MakeEvent(Level::kWarn, "daemon.reattach_failed", "re-attach: {}; still waiting", why));
    ++channel_epoch_;  // silence the candidate's callbacks
    channel_->Close();
    reattach_->AcceptNext();
  }

  void OnMessage(v1::Envelope env) {
    if (env.has_hello_ack() && env.hello_ack().accepted()) {
      const auto& ack = env.hello_ack();
      protocol::LivenessOptions lo;
      if (ack.heartbeat_interval_ms() > 0) lo.heartbeat_interval = milliseconds(ack.heartbeat_interval_ms());
      if (ack.liveness_timeout_ms() > 0) {
        lo.liveness_timeout = milliseconds(ack.liveness_timeout_ms());
        lo.send_timeout = lo.liveness_timeout;
      }
      channel_->SetLivenessOptions(lo);
      // Only a supervisor that says it understands HealthReport gets one
      // (an older one would answer UNRECOGNISED).
      for (const auto& c : ack.capabilities()) {
        if (c == "health") health_reports_.store(true);
      }
    }
    if (reattaching_) return FinishReattach(env);
    if (auto st = handover_link_->OnMessage(HandoverPhase(), env); !st) return BadInput(st.error());
    if (incumbent_) {
      Execute(incumbent_->OnMessage(env, RealClock().Now()));
    } else {
      Execute(successor_->OnMessage(env));
    }
  }

  // ---- descriptor handover (daemon/handover_link.h) ----------------------

  detail::HandoverLink::Phase HandoverPhase() const {
    using P = detail::HandoverLink::Phase;
    if (reattaching_) return P::kNone;
    if (incumbent_) return incumbent_->state() == incumbent::IncumbentSession::State::kSealed ? P::kSealed : P::kNone;
    return successor_ && successor_->state() == successor::SuccessorSession::State::kAwaitBegin ? P::kAwaitingBegin
                                                                                               : P::kNone;
  }

  void OnFds(v1::Envelope env, std::vector<OwnedFd> fds) {
    const std::string& id = incumbent_ ? incumbent_->handoff_id() : successor_->handoff_id();
    if (auto st = handover_link_->OnFds(HandoverPhase(), id, env, std::move(fds)); !st) BadInput(st.error());
  }

  // The supervisor sent what no supervisor may: say so and treat the
  // channel as lost (the sessions' rules for a lost supervisor apply).
  void BadInput(const Error& e) {
    log_->Emit(MakeEvent(Level::kError, "daemon.bad_input", "{}", e.message));
    channel_->SendErrorAndClose(v1::Error::UNEXPECTED, e);
    OnClosed(e);
  }

  void OnClosed(const Error& e) {
    if (reattaching_) return ReattachFailed("the connection closed before HelloAck: " + e.message);
    log_->Emit(MakeEvent(Level::kWarn, "daemon.channel_closed", "control channel closed: {}", e.message));
    if (incumbent_) {
      Execute(incumbent_->OnChannelClosed(e, RealClock().Now()));
    } else {
      Execute(successor_->OnChannelClosed(e));
    }
  }

  void OnHookDone(const HookDone& done) {
    if (incumbent_) {
      Execute(incumbent_->OnHookDone(done, RealClock().Now()));
    } else {
      Execute(successor_->OnHookDone(done));
    }
  }

  void Execute(protocol::SessionActions actions) {
    for (auto& action : actions) {
      std::visit([this](auto& a) { Do(a); }, action);
    }
    ArmTimer();
    MaybeAwaitSupervisor();
  }

  void Do(protocol::SendAction& a) {
    std::function<void()> after;
    // "after X sent" crash points fire once the frame is really written.
    if (a.env.has_ready()) after = [] { BATON_CRASH_POINT(kSuccessorAfterReady); };
    if (a.env.has_seal_complete()) after = [] { BATON_CRASH_POINT(kIncumbentAfterSealComplete); };
    handover_link_->BeforeSend(*channel_, a.env);
    if (!channel_->closed()) channel_->Send(a.env, std::move(after));
  }

  void Do(protocol::RunHookAction& a) {
    handover_link_->BeforeHook(a.hook);
    hooks_runner_->Post([this, a] {
      HookDone done = detail::RunHook(*hooks_, *log_, a);
      handover_link_->AfterHook(a.hook);
      asio::post(io_, [this, done] { OnHookDone(done); });
    });
  }

  void Do(protocol::ExitAction& a) {
    log_->Emit(MakeEvent(a.code == 0 ? Level::kInfo : Level::kWarn, "daemon.exit", "{}", a.reason)
                   .With("code", int64_t{a.code}));
    const int code = a.code;
    const std::string reason = a.reason;
    FlushThen([this, code, reason] {
      std::lock_guard<std::mutex> lock(mu_);
      if (!start_result_) start_result_ = Error(Errc::kAborted, reason);
      if (!exit_code_) exit_code_ = code;
      cv_.notify_all();
    });
  }

  void Do(protocol::WatchPidAction& a) {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, a.pid, 0));
    if (fd < 0) {
      // ESRCH: already gone (and reaped by its parent).
      asio::post(io_, [this] { Execute(incumbent_->OnSuccessorExited(RealClock().Now())); });
      return;
    }
    boost::system::error_code ec;
    pidfd_.close(ec);
    pidfd_.assign(fd);
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& e) {
      if (e == asio::error::operation_aborted) return;
      Execute(incumbent_->OnSuccessorExited(RealClock().Now()));
    });
  }

  void Do(protocol::ServingAction&) {
    if (!incumbent_) {
      incumbent::IncumbentOptions io;
      io.lease = lease_ != nullptr;
      incumbent_.emplace(io, ownership_, successor_->data_generation());
    }
    log_->Emit(MakeEvent(Level::kInfo, "daemon.serving", "serving as the owner of {}", opts_.data_dir)
                   .With("generation", successor_->data_generation()));
    std::lock_guard<std::mutex> lock(mu_);
    start_result_ = Status{};
    cv_.notify_all();
  }

  void FeedLease(const LeaseDone& d) {
    if (incumbent_) {
      Execute(incumbent_->OnLeaseDone(d, RealClock().Now()));
    } else {
      Execute(successor_->OnLeaseDone(d));
    }
  }

  void Do(protocol::LeaseAction& a) {
    const LeaseOp op = a.op;
    if (!lease_) {
      // Sessions only ask when there is a lease; answer rather than wedge.
      asio::post(io_, [this, op] { FeedLease({op, {}, 0}); });
      return;
    }
    const TimePoint now = RealClock().Now();
    switch (op) {
      case LeaseOp::kCampaign:
        lease_->Campaign();
        break;
      case LeaseOp::kResume:
        lease_->Resume(now + lease_op_timeout_, [this](Status st) {
          if (!st) log_->Emit(MakeEvent(Level::kWarn, "lease.resume", "{}", st.error().message));
        });
        break;
      case LeaseOp::kQuiesce:
        lease_->Quiesce([this] { FeedLease({LeaseOp::kQuiesce, {}, 0}); });
        break;
      case LeaseOp::kTransfer:
        lease_->Transfer(a.to, now + a.budget, [this](Result<uint64_t> r) {
          LeaseDone d{LeaseOp::kTransfer, {}, 0};
          if (r) {
            d.epoch = *r;
          } else {
            d.status = r.error();
          }
          FeedLease(d);
        });
        break;
      case LeaseOp::kConfirm:
        lease_->Confirm(a.epoch, now + a.budget, [this](Status st) { FeedLease({LeaseOp::kConfirm, st, 0}); });
        break;
    }
  }

  void Do(protocol::LogAction& a) { log_->Emit(MakeEvent(Level::kInfo, a.event, "{}", a.message)); }

  // Runs `fn` once queued frames (an Abort, a CommitAck) have reached the
  // supervisor, or after 1 s if they cannot (a peer that stopped reading).
  void FlushThen(std::function<void()> fn) {
    auto once = std::make_shared<std::function<void()>>(std::move(fn));
    auto run = [once] {
      if (!*once) return;
      auto f = std::move(*once);
      *once = nullptr;
      f();
    };
    if (channel_->closed() || channel_->pending_writes() == 0) {
      run();
      return;
    }
    flush_timer_.expires_after(milliseconds(1000));
    flush_timer_.async_wait([run](const boost::system::error_code& ec) {
      if (!ec) run();
    });
    channel_->WhenFlushed(run);
  }

  void ArmTimer() {
    if (!incumbent_) return;
    auto deadline = incumbent_->NextDeadline();
    if (!deadline) {
      timer_.cancel();
      return;
    }
    timer_.expires_at(*deadline);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      Execute(incumbent_->OnTimer(RealClock().Now()));
    });
  }

  DaemonOptions opts_;
  protocol::ChildEnvironment env_;
  std::unique_ptr<LogSink> own_log_;
  LogSink* log_ = nullptr;
  Role role_ = Role::kStandalone;
  std::vector<InheritedSocket> listeners_;
  Hooks* hooks_ = nullptr;
  ownership::DataDirOwnership ownership_;

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer timer_;
  asio::posix::stream_descriptor pidfd_;
  asio::steady_timer flush_timer_;
  std::shared_ptr<protocol::Channel> channel_;
  uint64_t channel_epoch_ = 0;  // bumped by each new control channel
  successor::HelloInfo hello_info_;
  std::unique_ptr<detail::ReattachPoint> reattach_;  // when the supervisor gave BATON_REATTACH_DIR
  bool reattaching_ = false;     // a re-attach connection awaits our HelloAck
  bool reattach_broken_ = false;  // the socket could not be opened
  std::optional<successor::SuccessorSession> successor_;
  std::optional<incumbent::IncumbentSession> incumbent_;
  detail::HandoverStore handover_;  // thread-safe: hooks give and take, the io thread sends and receives
  std::unique_ptr<detail::HandoverLink> handover_link_;
  std::thread io_thread_;
  std::unique_ptr<detail::HookRunner> hooks_runner_;
  std::unique_ptr<ownership::LeaseClient> lease_;  // io thread only (epoch() from any)
  Duration lease_op_timeout_ = seconds(1);

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Status> start_result_;  // guarded by mu_
  std::optional<int> exit_code_;        // guarded by mu_
  std::atomic<bool> health_reports_{false};  // the supervisor takes HealthReport (set on the io thread)
};

}  // namespace

std::unique_ptr<Daemon> detail::NewDaemon(DaemonOptions options, protocol::ChildEnvironment env,
                                          std::unique_ptr<LogSink> own_log,
                                          std::optional<ownership::LeaseConfig> lease) {
  return std::make_unique<DaemonImpl>(std::move(options), std::move(env), std::move(own_log), std::move(lease));
}

}  // namespace baton
