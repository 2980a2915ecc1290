#include "protocol/handover.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include <fmt/format.h>

#include "protocol/channel.h"

namespace baton::protocol {
namespace {

constexpr int kStateSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;

Status CheckConnection(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return Error(Errc::kInvalidArgument, fmt::format("a connection must be a socket: {}", std::strerror(errno)));
  }
  if (type != SOCK_STREAM) return Error(Errc::kInvalidArgument, "a connection must be a SOCK_STREAM socket");
  int listening = 0;
  len = sizeof(listening);
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0) {
    return Error(Errc::kInvalidArgument, "a connection must not be a listening socket");
  }
  struct sockaddr_storage peer {};
  len = sizeof(peer);
  if (::getpeername(fd, reinterpret_cast<struct sockaddr*>(&peer), &len) != 0) {
    return Error(Errc::kInvalidArgument, fmt::format("a connection must be connected: {}", std::strerror(errno)));
  }
  return {};
}

Status CheckState(int fd) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Error(Errc::kInvalidArgument, "the state must be a memfd (F_GET_SEALS failed)");
  if ((seals & kStateSeals) != kStateSeals) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("the state memfd is not sealed against writes and resizing (seals {:#x})", seals));
  }
  return {};
}

}  // namespace

Status CheckHandedFd(std::string_view kind, int fd) {
  if (kind == kKindConnection) return CheckConnection(fd);
  if (kind == kKindState) return CheckState(fd);
  if (kind == kKindFile) {
    if (::fcntl(fd, F_GETFD) < 0) return Error(Errc::kInvalidArgument, "not an open descriptor");
    return {};
  }
  return Error(Errc::kInvalidArgument, fmt::format("unknown descriptor kind '{}'", kind));
}

Status AcceptHandover(const v1::Handover& frame, std::vector<OwnedFd> fds, size_t max, std::vector<HandedFd>& held) {
  if (static_cast<size_t>(frame.entries_size()) != fds.size()) {
    return Error(Errc::kProtocolError, fmt::format("handover: {} entries but {} descriptors attached",
                                                   frame.entries_size(), fds.size()));
  }
  if (held.size() + fds.size() > max) {
    return Error(Errc::kProtocolError,
                 fmt::format("handover: more than {} descriptors in one handoff", max));
  }
  std::set<std::string> names;
  for (const auto& h : held) names.insert(h.entry.name());
  for (size_t i = 0; i < fds.size(); ++i) {
    const auto& e = frame.entries(static_cast<int>(i));
    if (e.name().empty()) return Error(Errc::kProtocolError, "handover: a descriptor without a name");
    if (!names.insert(e.name()).second) {
      return Error(Errc::kProtocolError, fmt::format("handover: descriptor '{}' named twice", e.name()));
    }
    if (e.metadata().size() > kMaxHandoverMetadata) {
      return Error(Errc::kProtocolError, fmt::format("handover: '{}' has {} metadata bytes (at most {})", e.name(),
                                                     e.metadata().size(), kMaxHandoverMetadata));
    }
    if (auto st = CheckHandedFd(e.kind(), fds[i].get()); !st) {
      return Error(Errc::kProtocolError, fmt::format("handover: '{}': {}", e.name(), st.error().message));
    }
  }
  for (size_t i = 0; i < fds.size(); ++i) held.push_back({frame.entries(static_cast<int>(i)), std::move(fds[i])});
  return {};
}

std::vector<HandoverBatch> MakeHandoverBatches(const std::string& handoff_id, const std::vector<HandedFd>& held) {
  std::vector<HandoverBatch> out;
  size_t bytes = 0;
  for (const auto& h : held) {
    if (out.empty() || out.back().fds.size() == kMaxFdsPerFrame ||
        bytes + h.entry.metadata().size() > kMaxHandoverFrameMetadata) {
      out.emplace_back();
      out.back().env.mutable_handover()->set_handoff_id(handoff_id);
      bytes = 0;
    }
    *out.back().env.mutable_handover()->add_entries() = h.entry;
    out.back().fds.push_back(h.fd.get());
    bytes += h.entry.metadata().size();
  }
  return out;
}

Result<OwnedFd> MakeSealedMemfd(std::string_view bytes) {
  OwnedFd fd(::memfd_create("baton-state", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return ErrnoError("memfd_create", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write state memfd", errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, kStateSeals) != 0) return ErrnoError("seal state memfd", errno);
  return fd;
}

Result<std::string> ReadSealedMemfd(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoError("fstat state memfd", errno);
  std::string out(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read state memfd", errno);
    }
    if (n == 0) return Error(Errc::kInternal, "state memfd shorter than its size");
    done += static_cast<size_t>(n);
  }
  return out;
}

}  // namespace baton::protocol
