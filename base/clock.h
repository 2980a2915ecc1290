// The clock seam: logic takes a Clock and never calls steady_clock::now().
// Tests use FakeClock and advance it instead of sleeping.
#pragma once

#include <chrono>

namespace baton {

using Duration = std::chrono::steady_clock::duration;
using TimePoint = std::chrono::steady_clock::time_point;
using std::chrono::milliseconds;
using std::chrono::seconds;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time. Thread-safe for SteadyClock; FakeClock is single-threaded.
  virtual TimePoint Now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

// A process-wide real clock; stateless, so sharing it is harmless.
const Clock& RealClock();

class FakeClock final : public Clock {
 public:
  // Starts at an arbitrary non-zero point so "zero" never looks special.
  FakeClock() : now_(TimePoint{} + std::chrono::hours(1)) {}
  TimePoint Now() const override { return now_; }
  void Advance(Duration d) { now_ += d; }
  void Set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_;
};

// Milliseconds as an integer, for logs and wire fields.
inline int64_t ToMillis(Duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

}  // namespace baton
