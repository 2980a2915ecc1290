// Pure accounting for baton-load: a log-bucket latency histogram, the write
// gap tracker, error counters and the per-second timeline. No I/O, no clock:
// callers pass the completion time of each request. Single-threaded (the
// load engine runs on one io_context thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace baton::load {

// HDR-style histogram of microsecond values: exact below 256, then 128
// sub-buckets per power of two, so any reported percentile is within 0.4%
// of a recorded value. Memory grows with the largest value seen (~8 KiB for
// values up to 10 ms).
class LatencyHistogram {
 public:
  void Record(uint64_t us);
  void Merge(const LatencyHistogram& other);
  uint64_t Count() const { return count_; }
  uint64_t Max() const { return max_; }
  // The value at quantile q in [0, 1] (nearest-rank); 0 when empty. Exact
  // for values below 256 us, otherwise the midpoint of the bucket, clamped
  // to the recorded maximum.
  uint64_t Percentile(double q) const;

  static std::size_t BucketOf(uint64_t us);
  static uint64_t BucketLow(std::size_t bucket);
  static uint64_t BucketHigh(std::size_t bucket);  // inclusive

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

enum class ErrorKind { kRefused, kReset, kTimeout, kNon2xx, kOther };
std::string_view ErrorKindName(ErrorKind k);

struct ErrorCounts {
  uint64_t refused = 0;
  uint64_t reset = 0;
  uint64_t timeout = 0;
  uint64_t non2xx = 0;
  uint64_t other = 0;

  void Add(ErrorKind k);
  uint64_t Total() const { return refused + reset + timeout + non2xx + other; }
};

// A gap between two consecutive write acknowledgements.
struct Gap {
  Duration at;  // when the gap started (the earlier ack), since the run start
  Duration length;
};

// Tracks the gaps between consecutive successful write acknowledgements
// (across all connections, by completion time) and keeps the `top_n` longest.
class GapTracker {
 public:
  explicit GapTracker(TimePoint start, std::size_t top_n = 5) : start_(start), top_n_(top_n) {}
  // Times must be non-decreasing; an earlier time than the last is treated
  // as equal to it (no negative gaps).
  void RecordAck(TimePoint t);
  Duration Max() const { return top_.empty() ? Duration::zero() : top_.front().length; }
  // Longest first; ties keep the earlier gap first.
  const std::vector<Gap>& Top() const { return top_; }
  uint64_t Acks() const { return acks_; }

 private:
  TimePoint start_;
  std::size_t top_n_;
  bool have_last_ = false;
  TimePoint last_{};
  uint64_t acks_ = 0;
  std::vector<Gap> top_;
};

// Per-second buckets since the run start.
struct SecondStats {
  uint64_t requests = 0;  // completed requests, successful or not
  uint64_t errors = 0;
  uint64_t p99_us = 0;  // over the successful ones; 0 if none
};

class Timeline {
 public:
  explicit Timeline(TimePoint start) : start_(start) {}
  void RecordSuccess(TimePoint t, uint64_t latency_us);
  void RecordError(TimePoint t);
  std::vector<SecondStats> Seconds() const;

 private:
  struct Bucket {
    uint64_t requests = 0;
    uint64_t errors = 0;
    LatencyHistogram latency;
  };
  Bucket& At(TimePoint t);

  TimePoint start_;
  std::vector<Bucket> buckets_;
};

}  // namespace baton::load
