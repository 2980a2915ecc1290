// The pure part of the per-language bench mode: --daemon parsing, the
// interleaved schedule, aggregation over repetitions and the table.
#include "tools/bench/languages.h"

#include <gtest/gtest.h>

#include <map>

namespace baton::bench {
namespace {

TEST(BenchLanguages, ParsesLabelEqualsCommand) {
  auto s = ParseDaemonSpec("gokvd=build/bin/gokvd --build-id x");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->label, "gokvd");
  EXPECT_EQ(s->command, "build/bin/gokvd --build-id x");
  // Only the first '=' splits; blanks around either part are dropped.
  s = ParseDaemonSpec(" py = env A=1 pykvd ");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->label, "py");
  EXPECT_EQ(s->command, "env A=1 pykvd");
}

TEST(BenchLanguages, RefusesMalformedDaemonArguments) {
  struct Case {
    const char* arg;
    const char* says;
  };
  for (const Case& c : {Case{"gokvd", "expected LABEL=COMMAND"}, Case{"=gokvd", "the label is empty"},
                        Case{"go kvd=gokvd", "must be 1 to 32"}, Case{"a|b=x", "must be 1 to 32"},
                        Case{"gokvd=", "no command after 'gokvd='"}, Case{"gokvd=  ", "no command"},
                        Case{"abcdefghijklmnopqrstuvwxyz0123456=x", "must be 1 to 32"}}) {
    auto s = ParseDaemonSpec(c.arg);
    ASSERT_FALSE(s) << c.arg;
    EXPECT_EQ(s.error().code, Errc::kInvalidArgument);
    EXPECT_NE(s.error().message.find(c.says), std::string::npos) << c.arg << ": " << s.error().message;
    EXPECT_NE(s.error().message.find("--daemon"), std::string::npos) << s.error().message;
  }
}

TEST(BenchLanguages, LabelsAreUniqueAndAtLeastOneIsGiven) {
  auto specs = ParseDaemonSpecs({"kvd=kvd", "gokvd=gokvd"});
  ASSERT_TRUE(specs);
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].label, "kvd") << "the order given is kept: the first is the ratios' reference";
  auto dup = ParseDaemonSpecs({"kvd=kvd", "kvd=other"});
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message.find("'kvd' is given twice"), std::string::npos) << dup.error().message;
  EXPECT_FALSE(ParseDaemonSpecs({}));
  auto bad = ParseDaemonSpecs({"kvd=kvd", "oops"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("'oops'"), std::string::npos);
}

TEST(BenchLanguages, ScheduleInterleavesAndRotatesTheFirst) {
  const auto slots = Schedule(3, 4);
  ASSERT_EQ(slots.size(), 12u);
  std::map<std::size_t, int> runs, firsts;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    EXPECT_EQ(slots[i].rep, static_cast<int>(i / 3)) << "round by round";
    ++runs[slots[i].daemon];
    if (i % 3 == 0) ++firsts[slots[i].daemon];
  }
  for (std::size_t d = 0; d < 3; ++d) EXPECT_EQ(runs[d], 4) << "every daemon once per round";
  EXPECT_EQ(firsts.size(), 3u) << "no daemon always opens a round";
  EXPECT_EQ(slots[0].daemon, 0u);
  EXPECT_EQ(slots[3].daemon, 1u);
  EXPECT_TRUE(Schedule(0, 3).empty());
  EXPECT_TRUE(Schedule(2, 0).empty());
}

TEST(BenchLanguages, SpreadIsNearestRank) {
  EXPECT_EQ(SpreadOf({}).n, 0u);
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  const Spread s = SpreadOf(v);
  EXPECT_EQ(s.n, 100u);
  EXPECT_DOUBLE_EQ(s.p50, 50);
  EXPECT_DOUBLE_EQ(s.p95, 95);
  EXPECT_DOUBLE_EQ(s.max, 100);
}

UpgradeSample Committed(double wall, double total, bool committed = true) {
  UpgradeSample u;
  u.trigger_ms = 1000;
  u.return_ms = 1000 + wall;
  u.exit_code = committed ? 0 : 3;
  u.outcome = committed ? "committed" : "rolled_back";
  u.total_ms = total;
  for (std::size_t p = 0; p < kPhases.size(); ++p) u.phases_ms[p] = total / 10 + static_cast<double>(p);
  return u;
}

LanguageRep Rep(std::vector<std::pair<double, double>> wall_and_window, bool ok = true) {
  LanguageRep r;
  for (auto [wall, window] : wall_and_window) {
    r.upgrades.push_back(Committed(wall, wall - 1));
    UpgradeWindow w;
    w.window_ms = window;
    w.baseline_valid = true;
    w.baseline_ms = 0.5;
    w.below_threshold = window <= 0.5;
    r.analysis.per_upgrade.push_back(w);
  }
  r.analysis.upgrades = static_cast<int>(r.upgrades.size());
  r.analysis.committed = r.analysis.upgrades;
  r.analysis.invariants_ok = ok;
  return r;
}

TEST(BenchLanguages, SummaryPoolsEveryRepetition) {
  const DaemonSpec spec{"gokvd", "gokvd"};
  // Two reps of two upgrades, and one that did not commit: left out of the timings.
  std::vector<LanguageRep> reps = {Rep({{10, 2}, {20, 4}}), Rep({{30, 0.5}, {40, 8}})};
  reps[1].upgrades.push_back(Committed(500, 499, false));
  UpgradeWindow rolled_back;
  rolled_back.window_ms = 300;
  reps[1].analysis.per_upgrade.push_back(rolled_back);
  const LanguageSummary s = SummarizeLanguage(spec, reps);
  EXPECT_EQ(s.label, "gokvd");
  EXPECT_EQ(s.reps, 2);
  EXPECT_EQ(s.upgrades, 5);
  EXPECT_EQ(s.committed, 4);
  EXPECT_EQ(s.wall_ms.n, 4u);
  EXPECT_DOUBLE_EQ(s.wall_ms.p50, 20);
  EXPECT_DOUBLE_EQ(s.wall_ms.max, 40) << "the rolled-back upgrade is not a handoff time";
  EXPECT_DOUBLE_EQ(s.total_ms.max, 39);
  EXPECT_DOUBLE_EQ(s.window_ms.p50, 2);
  EXPECT_DOUBLE_EQ(s.window_ms.max, 8);
  EXPECT_EQ(s.windows_below_threshold, 1);
  EXPECT_EQ(s.baseline_ms.n, 4u);
  EXPECT_EQ(s.phases_ms[0].n, 4u);
  EXPECT_DOUBLE_EQ(s.phases_ms[6].max, 3.9 + 6);
  EXPECT_EQ(s.failed_reps, 0);

  LanguageRep not_started;
  not_started.error = "did not start";
  std::vector<LanguageRep> bad = {Rep({{10, 1}}, false), not_started};
  const LanguageSummary b = SummarizeLanguage(spec, bad);
  EXPECT_EQ(b.failed_reps, 2);
  EXPECT_EQ(b.upgrades, 1);
}

TEST(BenchLanguages, RatiosAreToTheFirstDaemonsMedian) {
  std::vector<LanguageSummary> s(3);
  s[0].wall_ms = SpreadOf({10, 10, 10});
  s[0].window_ms = SpreadOf({2, 2});
  s[1].wall_ms = SpreadOf({15, 15, 99});
  s[1].window_ms = SpreadOf({3});
  // s[2] measured nothing: no ratio rather than 0×.
  SetRatios(s);
  EXPECT_DOUBLE_EQ(s[0].wall_ratio, 1);
  EXPECT_DOUBLE_EQ(s[1].wall_ratio, 1.5);
  EXPECT_DOUBLE_EQ(s[1].window_ratio, 1.5);
  EXPECT_DOUBLE_EQ(s[0].total_ratio, 0) << "the first measured no trigger -> commit";
  EXPECT_DOUBLE_EQ(s[2].wall_ratio, 0);
}

TEST(BenchLanguages, TableHasARowPerDaemonAndThePhases) {
  std::vector<LanguageSummary> s(2);
  s[0].label = "kvd";
  s[1].label = "pykvd";
  s[0].upgrades = s[0].committed = 50;
  s[1].upgrades = 50;
  s[1].committed = 49;
  s[1].failed_reps = 1;
  s[0].wall_ms = SpreadOf({10, 12, 14});
  s[1].wall_ms = SpreadOf({25, 30, 120});
  s[1].phases_ms[4] = SpreadOf({1.24});
  SetRatios(s);
  LanguagesSetup setup;
  setup.reps = 5;
  setup.upgrades_per_rep = 10;
  setup.connections = 8;
  setup.rate = 300;
  setup.write_ratio = 0.5;
  setup.gaps_over_ms = 0.5;
  setup.cpus = 2;
  setup.loadavg = "1.0 1.0 1.0";
  const std::string t = LanguagesMarkdown(setup, s);
  EXPECT_NE(t.find("5 reps x 10 upgrades"), std::string::npos) << t;
  EXPECT_NE(t.find("300 req/s, 50% writes"), std::string::npos) << t;
  EXPECT_NE(t.find("| kvd | 50/50 | 12.0 / 14.0 / 14.0 | 1.00× |"), std::string::npos) << t;
  EXPECT_NE(t.find("| pykvd | 49/50 (1 bad reps) | 30.0 / 120 / 120 | 2.50× |"), std::string::npos) << t;
  EXPECT_NE(t.find("| spawn | hello | warm | drain | seal | begin | commit |"), std::string::npos) << t;
  EXPECT_NE(t.find("| pykvd | – | – | – | – | 1.2 / 1.2 / 1.2 | – | – |"), std::string::npos) << t;
  EXPECT_EQ(t.back(), '\n');
}

}  // namespace
}  // namespace baton::bench
