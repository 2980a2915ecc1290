// The clock seam. The pure state machines (the handoff machine, the
// incumbent and successor sessions, liveness) never read a clock: they take
// `now` as an argument, or a Clock (Channel, LeaseClient). The I/O drivers
// that feed them (the supervisor, the daemon runtime) read RealClock() and
// pass the time in. Tests use a FakeClock (tests/support/fake_clock.h) and
// advance it instead of sleeping. Tools and the test harness, which only
// measure or poll, read std::chrono::steady_clock directly.
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
  // Monotonic time. Thread-safe for SteadyClock.
  virtual TimePoint Now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
};

// A process-wide real clock; stateless, so sharing it is harmless.
const Clock& RealClock();

// Milliseconds as an integer, for logs and wire fields.
inline int64_t ToMillis(Duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

}  // namespace baton
