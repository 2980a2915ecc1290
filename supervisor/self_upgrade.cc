// SupervisorImpl re-executing a new baton binary in place (`baton upgrade
// --self`, SIGUSR2; docs/design.md §15), the image that execs: refuse when
// busy, run the new binary's pre-flight, then write the state to a sealed
// memfd, fork the watchdog and execve with every descriptor the new image
// needs left open. The new image's half is self_resume.cc.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/log.h"
#include "crashpoints/crashpoints.h"
#include "protocol/child_env.h"
#include "protocol/frame.h"
#include "protocol/version.h"
#include "supervisor/child_policy.h"
#include "supervisor/launch.h"
#include "supervisor/self_exec.h"
#include "supervisor/supervisor_impl.h"

extern char** environ;

namespace baton::supervisor {
namespace {

namespace asio = boost::asio;

// How long the new binary's `self-check` may take.
constexpr Duration kPreflightTimeout = seconds(10);
constexpr size_t kPreflightOutputMax = 16 * 1024;

std::string ExitText(int wait_status) { return ChildExit::FromWaitStatus(wait_status).Describe(); }

// The `baton upgrade --self` caller's answer from this image (none for SIGUSR2).
void Answer(const std::shared_ptr<AdminConnection>& conn, v1::Outcome outcome, const std::string& reason,
            const std::string& old_binary, const std::string& new_binary) {
  if (!conn) return;
  v1::Envelope reply;
  auto* r = reply.mutable_self_upgrade_result();
  r->set_outcome(outcome);
  r->set_reason(reason);
  r->set_supervisor_pid(static_cast<uint32_t>(::getpid()));
  r->set_old_binary(old_binary);
  r->set_new_binary(new_binary);
  conn->SendAndClose(reply);
}

}  // namespace

uint64_t MonotonicMicros() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

void SupervisorImpl::SelfUpgrade(const std::string& binary) { StartSelfUpgrade(binary, nullptr); }

std::string SupervisorImpl::SelfBusyReason() const {
  if (self_upgrade_) return "busy: a self-upgrade is already in progress";
  // A start still bounded by its ready deadline (and maybe probed) is not
  // carried: the state holds a serving generation, not a starting one.
  if (plain() && incumbent_ && incumbent_->alive && !incumbent_->ready && !stopping_ && !handoff_) {
    return fmt::format("busy: generation pid {} (protocol notify) is not ready yet (READY=1 or its probe); try again",
                       incumbent_->pid);
  }
  if (auto busy = BusyReason(); !busy.empty()) return busy;
  if (!orphans_.empty() || reattaching_) return "busy: still taking over from a previous supervisor";
  if (children_.size() != 1) return "busy: a retired generation is still exiting; try again";
  if (!plain() && (!incumbent_->channel || incumbent_->channel->closed())) {
    return "the serving generation has no open control channel";
  }
  if (!incumbent_->notify) return "the serving generation has no notify socket";
  return "";
}

std::vector<std::string> SupervisorImpl::SelfStateNeeds() const {
  // What format 1 cannot carry (supervisor/self_state.proto).
  std::vector<std::string> needs;
  if (plain()) needs.push_back("a generation of protocol notify");
  if (fd_store_.size() > 0) needs.push_back(fmt::format("an FD store of {} descriptor(s)", fd_store_.size()));
  if (incumbent_ && !incumbent_->status.empty()) needs.push_back("the generation's STATUS=");
  if (incumbent_ && watchdog_periods_.count(incumbent_->number) != 0) needs.push_back("a WATCHDOG_USEC= period");
  return needs;
}

void SupervisorImpl::StartSelfUpgrade(std::string binary, std::shared_ptr<AdminConnection> conn) {
  if (binary.empty()) binary = self_binary_;
  const auto refuse = [&](const std::string& why) {
    Emit(MakeEvent(Level::kWarn, "supervisor.self_upgrade_refused", "self-upgrade to {} refused: {}", binary, why)
             .With("reason", why));
    Answer(conn, v1::REFUSED, why, self_binary_, binary);
  };
  if (auto busy = SelfBusyReason(); !busy.empty()) return refuse(busy);
  if (auto st = CheckExecutable(binary); !st) return refuse(st.error().message);
  auto run = std::make_unique<SelfUpgradeRun>();
  run->binary = binary;
  run->client = std::move(conn);
  run->requested_at_us = MonotonicMicros();
  // The pre-flight: `NEW self-check`, its output to a pipe we read once it
  // exited (a few lines: the pipe holds them).
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return refuse(fmt::format("pipe: {}", std::strerror(errno)));
  OwnedFd read_end(out[0]), write_end(out[1]);
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_adddup2(&fa, write_end.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&fa, write_end.get(), STDERR_FILENO);
  std::string arg1 = "self-check";
  char* argv[] = {binary.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, binary.c_str(), &fa, nullptr, argv, environ);
  ::posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return refuse(fmt::format("pre-flight: cannot run {}: {}", binary, std::strerror(rc)));
  write_end.Reset();
  auto check = ChildProcess::Adopt(io_.get_executor(), pid);
  if (!check) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return refuse(fmt::format("pre-flight: {}", check.error().message));
  }
  run->check = std::move(*check);
  run->check_out = std::move(read_end);
  run->check_timer = std::make_unique<asio::steady_timer>(io_, kPreflightTimeout);
  run->check_timer->async_wait([this](const boost::system::error_code& ec) {
    if (ec || !self_upgrade_ || !self_upgrade_->check) return;
    self_upgrade_->check_timed_out = true;
    self_upgrade_->check->Signal(SIGKILL);
  });
  self_upgrade_ = std::move(run);
  Emit(MakeEvent(Level::kInfo, "supervisor.self_upgrade", "self-upgrade to {}: pre-flight ({} self-check)", binary,
                 binary)
           .With("binary", binary));
  self_upgrade_->check->AsyncWaitExit([this](int status) { OnPreflightDone(status); });
}

void SupervisorImpl::OnPreflightDone(int wait_status) {
  if (!self_upgrade_) return;
  auto& run = *self_upgrade_;
  run.check_timer->cancel();
  std::string out(kPreflightOutputMax, '\0');
  const int flags = ::fcntl(run.check_out.get(), F_GETFL);
  ::fcntl(run.check_out.get(), F_SETFL, flags | O_NONBLOCK);
  const ssize_t n = ::read(run.check_out.get(), out.data(), out.size());
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  const std::string what = fmt::format("pre-flight `{} self-check`", run.binary);
  if (run.check_timed_out) {
    return SelfUpgradeEnded(v1::REFUSED, fmt::format("{} did not answer within {} ms", what, ToMillis(kPreflightTimeout)));
  }
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return SelfUpgradeEnded(v1::REFUSED, fmt::format("{} {}: {:.300}", what, ExitText(wait_status), out));
  }
  auto check = ParseSelfCheck(out);
  if (!check) return SelfUpgradeEnded(v1::REFUSED, fmt::format("{}: {}", what, check.error().message));
  // The oldest format both read that carries everything (self_state.proto).
  const std::vector<std::string> needs = SelfStateNeeds();
  const uint32_t format = std::max({kSelfStateVersionMin, check->state_min, needs.empty() ? 1u : 2u});
  if (format > check->state_version || format > kSelfStateVersion) {
    const std::string range = check->state_min == check->state_version
                                  ? fmt::format("format {}", check->state_version)
                                  : fmt::format("formats {}-{}", check->state_min, check->state_version);
    const std::string ours =
        needs.empty() ? fmt::format("this supervisor writes formats {}-{}", kSelfStateVersionMin, kSelfStateVersion)
                      : fmt::format("this supervisor's state needs format {} or later ({})", format,
                                    fmt::join(needs, ", "));
    return SelfUpgradeEnded(v1::REFUSED, fmt::format("{}: it reads supervisor state {}, {}", what, range, ours));
  }
  run.state_version = format;
  // The version the serving generation's channel speaks must stay spoken
  // (a generation of protocol notify has none).
  if (!plain()) {
    const uint32_t daemon_max = incumbent_ ? incumbent_->hello.protocol().max() : protocol::kProtocolMax;
    const uint32_t spoken = std::min(daemon_max, protocol::kProtocolMax);
    if (spoken < check->protocol_min || spoken > check->protocol_max) {
      return SelfUpgradeEnded(v1::REFUSED, fmt::format("{}: it speaks control protocol {}-{}, the serving generation's "
                                                       "channel speaks {}",
                                                       what, check->protocol_min, check->protocol_max, spoken));
    }
  }
  if (auto busy = SelfBusyReasonAfterPreflight(); !busy.empty()) return SelfUpgradeEnded(v1::REFUSED, busy);
  Emit(MakeEvent(Level::kInfo, "supervisor.self_preflight",
                 "{} passed: state formats {}-{} (writing {}), protocol {}-{}, version {}", what, check->state_min,
                 check->state_version, format, check->protocol_min, check->protocol_max, check->version));
  if (plain()) return ExecSelf();  // no channel: nothing queued to it
  // No frame may be cut by the exec: wait until everything queued to the
  // serving generation is written (what it sent us and we read but did not
  // decode yet goes along in the state).
  incumbent_->channel->WhenFlushed([this] { ExecSelf(); });
}

std::string SupervisorImpl::SelfBusyReasonAfterPreflight() const {
  if (auto busy = BusyReason(/*self=*/true); !busy.empty()) return busy;
  // The generation the pre-flight began with may have been replaced
  // meanwhile (a crash and its restart): the same checks as at the start.
  if (children_.size() != 1) return "busy: a retired generation is still exiting; try again";
  if (!incumbent_->notify) return "the serving generation has no notify socket";
  return "";
}

void SupervisorImpl::SelfUpgradeEnded(v1::Outcome outcome, const std::string& reason) {
  auto run = std::move(self_upgrade_);
  if (!run) return;
  Emit(MakeEvent(outcome == v1::REFUSED ? Level::kWarn : Level::kError, "supervisor.self_upgrade_refused",
                 "self-upgrade to {} {}: {}", run->binary, outcome == v1::REFUSED ? "refused" : "failed", reason)
           .With("reason", reason));
  Answer(run->client, outcome, reason, self_binary_, run->binary);
}

Result<std::vector<std::string>> SupervisorImpl::ExecEnvironment() const {
  // Ours, with systemd's socket activation announced again: sd_listen_fds()
  // took it out of our environment at start, and the new image parses its
  // configuration (listeners = "systemd") as any start does. The sockets
  // are still at 3, 4, ... (a listener keeps the descriptor it inherited).
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view s(*e);
    if (s.rfind("LISTEN_PID=", 0) != 0 && s.rfind("LISTEN_FDS=", 0) != 0 && s.rfind("LISTEN_FDNAMES=", 0) != 0) {
      env.emplace_back(s);
    }
  }
  std::map<int, std::string> activated;
  for (const auto& l : listeners_) {
    if (l.spec().inherited_fd >= 0) activated[l.fd()] = l.name();
  }
  if (activated.empty()) return env;
  std::vector<std::string> names;
  int expect = 3;  // SD_LISTEN_FDS_START
  for (const auto& [fd, name] : activated) {
    if (fd != expect++) {
      return Error(Errc::kFailedPrecondition,
                   fmt::format("socket-activated listener {} is fd {}, not where LISTEN_FDS could name it", name, fd));
    }
    names.push_back(name);
  }
  env.push_back(fmt::format("LISTEN_PID={}", ::getpid()));
  env.push_back(fmt::format("LISTEN_FDS={}", activated.size()));
  env.push_back(fmt::format("LISTEN_FDNAMES={}", fmt::join(names, ":")));
  return env;
}

Result<selfstate::v1::SelfState> SupervisorImpl::SelfStateNow(int caller_fd, int resumed_fd, pid_t watchdog) const {
  selfstate::v1::SelfState s;
  s.set_version(self_upgrade_->state_version);
  for (const auto& l : listeners_) {
    auto* e = s.add_listeners();
    e->set_name(l.name());
    e->set_fd(l.fd());
  }
  s.set_admin_fd(admin_->native_handle());
  s.set_caller_fd(caller_fd);
  s.set_resumed_fd(resumed_fd);
  s.set_watchdog_pid(watchdog);
  const Child& g = *incumbent_;
  auto* gen = s.mutable_serving();
  gen->set_number(g.number);
  gen->set_pid(static_cast<uint32_t>(g.pid));
  gen->set_start_time(g.record.start_time);
  if (g.channel) {
    gen->set_control_fd(g.channel->native_handle());
    gen->set_unconsumed(g.channel->Unconsumed());
    *gen->mutable_hello() = g.hello;
  } else {
    gen->set_control_fd(-1);
  }
  gen->set_binary(g.binary);
  gen->set_notify_fd(g.notify->native_handle());
  gen->set_notify_path(g.notify->path());
  gen->set_role(std::string(ChildRoleName(g.role)));
  gen->set_uptime_ms(static_cast<uint64_t>(ToMillis(RealClock().Now() - g.started)));
  if (s.version() >= 2) {
    gen->set_plain(g.plain);
    gen->set_ready(g.ready);
    gen->set_status(g.status);
    if (auto it = watchdog_periods_.find(g.number); it != watchdog_periods_.end()) {
      const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(it->second).count();
      gen->set_watchdog_usec(static_cast<uint64_t>(usec));
    }
    for (const auto& [name, fd] : fd_store_.Entries()) {
      struct stat st {};
      if (::fstat(fd, &st) != 0) return ErrnoError(fmt::format("FD store entry {}: fstat", name), errno);
      auto* e = s.add_fd_store();
      e->set_name(name);
      e->set_fd(fd);
      e->set_dev(static_cast<uint64_t>(st.st_dev));
      e->set_ino(static_cast<uint64_t>(st.st_ino));
    }
  }
  for (const auto& pin : pins_.all()) {
    auto* p = s.add_pins();
    p->set_fd(pin->fd);
    p->set_path(pin->path);
    for (const auto& a : pin->args) p->add_args(a);
    p->set_build_id(pin->build_id);
    p->set_script(pin->script);
    p->set_has_schema(pin->schema.has_value());
    if (pin->schema) {
      p->set_schema_min(pin->schema->min);
      p->set_schema_max(pin->schema->max);
    }
  }
  s.set_spawned(spawned_);
  s.set_generation_number(generation_number_);
  s.set_restarts(restarts_);
  if (last_result_) *s.mutable_last_result() = *last_result_;
  s.set_takeover(takeover_);
  s.set_last_revert(last_revert_);
  s.set_uptime_ms(static_cast<uint64_t>(ToMillis(RealClock().Now() - started_)));
  s.set_old_binary(self_binary_);
  s.set_new_binary(self_upgrade_->binary);
  s.set_requested_at_us(self_upgrade_->requested_at_us);
  for (const auto& json : events_.recent()) s.add_recent_events(json);
  if (auto argv = OwnArgv(); argv) {
    for (const auto& a : *argv) s.add_argv(a);
  }
  s.set_metrics_fd(opts_.metrics_fd ? opts_.metrics_fd() : -1);
  if (opts_.save_metrics && !s.mutable_metrics()->ParseFromString(opts_.save_metrics())) {
    return Error(Errc::kInternal, "the metrics do not serialise");
  }
  return s;
}

void SupervisorImpl::ExecSelf() {
  if (!self_upgrade_) return;
  if (auto busy = SelfBusyReasonAfterPreflight(); !busy.empty()) return SelfUpgradeEnded(v1::REFUSED, busy);
  if (!plain() && (!incumbent_->channel || incumbent_->channel->closed())) {
    return SelfUpgradeEnded(v1::REFUSED, "the serving generation's channel closed");
  }
  auto argv = OwnArgv();
  if (!argv) return SelfUpgradeEnded(v1::REFUSED, argv.error().message);
  // The previous binary, for the new image's fallback and the watchdog:
  // the bytes we run, even if a deploy replaced the file.
  OwnedFd previous(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (previous.get() < 0) return SelfUpgradeEnded(v1::REFUSED, fmt::format("open /proc/self/exe: {}", std::strerror(errno)));
  int resumed[2];
  if (::pipe2(resumed, O_CLOEXEC) != 0) return SelfUpgradeEnded(v1::REFUSED, fmt::format("pipe: {}", std::strerror(errno)));
  OwnedFd resumed_read(resumed[0]), resumed_write(resumed[1]);
  WatchdogPlan plan;
  plan.resumed_read = resumed_read.get();
  plan.resumed_write = resumed_write.get();
  plan.previous_fd = previous.get();
  plan.argv = *argv;
  plan.env = CleanEnvironment();
  // A generation of protocol notify never listens for a re-attach: the
  // watchdog's supervisor adopts it at once.
  if (!plain()) plan.reattach_socket = protocol::ReattachSocketPath(opts_.runtime_dir, incumbent_->pid);
  auto watchdog = ForkWatchdog(plan);
  if (!watchdog) return SelfUpgradeEnded(v1::REFUSED, watchdog.error().message);
  resumed_read.Reset();
  // From here a failure must let the watchdog go ("R") before answering.
  const auto fail = [&](v1::Outcome outcome, const std::string& why) {
    (void)!::write(resumed_write.get(), "R", 1);
    ::waitpid(*watchdog, nullptr, 0);
    SelfUpgradeEnded(outcome, why);
  };
  const int caller_fd = self_upgrade_->client ? self_upgrade_->client->native_handle() : -1;
  auto state = SelfStateNow(caller_fd, resumed_write.get(), *watchdog);
  if (!state) return fail(v1::REFUSED, state.error().message);
  // Paths and arguments are bytes fields; text (a reason naming a path, a
  // daemon's words) must be UTF-8 or the new image could not parse it.
  protocol::ScrubUtf8(*state);
  std::string bytes;
  if (!state->SerializeToString(&bytes)) return fail(v1::REFUSED, "cannot serialise the supervisor state");
  auto memfd = SealedMemfd(bytes);
  if (!memfd) return fail(v1::REFUSED, memfd.error().message);
  auto exec_argv = ResumeArgv(*argv, memfd->get(), previous.get());
  if (!exec_argv) return fail(v1::REFUSED, exec_argv.error().message);
  auto env = ExecEnvironment();
  if (!env) return fail(v1::REFUSED, env.error().message);
  // Every descriptor the new image takes back stays open across execve;
  // nothing else does.
  std::vector<int> carried = {state->admin_fd(), state->resumed_fd(), state->serving().notify_fd(), memfd->get(),
                              previous.get()};
  if (state->serving().control_fd() >= 0) carried.push_back(state->serving().control_fd());
  for (const auto& e : state->fd_store()) carried.push_back(e.fd());
  if (caller_fd >= 0) carried.push_back(caller_fd);
  if (state->metrics_fd() >= 0) carried.push_back(state->metrics_fd());
  for (const auto& l : state->listeners()) carried.push_back(l.fd());
  for (const auto& p : state->pins()) carried.push_back(p.fd());
  for (int fd : carried) {
    if (auto st = SetCloexec(fd, false); !st) {
      for (int f : carried) (void)SetCloexec(f, true);
      return fail(v1::REFUSED, st.error().message);
    }
  }
  Emit(MakeEvent(Level::kInfo, "supervisor.self_exec",
                 "re-executing {} in place (pid {}, state format {}, {} bytes; serving generation pid {})",
                 self_upgrade_->binary, ::getpid(), state->version(), bytes.size(), incumbent_->pid)
           .With("binary", self_upgrade_->binary));
  BATON_CRASH_POINT(kSupervisorSelfBeforeExec);
  // A stop or another upgrade signal between the exec and the new image's
  // handlers stays pending (the mask survives execve) instead of killing us
  // by its default action; the new image unblocks them (supervise.cc).
  sigset_t signals = SupervisorSignals(), before;
  ::sigprocmask(SIG_BLOCK, &signals, &before);
  Error err = ExecImage(self_upgrade_->binary, -1, *exec_argv, *env);
  // Still us: nothing changed.
  ::sigprocmask(SIG_SETMASK, &before, nullptr);
  for (int fd : carried) (void)SetCloexec(fd, true);
  fail(v1::REFUSED, err.message);
}

}  // namespace baton::supervisor
