// The C ABI of descriptor and state handover (include/baton/baton.h, ABI 1.2
// and 1.3).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "daemon/c_api_impl.h"

struct baton_handed_fd {
  baton::HandedOverFd h;
};

using namespace baton::capi;

extern "C" {

int baton_hand_over(baton_daemon* daemon, int kind, const char* name, int fd, const void* metadata,
                    size_t metadata_len, baton_error** err) {
  return Guarded(err, "baton_hand_over", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_hand_over", "daemon");
    if (name == nullptr) return NullArgument(err, "baton_hand_over", "name");
    if (metadata == nullptr && metadata_len > 0) return NullArgument(err, "baton_hand_over", "metadata");
    if (kind != BATON_HANDOVER_CONNECTION && kind != BATON_HANDOVER_FILE) {
      return Fail(err, BATON_INVALID_ARGUMENT, fmt::format("baton_hand_over: {} is not a baton_handover_kind", kind));
    }
    const auto k = kind == BATON_HANDOVER_CONNECTION ? baton::HandoverKind::kConnection : baton::HandoverKind::kFile;
    const std::string_view meta(static_cast<const char*>(metadata), metadata_len);
    if (auto st = DaemonOf(daemon).HandOver(k, name, fd, metadata_len > 0 ? meta : std::string_view()); !st) {
      return Fail(err, st.error());
    }
    return BATON_OK;
  });
}

int baton_set_handover_state(baton_daemon* daemon, const void* data, size_t len, baton_error** err) {
  return Guarded(err, "baton_set_handover_state", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_set_handover_state", "daemon");
    if (data == nullptr && len > 0) return NullArgument(err, "baton_set_handover_state", "data");
    const std::string_view bytes = len > 0 ? std::string_view(static_cast<const char*>(data), len) : std::string_view();
    if (auto st = DaemonOf(daemon).SetHandoverState(bytes); !st) return Fail(err, st.error());
    return BATON_OK;
  });
}

int baton_take_handed_over(baton_daemon* daemon, baton_handed_fd** next, baton_error** err) {
  return Guarded(err, "baton_take_handed_over", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_take_handed_over", "daemon");
    if (next == nullptr) return NullArgument(err, "baton_take_handed_over", "next");
    *next = nullptr;
    TakenQueue& q = TakenOf(daemon);
    std::lock_guard<std::mutex> lock(q.mu);
    if (q.items.empty()) {
      for (auto& h : DaemonOf(daemon).TakeHandedOver()) q.items.push_back(std::move(h));
    }
    if (q.items.empty()) return BATON_OK;
    *next = new baton_handed_fd{std::move(q.items.front())};
    q.items.pop_front();
    return BATON_OK;
  });
}

const char* baton_handed_fd_name(const baton_handed_fd* h) { return h != nullptr ? h->h.name.c_str() : ""; }

int baton_handed_fd_kind(const baton_handed_fd* h) {
  if (h == nullptr) return -1;
  return h->h.kind == baton::HandoverKind::kConnection ? BATON_HANDOVER_CONNECTION : BATON_HANDOVER_FILE;
}

int baton_handed_fd_fd(const baton_handed_fd* h) { return h != nullptr ? h->h.fd : -1; }

const void* baton_handed_fd_metadata(const baton_handed_fd* h, size_t* len) {
  if (len != nullptr) *len = h != nullptr ? h->h.metadata.size() : 0;
  return h != nullptr ? h->h.metadata.data() : nullptr;
}

void baton_handed_fd_free(baton_handed_fd* h) { delete h; }

int baton_take_handover_state(baton_daemon* daemon, void** data, size_t* len, baton_error** err) {
  return Guarded(err, "baton_take_handover_state", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_take_handover_state", "daemon");
    if (data == nullptr) return NullArgument(err, "baton_take_handover_state", "data");
    if (len == nullptr) return NullArgument(err, "baton_take_handover_state", "len");
    *data = nullptr;
    *len = 0;
    auto state = DaemonOf(daemon).TakeHandoverState();
    if (!state) return BATON_OK;
    // At least one byte, so that an empty state is told apart from none.
    void* p = std::malloc(std::max<size_t>(state->size(), 1));
    if (p == nullptr) return Fail(err, BATON_INTERNAL, "baton_take_handover_state: out of memory");
    std::memcpy(p, state->data(), state->size());
    *data = p;
    *len = state->size();
    return BATON_OK;
  });
}

void baton_free(void* p) { std::free(p); }

int baton_accept_handover(baton_daemon* daemon, baton_error** err) {
  return Guarded(err, "baton_accept_handover", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_accept_handover", "daemon");
    if (auto st = DaemonOf(daemon).AcceptHandover(); !st) return Fail(err, st.error());
    return BATON_OK;
  });
}

int baton_successor_accepts_handover(const baton_daemon* daemon) {
  if (daemon == nullptr) return 0;
  return DaemonOf(daemon).SuccessorAcceptsHandover() ? 1 : 0;
}

}  // extern "C"
