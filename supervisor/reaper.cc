#include "supervisor/reaper.h"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>

namespace baton::supervisor {
namespace {

// The parent pid and state of /proc/<pid>/stat ("pid (comm) S ppid ...";
// comm may hold spaces and parentheses, so parse after the last ')').
bool ReadStat(pid_t pid, pid_t* ppid, char* state) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  long parent = 0;
  char s = 0;
  if (std::sscanf(line.c_str() + close + 1, " %c %ld", &s, &parent) != 2) return false;
  *ppid = static_cast<pid_t>(parent);
  *state = s;
  return true;
}

bool Reap(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == pid;
}

}  // namespace

std::set<pid_t> PidsWithPidfd() {
  std::set<pid_t> out;
  DIR* d = ::opendir("/proc/self/fdinfo");
  if (d == nullptr) return out;
  while (dirent* ent = ::readdir(d)) {
    if (ent->d_name[0] < '0' || ent->d_name[0] > '9') continue;
    std::ifstream in(fmt::format("/proc/self/fdinfo/{}", ent->d_name));
    std::string line;
    while (std::getline(in, line)) {
      // Only a pidfd's fdinfo has a "Pid:" line (-1 once the process is
      // reaped).
      if (line.rfind("Pid:", 0) == 0) {
        const long pid = std::strtol(line.c_str() + 4, nullptr, 10);
        if (pid > 0) out.insert(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  ::closedir(d);
  return out;
}

int ReapStrayChildren(const std::set<pid_t>& keep) {
  int reaped = 0;
  // The cheap way first: waitid(WNOWAIT) names a zombie child without
  // reaping it. It names the same one until that one is reaped, so it stops
  // helping at the first child of our own (whose pidfd handler has not run
  // yet); past that, the children are found by their parent pid in /proc.
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return reaped;
    if (keep.count(info.si_pid) != 0) break;
    if (!Reap(info.si_pid)) return reaped;
    ++reaped;
  }
  const pid_t self = ::getpid();
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return reaped;
  while (dirent* ent = ::readdir(d)) {
    if (ent->d_name[0] < '0' || ent->d_name[0] > '9') continue;
    const pid_t pid = static_cast<pid_t>(std::atol(ent->d_name));
    pid_t ppid = 0;
    char state = 0;
    if (keep.count(pid) != 0 || !ReadStat(pid, &ppid, &state)) continue;
    if (ppid == self && state == 'Z' && Reap(pid)) ++reaped;
  }
  ::closedir(d);
  return reaped;
}

Result<std::unique_ptr<OrphanReaper>> OrphanReaper::Start(boost::asio::io_context& io, LogSink& log) {
  if (::getpid() != 1 && ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
    return ErrnoError("prctl(PR_SET_CHILD_SUBREAPER)", errno);
  }
  auto r = std::make_unique<OrphanReaper>(io, log);
  r->Wait();
  // Orphans that died before the signal set existed sent their SIGCHLD to
  // nobody.
  r->reaped_ += static_cast<uint64_t>(ReapStrayChildren(PidsWithPidfd()));
  return std::unique_ptr<OrphanReaper>(std::move(r));
}

void OrphanReaper::Wait() {
  sigchld_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    const int n = ReapStrayChildren(PidsWithPidfd());
    if (n > 0) {
      reaped_ += static_cast<uint64_t>(n);
      log_.Emit(MakeEvent(Level::kInfo, "reaper.reaped", "reaped {} orphan(s), {} in all", n, reaped_)
                    .With("count", int64_t{n}));
    }
    Wait();
  });
}

}  // namespace baton::supervisor
