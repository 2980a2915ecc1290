#include "watch_stream.h"

#include <charconv>

#include <fmt/format.h>

namespace kvd {

namespace {
constexpr std::string_view kStatePrefix = "kvd-watch/1 next=";
}  // namespace

bool WatchStream::Next(std::string& out) {
  if (next_ < history_.oldest()) {
    // Fell behind the ring, or this generation's history starts later
    // (it loaded a newer snapshot): the stream cannot go on without a gap.
    out += history_.CompactedLine();
    return true;
  }
  next_ = history_.Render(next_, kChunkBytes, out);
  return false;
}

void WatchStream::Wait(std::function<void()> wake) {
  CancelWait();
  wait_id_ = history_.Wait([this, wake = std::move(wake)] {
    wait_id_ = 0;
    wake();
  });
}

void WatchStream::CancelWait() {
  if (wait_id_ == 0) return;
  history_.Cancel(wait_id_);
  wait_id_ = 0;
}

std::string WatchStream::HandoverState() const { return fmt::format("{}{}", kStatePrefix, next_); }

std::optional<uint64_t> WatchStream::ParseHandoverState(std::string_view state) {
  if (!state.starts_with(kStatePrefix)) return std::nullopt;
  return ParseRevision(state.substr(kStatePrefix.size()));
}

std::optional<uint64_t> WatchStream::ParseRevision(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.front() < '0' || s.front() > '9') return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v == 0) return std::nullopt;
  return v;
}

}  // namespace kvd
