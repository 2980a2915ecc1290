// The pure analysis of a handoff bench run: percentiles, the write window
// of each upgrade and its baseline.
#include "tools/bench/handoff_stats.h"

#include <gtest/gtest.h>

namespace baton::bench {
namespace {

UpgradeSample Upgrade(int index, double trigger, double ret, double total = 5) {
  UpgradeSample u;
  u.index = index;
  u.trigger_ms = trigger;
  u.return_ms = ret;
  u.exit_code = 0;
  u.outcome = "committed";
  u.total_ms = total;
  for (std::size_t p = 0; p < kPhases.size(); ++p) u.phases_ms[p] = static_cast<double>(p);
  return u;
}

LoadSummary CleanLoad() {
  LoadSummary l;
  l.parsed = true;
  l.exit_code = 0;
  l.requests = 1000;
  l.writes_acked = 500;
  return l;
}

TEST(BenchDist, NearestRank) {
  EXPECT_EQ(Summarize({}).n, 0u);
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  const Dist d = Summarize(v);
  EXPECT_EQ(d.n, 100u);
  EXPECT_DOUBLE_EQ(d.p50, 50);
  EXPECT_DOUBLE_EQ(d.p99, 99);
  EXPECT_DOUBLE_EQ(d.max, 100);
  const Dist one = Summarize({7});
  EXPECT_DOUBLE_EQ(one.p50, 7);
  EXPECT_DOUBLE_EQ(one.p99, 7);
  EXPECT_DOUBLE_EQ(NearestRank({1, 2, 3}, 0), 1);
  EXPECT_DOUBLE_EQ(NearestRank({1, 2, 3}, 1), 3);
  // Ten values: p99 is the largest, p50 the fifth.
  const Dist ten = Summarize({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_DOUBLE_EQ(ten.p50, 5);
  EXPECT_DOUBLE_EQ(ten.p99, 10);
}

TEST(BenchWindow, LongestOverlappingGap) {
  // Gaps are consecutive ack-to-ack intervals: [10,11), [20,24), [24,25), [30,36).
  const std::vector<WriteGap> gaps = {{10, 1}, {20, 4}, {24, 1}, {30, 6}};
  EXPECT_FALSE(LongestOverlapping(gaps, 0, 10).has_value()) << "ends exactly where the first starts";
  EXPECT_FALSE(LongestOverlapping(gaps, 11, 20).has_value());
  EXPECT_FALSE(LongestOverlapping(gaps, 5, 5).has_value()) << "empty interval";
  auto g = LongestOverlapping(gaps, 22, 23);  // inside [20,24)
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->start_ms, 20);
  g = LongestOverlapping(gaps, 23, 35);  // straddles three gaps
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->length_ms, 6);
  g = LongestOverlapping(gaps, 24.5, 29);
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->start_ms, 24);
  g = LongestOverlapping(gaps, 35.9, 100);
  ASSERT_TRUE(g);
  EXPECT_DOUBLE_EQ(g->start_ms, 30);
  EXPECT_FALSE(LongestOverlapping(gaps, 36, 100).has_value());
}

TEST(BenchAnalyze, WindowsBaselinesAndInvariants) {
  // Upgrade 1 in [100, 120] overlaps a 7 ms gap; upgrade 2 in [220, 240]
  // overlaps nothing over the threshold. Between them a 2 ms gap sits in the
  // middle of the pause, [160, 180] being the first baseline window.
  const std::vector<UpgradeSample> ups = {Upgrade(1, 100, 120, 9), Upgrade(2, 220, 240, 11)};
  const std::vector<WriteGap> gaps = {{95, 7}, {169, 2}, {250, 1}};
  const Analysis a = Analyze(ups, gaps, 0.5, CleanLoad(), 340);
  EXPECT_EQ(a.upgrades, 2);
  EXPECT_EQ(a.committed, 2);
  EXPECT_TRUE(a.invariants_ok);
  ASSERT_EQ(a.per_upgrade.size(), 2u);
  EXPECT_DOUBLE_EQ(a.per_upgrade[0].window_ms, 7);
  EXPECT_DOUBLE_EQ(a.per_upgrade[0].gap_start_ms, 95);
  EXPECT_FALSE(a.per_upgrade[0].below_threshold);
  EXPECT_DOUBLE_EQ(a.per_upgrade[1].window_ms, 0.5);
  EXPECT_TRUE(a.per_upgrade[1].below_threshold);
  EXPECT_EQ(a.windows_below_threshold, 1);
  EXPECT_TRUE(a.per_upgrade[0].baseline_valid);
  EXPECT_DOUBLE_EQ(a.per_upgrade[0].baseline_ms, 2);
  // After the last upgrade the pause runs to the load end: [280, 300].
  EXPECT_TRUE(a.per_upgrade[1].baseline_valid);
  EXPECT_DOUBLE_EQ(a.per_upgrade[1].baseline_ms, 0.5);
  EXPECT_DOUBLE_EQ(a.window_ms.max, 7);
  EXPECT_DOUBLE_EQ(a.client_ms.p50, 20);
  EXPECT_DOUBLE_EQ(a.total_ms.p50, 9);
  EXPECT_DOUBLE_EQ(a.total_ms.max, 11);
  EXPECT_DOUBLE_EQ(a.phases[3].p99, 3);
}

TEST(BenchAnalyze, BracketIsolatesDrainSealBegin) {
  // Phases spawn..commit = 0,1,2,3,4,5,6 ms: the bracket of an upgrade in
  // [100, 130] is [100 + 0 + 1 + 2, 130 - 6] = [103, 124].
  auto u = Upgrade(1, 100, 130, 21);
  // A 2.5 ms gap during warm (counted by the whole-call window only) and a
  // 1.5 ms gap inside the bracket.
  const std::vector<WriteGap> gaps = {{100.2, 2.5}, {110, 1.5}, {200, 1}};
  const Analysis a = Analyze({u}, gaps, 0.5, CleanLoad(), 300);
  const UpgradeWindow& w = a.per_upgrade.at(0);
  EXPECT_DOUBLE_EQ(w.window_ms, 2.5);
  ASSERT_TRUE(w.bracket_valid);
  EXPECT_DOUBLE_EQ(w.bracket_from_ms, 103);
  EXPECT_DOUBLE_EQ(w.bracket_to_ms, 124);
  EXPECT_DOUBLE_EQ(w.bracket_window_ms, 1.5);
  // Its baseline: 21 ms centred in the pause (130, 300) = [204.5, 225.5].
  ASSERT_TRUE(w.bracket_baseline_valid);
  EXPECT_DOUBLE_EQ(w.bracket_baseline_ms, 0.5);
  EXPECT_DOUBLE_EQ(a.total_minus_warm_ms.p50, 19);

  u.phases_ms[2] = -1;  // warm unknown: no bracket
  const Analysis b = Analyze({u}, gaps, 0.5, CleanLoad(), 300);
  EXPECT_FALSE(b.per_upgrade.at(0).bracket_valid);
  EXPECT_EQ(b.bracket_window_ms.n, 0u);
  EXPECT_EQ(b.total_minus_warm_ms.n, 0u);
}

TEST(BenchAnalyze, AnyFailureBreaksTheInvariants) {
  const std::vector<UpgradeSample> ups = {Upgrade(1, 0, 10)};
  EXPECT_TRUE(Analyze(ups, {}, 0.5, CleanLoad(), 20).invariants_ok);

  auto rolled = ups;
  rolled[0].outcome = "rolled_back";
  rolled[0].exit_code = 3;
  const Analysis a = Analyze(rolled, {}, 0.5, CleanLoad(), 20);
  EXPECT_EQ(a.committed, 0);
  EXPECT_FALSE(a.invariants_ok);

  LoadSummary l = CleanLoad();
  l.reset = 1;
  EXPECT_FALSE(Analyze(ups, {}, 0.5, l, 20).invariants_ok);
  l = CleanLoad();
  l.lost_writes = 1;
  EXPECT_FALSE(Analyze(ups, {}, 0.5, l, 20).invariants_ok);
  l = CleanLoad();
  l.parsed = false;
  EXPECT_FALSE(Analyze(ups, {}, 0.5, l, 20).invariants_ok);
  EXPECT_FALSE(Analyze({}, {}, 0.5, CleanLoad(), 20).invariants_ok) << "no upgrade, nothing proven";
}

TEST(BenchAnalyze, MissingSupervisorNumbersAreSkipped) {
  auto u = Upgrade(1, 0, 10, -1);
  u.phases_ms.fill(-1);
  const Analysis a = Analyze({u}, {}, 0.5, CleanLoad(), 20);
  EXPECT_EQ(a.total_ms.n, 0u);
  EXPECT_EQ(a.phases[0].n, 0u);
  EXPECT_EQ(a.client_ms.n, 1u);
}

}  // namespace
}  // namespace baton::bench
