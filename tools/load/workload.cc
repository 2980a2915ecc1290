#include "tools/load/workload.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace baton::load {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr uint64_t kAlphabetSize = sizeof(kAlphabet) - 1;

}  // namespace

Workload::Workload(uint64_t nonce, int connections, std::size_t value_size, double write_ratio, uint64_t key_space,
                   uint64_t max_writes)
    : nonce_(nonce),
      value_size_(value_size),
      write_ratio_(write_ratio),
      key_space_(key_space),
      max_writes_(max_writes),
      next_seq_(static_cast<std::size_t>(std::max(connections, 1)), 0) {}

std::string Workload::Key(uint64_t id) const {
  return fmt::format("r{:08x}-c{}-{}", nonce_ & 0xffffffffu, id >> 40, id & ((uint64_t{1} << 40) - 1));
}

std::string Workload::Value(uint64_t id) const {
  std::string v(value_size_, '\0');
  uint64_t state = nonce_ ^ (id * 0xd6e8feb86659fd93ULL);
  uint64_t bits = 0;
  int left = 0;
  for (auto& c : v) {
    if (left == 0) {
      bits = SplitMix64(state);
      left = 10;  // 10 draws of 6 bits from 64
    }
    c = kAlphabet[(bits & 63) % kAlphabetSize];
    bits >>= 6;
    --left;
  }
  return v;
}

Workload::Op Workload::Next(uint32_t conn, Rng& rng) {
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  const bool capped = max_writes_ != 0 && acked_.size() >= max_writes_;
  const bool write = acked_.empty() || (!capped && coin(rng) < write_ratio_);
  if (write) {
    if (conn >= next_seq_.size()) next_seq_.resize(conn + 1, 0);
    return {true, MakeId(conn, next_seq_[conn]++)};
  }
  const uint64_t n = acked_.size();
  const uint64_t window = key_space_ == 0 ? n : std::min<uint64_t>(key_space_, n);
  std::uniform_int_distribution<uint64_t> pick(n - window, n - 1);
  return {false, acked_[pick(rng)]};
}

Pacer::Pacer(double rps) {
  if (rps > 0) {
    interval_ = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(1.0 / rps));
    if (interval_ == Duration::zero()) interval_ = Duration(1);
  }
}

TimePoint Pacer::Reserve(TimePoint now) {
  if (Unlimited()) return now;
  if (!started_ || next_ < now) {
    started_ = true;
    next_ = now;
  }
  const TimePoint slot = next_;
  next_ += interval_;
  return slot;
}

bool IdlesBetweenBursts(uint32_t conn, int connections, double fraction) {
  if (fraction <= 0 || connections <= 0) return false;
  // Connection i idles iff the running count round(fraction * (i + 1))
  // steps at i: evenly spread, and exactly round(fraction * n) in all.
  const auto idle_before = [fraction](uint64_t n) { return std::llround(fraction * static_cast<double>(n)); };
  return idle_before(uint64_t{conn} + 1) > idle_before(conn);
}

std::optional<TimePoint> BurstCycle::IdleUntil(TimePoint now) const {
  if (now < start_) return std::nullopt;
  const Duration period = burst_ + idle_;
  const Duration into = (now - start_) % period;
  if (into < burst_) return std::nullopt;
  return now + (period - into);
}

}  // namespace baton::load
