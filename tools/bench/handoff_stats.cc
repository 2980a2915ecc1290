#include "tools/bench/handoff_stats.h"

#include <algorithm>
#include <cmath>

namespace baton::bench {

double NearestRank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank ceil(q * n), 1-based; q = 0 is the minimum.
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[std::min(rank, sorted.size()) - 1];
}

Dist Summarize(std::vector<double> values) {
  Dist d;
  d.n = values.size();
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  d.p50 = NearestRank(values, 0.50);
  d.p99 = NearestRank(values, 0.99);
  d.max = values.back();
  return d;
}

std::optional<WriteGap> LongestOverlapping(const std::vector<WriteGap>& gaps, double from, double to) {
  if (!(to > from)) return std::nullopt;
  // First gap starting at or after `from`; the one before it may straddle `from`.
  auto it =
      std::lower_bound(gaps.begin(), gaps.end(), from, [](const WriteGap& g, double t) { return g.start_ms < t; });
  if (it != gaps.begin()) --it;
  std::optional<WriteGap> best;
  for (; it != gaps.end() && it->start_ms < to; ++it) {
    if (it->end_ms() <= from) continue;
    if (!best || it->length_ms > best->length_ms) best = *it;
  }
  return best;
}

namespace {

std::size_t Phase(std::string_view name) {
  for (std::size_t i = 0; i < kPhases.size(); ++i) {
    if (kPhases[i] == name) return i;
  }
  return kPhases.size();
}

// The longest gap over [from, to], or the threshold when none exceeds it.
double WindowOver(const std::vector<WriteGap>& gaps, double from, double to, double threshold_ms) {
  const auto g = LongestOverlapping(gaps, from, to);
  return g && g->length_ms > threshold_ms ? g->length_ms : threshold_ms;
}

// A window `len` long centred in the pause (pause_from, pause_to), clipped to it.
bool BaselineWindow(double pause_from, double pause_to, double len, double& from, double& to) {
  if (!(pause_to > pause_from) || !(len > 0)) return false;
  len = std::min(len, pause_to - pause_from);
  const double mid = (pause_from + pause_to) / 2;
  from = mid - len / 2;
  to = mid + len / 2;
  return true;
}

}  // namespace

Analysis Analyze(const std::vector<UpgradeSample>& upgrades, const std::vector<WriteGap>& gaps, double threshold_ms,
                 const LoadSummary& load, double load_end_ms) {
  Analysis a;
  a.upgrades = static_cast<int>(upgrades.size());
  std::vector<double> client, total, non_warm, windows, baselines, brackets, bracket_baselines;
  const std::size_t spawn = Phase("spawn"), hello = Phase("hello"), warm = Phase("warm"), commit = Phase("commit");
  std::array<std::vector<double>, kPhases.size()> phases;
  for (std::size_t i = 0; i < upgrades.size(); ++i) {
    const UpgradeSample& u = upgrades[i];
    if (u.committed()) ++a.committed;
    client.push_back(u.client_ms());
    if (u.total_ms >= 0) total.push_back(u.total_ms);
    if (u.total_ms >= 0 && u.phases_ms[warm] >= 0) non_warm.push_back(u.total_ms - u.phases_ms[warm]);
    for (std::size_t p = 0; p < kPhases.size(); ++p) {
      if (u.phases_ms[p] >= 0) phases[p].push_back(u.phases_ms[p]);
    }

    UpgradeWindow w;
    if (auto g = LongestOverlapping(gaps, u.trigger_ms, u.return_ms); g && g->length_ms > threshold_ms) {
      w.window_ms = g->length_ms;
      w.gap_start_ms = g->start_ms;
    } else {
      // Every gap in the interval was at most the threshold.
      w.window_ms = threshold_ms;
      w.below_threshold = true;
      ++a.windows_below_threshold;
    }
    windows.push_back(w.window_ms);

    // Baseline: the same measure over an equally long window in the pause
    // after this upgrade, where no handoff runs.
    const double pause_from = u.return_ms;
    const double pause_to = i + 1 < upgrades.size() ? upgrades[i + 1].trigger_ms : load_end_ms;
    double from = 0, to = 0;
    if (BaselineWindow(pause_from, pause_to, u.client_ms(), from, to)) {
      w.baseline_valid = true;
      w.baseline_ms = WindowOver(gaps, from, to, threshold_ms);
      baselines.push_back(w.baseline_ms);
    }

    if (u.phases_ms[spawn] >= 0 && u.phases_ms[hello] >= 0 && u.phases_ms[warm] >= 0 && u.phases_ms[commit] >= 0) {
      w.bracket_from_ms = u.trigger_ms + u.phases_ms[spawn] + u.phases_ms[hello] + u.phases_ms[warm];
      w.bracket_to_ms = u.return_ms - u.phases_ms[commit];
      if (w.bracket_to_ms > w.bracket_from_ms) {
        w.bracket_valid = true;
        w.bracket_window_ms = WindowOver(gaps, w.bracket_from_ms, w.bracket_to_ms, threshold_ms);
        brackets.push_back(w.bracket_window_ms);
        if (BaselineWindow(pause_from, pause_to, w.bracket_to_ms - w.bracket_from_ms, from, to)) {
          w.bracket_baseline_valid = true;
          w.bracket_baseline_ms = WindowOver(gaps, from, to, threshold_ms);
          bracket_baselines.push_back(w.bracket_baseline_ms);
        }
      }
    }
    a.per_upgrade.push_back(w);
  }
  a.client_ms = Summarize(std::move(client));
  a.total_ms = Summarize(std::move(total));
  a.total_minus_warm_ms = Summarize(std::move(non_warm));
  for (std::size_t p = 0; p < kPhases.size(); ++p) a.phases[p] = Summarize(std::move(phases[p]));
  a.window_ms = Summarize(std::move(windows));
  a.baseline_ms = Summarize(std::move(baselines));
  a.bracket_window_ms = Summarize(std::move(brackets));
  a.bracket_baseline_ms = Summarize(std::move(bracket_baselines));
  a.invariants_ok = a.upgrades > 0 && a.committed == a.upgrades && load.parsed && load.exit_code == 0 &&
                    load.errors_total() == 0 && load.lost_writes == 0 && load.verify_errors == 0 &&
                    load.writes_acked > 0;
  return a;
}

void Pool(const std::vector<UpgradeSample>& upgrades, const Analysis& a, Pooled& into) {
  for (std::size_t i = 0; i < upgrades.size(); ++i) {
    const UpgradeSample& u = upgrades[i];
    ++into.upgrades;
    if (!u.committed()) continue;
    ++into.committed;
    into.wall_ms.push_back(u.client_ms());
    if (u.total_ms >= 0) into.total_ms.push_back(u.total_ms);
    for (std::size_t p = 0; p < kPhases.size(); ++p) {
      if (u.phases_ms[p] >= 0) into.phases_ms[p].push_back(u.phases_ms[p]);
    }
    if (i < a.per_upgrade.size()) {
      const UpgradeWindow& w = a.per_upgrade[i];
      into.window_ms.push_back(w.window_ms);
      if (w.below_threshold) ++into.windows_below_threshold;
      if (w.baseline_valid) into.baseline_ms.push_back(w.baseline_ms);
    }
  }
}

}  // namespace baton::bench
