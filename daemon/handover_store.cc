#include "daemon/handover_store.h"

#include <fcntl.h>

#include <fmt/format.h>

namespace baton::detail {
namespace {

std::string_view KindName(HandoverKind k) {
  return k == HandoverKind::kConnection ? protocol::kKindConnection : protocol::kKindFile;
}

}  // namespace

void HandoverStore::Open() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = true;
}

void HandoverStore::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  open_ = false;
}

void HandoverStore::SetAccepts(bool accepts) {
  std::lock_guard<std::mutex> lock(mu_);
  accepts_ = accepts;
}

bool HandoverStore::accepts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepts_;
}

void HandoverStore::SetSuccessorAccepts(bool accepts) {
  std::lock_guard<std::mutex> lock(mu_);
  successor_accepts_ = accepts;
}

bool HandoverStore::successor_accepts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return successor_accepts_;
}

namespace {
constexpr std::string_view kNotAccepted =
    "the successor does not accept handed-over descriptors (it did not call AcceptHandover, or its baton is older); "
    "close it instead";
}  // namespace

Status HandoverStore::Give(HandoverKind kind, std::string_view name, int fd, std::string_view metadata) {
  if (name.empty() || name == protocol::kStateName) {
    return Error(Errc::kInvalidArgument, fmt::format("handover: '{}' is not a name a descriptor may have", name));
  }
  if (metadata.size() > protocol::kMaxHandoverMetadata) {
    return Error(Errc::kInvalidArgument, fmt::format("handover: '{}': {} metadata bytes (at most {})", name,
                                                     metadata.size(), protocol::kMaxHandoverMetadata));
  }
  if (auto st = protocol::CheckHandedFd(KindName(kind), fd); !st) {
    return Error(Errc::kInvalidArgument, fmt::format("handover: '{}': {}", name, st.error().message));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) {
    return Error(Errc::kFailedPrecondition, "handover: only from the Drain or Seal hook of a handoff");
  }
  if (!successor_accepts_) return Error(Errc::kFailedPrecondition, fmt::format("handover: '{}': {}", name, kNotAccepted));
  if (outgoing_.size() >= max_) {
    return Error(Errc::kFailedPrecondition, fmt::format("handover: at most {} descriptors per handoff", max_));
  }
  for (const auto& h : outgoing_) {
    if (h.entry.name() == name) {
      return Error(Errc::kInvalidArgument, fmt::format("handover: '{}' is already handed over", name));
    }
  }
  protocol::HandedFd h;
  h.entry.set_name(std::string(name));
  h.entry.set_kind(std::string(KindName(kind)));
  h.entry.set_metadata(std::string(metadata));
  // O_CLOEXEC from here on, whatever the daemon opened it with.
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  h.fd = OwnedFd(fd);
  outgoing_.push_back(std::move(h));
  return {};
}

Status HandoverStore::SetState(std::string_view bytes) {
  auto fd = protocol::MakeSealedMemfd(bytes);
  if (!fd) return fd.error();
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_) {
    return Error(Errc::kFailedPrecondition, "handover: the state only from the Drain or Seal hook of a handoff");
  }
  if (!successor_accepts_) return Error(Errc::kFailedPrecondition, fmt::format("handover: the state: {}", kNotAccepted));
  for (auto& h : outgoing_) {
    if (h.entry.name() == protocol::kStateName) {
      h.fd = std::move(*fd);
      return {};
    }
  }
  if (outgoing_.size() >= max_) {
    return Error(Errc::kFailedPrecondition, fmt::format("handover: at most {} descriptors per handoff", max_));
  }
  protocol::HandedFd h;
  h.entry.set_name(std::string(protocol::kStateName));
  h.entry.set_kind(std::string(protocol::kKindState));
  h.fd = std::move(*fd);
  outgoing_.push_back(std::move(h));
  return {};
}

std::vector<protocol::HandoverBatch> HandoverStore::Batches(const std::string& handoff_id, size_t& count) {
  std::lock_guard<std::mutex> lock(mu_);
  count = outgoing_.size();
  return protocol::MakeHandoverBatches(handoff_id, outgoing_);
}

void HandoverStore::ReturnOwn() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& h : outgoing_) ready_.push_back(std::move(h));
  outgoing_.clear();
  open_ = false;
}

void HandoverStore::Drop() {
  std::lock_guard<std::mutex> lock(mu_);
  outgoing_.clear();
}

Status HandoverStore::Receive(const v1::Handover& frame, std::vector<OwnedFd> fds) {
  std::lock_guard<std::mutex> lock(mu_);
  return protocol::AcceptHandover(frame, std::move(fds), max_, received_);
}

size_t HandoverStore::received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_.size();
}

void HandoverStore::DropReceived() {
  std::lock_guard<std::mutex> lock(mu_);
  received_.clear();
}

void HandoverStore::AcceptReceived() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& h : received_) ready_.push_back(std::move(h));
  received_.clear();
}

std::vector<HandedOverFd> HandoverStore::Take() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<HandedOverFd> out;
  std::vector<protocol::HandedFd> keep;
  for (auto& h : ready_) {
    if (h.entry.kind() == protocol::kKindState) {
      keep.push_back(std::move(h));
      continue;
    }
    out.push_back({h.entry.name(),
                   h.entry.kind() == protocol::kKindConnection ? HandoverKind::kConnection : HandoverKind::kFile,
                   h.fd.Release(), h.entry.metadata()});
  }
  ready_ = std::move(keep);
  return out;
}

std::optional<std::string> HandoverStore::TakeState() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = ready_.begin(); it != ready_.end(); ++it) {
    if (it->entry.kind() != protocol::kKindState) continue;
    auto bytes = protocol::ReadSealedMemfd(it->fd.get());
    ready_.erase(it);
    if (!bytes) return std::nullopt;
    return std::move(*bytes);
  }
  return std::nullopt;
}

}  // namespace baton::detail
