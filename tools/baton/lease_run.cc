// `baton lease run --name N [--dsn ...] -- CMD ARGS...`: CMD runs only while
// this process holds the lease (baton::LeaseRunner). Signals are taken on
// the main thread through a signalfd (blocked in every thread, so also in the
// lease's); CMD is started and stopped from the lease's callbacks, which run
// on the lease's thread, so it is stopped before the lease moves on.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/duration.h"
#include "baton/lease.h"
#include "tools/baton/lease_cmd.h"

extern char** environ;

namespace baton::cli {
namespace {

// Exit status in the shell's convention: the code, or 128+N for signal N.
int ShellStatus(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

// CMD, started and stopped from two threads (the lease's callbacks and the
// main loop); one at a time under mu_.
class Child {
 public:
  Child(std::vector<std::string> argv, Duration grace) : argv_(std::move(argv)), grace_(grace) {}

  // Starts CMD with the epoch in its environment; false if it could not be.
  bool Start(uint64_t epoch, const std::string& name, const std::string& holder) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pid_ > 0) return true;
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view v(*e);
      // Our own: never inherited stale. BATON_LEASE_NAME is not passed on: a
      // baton daemon as CMD would read it as a lease of its own to campaign for.
      if (v.starts_with("BATON_LEASE_EPOCH=") || v.starts_with("BATON_LEASE_HOLDER=") ||
          v.starts_with("BATON_LEASE_RUN_NAME=") || v.starts_with("BATON_LEASE_NAME=")) {
        continue;
      }
      env.emplace_back(v);
    }
    env.push_back(fmt::format("BATON_LEASE_EPOCH={}", epoch));
    env.push_back("BATON_LEASE_HOLDER=" + holder);
    env.push_back("BATON_LEASE_RUN_NAME=" + name);
    std::vector<char*> envp, argv;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGPIPE}) sigaddset(&defaults, s);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    const int rc = posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      spawn_error_ = fmt::format("cannot start {}: {}", argv_[0], std::strerror(rc));
      return false;
    }
    pid_ = pid;
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    return true;
  }

  // SIGTERM, then SIGKILL after the grace; returns once CMD was reaped.
  void StopAndWait() {
    std::lock_guard<std::mutex> lock(mu_);
    if (pid_ <= 0) return;
    stopped_by_us_ = true;
    ::kill(pid_, SIGTERM);
    if (pidfd_ >= 0) {
      pollfd p{pidfd_, POLLIN, 0};
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(grace_).count();
      while (::poll(&p, 1, static_cast<int>(ms)) < 0 && errno == EINTR) {
      }
      if (p.revents == 0) ::kill(pid_, SIGKILL);
    } else {
      ::kill(pid_, SIGKILL);
    }
    ReapLocked(0);
  }

  // Reaps CMD if it exited; its status once it did.
  std::optional<int> Poll() {
    std::lock_guard<std::mutex> lock(mu_);
    if (pid_ > 0) ReapLocked(WNOHANG);
    return status_;
  }

  bool running() {
    std::lock_guard<std::mutex> lock(mu_);
    return pid_ > 0;
  }
  bool stopped_by_us() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopped_by_us_;
  }
  std::string spawn_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return spawn_error_;
  }

 private:
  void ReapLocked(int flags) {
    int ws = 0;
    pid_t r;
    while ((r = ::waitpid(pid_, &ws, flags)) < 0 && errno == EINTR) {
    }
    if (r == pid_) {
      status_ = ShellStatus(ws);
      pid_ = 0;
      if (pidfd_ >= 0) ::close(pidfd_);
      pidfd_ = -1;
    }
  }

  std::mutex mu_;
  std::vector<std::string> argv_;
  Duration grace_;
  pid_t pid_ = 0;      // guarded by mu_
  int pidfd_ = -1;     // guarded by mu_
  std::optional<int> status_;
  bool stopped_by_us_ = false;
  std::string spawn_error_;
};

void Say(const std::string& what) { fmt::print(stderr, "baton lease run: {}\n", what); }

void Wake(int efd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(efd, &one, sizeof one);
}

}  // namespace

int RunLeaseRun(const LeaseArgs& a) {
  LeaseOptions o;
  o.name = a.name;
  o.dsn = ResolveLeaseDsn(a.dsn);
  o.holder_id = a.holder;
  if (!a.ttl.empty()) {
    auto ttl = ParseDuration(a.ttl);
    if (!ttl) return Say(fmt::format("--ttl: {}", ttl.error().message)), kLeaseExitUsage;
    o.ttl = std::chrono::duration_cast<std::chrono::milliseconds>(*ttl);
    if (o.op_timeout >= o.ttl) o.op_timeout = o.ttl / 4;
  }
  auto grace = ParseDuration(a.grace);
  if (!grace) return Say(fmt::format("--grace: {}", grace.error().message)), kLeaseExitUsage;
  auto connect = ParseDuration(a.connect_timeout);
  if (!connect) return Say(fmt::format("--connect-timeout: {}", connect.error().message)), kLeaseExitUsage;
  if (a.command.empty()) return Say("no command: baton lease run --name N -- CMD [ARGS...]"), kLeaseExitUsage;

  // Before any thread: every thread (the lease's too) inherits the mask, so
  // these signals reach only the signalfd.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
  ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  const int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (sfd < 0 || efd < 0) return Say(fmt::format("signalfd/eventfd: {}", std::strerror(errno))), 1;

  Child child(a.command, *grace);
  std::atomic<int> lost{-1};  // a LeaseEndReason that ended our leadership, -1 none
  std::atomic<bool> spawn_failed{false};
  std::string name = a.name;
  // The runner's holder id, known once Create returns; but the runner
  // campaigns from inside Create, so on_start may come first and waits for it
  // (Create returns right after it posts the campaign).
  std::optional<std::string> holder;
  std::mutex holder_mu;
  std::condition_variable holder_cv;
  LeaseCallbacks cb;
  cb.on_start = [&](uint64_t epoch) {
    std::string h;
    {
      std::unique_lock<std::mutex> lock(holder_mu);
      holder_cv.wait(lock, [&] { return holder.has_value(); });
      h = *holder;
    }
    Say(fmt::format("leader of '{}' at epoch {}: starting {}", name, epoch, a.command[0]));
    if (!child.Start(epoch, name, h)) spawn_failed = true;
    Wake(efd);
  };
  cb.on_end = [&](uint64_t epoch, LeaseEndReason why) {
    // Runs before the lease moves on (a handover) or once it is gone: CMD is
    // stopped before this returns, so it never runs beside the next holder's.
    if (why != LeaseEndReason::kStopped) {
      Say(fmt::format("leadership of '{}' at epoch {} ended ({}): stopping the command", name, epoch,
                      LeaseEndReasonName(why)));
      lost = static_cast<int>(why);
    }
    child.StopAndWait();
    Wake(efd);
  };
  auto runner = LeaseRunner::Create(o, cb);
  if (!runner) {
    const Error& e = runner.error();
    Say(e.message);
    return e.Is(Errc::kInvalidArgument) ? kLeaseExitUsage : kLeaseExitUnreachable;
  }
  {
    std::lock_guard<std::mutex> lock(holder_mu);
    holder = (*runner)->holder_id();
  }
  holder_cv.notify_all();
  const Duration stop_bound = std::max<Duration>(o.op_timeout * 2, milliseconds(1000));
  auto finish = [&](int rc) {
    (*runner)->Stop(std::chrono::duration_cast<std::chrono::milliseconds>(stop_bound));
    runner->reset();
    ::close(sfd);
    ::close(efd);
    return rc;
  };

  const auto connect_deadline = std::chrono::steady_clock::now() + *connect;
  for (;;) {
    if (spawn_failed) {
      Say(child.spawn_error());
      return finish(kLeaseExitSpawn);
    }
    if (lost >= 0) {
      child.StopAndWait();
      return finish(kLeaseExitLost);
    }
    if (auto st = child.Poll(); st && !child.stopped_by_us()) {
      Say(fmt::format("{} exited with status {}; stepping down", a.command[0], *st));
      return finish(*st);
    }
    if (!(*runner)->reachable() && std::chrono::steady_clock::now() >= connect_deadline) {
      Say(fmt::format("could not reach PostgreSQL for lease '{}' within {}", name, a.connect_timeout));
      return finish(kLeaseExitUnreachable);
    }
    pollfd fds[2] = {{sfd, POLLIN, 0}, {efd, POLLIN, 0}};
    const int timeout_ms = (*runner)->reachable() ? -1 : 100;  // until reached, look at the clock too
    if (::poll(fds, 2, timeout_ms) < 0 && errno != EINTR) return finish(1);
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(efd, &v, sizeof v);
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si) && si.ssi_signo != SIGCHLD) {
        Say(fmt::format("signal {}: stopping the command, then handing the lease over", si.ssi_signo));
        child.StopAndWait();
        return finish(0);
      }
    }
  }
}

}  // namespace baton::cli
