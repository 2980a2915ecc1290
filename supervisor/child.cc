#include "supervisor/child.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <tuple>

#include <fmt/format.h>

#include "crashpoints/crashpoints.h"
#include "supervisor/launch.h"

namespace baton::supervisor {

namespace asio = boost::asio;

namespace {

// The supervisor's end of `g`'s control channel over `fd` (taken over),
// and the watch on its exit.
void StartChannel(asio::io_context& io, const std::shared_ptr<Child>& g, int fd,
                  const protocol::LivenessOptions& liveness, ChildCallbacks callbacks, std::string_view unconsumed = {}) {
  protocol::UnixSocket socket(io);
  socket.assign(asio::local::stream_protocol(), fd);
  std::weak_ptr<Child> weak = g;
  g->channel = protocol::Channel::Create(std::move(socket), liveness, RealClock(),
                                         {[weak, cb = callbacks.on_message](v1::Envelope env) {
                                            if (auto g = weak.lock()) cb(g, env);
                                          },
                                          [weak, cb = callbacks.on_closed](const Error& e) {
                                            if (auto g = weak.lock()) cb(g, e);
                                          },
                                          [weak, cb = callbacks.on_message_with_fds](v1::Envelope env,
                                                                                     std::vector<OwnedFd> fds) {
                                            if (auto g = weak.lock()) cb(g, std::move(env), std::move(fds));
                                          }});
  g->channel->Prime(unconsumed);
  g->channel->Start();
  g->proc->AsyncWaitExit([g, cb = callbacks.on_exit](int status) { cb(g, ChildExit::FromWaitStatus(status)); });
}

}  // namespace

Result<CrashRoute> CrashRoute::FromEnvironment() {
  CrashRoute r;
  const char* at = std::getenv("BATON_CRASH_AT");
  if (at == nullptr || *at == '\0') return r;
  auto target = crashpoints::ParseTarget(at);
  if (!target) return target.error();
  r.text_ = at;
  r.child_role_ = target->child_role;
  return r;
}

std::string CrashRoute::TakeFor(ChildRole role) {
  if (delivered_ || child_role_.empty() || ChildRoleName(role) != child_role_) return "";
  delivered_ = true;
  return text_;
}

std::vector<std::string> ChildEnvironment(const std::string& crash_at, const std::string& data_dir,
                                         std::vector<std::string> base, const std::string& notify_path,
                                         Duration watchdog, const std::string& reattach_dir) {
  std::vector<std::string> env;
  for (auto& e : base) {
    bool drop = false;
    for (std::string_view v : {"BATON_CRASH_AT=", "BATON_DATA_DIR=", "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
                               "BATON_REATTACH_DIR="}) {
      drop = drop || e.rfind(v, 0) == 0;
    }
    if (!drop) env.push_back(std::move(e));
  }
  if (!crash_at.empty()) env.push_back("BATON_CRASH_AT=" + crash_at);
  env.push_back("BATON_DATA_DIR=" + data_dir);
  if (!notify_path.empty()) env.push_back("NOTIFY_SOCKET=" + notify_path);
  if (watchdog > Duration::zero()) {
    env.push_back(fmt::format("WATCHDOG_USEC={}", std::chrono::duration_cast<std::chrono::microseconds>(watchdog).count()));
  }
  if (!reattach_dir.empty()) env.push_back("BATON_REATTACH_DIR=" + reattach_dir);
  return env;
}

Result<std::shared_ptr<Child>> SpawnChild(asio::io_context& io, const std::vector<Listener>& listeners,
                                          const SpawnSpec& spec, ChildCallbacks callbacks) {
  // A plain child (protocol notify) has no control channel: -1 on both ends.
  int parent_fd = -1, child_fd = -1;
  if (!spec.plain) {
    auto pair = MakeControlSocketPair();
    if (!pair) return pair.error();
    std::tie(parent_fd, child_fd) = *pair;
  }
  const auto close_ends = [&] {
    if (parent_fd >= 0) ::close(parent_fd);
    if (child_fd >= 0) ::close(child_fd);
    parent_fd = child_fd = -1;
  };
  std::vector<protocol::ListenerFd> fds;
  for (const auto& l : listeners) fds.push_back({l.name(), l.fd()});
  for (const auto& [name, fd] : spec.stored_fds) fds.push_back({name, fd});
  const protocol::LaunchRole role = spec.plain                     ? protocol::LaunchRole::kNone
                                    : spec.role == ChildRole::kCold ? protocol::LaunchRole::kCold
                                                                    : protocol::LaunchRole::kSuccessor;
  auto launch = protocol::ChildLaunch::Create(
      std::move(fds), child_fd, role,
      ChildEnvironment(spec.crash_at, spec.data_dir, spec.base_env.empty() ? CurrentEnvironment() : spec.base_env,
                       spec.notify_path, spec.watchdog, spec.reattach_dir));
  if (!launch) {
    close_ends();
    return launch.error();
  }
  auto proc = Launch(io.get_executor(), spec.pin->path, spec.args, *launch, spec.pin->script ? -1 : spec.pin->fd);
  if (child_fd >= 0) ::close(child_fd);  // the child has its own copy now
  child_fd = -1;
  if (!proc) {
    close_ends();
    return proc.error();
  }
  auto g = std::make_shared<Child>();
  g->number = spec.number;
  g->pid = proc->id();
  proc->detach();  // watched and reaped through our own pidfd from here on
  auto child = ChildProcess::Adopt(io.get_executor(), g->pid);
  if (!child) {
    // Cannot watch it, so it must not run unwatched.
    ::kill(g->pid, SIGKILL);
    ::waitpid(g->pid, nullptr, 0);
    close_ends();
    return child.error();
  }
  g->role = spec.role;
  g->binary = spec.pin->path;
  g->pin = spec.pin;
  g->proc = std::move(*child);
  g->started = RealClock().Now();
  g->plain = spec.plain;
  if (spec.plain) {
    g->proc->AsyncWaitExit([g, cb = callbacks.on_exit](int status) { cb(g, ChildExit::FromWaitStatus(status)); });
    return g;
  }
  StartChannel(io, g, parent_fd, spec.liveness, std::move(callbacks));
  return g;
}

Result<std::shared_ptr<Child>> AttachChild(asio::io_context& io, pid_t pid, int control_fd,
                                           const protocol::LivenessOptions& liveness, ChildCallbacks callbacks) {
  auto proc = ChildProcess::Adopt(io.get_executor(), pid);
  if (!proc) {
    ::close(control_fd);
    return proc.error();
  }
  auto g = std::make_shared<Child>();
  g->pid = pid;
  g->role = ChildRole::kCold;
  g->proc = std::move(*proc);
  g->started = RealClock().Now();
  g->reattaching = true;
  StartChannel(io, g, control_fd, liveness, std::move(callbacks));
  return g;
}

Result<std::shared_ptr<Child>> ResumeChild(asio::io_context& io, pid_t pid, int control_fd, std::string_view unconsumed,
                                           const protocol::LivenessOptions& liveness, ChildCallbacks callbacks) {
  auto proc = ChildProcess::Adopt(io.get_executor(), pid);
  if (!proc) return proc.error();
  auto g = std::make_shared<Child>();
  g->pid = pid;
  g->proc = std::move(*proc);
  g->started = RealClock().Now();
  StartChannel(io, g, control_fd, liveness, std::move(callbacks), unconsumed);
  return g;
}

Result<std::shared_ptr<Child>> ResumePlainChild(asio::io_context& io, pid_t pid, ChildCallbacks callbacks) {
  auto proc = ChildProcess::Adopt(io.get_executor(), pid);
  if (!proc) return proc.error();
  auto g = std::make_shared<Child>();
  g->pid = pid;
  g->proc = std::move(*proc);
  g->started = RealClock().Now();
  g->plain = true;
  g->proc->AsyncWaitExit([g, cb = callbacks.on_exit](int status) { cb(g, ChildExit::FromWaitStatus(status)); });
  return g;
}

}  // namespace baton::supervisor
