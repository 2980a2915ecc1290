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

// A gap with its absolute start time, for correlating with other processes
// (steady_clock is CLOCK_MONOTONIC on Linux: one clock for the whole host).
struct LoggedGap {
  TimePoint start;  // the earlier ack
  Duration length;
};

// Bound on GapTracker's log of gaps over a threshold (~4 MiB of JSON).
inline constexpr std::size_t kMaxLoggedGaps = 100000;

// Tracks the gaps between consecutive successful write acknowledgements
// (across all connections, by completion time) and keeps the `top_n` longest.
// Optionally also logs, in order, every gap longer than a threshold.
class GapTracker {
 public:
  explicit GapTracker(TimePoint start, std::size_t top_n = 5) : start_(start), top_n_(top_n) {}
  // From now on log every gap strictly longer than `over`; after
  // `max_logged` entries further ones are only counted (LoggedDropped).
  void LogGapsOver(Duration over, std::size_t max_logged = kMaxLoggedGaps);
  // Times must be non-decreasing; an earlier time than the last is treated
  // as equal to it (no negative gaps).
  void RecordAck(TimePoint t);
  Duration Max() const { return top_.empty() ? Duration::zero() : top_.front().length; }
  // Longest first; ties keep the earlier gap first.
  const std::vector<Gap>& Top() const { return top_; }
  uint64_t Acks() const { return acks_; }
  bool Logging() const { return logging_; }
  Duration LogThreshold() const { return log_over_; }
  // Oldest first.
  const std::vector<LoggedGap>& Logged() const { return logged_; }
  uint64_t LoggedDropped() const { return logged_dropped_; }

 private:
  TimePoint start_;
  std::size_t top_n_;
  bool logging_ = false;
  Duration log_over_{};
  std::size_t max_logged_ = 0;
  std::vector<LoggedGap> logged_;
  uint64_t logged_dropped_ = 0;
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
