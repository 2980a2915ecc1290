// What GET /watch streams: the recent committed writes, in revision order,
// in memory, in a ring bounded by bytes, and the streams waiting for the
// next one.
//
// Filled by every record applied to the Store, whether replayed (recovery,
// Warm, Begin, a reload) or committed (after its fsync), so a successor
// can continue a stream from what it replayed. Loading a snapshot starts
// it again, empty, after the snapshot's revision: older writes are then
// "compacted" for watchers (410, or an error line in a stream).
//
// Streams never poll: a waiting stream registers a one-shot wake-up that
// the next Append runs. A stream that falls behind oldest() can no longer
// continue: it gets the compacted error, so a slow watcher costs no more
// memory than the ring.
//
// Threading: not synchronised. kvd uses it from its io thread, and from
// Warm's replay thread before Begin (when no stream exists yet), like the
// Store.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace kvd {

class WatchHistory {
 public:
  // Keeps at most about `max_bytes` of records (key and value bytes plus a
  // fixed cost per record); 0: none (every past revision is compacted).
  explicit WatchHistory(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // Forgets every record; the next one will be revision `next`.
  void Reset(uint64_t next);
  // Records revision `revision` (normally next(); anything else starts the
  // history again at `revision`) and wakes every waiting stream.
  void Append(uint64_t revision, std::string_view key, std::string_view value);

  // The oldest revision still held (next() when none is).
  uint64_t oldest() const { return ring_.empty() ? next_ : ring_.front().revision; }
  // The revision the next record will have.
  uint64_t next() const { return next_; }
  uint64_t bytes() const { return bytes_; }

  // Appends the NDJSON lines of revisions from `from` (oldest() <= from <=
  // next()) to `out`, at least one if there is one and then while `out`
  // stays under `max_bytes`; returns the revision after the last one
  // appended.
  uint64_t Render(uint64_t from, size_t max_bytes, std::string& out) const;
  // The line a stream ends with when `from` is older than oldest().
  std::string CompactedLine() const;

  // Runs `wake` once, at the next Append or Reset (`wake` must not call
  // back into this history). Returns an id for Cancel.
  uint64_t Wait(std::function<void()> wake);
  void Cancel(uint64_t id) { waiters_.erase(id); }

 private:
  struct Entry {
    uint64_t revision;
    uint32_t key_bytes;
    std::string data;  // key, then value
  };
  static constexpr uint64_t kEntryCost = 64;  // bookkeeping per record, roughly
  void WakeAll();

  uint64_t max_bytes_;
  std::deque<Entry> ring_;
  uint64_t next_ = 1;
  uint64_t bytes_ = 0;
  uint64_t next_waiter_ = 1;
  std::map<uint64_t, std::function<void()>> waiters_;
};

}  // namespace kvd
