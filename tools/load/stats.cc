#include "tools/load/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace baton::load {
namespace {

// Values below 2^kExactBits are their own bucket; above, each power of two
// [2^k, 2^(k+1)) is split into kSubBuckets equal buckets.
constexpr int kExactBits = 8;
constexpr uint64_t kExact = uint64_t{1} << kExactBits;  // 256
constexpr int kSubBits = 7;
constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBits;  // 128

}  // namespace

std::size_t LatencyHistogram::BucketOf(uint64_t us) {
  if (us < kExact) return static_cast<std::size_t>(us);
  const int msb = std::bit_width(us) - 1;            // >= kExactBits
  const int shift = msb - kSubBits;                  // >= 1
  const uint64_t sub = (us >> shift) - kSubBuckets;  // in [0, kSubBuckets)
  return static_cast<std::size_t>(kExact + static_cast<uint64_t>(msb - kExactBits) * kSubBuckets + sub);
}

uint64_t LatencyHistogram::BucketLow(std::size_t bucket) {
  if (bucket < kExact) return bucket;
  const uint64_t rel = bucket - kExact;
  const uint64_t msb = rel / kSubBuckets + kExactBits;
  const uint64_t sub = rel % kSubBuckets;
  const uint64_t shift = msb - kSubBits;
  return (kSubBuckets + sub) << shift;
}

uint64_t LatencyHistogram::BucketHigh(std::size_t bucket) {
  if (bucket < kExact) return bucket;
  const uint64_t rel = bucket - kExact;
  const uint64_t msb = rel / kSubBuckets + kExactBits;
  const uint64_t shift = msb - kSubBits;
  return BucketLow(bucket) + (uint64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(uint64_t us) {
  const std::size_t b = BucketOf(us);
  if (b >= counts_.size()) counts_.resize(b + 1, 0);
  ++counts_[b];
  ++count_;
  max_ = std::max(max_, us);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.counts_.size() > counts_.size()) counts_.resize(other.counts_.size(), 0);
  for (std::size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

uint64_t LatencyHistogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest value with at least ceil(q * n) values <= it.
  uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (std::size_t b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      const uint64_t mid = BucketLow(b) + (BucketHigh(b) - BucketLow(b)) / 2;
      return std::min(mid, max_);
    }
  }
  return max_;
}

std::string_view ErrorKindName(ErrorKind k) {
  switch (k) {
    case ErrorKind::kRefused:
      return "refused";
    case ErrorKind::kReset:
      return "reset";
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kNon2xx:
      return "non2xx";
    case ErrorKind::kOther:
      return "other";
  }
  return "other";
}

void ErrorCounts::Add(ErrorKind k) {
  switch (k) {
    case ErrorKind::kRefused:
      ++refused;
      break;
    case ErrorKind::kReset:
      ++reset;
      break;
    case ErrorKind::kTimeout:
      ++timeout;
      break;
    case ErrorKind::kNon2xx:
      ++non2xx;
      break;
    case ErrorKind::kOther:
      ++other;
      break;
  }
}

void GapTracker::LogGapsOver(Duration over, std::size_t max_logged) {
  logging_ = true;
  log_over_ = over;
  max_logged_ = max_logged;
}

void GapTracker::RecordAck(TimePoint t) {
  ++acks_;
  if (!have_last_) {
    have_last_ = true;
    last_ = t;
    return;
  }
  if (t < last_) t = last_;
  const Gap gap{last_ - start_, t - last_};
  if (logging_ && gap.length > log_over_) {
    if (logged_.size() < max_logged_) {
      logged_.push_back({last_, gap.length});
    } else {
      ++logged_dropped_;
    }
  }
  last_ = t;
  if (top_n_ == 0) return;
  if (top_.size() == top_n_ && gap.length <= top_.back().length) return;
  // Insert after every gap at least as long, so ties keep the earlier first.
  auto pos =
      std::upper_bound(top_.begin(), top_.end(), gap, [](const Gap& a, const Gap& b) { return a.length > b.length; });
  top_.insert(pos, gap);
  if (top_.size() > top_n_) top_.pop_back();
}

Timeline::Bucket& Timeline::At(TimePoint t) {
  const auto since = t < start_ ? Duration::zero() : t - start_;
  const auto index = static_cast<std::size_t>(std::chrono::duration_cast<seconds>(since).count());
  if (index >= buckets_.size()) buckets_.resize(index + 1);
  return buckets_[index];
}

void Timeline::RecordSuccess(TimePoint t, uint64_t latency_us) {
  Bucket& b = At(t);
  ++b.requests;
  b.latency.Record(latency_us);
}

void Timeline::RecordError(TimePoint t) {
  Bucket& b = At(t);
  ++b.requests;
  ++b.errors;
}

std::vector<SecondStats> Timeline::Seconds() const {
  std::vector<SecondStats> out;
  out.reserve(buckets_.size());
  for (const auto& b : buckets_) {
    out.push_back({b.requests, b.errors, b.latency.Percentile(0.99)});
  }
  return out;
}

}  // namespace baton::load
