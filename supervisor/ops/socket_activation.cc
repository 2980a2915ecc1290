#include "supervisor/ops/socket_activation.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "supervisor/ops/libsystemd.h"

namespace baton::supervisor {

Result<std::vector<ActivatedSocket>> TakeActivatedSockets() {
  // Not socket-activated: nothing to take, and no need to load libsystemd.
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (pid == nullptr || *pid == '\0' || fds == nullptr || *fds == '\0') return std::vector<ActivatedSocket>{};
  auto sd = Libsystemd::Load();
  if (!sd) return sd.error();
  char** names = nullptr;
  const int n = (*sd)->listen_fds_with_names(1, &names);
  if (n < 0) return ErrnoError("sd_listen_fds_with_names (LISTEN_FDS)", -n);
  std::vector<ActivatedSocket> out;
  for (int i = 0; i < n; ++i) {
    ActivatedSocket s;
    s.fd = SD_LISTEN_FDS_START + i;
    s.name = names != nullptr && names[i] != nullptr ? names[i] : "unknown";
    out.push_back(std::move(s));
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  return out;
}

Result<std::vector<ListenerSpec>> MatchActivated(std::vector<ListenerSpec> configured,
                                                 const std::vector<ActivatedSocket>& activated) {
  const bool adopt_all = configured.empty();
  for (const auto& a : activated) {
    ListenerSpec* match = nullptr;
    for (auto& c : configured) {
      if (c.name == a.name) match = &c;
    }
    if (match == nullptr && !adopt_all) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("systemd passed a socket named '{}' but no listener of that name is configured "
                               "(set FileDescriptorName= in the .socket unit to a [listeners] name)",
                               a.name));
    }
    if (match == nullptr) {
      if (a.name.find(':') != std::string::npos || a.name.empty()) {
        return Error(Errc::kInvalidArgument, fmt::format("activated socket name '{}' is not usable", a.name));
      }
      configured.push_back(ListenerSpec{});
      match = &configured.back();
      match->name = a.name;
    }
    if (match->inherited_fd >= 0) {
      // The same socket twice (a .socket unit's fd also parked in the FD
      // store by an older supervisor) is harmless: keep one.
      struct stat x {}, y {};
      if (::fstat(match->inherited_fd, &x) == 0 && ::fstat(a.fd, &y) == 0 && x.st_dev == y.st_dev &&
          x.st_ino == y.st_ino) {
        ::close(a.fd);
        continue;
      }
      return Error(Errc::kInvalidArgument, fmt::format("systemd passed two different sockets named '{}'", a.name));
    }
    // A listener configured with an address says whether it is a stream or
    // a datagram socket: systemd's must be the same (ListenStream= for
    // tcp:// and unix:, ListenDatagram= for udp://).
    int type = 0;
    socklen_t tlen = sizeof(type);
    const bool got_type = ::getsockopt(a.fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
    const bool datagram = got_type && type == SOCK_DGRAM;
    const bool has_address = !adopt_all && !match->require_inherited;
    if (has_address && datagram != (match->kind == ListenerSpec::Kind::kUdp)) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("systemd passed a {} socket named '{}' but the listener is configured as {}:// "
                               "(ListenDatagram= in the .socket unit for udp://, ListenStream= otherwise)",
                               datagram ? "datagram" : "stream", a.name, KindName(match->kind)));
    }
    match->inherited_fd = a.fd;
    // Describe it as it really is (for Address() and status).
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(a.fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 && ss.ss_family == AF_UNIX) {
      match->kind = ListenerSpec::Kind::kUnix;
      match->path = reinterpret_cast<sockaddr_un*>(&ss)->sun_path;
    } else {
      match->kind = datagram ? ListenerSpec::Kind::kUdp : ListenerSpec::Kind::kTcp;
    }
  }
  return configured;
}

}  // namespace baton::supervisor
