#include "tools/load/stats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "tests/support/fake_clock.h"

namespace baton::load {
namespace {

TEST(LoadLatencyHistogram, EmptyIsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.Max(), 0u);
}

TEST(LoadLatencyHistogram, ExactBelow256) {
  LatencyHistogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 100u);
  EXPECT_EQ(h.Percentile(0.50), 50u);
  EXPECT_EQ(h.Percentile(0.99), 99u);
  EXPECT_EQ(h.Percentile(1.0), 100u);
  EXPECT_EQ(h.Percentile(0.0), 1u);
  EXPECT_EQ(h.Max(), 100u);
}

TEST(LoadLatencyHistogram, BucketsAreContiguousAndTight) {
  // Every value maps to a bucket whose [low, high] contains it, bucket
  // boundaries follow one another, and the width is at most 1/128 of the value.
  for (std::size_t b = 0; b < 3000; ++b) {
    const uint64_t lo = LatencyHistogram::BucketLow(b);
    const uint64_t hi = LatencyHistogram::BucketHigh(b);
    ASSERT_LE(lo, hi);
    ASSERT_EQ(LatencyHistogram::BucketOf(lo), b);
    ASSERT_EQ(LatencyHistogram::BucketOf(hi), b);
    ASSERT_EQ(LatencyHistogram::BucketLow(b + 1), hi + 1) << b;
    if (lo >= 256) {
      ASSERT_LE(static_cast<double>(hi - lo + 1), static_cast<double>(lo) / 128.0);
    }
  }
}

TEST(LoadLatencyHistogram, PercentilesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(6.0, 1.2);  // ~400 us median, long tail
  std::vector<uint64_t> samples;
  LatencyHistogram h;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<uint64_t>(dist(rng)) + 1;
    samples.push_back(v);
    h.Record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
    const double exact = static_cast<double>(samples[rank - 1]);
    EXPECT_NEAR(static_cast<double>(h.Percentile(q)), exact, exact * 0.01) << q;
  }
  EXPECT_EQ(h.Max(), samples.back());
  EXPECT_EQ(h.Percentile(1.0), samples.back());
}

TEST(LoadLatencyHistogram, Merge) {
  LatencyHistogram a;
  LatencyHistogram b;
  for (uint64_t v = 1; v <= 50; ++v) a.Record(v);
  for (uint64_t v = 51; v <= 100; ++v) b.Record(v);
  b.Record(1'000'000);
  a.Merge(b);
  EXPECT_EQ(a.Count(), 101u);
  EXPECT_EQ(a.Max(), 1'000'000u);
  EXPECT_EQ(a.Percentile(0.5), 51u);
}

TEST(LoadErrorCounts, AddAndTotal) {
  ErrorCounts c;
  c.Add(ErrorKind::kRefused);
  c.Add(ErrorKind::kReset);
  c.Add(ErrorKind::kReset);
  c.Add(ErrorKind::kTimeout);
  c.Add(ErrorKind::kNon2xx);
  c.Add(ErrorKind::kOther);
  EXPECT_EQ(c.refused, 1u);
  EXPECT_EQ(c.reset, 2u);
  EXPECT_EQ(c.Total(), 6u);
  EXPECT_EQ(ErrorKindName(ErrorKind::kNon2xx), "non2xx");
}

TEST(LoadGapTracker, TracksLongestGapsWithStartOffsets) {
  FakeClock clock;
  const TimePoint start = clock.Now();
  GapTracker g(start, 3);
  EXPECT_EQ(g.Max(), Duration::zero());
  // Acks at 100, 110, 160, 165, 365, 370, 400 ms.
  for (int ms : {100, 110, 160, 165, 365, 370, 400}) g.RecordAck(start + milliseconds(ms));
  EXPECT_EQ(g.Acks(), 7u);
  EXPECT_EQ(g.Max(), milliseconds(200));
  ASSERT_EQ(g.Top().size(), 3u);
  EXPECT_EQ(g.Top()[0].at, milliseconds(165));
  EXPECT_EQ(g.Top()[0].length, milliseconds(200));
  EXPECT_EQ(g.Top()[1].at, milliseconds(110));
  EXPECT_EQ(g.Top()[1].length, milliseconds(50));
  EXPECT_EQ(g.Top()[2].length, milliseconds(30));
  EXPECT_EQ(g.Top()[2].at, milliseconds(370));
}

TEST(LoadGapTracker, SingleAckHasNoGapAndOutOfOrderIsNotNegative) {
  const TimePoint start{};
  GapTracker g(start);
  g.RecordAck(start + seconds(1));
  EXPECT_EQ(g.Max(), Duration::zero());
  EXPECT_TRUE(g.Top().empty());
  g.RecordAck(start + milliseconds(900));  // earlier than the last: a zero gap
  EXPECT_EQ(g.Max(), Duration::zero());
  g.RecordAck(start + milliseconds(1500));
  EXPECT_EQ(g.Max(), milliseconds(500));
  EXPECT_EQ(g.Top()[0].at, seconds(1));
}

TEST(LoadGapTracker, TiesKeepEarlierFirst) {
  const TimePoint start{};
  GapTracker g(start, 2);
  for (int ms : {0, 10, 20, 30}) g.RecordAck(start + milliseconds(ms));
  ASSERT_EQ(g.Top().size(), 2u);
  EXPECT_EQ(g.Top()[0].at, milliseconds(0));
  EXPECT_EQ(g.Top()[1].at, milliseconds(10));
}

TEST(LoadGapTracker, LogsEveryGapOverThresholdWithAbsoluteStart) {
  const TimePoint start{seconds(500)};
  GapTracker g(start, 1);
  EXPECT_FALSE(g.Logging());
  g.LogGapsOver(milliseconds(5));
  EXPECT_TRUE(g.Logging());
  EXPECT_EQ(g.LogThreshold(), milliseconds(5));
  // Gaps: 3 (no), 5 (not strictly over), 6, 20, 1, 7.
  for (int ms : {0, 3, 8, 14, 34, 35, 42}) g.RecordAck(start + milliseconds(ms));
  ASSERT_EQ(g.Logged().size(), 3u);
  EXPECT_EQ(g.Logged()[0].start, start + milliseconds(8));
  EXPECT_EQ(g.Logged()[0].length, milliseconds(6));
  EXPECT_EQ(g.Logged()[1].start, start + milliseconds(14));
  EXPECT_EQ(g.Logged()[1].length, milliseconds(20));
  EXPECT_EQ(g.Logged()[2].start, start + milliseconds(35));
  EXPECT_EQ(g.Logged()[2].length, milliseconds(7));
  EXPECT_EQ(g.LoggedDropped(), 0u);
  // The top-N tracking is unaffected.
  ASSERT_EQ(g.Top().size(), 1u);
  EXPECT_EQ(g.Max(), milliseconds(20));
}

TEST(LoadGapTracker, GapLogIsBounded) {
  const TimePoint start{};
  GapTracker g(start);
  g.LogGapsOver(Duration::zero(), 3);
  for (int ms = 0; ms <= 10; ++ms) g.RecordAck(start + milliseconds(ms));
  ASSERT_EQ(g.Logged().size(), 3u);
  EXPECT_EQ(g.Logged()[2].start, start + milliseconds(2)) << "the oldest are kept";
  EXPECT_EQ(g.LoggedDropped(), 7u);
}

TEST(LoadGapTracker, NoLogUnlessAsked) {
  const TimePoint start{};
  GapTracker g(start);
  for (int ms : {0, 100, 300}) g.RecordAck(start + milliseconds(ms));
  EXPECT_TRUE(g.Logged().empty());
  EXPECT_EQ(g.LoggedDropped(), 0u);
}

TEST(LoadTimeline, PerSecondBuckets) {
  const TimePoint start{};
  Timeline t(start);
  for (int i = 0; i < 100; ++i) t.RecordSuccess(start + milliseconds(10 * i), 100 + i);
  t.RecordError(start + milliseconds(500));
  t.RecordError(start + milliseconds(2500));
  const auto s = t.Seconds();
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].requests, 101u);
  EXPECT_EQ(s[0].errors, 1u);
  EXPECT_EQ(s[0].p99_us, 198u);
  EXPECT_EQ(s[1].requests, 0u);
  EXPECT_EQ(s[1].p99_us, 0u);
  EXPECT_EQ(s[2].requests, 1u);
  EXPECT_EQ(s[2].errors, 1u);
}

}  // namespace
}  // namespace baton::load
