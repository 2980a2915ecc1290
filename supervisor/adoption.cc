#include "supervisor/adoption.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace baton::supervisor {
namespace {

// Raw syscalls: glibc 2.36's pidfd wrappers lack C linkage for C++.
int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int PidfdGetfd(int pidfd, int fd) { return static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0)); }
int PidfdSendSignal(int pidfd, int sig) { return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0)); }

// Whether `fd` is the socket `spec` describes, bound where it says: a
// listening stream socket, or for udp a bound datagram socket (an orphan's
// other UDP sockets are on other ports, or connected).
bool Matches(int fd, const ListenerSpec& spec) {
  if (spec.kind != ListenerSpec::Kind::kUnix && spec.port == 0) return false;  // an ephemeral port cannot be recognised
  return static_cast<bool>(CheckListenerSocket(fd, spec));
}

}  // namespace

Orphan::~Orphan() {
  if (pidfd_ >= 0) ::close(pidfd_);
}

bool Orphan::Running() const { return StillRunning(entry_); }

Status Orphan::Signal(int sig) const {
  if (PidfdSendSignal(pidfd_, sig) != 0 && errno != ESRCH) {
    return ErrnoError(fmt::format("signal {} to orphan pid {}", sig, entry_.pid), errno);
  }
  return {};
}

std::vector<Orphan> FindOrphans(const AdoptionRecord& journal) {
  std::vector<Orphan> out;
  for (const auto& c : journal.children) {
    const int pidfd = PidfdOpen(c.pid);
    if (pidfd < 0) continue;
    // Checked after pidfd_open: the pidfd now pins this very process.
    if (!StillRunning(c)) {
      ::close(pidfd);
      continue;
    }
    out.emplace_back(c, pidfd);
  }
  return out;
}

Result<int> TakeListener(const std::vector<Orphan>& orphans, const ListenerSpec& spec) {
  Error last(Errc::kNotFound, fmt::format("listener {}: no orphan holds it", spec.name));
  for (const auto& o : orphans) {
    const std::string dir = fmt::format("/proc/{}/fd", o.pid());
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
      last = ErrnoError(fmt::format("listener {}: list {}", spec.name, dir), errno);
      continue;
    }
    while (dirent* ent = ::readdir(d)) {
      if (ent->d_name[0] == '.') continue;
      char target[64] = {0};
      const std::string link = dir + "/" + ent->d_name;
      const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
      if (n <= 0 || std::strncmp(target, "socket:", 7) != 0) continue;
      const int fd = PidfdGetfd(o.pidfd(), std::atoi(ent->d_name));  // O_CLOEXEC by definition
      if (fd < 0) {
        last = ErrnoError(fmt::format("listener {}: pidfd_getfd from orphan pid {}", spec.name, o.pid()), errno);
        if (errno == EPERM) break;  // no rights over this process at all
        continue;
      }
      if (Matches(fd, spec)) {
        ::closedir(d);
        return fd;
      }
      ::close(fd);
    }
    ::closedir(d);
  }
  return last;
}

}  // namespace baton::supervisor
