#include "supervisor/reattach.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "protocol/child_env.h"

namespace baton::supervisor {

Result<int> ConnectForReattach(const std::string& runtime_dir, const Orphan& orphan) {
  const std::string path = protocol::ReattachSocketPath(runtime_dir, orphan.pid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error(Errc::kInvalidArgument, fmt::format("re-attach socket path {} is too long", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // Non-blocking: a generation that stopped accepting must not hang our start.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ErrnoError("socket(AF_UNIX)", errno);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == ENOENT) {
      return Error(Errc::kNotFound,
                   fmt::format("pid {} does not listen at {} (mid-handoff, or a daemon that cannot re-attach)",
                               orphan.pid(), path));
    }
    return ErrnoError(fmt::format("connect({})", path), err);
  }
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("SO_PEERCRED", err);
  }
  // The listener's creator; and the pidfd still names the journal's process
  // (a recycled pid would have to be both the listener and our pidfd's).
  if (cred.pid != orphan.pid() || !orphan.Running()) {
    ::close(fd);
    return Error(Errc::kPermissionDenied, fmt::format("{} is held by pid {}, not by the journal's pid {}", path,
                                                      cred.pid, orphan.pid()));
  }
  return fd;
}

OwnedFd ConnectToOrphan(const std::string& runtime_dir, const std::vector<Orphan>& orphans, LogSink& log) {
  if (orphans.empty()) return {};
  if (orphans.size() > 1) {
    log.Emit(MakeEvent(Level::kInfo, "supervisor.reattach_failed",
                       "{} generations still run (a handoff was in flight): re-attaching once the orphan rules leave "
                       "one, else adopting them",
                       orphans.size())
                 .With("count", static_cast<int64_t>(orphans.size())));
    return {};
  }
  auto fd = ConnectForReattach(runtime_dir, orphans.front());
  if (!fd) {
    log.Emit(MakeEvent(Level::kWarn, "supervisor.reattach_failed", "cannot re-attach: {}; adopting it instead",
                       fd.error().message)
                 .With("pid", int64_t{orphans.front().pid()}));
    return {};
  }
  return OwnedFd(*fd);
}

}  // namespace baton::supervisor
