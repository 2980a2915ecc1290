#include "tools/bench/supervisor_report.h"

#include <fmt/format.h>

namespace baton::bench {
namespace {

std::string Three(const Dist& d) {
  if (d.n == 0) return "–";
  return fmt::format("{} / {} / {}", FormatMs(d.p50), FormatMs(d.p99), FormatMs(d.max));
}

std::string Ratio(double r) { return r > 0 ? fmt::format("{:.2f}×", r) : "–"; }

double Over(double value, double reference) { return reference > 0 ? value / reference : 0; }

}  // namespace

TriggerSummary SummarizeTrigger(Trigger t, const std::vector<MeasuredRun>& runs) {
  TriggerSummary s;
  s.trigger = t;
  s.runs = static_cast<int>(runs.size());
  Pooled pooled;
  for (const MeasuredRun& m : runs) {
    if (!m.run.setup_error.empty() || !m.analysis.invariants_ok) ++s.failed_runs;
    Pool(m.run.upgrades, m.analysis, pooled);
    const LoadSummary& l = m.run.load;
    s.requests += l.requests;
    s.writes_acked += l.writes_acked;
    s.errors += l.errors_total();
    s.refused += l.refused;
    s.lost_writes += l.lost_writes;
    s.writes_unknown += l.writes_unknown;
    s.reconnects += l.reconnects;
  }
  s.events = pooled.upgrades;
  s.completed = pooled.committed;
  s.windows_below_threshold = pooled.windows_below_threshold;
  s.done_ms = Summarize(std::move(pooled.wall_ms));
  s.window_ms = Summarize(std::move(pooled.window_ms));
  s.baseline_ms = Summarize(std::move(pooled.baseline_ms));
  return s;
}

void SetTriggerRatios(std::vector<TriggerSummary>& summaries) {
  if (summaries.empty()) return;
  const TriggerSummary first = summaries.front();
  for (auto& s : summaries) {
    const bool measured = s.done_ms.n > 0 && first.done_ms.n > 0;
    s.done_ratio = measured ? Over(s.done_ms.p50, first.done_ms.p50) : 0;
    s.window_p50_ratio = measured ? Over(s.window_ms.p50, first.window_ms.p50) : 0;
    s.window_p99_ratio = measured ? Over(s.window_ms.p99, first.window_ms.p99) : 0;
    s.window_max_ratio = measured ? Over(s.window_ms.max, first.window_ms.max) : 0;
  }
}

std::string TargetVerdict(const TriggerSummary& s, const TriggerSummary& reference) {
  if (s.trigger == reference.trigger) return "reference";
  std::vector<std::string> why;
  if (s.events == 0) why.push_back("nothing measured");
  if (s.completed < s.events) why.push_back(fmt::format("{} of {} failed", s.events - s.completed, s.events));
  if (s.errors > 0) why.push_back(fmt::format("{} errors", s.errors));
  if (s.lost_writes > 0) why.push_back(fmt::format("{} lost writes", s.lost_writes));
  if (s.window_ms.n > 0 && s.window_ms.p50 > reference.window_ms.p50) why.push_back("window p50 larger");
  if (s.window_ms.n > 0 && s.window_ms.p99 > reference.window_ms.p99) why.push_back("window p99 larger");
  if (why.empty()) return "met";
  std::string out = "MISSED (";
  for (std::size_t i = 0; i < why.size(); ++i) out += (i > 0 ? ", " : "") + why[i];
  return out + ")";
}

std::string SupervisorMarkdown(const LanguagesSetup& setup, const std::vector<TriggerSummary>& summaries) {
  std::string out = fmt::format(
      "Supervisor events: {} runs x {} events per kind, each run its own cluster, runs interleaved; baton-load {} "
      "connections {}, {} req/s, {:.0f}% writes; write gaps over {} ms logged; {} CPUs, load average {} at the "
      "start.\n"
      "Times in ms, p50 / p99 / max over completed events; ×: over the handoff's (p50; window also p99 and max).\n\n",
      setup.reps, setup.upgrades_per_rep, setup.connections, setup.close_mode ? "close" : "keep-alive",
      setup.rate > 0 ? fmt::format("{:g}", setup.rate) : "unlimited", setup.write_ratio * 100,
      fmt::format("{:g}", setup.gaps_over_ms), setup.cpus, setup.loadavg.empty() ? "?" : setup.loadavg);
  out +=
      "| event | completed | trigger → done | × | write window | × p50 / p99 / max | baseline window | errors | "
      "refused | lost writes | reconnects | target |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : summaries) {
    out += fmt::format(
        "| {} | {}/{}{} | {} | {} | {} | {} / {} / {} | {} | {} | {} | {} of {} | {} | {} |\n", TriggerName(s.trigger),
        s.completed, s.events, s.failed_runs > 0 ? fmt::format(" ({} bad runs)", s.failed_runs) : "", Three(s.done_ms),
        Ratio(s.done_ratio), Three(s.window_ms), Ratio(s.window_p50_ratio), Ratio(s.window_p99_ratio),
        Ratio(s.window_max_ratio), Three(s.baseline_ms), s.errors, s.refused, s.lost_writes, s.writes_acked,
        s.reconnects, summaries.empty() ? "" : TargetVerdict(s, summaries.front()));
  }
  return out;
}

}  // namespace baton::bench
