#include "base/clock.h"

#include <gtest/gtest.h>

#include "tests/support/fake_clock.h"

namespace baton {
namespace {

TEST(ClockTest, FakeClockMovesOnlyWhenAdvanced) {
  FakeClock clock;
  const TimePoint t0 = clock.Now();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(milliseconds(250));
  EXPECT_EQ(ToMillis(clock.Now() - t0), 250);
  clock.Set(t0);
  EXPECT_EQ(clock.Now(), t0);
}

TEST(ClockTest, RealClockIsMonotonic) {
  const TimePoint a = RealClock().Now();
  const TimePoint b = RealClock().Now();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace baton
