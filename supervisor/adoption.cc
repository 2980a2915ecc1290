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

// Whether `fd` is a listening socket bound where `spec` says.
bool Matches(int fd, const ListenerSpec& spec) {
  int listening = 0;
  socklen_t len = sizeof(listening);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) return false;
  sockaddr_storage ss{};
  len = sizeof(ss);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
  if (spec.kind == ListenerSpec::Kind::kUnix) {
    if (ss.ss_family != AF_UNIX) return false;
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    return spec.path == un->sun_path;
  }
  if (spec.port == 0) return false;  // an ephemeral port cannot be recognised
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    if (ntohs(in->sin_port) != spec.port) return false;
    in_addr want{};
    if (spec.host.empty()) return in->sin_addr.s_addr == htonl(INADDR_ANY);
    if (::inet_pton(AF_INET, spec.host.c_str(), &want) == 1) return want.s_addr == in->sin_addr.s_addr;
    return true;  // a host name: the port decides
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (ntohs(in6->sin6_port) != spec.port) return false;
    in6_addr want{};
    std::string host = spec.host;
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (::inet_pton(AF_INET6, host.c_str(), &want) == 1) return std::memcmp(&want, &in6->sin6_addr, sizeof(want)) == 0;
    return true;
  }
  return false;
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
