#include "watch_history.h"

#include <fmt/format.h>

#include "json.h"

namespace kvd {

void WatchHistory::Reset(uint64_t next) {
  ring_.clear();
  bytes_ = 0;
  next_ = next;
  WakeAll();
}

void WatchHistory::Append(uint64_t revision, std::string_view key, std::string_view value) {
  if (revision != next_) {
    ring_.clear();
    bytes_ = 0;
  }
  next_ = revision + 1;
  const uint64_t cost = key.size() + value.size() + kEntryCost;
  if (cost <= max_bytes_) {
    std::string data;
    data.reserve(key.size() + value.size());
    data.append(key).append(value);
    ring_.push_back(Entry{revision, static_cast<uint32_t>(key.size()), std::move(data)});
    bytes_ += cost;
    while (bytes_ > max_bytes_) {
      bytes_ -= ring_.front().data.size() + kEntryCost;
      ring_.pop_front();
    }
  } else {
    // Too large to keep at all: nothing older may stay either, or the
    // history would have a hole.
    ring_.clear();
    bytes_ = 0;
  }
  WakeAll();
}

uint64_t WatchHistory::Render(uint64_t from, size_t max_bytes, std::string& out) const {
  if (ring_.empty() || from < oldest() || from >= next_) return from;
  // Revisions are consecutive: the entry of `from` is at from - oldest().
  size_t i = static_cast<size_t>(from - ring_.front().revision);
  const size_t start = out.size();
  for (; i < ring_.size(); ++i) {
    if (out.size() > start && out.size() >= max_bytes) break;
    const Entry& e = ring_[i];
    const std::string_view data(e.data);
    fmt::format_to(std::back_inserter(out), R"({{"rev":{},"key":)", e.revision);
    AppendJsonString(out, data.substr(0, e.key_bytes));
    out += R"(,"value":)";
    AppendJsonString(out, data.substr(e.key_bytes));
    out += "}\n";
    from = e.revision + 1;
  }
  return from;
}

std::string WatchHistory::CompactedLine() const {
  return fmt::format(R"({{"error":"compacted","oldest":{}}})"
                     "\n",
                     oldest());
}

uint64_t WatchHistory::Wait(std::function<void()> wake) {
  const uint64_t id = next_waiter_++;
  waiters_.emplace(id, std::move(wake));
  return id;
}

void WatchHistory::WakeAll() {
  if (waiters_.empty()) return;
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [id, wake] : waiters) wake();
}

}  // namespace kvd
