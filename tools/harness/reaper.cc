#include "tools/harness/reaper.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <mutex>

namespace baton::harness {

namespace {

// Messages on the socket pair (SOCK_SEQPACKET, so each arrives whole): a
// positive pgid registers a group, a negative one forgets it. `start` is
// the group leader's start time (/proc/<pid>/stat field 22, clock ticks
// since boot), so that a number the kernel has given to another process
// since is recognised and spared.
struct Message {
  int32_t pgid;
  uint64_t start;
};
constexpr int kMaxGroups = 4096;

std::mutex mu;
pid_t owner = -1;    // the process whose death the reaper at write_fd waits for
int write_fd = -1;   // the test's end of the pair, O_CLOEXEC

// Field 22 of /proc/<pid>/stat, 0 when the process is gone. Async-signal-
// safe (the reaper uses it): no allocation, no stdio.
uint64_t StartTime(pid_t pid) {
  char path[32] = "/proc/";
  char digits[16];
  int n = 0;
  for (pid_t v = pid; v > 0 && n < 15; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
  int at = 6;
  while (n > 0) path[at++] = digits[--n];
  const char* tail = "/stat";
  for (int i = 0; tail[i] != '\0'; ++i) path[at++] = tail[i];
  path[at] = '\0';
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t len = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (len <= 0) return 0;
  // The command name (field 2) may hold spaces and parentheses: count
  // fields from the last ')'.
  ssize_t i = len - 1;
  while (i >= 0 && buf[i] != ')') --i;
  if (i < 0) return 0;
  int field = 2;
  for (++i; i < len && field < 22; ++i) {
    if (buf[i] == ' ') ++field;
  }
  uint64_t start = 0;
  for (; i < len && buf[i] >= '0' && buf[i] <= '9'; ++i) start = start * 10 + static_cast<uint64_t>(buf[i] - '0');
  return start;
}

// The reaper's body. It was forked from a process that may have threads, so
// it uses async-signal-safe calls only (no allocation, no locks).
[[noreturn]] void Reap(int fd) {
  Message groups[kMaxGroups];
  int n = 0;
  for (;;) {
    Message m{};
    const ssize_t r = ::recv(fd, &m, sizeof(m), 0);
    if (r < 0 && errno == EINTR) continue;
    if (r != static_cast<ssize_t>(sizeof(m))) break;  // end of file: the test process is gone
    const pid_t g = m.pgid > 0 ? m.pgid : -m.pgid;
    int at = 0;
    while (at < n && groups[at].pgid != g) ++at;
    if (m.pgid > 0 && at == n && n < kMaxGroups) groups[n++] = m;
    if (m.pgid < 0 && at < n) groups[at] = groups[--n];
  }
  for (int i = 0; i < n; ++i) {
    // A leader that runs with another start time is a stranger with a
    // recycled number. A leader that is gone may have left members behind
    // (a supervisor's orphaned daemons): those are ours.
    const uint64_t now = StartTime(groups[i].pgid);
    if (now == 0 || now == groups[i].start) ::kill(-groups[i].pgid, SIGKILL);
  }
  ::_exit(0);
}

// Starts a reaper for this process; under `mu`. false if it could not.
bool StartReaper() {
  int p[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) != 0) return false;
  const pid_t middle = ::fork();
  if (middle < 0) {
    ::close(p[0]);
    ::close(p[1]);
    return false;
  }
  if (middle == 0) {
    // Its own session: no terminal signal (^C) reaches it. The middle
    // process exits at once, so the reaper is re-parented away from the
    // test and a kill of the test's process tree misses it.
    ::setsid();
    const pid_t reaper = ::fork();
    if (reaper != 0) ::_exit(reaper < 0 ? 1 : 0);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::sigaction(sig, &ignore, nullptr);
    constexpr int kFd = 64;  // out of the way of 0-2, and kept below
    const int fd = ::dup2(p[0], kFd);
    const int devnull = ::open("/dev/null", O_RDWR);
    for (int i = 0; i < 3; ++i) ::dup2(devnull, i);
    // Every other descriptor goes, the test's end first of all: holding it
    // would keep the pair open for ever.
    for (int i = 3; i < kFd; ++i) ::close(i);
    ::close_range(kFd + 1, ~0U, 0);
    if (::chdir("/") != 0 || fd < 0) ::_exit(1);
    Reap(fd);
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ::close(p[1]);
    return false;
  }
  write_fd = p[1];
  owner = ::getpid();
  return true;
}

void Send(Message m) {
  std::lock_guard lock(mu);
  if (owner != ::getpid()) {
    // A forked child: the inherited end belongs to the parent's
    // reaper (keeping it would delay that one); this process gets its own.
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
    owner = -1;
    if (m.pgid < 0 || !StartReaper()) return;
  }
  // MSG_NOSIGNAL: a reaper killed by someone must not take the test with it.
  ssize_t r;
  do {
    r = ::send(write_fd, &m, sizeof(m), MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
}

}  // namespace

void KillGroupOnExit(pid_t pgid) {
  if (pgid > 0) Send(Message{static_cast<int32_t>(pgid), StartTime(pgid)});
}

void ForgetGroup(pid_t pgid) {
  if (pgid > 0) Send(Message{-static_cast<int32_t>(pgid), 0});
}

}  // namespace baton::harness
