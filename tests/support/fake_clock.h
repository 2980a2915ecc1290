// A Clock that only moves when a test says so, for timeout tests that never
// sleep. Single-threaded: the test and the logic it drives share a thread.
#pragma once

#include <chrono>

#include "base/clock.h"

namespace baton {

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

}  // namespace baton
