// The new image of a self-upgrade (docs/design.md §15): `baton supervise`
// started with --resume-state-fd reads the sealed state, validates every
// descriptor it names, and takes the service back without touching the
// serving generation. A failure before anything was taken re-executes the
// previous binary (its descriptor came along) with the same state; a
// failure after that, or a crash, is the watchdog's (self_exec.h).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "crashpoints/crashpoints.h"
#include "supervisor/self_exec.h"
#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {
namespace {

namespace asio = boost::asio;

Status Expect(bool ok, const std::string& what) {
  if (ok) return {};
  return Error(Errc::kFailedPrecondition, what);
}

// `fd` is an open socket of `type`; `listening` whether it must accept.
Status CheckSocket(int fd, int type, bool listening, const std::string& what) {
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return Error(Errc::kFailedPrecondition, fmt::format("{}: fd {} is not an open socket", what, fd));
  }
  int v = 0;
  socklen_t len = sizeof(v);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != type) {
    return Error(Errc::kFailedPrecondition, fmt::format("{}: fd {} has the wrong socket type", what, fd));
  }
  len = sizeof(v);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || (v != 0) != listening) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("{}: fd {} {}", what, fd, listening ? "does not listen" : "is a listening socket"));
  }
  return {};
}

// The local address `fd` is bound to, as a unix path ("" otherwise).
std::string UnixPathOf(int fd) {
  sockaddr_un a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sun_family != AF_UNIX) return "";
  return std::string(a.sun_path);
}

// What format 2 adds (self_state.proto): a generation of protocol notify,
// its STATUS= and watchdog period, the FD store. Checked against the
// configuration this image loaded: nothing it could not hold is dropped.
Status ValidateNotify(const selfstate::v1::SelfState& s, const SupervisorOptions& opts) {
  const auto& g = s.serving();
  if (s.version() < 2 && (g.plain() || !g.status().empty() || g.watchdog_usec() != 0 || s.fd_store_size() > 0)) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("state format {} cannot carry protocol notify's state", s.version()));
  }
  const bool plain = opts.notify.protocol == ChildProtocol::kNotify;
  if (g.plain() != plain) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("the generation speaks protocol {}, the configuration now says {}",
                             g.plain() ? "notify" : "baton", plain ? "notify" : "baton"));
  }
  if (g.plain() && g.control_fd() != -1) {
    return Error(Errc::kFailedPrecondition, "a generation of protocol notify with a control channel");
  }
  if (static_cast<size_t>(s.fd_store_size()) > opts.notify.fd_store_max) {
    return Error(Errc::kFailedPrecondition, fmt::format("the FD store holds {} descriptor(s), fd_store_max is now {}",
                                                        s.fd_store_size(), opts.notify.fd_store_max));
  }
  std::set<std::string> names;
  for (const auto& spec : opts.listeners) names.insert(spec.name);
  for (const auto& e : s.fd_store()) {
    if (!names.insert(e.name()).second) {
      return Error(Errc::kFailedPrecondition, fmt::format("FD store entry {}: the name is taken", e.name()));
    }
    struct stat st {};
    if (e.fd() < 0 || ::fstat(e.fd(), &st) != 0) {
      return Error(Errc::kFailedPrecondition, fmt::format("FD store entry {}: fd {} is not open", e.name(), e.fd()));
    }
    if (static_cast<uint64_t>(st.st_dev) != e.dev() || static_cast<uint64_t>(st.st_ino) != e.ino()) {
      return Error(Errc::kFailedPrecondition,
                   fmt::format("FD store entry {}: fd {} is not the file that was stored", e.name(), e.fd()));
    }
  }
  return {};
}

// Everything `s` names is what it says, before anything is taken over.
Status Validate(const selfstate::v1::SelfState& s, const SupervisorOptions& opts) {
  const StateFormats formats = SelfStateVersionsRead();
  if (s.version() < formats.min || s.version() > formats.max) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("state format {}: this binary reads formats {}-{}", s.version(), formats.min, formats.max));
  }
  if (auto st = ValidateNotify(s, opts); !st) return st;
  for (const auto& spec : opts.listeners) {
    const selfstate::v1::ListenerFd* found = nullptr;
    for (const auto& l : s.listeners()) found = l.name() == spec.name ? &l : found;
    if (!found) return Error(Errc::kFailedPrecondition, fmt::format("listener {} was not handed over", spec.name));
    // Of the configured kind (a udp listener a bound datagram socket) and
    // bound where the configuration says.
    if (auto st = CheckListenerSocket(found->fd(), spec); !st) return st;
  }
  if (auto st = CheckSocket(s.admin_fd(), SOCK_STREAM, true, "admin socket"); !st) return st;
  const std::string admin_path = opts.runtime_dir + "/baton.sock";
  if (auto st = Expect(UnixPathOf(s.admin_fd()) == admin_path, "the admin socket is not bound to " + admin_path); !st) {
    return st;
  }
  if (s.caller_fd() >= 0) {
    if (auto st = CheckSocket(s.caller_fd(), SOCK_STREAM, false, "the caller's connection"); !st) return st;
  }
  if (s.metrics_fd() >= 0) {
    if (auto st = CheckSocket(s.metrics_fd(), SOCK_STREAM, true, "the metrics listener"); !st) return st;
  }
  struct stat st {};
  if (::fstat(s.resumed_fd(), &st) != 0 || !S_ISFIFO(st.st_mode)) {
    return Error(Errc::kFailedPrecondition, fmt::format("resumed fd {} is not a pipe", s.resumed_fd()));
  }
  const auto& g = s.serving();
  const pid_t pid = static_cast<pid_t>(g.pid());
  // Still our child (same pid across the exec), not reaped by anybody.
  siginfo_t info{};
  if (pid <= 0 || ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return Error(Errc::kFailedPrecondition, fmt::format("generation pid {} is not our child", g.pid()));
  }
  if (info.si_pid == 0) {
    auto now = EntryFor(pid, g.role());
    if (!now || (g.start_time() != 0 && now->start_time != g.start_time())) {
      return Error(Errc::kFailedPrecondition, fmt::format("pid {} is not the generation the state names", g.pid()));
    }
  }
  if (!g.plain()) {
    if (auto c = CheckSocket(g.control_fd(), SOCK_STREAM, false, "the generation's control channel"); !c) return c;
  }
  if (auto c = CheckSocket(g.notify_fd(), SOCK_DGRAM, false, "the generation's notify socket"); !c) return c;
  if (s.pins().empty()) return Error(Errc::kFailedPrecondition, "no pinned binary handed over");
  for (const auto& p : s.pins()) {
    if (::fstat(p.fd(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return Error(Errc::kFailedPrecondition, fmt::format("pinned binary {}: fd {} is not a file", p.path(), p.fd()));
    }
  }
  return {};
}

}  // namespace

// Supervisor::Create's branch for a resumed image.
Result<std::unique_ptr<Supervisor>> CreateResumed(asio::io_context& io, SupervisorOptions opts, LogSink& log) {
  BATON_CRASH_POINT(kSupervisorSelfAfterExec);
  selfstate::v1::SelfState state;
  Status valid = [&]() -> Status {
    auto bytes = ReadSealedMemfd(opts.resume_state_fd);
    if (!bytes) return bytes.error();
    if (!state.ParseFromString(*bytes)) return Error(Errc::kFailedPrecondition, "the state does not parse");
    return Validate(state, opts);
  }();
  if (!valid) {
    log.Emit(MakeEvent(Level::kError, "supervisor.self_resume_failed",
                       "cannot resume the supervisor state: {}; re-executing the previous binary", valid.error().message)
                 .With("reason", valid.error().message));
    return ReexecPrevious(opts.resume_state_fd, opts.resume_previous_fd, valid.error().message, opts.activation_env);
  }
  BATON_CRASH_POINT(kSupervisorSelfMidResume);
  // From here descriptors are taken: a failure is final (the watchdog).
  auto crash_route = CrashRoute::FromEnvironment();
  if (!crash_route) return crash_route.error();
  std::vector<Listener> listeners;
  for (const auto& spec : opts.listeners) {
    for (const auto& l : state.listeners()) {
      if (l.name() == spec.name) listeners.push_back(Listener::Adopt(spec, l.fd()));
    }
  }
  opts.admin_uids.insert(::geteuid());
  opts.admin_uids.insert(0);
  const char* fallback = std::getenv(kFallbackEnv);
  const int state_fd = opts.resume_state_fd, previous_fd = opts.resume_previous_fd;
  auto impl = std::make_unique<SupervisorImpl>(io, opts, log, std::move(listeners), std::move(*crash_route),
                                               std::vector<Orphan>{}, OwnedFd{});
  auto* raw = impl.get();
  impl->SetAdmin(AdminServer::Adopt(io, opts.runtime_dir, state.admin_fd(), opts.admin_uids,
                                    [raw](std::shared_ptr<AdminConnection> c, const v1::Envelope& e) {
                                      raw->OnAdminRequest(std::move(c), e);
                                    }));
  if (auto st = impl->Resume(state, state.caller_fd(), fallback ? fallback : ""); !st) return st.error();
  // Nothing inherited leaks into the children we spawn from now on.
  std::vector<int> fds = {state.admin_fd(), state.resumed_fd(), state.serving().notify_fd()};
  if (state.serving().control_fd() >= 0) fds.push_back(state.serving().control_fd());
  for (const auto& e : state.fd_store()) fds.push_back(e.fd());
  if (state.caller_fd() >= 0) fds.push_back(state.caller_fd());
  if (state.metrics_fd() >= 0) fds.push_back(state.metrics_fd());
  for (const auto& l : state.listeners()) fds.push_back(l.fd());
  for (int fd : fds) (void)SetCloexec(fd, true);
  ::close(state_fd);
  ::close(previous_fd);
  ::unsetenv(kFallbackEnv);
  return std::unique_ptr<Supervisor>(std::move(impl));
}

Status SupervisorImpl::Resume(const selfstate::v1::SelfState& s, int caller_fd, const std::string& fallback) {
  // The pin history, the serving generation's first.
  std::vector<std::shared_ptr<PinnedBinary>> pins;
  for (const auto& p : s.pins()) {
    auto pin = PinnedBinary::Inherit(p.fd(), p.path(), {p.args().begin(), p.args().end()}, p.build_id(), p.script());
    if (!pin) return pin.error();
    if (p.has_schema()) (*pin)->schema = protocol::VersionRange{p.schema_min(), p.schema_max()};
    pins.push_back(*pin);
  }
  for (auto it = pins.rbegin(); it != pins.rend(); ++it) pins_.Serving(*it);
  const auto& gs = s.serving();
  auto g = gs.plain() ? ResumePlainChild(io_, static_cast<pid_t>(gs.pid()), Callbacks())
                      : ResumeChild(io_, static_cast<pid_t>(gs.pid()), gs.control_fd(), gs.unconsumed(),
                                    opts_.liveness, Callbacks());
  if (!g) return g.error();
  (*g)->number = gs.number();
  (*g)->role = gs.role() == "successor" ? ChildRole::kSuccessor : ChildRole::kCold;
  (*g)->binary = gs.binary();
  (*g)->pin = pins.front();
  if (!gs.plain()) {
    (*g)->hello = gs.hello();
    (*g)->said_hello = true;
  }
  (*g)->ready = gs.ready();
  (*g)->status = gs.status();
  if (gs.watchdog_usec() != 0) watchdog_periods_[gs.number()] = std::chrono::microseconds(gs.watchdog_usec());
  // Validate() checked the names, the count and the files: nothing is refused.
  for (const auto& e : s.fd_store()) {
    std::vector<OwnedFd> one;
    one.emplace_back(e.fd());
    if (fd_store_.Add(e.name(), std::move(one)).stored != 1) {
      return Error(Errc::kInternal, fmt::format("FD store entry {} was not taken back", e.name()));
    }
  }
  (*g)->record = RecordedProcess{(*g)->pid, gs.start_time(), gs.role()};
  (*g)->started = RealClock().Now() - milliseconds(gs.uptime_ms());
  (*g)->notify = NotifySocket::Adopt(io_, gs.notify_path(), gs.notify_fd());
  children_[(*g)->number] = *g;
  incumbent_ = *g;
  spawned_ = s.spawned();
  generation_number_ = s.generation_number();
  restarts_ = s.restarts();
  if (s.has_last_result()) last_result_ = s.last_result();
  takeover_ = s.takeover();
  last_revert_ = s.last_revert();
  started_ = RealClock().Now() - milliseconds(s.uptime_ms());
  events_.Restore({s.recent_events().begin(), s.recent_events().end()});
  inherited_metrics_fd_ = s.metrics_fd();
  if (opts_.load_metrics && s.has_metrics()) opts_.load_metrics(s.metrics().SerializeAsString());
  resumed_ = std::make_unique<Resumed>();
  resumed_->resumed_fd = OwnedFd(s.resumed_fd());
  resumed_->watchdog = s.watchdog_pid();
  resumed_->caller_fd = caller_fd;
  resumed_->old_binary = s.old_binary();
  resumed_->new_binary = s.new_binary();
  resumed_->requested_at_us = s.requested_at_us();
  resumed_->state_version = s.version();
  resumed_->fallback = fallback;
  return {};
}

void SupervisorImpl::FinishResume() {
  auto r = std::move(resumed_);
  // Proof of life at once: the channel's heartbeat clock restarted with
  // this image, and back-to-back self-upgrades must not starve the
  // generation of frames until its liveness timeout.
  if (incumbent_->channel) {
    v1::Envelope beat;
    beat.mutable_heartbeat()->set_seq(0);
    incumbent_->channel->Send(beat);
  }
  // Its notify socket is read again (datagrams sent meanwhile waited in the
  // socket) and its watchdog re-armed for a whole period.
  StartNotify(incumbent_);
  UpdateAdoptionRecord();
  // The watchdog may go; it is our child (same pid), reaped here.
  (void)!::write(r->resumed_fd.get(), "R", 1);
  r->resumed_fd.Reset();
  if (r->watchdog > 0) {
    if (auto w = ChildProcess::Adopt(io_.get_executor(), r->watchdog); w) {
      watchdog_ = std::move(*w);
      watchdog_->AsyncWaitExit([](int) {});
    }
  }
  const uint64_t took_us = MonotonicMicros() - r->requested_at_us;
  v1::SelfUpgradeResult result;
  result.set_supervisor_pid(static_cast<uint32_t>(::getpid()));
  result.set_old_binary(r->old_binary);
  result.set_new_binary(r->new_binary);
  result.set_state_version(r->state_version);
  result.set_total_us(took_us);
  if (r->fallback.empty()) {
    result.set_outcome(v1::COMMITTED);
    Event e = MakeEvent(Level::kInfo, "supervisor.self_upgraded",
                        "now running {} in place (pid {}): generation pid {} resumed, nothing drained or started, {} ms",
                        r->new_binary, ::getpid(), incumbent_->pid, took_us / 1000)
                  .With("binary", r->new_binary)
                  .With("pid", int64_t{incumbent_->pid})
                  .With("state_version", int64_t{r->state_version});
    if (plain()) {
      e.With("protocol", std::string("notify"))
          .With("status", incumbent_->status)
          .With("fd_store", static_cast<int64_t>(fd_store_.size()));
    }
    Emit(std::move(e));
  } else {
    result.set_outcome(v1::ROLLED_BACK);
    result.set_reason(fmt::format("{} could not resume: {}; the previous binary runs again with the same state",
                                  r->new_binary, r->fallback));
    Emit(MakeEvent(Level::kError, "supervisor.self_upgrade_reverted", "{}", result.reason())
             .With("reason", r->fallback));
  }
  if (r->caller_fd < 0) return;
  AdminConnection::Socket socket(io_);
  socket.assign(asio::local::stream_protocol(), r->caller_fd);
  auto conn = std::make_shared<AdminConnection>(std::move(socket), [](auto, const auto&) {});
  v1::Envelope reply;
  *reply.mutable_self_upgrade_result() = result;
  conn->SendAndClose(reply);
}

}  // namespace baton::supervisor
