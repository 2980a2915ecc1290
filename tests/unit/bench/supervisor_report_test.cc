// The pure part of `baton-bench supervisor`: pooling every run of one kind
// of event (timings over completed events, the load's errors summed), the
// ratios to the handoff, the target verdict and the table; and the
// self-upgrade command's answer read as a sample.
#include "tools/bench/supervisor_report.h"

#include <gtest/gtest.h>

namespace baton::bench {
namespace {

UpgradeSample Event(double done_ms, bool completed = true) {
  UpgradeSample u;
  u.trigger_ms = 1000;
  u.return_ms = 1000 + done_ms;
  u.exit_code = completed ? 0 : 1;
  u.outcome = completed ? "committed" : "failed";
  u.phases_ms.fill(-1);
  return u;
}

// One run: an event per (done, window) pair, each with a 0.5 ms baseline.
MeasuredRun MakeRun(Trigger t, std::vector<std::pair<double, double>> done_and_window, uint64_t refused = 0,
                uint64_t lost = 0) {
  MeasuredRun m;
  m.run.config.trigger = t;
  for (auto [done, window] : done_and_window) {
    m.run.upgrades.push_back(Event(done));
    UpgradeWindow w;
    w.window_ms = window;
    w.below_threshold = window <= 0.5;
    w.baseline_valid = true;
    w.baseline_ms = 0.5;
    m.analysis.per_upgrade.push_back(w);
  }
  m.run.load.parsed = true;
  m.run.load.exit_code = 0;
  m.run.load.requests = 1000;
  m.run.load.writes_acked = 500;
  m.run.load.refused = refused;
  m.run.load.reset = refused > 0 ? 1 : 0;
  m.run.load.lost_writes = lost;
  m.run.load.reconnects = 2;
  m.analysis.upgrades = m.analysis.committed = static_cast<int>(m.run.upgrades.size());
  m.analysis.invariants_ok = refused == 0 && lost == 0;
  return m;
}

TEST(BenchSupervisor, SummaryPoolsEveryRunOfAKind) {
  std::vector<MeasuredRun> runs = {MakeRun(Trigger::kKillAdopt, {{100, 40}, {120, 60}}),
                                   MakeRun(Trigger::kKillAdopt, {{300, 0.5}}, /*refused=*/3, /*lost=*/1)};
  // An event that failed: counted, but not in the timings.
  runs[1].run.upgrades.push_back(Event(9000, false));
  UpgradeWindow failed;
  failed.window_ms = 5000;
  runs[1].analysis.per_upgrade.push_back(failed);
  const TriggerSummary s = SummarizeTrigger(Trigger::kKillAdopt, runs);
  EXPECT_EQ(s.trigger, Trigger::kKillAdopt);
  EXPECT_EQ(s.runs, 2);
  EXPECT_EQ(s.failed_runs, 1);
  EXPECT_EQ(s.events, 4);
  EXPECT_EQ(s.completed, 3);
  EXPECT_EQ(s.done_ms.n, 3u);
  EXPECT_DOUBLE_EQ(s.done_ms.p50, 120);
  EXPECT_DOUBLE_EQ(s.done_ms.max, 300) << "the failed event is not a completion time";
  EXPECT_DOUBLE_EQ(s.window_ms.p50, 40);
  EXPECT_DOUBLE_EQ(s.window_ms.max, 60);
  EXPECT_EQ(s.windows_below_threshold, 1);
  EXPECT_EQ(s.baseline_ms.n, 3u);
  EXPECT_EQ(s.requests, 2000u);
  EXPECT_EQ(s.writes_acked, 1000u);
  EXPECT_EQ(s.refused, 3u);
  EXPECT_EQ(s.errors, 4u) << "refused plus reset";
  EXPECT_EQ(s.lost_writes, 1u);
  EXPECT_EQ(s.reconnects, 4u);
}

TEST(BenchSupervisor, RatiosAreToTheHandoff) {
  std::vector<TriggerSummary> s = {
      SummarizeTrigger(Trigger::kHandoff, {MakeRun(Trigger::kHandoff, {{10, 4}, {10, 4}, {12, 8}})}),
      SummarizeTrigger(Trigger::kSelfUpgrade, {MakeRun(Trigger::kSelfUpgrade, {{30, 2}, {30, 2}, {30, 4}})}),
      SummarizeTrigger(Trigger::kKillReattach, {})};
  SetTriggerRatios(s);
  EXPECT_DOUBLE_EQ(s[0].done_ratio, 1);
  EXPECT_DOUBLE_EQ(s[1].done_ratio, 3);
  EXPECT_DOUBLE_EQ(s[1].window_p50_ratio, 0.5);
  EXPECT_DOUBLE_EQ(s[1].window_p99_ratio, 0.5);
  EXPECT_DOUBLE_EQ(s[1].window_max_ratio, 0.5);
  EXPECT_DOUBLE_EQ(s[2].done_ratio, 0) << "nothing measured: no ratio rather than 0×";
  EXPECT_DOUBLE_EQ(s[2].window_p50_ratio, 0);
}

TEST(BenchSupervisor, TargetIsNoErrorAndNoLargerWindowThanAHandoff) {
  const TriggerSummary handoff = SummarizeTrigger(Trigger::kHandoff, {MakeRun(Trigger::kHandoff, {{10, 4}, {10, 8}})});
  EXPECT_EQ(TargetVerdict(handoff, handoff), "reference");
  EXPECT_EQ(TargetVerdict(SummarizeTrigger(Trigger::kSelfUpgrade, {MakeRun(Trigger::kSelfUpgrade, {{30, 4}, {30, 8}})}),
                          handoff),
            "met")
      << "equal windows meet it";
  EXPECT_EQ(TargetVerdict(SummarizeTrigger(Trigger::kKillAdopt, {MakeRun(Trigger::kKillAdopt, {{300, 90}, {300, 2}})}),
                          handoff),
            "MISSED (window p99 larger)");
  EXPECT_EQ(TargetVerdict(SummarizeTrigger(Trigger::kKillReattach,
                                           {MakeRun(Trigger::kKillReattach, {{50, 1}}, /*refused=*/2, /*lost=*/0)}),
                          handoff),
            "MISSED (3 errors)")
      << "2 refused + 1 reset";
  EXPECT_EQ(TargetVerdict(SummarizeTrigger(Trigger::kKillReattach, {}), handoff), "MISSED (nothing measured)");
}

// `baton upgrade --self --json` answers in capitals and in microseconds.
TEST(BenchSupervisor, SelfUpgradeAnswerIsASample) {
  harness::CommandResult r;
  r.exit_code = 0;
  r.out = R"({"outcome":"COMMITTED","exit_code":0,"reason":"","supervisor_pid":7,"total_us":78394})";
  r.json = boost::json::parse(r.out);
  const UpgradeSample u = UpgradeCommandSample(3, "", 1000, 1135, r);
  EXPECT_TRUE(u.committed());
  EXPECT_EQ(u.index, 3);
  EXPECT_DOUBLE_EQ(u.client_ms(), 135);
  EXPECT_DOUBLE_EQ(u.total_ms, 78.394);
  EXPECT_DOUBLE_EQ(u.phases_ms[0], -1) << "a self-upgrade has no handoff phases";
  r.exit_code = 3;
  r.out = R"({"outcome":"ROLLED_BACK","exit_code":3,"reason":"bad state","total_us":5000})";
  r.json = boost::json::parse(r.out);
  const UpgradeSample back = UpgradeCommandSample(4, "", 0, 1, r);
  EXPECT_FALSE(back.committed());
  EXPECT_EQ(back.outcome, "rolled_back");
  EXPECT_EQ(back.reason, "bad state");
  // A handoff's answer keeps its total_ms.
  r.exit_code = 0;
  r.out = R"({"outcome":"committed","total_ms":12.5,"phases_ms":{"spawn":1.5}})";
  r.json = boost::json::parse(r.out);
  const UpgradeSample h = UpgradeCommandSample(5, "", 0, 20, r);
  EXPECT_TRUE(h.committed());
  EXPECT_DOUBLE_EQ(h.total_ms, 12.5);
  EXPECT_DOUBLE_EQ(h.phases_ms[0], 1.5);
}

TEST(BenchSupervisor, TableHasARowPerKind) {
  std::vector<TriggerSummary> s;
  for (Trigger t : kSupervisorTriggers) s.push_back(SummarizeTrigger(t, {MakeRun(t, {{10, 4}})}));
  SetTriggerRatios(s);
  LanguagesSetup setup;
  setup.reps = 3;
  setup.upgrades_per_rep = 10;
  setup.connections = 16;
  setup.rate = 2000;
  setup.write_ratio = 0.5;
  setup.gaps_over_ms = 0.5;
  setup.cpus = 2;
  setup.loadavg = "3.1 2.0 1.5";
  const std::string md = SupervisorMarkdown(setup, s);
  EXPECT_NE(md.find("3 runs x 10 events per kind"), std::string::npos) << md;
  EXPECT_NE(md.find("2 CPUs, load average 3.1 2.0 1.5"), std::string::npos) << md;
  for (const char* row : {"| handoff | 1/1 |", "| self-upgrade | 1/1 |", "| kill+reattach | 1/1 |",
                          "| kill+adopt | 1/1 |"}) {
    EXPECT_NE(md.find(row), std::string::npos) << row << "\n" << md;
  }
  EXPECT_NE(md.find("| reference |"), std::string::npos) << md;
  EXPECT_NE(md.find("| met |"), std::string::npos) << md;
  EXPECT_NE(md.find("1.00× / 1.00× / 1.00×"), std::string::npos) << md;
}

}  // namespace
}  // namespace baton::bench
