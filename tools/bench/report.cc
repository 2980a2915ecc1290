#include "tools/bench/report.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

namespace baton::bench {
namespace {

namespace json = boost::json;

std::string Ms(double ms) {
  if (!std::isfinite(ms) || ms < 0) return "-";
  if (ms >= 100) return fmt::format("{:.0f}", ms);
  if (ms >= 1) return fmt::format("{:.1f}", ms);
  return fmt::format("{:.2f}", ms);
}

std::string Met(double value, double target) { return value <= target ? "met" : "MISSED"; }

std::string Records(uint64_t n) {
  if (n >= 1000000 && n % 1000000 == 0) return fmt::format("{}M", n / 1000000);
  if (n >= 1000 && n % 1000 == 0) return fmt::format("{}k", n / 1000);
  return std::to_string(n);
}

// "43k", "1.7M": for counts that are not round.
std::string Approx(uint64_t n) {
  if (n >= 1000000) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
  if (n >= 1000) return fmt::format("{:.0f}k", static_cast<double>(n) / 1e3);
  return std::to_string(n);
}

std::string Mode(const RunConfig& c) { return c.close_mode ? "close" : "keep-alive"; }

std::size_t PhaseIndex(std::string_view name) {
  for (std::size_t i = 0; i < kPhases.size(); ++i) {
    if (kPhases[i] == name) return i;
  }
  return 0;
}

json::object DistJson(const Dist& d) { return {{"n", d.n}, {"p50", d.p50}, {"p99", d.p99}, {"max", d.max}}; }

std::string ErrorsText(const LoadSummary& l) {
  return fmt::format("{} errors (refused {}, reset {}, timeout {}, non2xx {}, other {})", l.errors_total(), l.refused,
                     l.reset, l.timeout, l.non2xx, l.other);
}

}  // namespace

std::string FormatMs(double ms) { return Ms(ms); }

std::string Describe(const RunResult& r) {
  const RunConfig& c = r.config;
  std::string wal = c.prefill_records == 0
                        ? "empty WAL"
                        : fmt::format("WAL pre-filled with {} records ({:.0f} MB)", Records(c.prefill_records),
                                      static_cast<double>(r.prefill_bytes) / 1e6);
  const std::string rate = c.rate_limit > 0 ? fmt::format("{:.0f} req/s", c.rate_limit) : "unthrottled";
  return fmt::format("{} connections {} {}, write ratio {}, {}", c.connections, Mode(c), rate, c.write_ratio, wal);
}

std::string ProgressLine(const UpgradeSample& u, int total) {
  if (u.committed()) {
    return fmt::format(
        "upgrade {}/{} committed in {} ms (baton upgrade returned after {} ms, old pid {} -> new pid {})", u.index,
        total, Ms(u.total_ms), Ms(u.client_ms()), u.old_pid, u.new_pid);
  }
  return fmt::format("upgrade {}/{} NOT committed: exit {}, outcome '{}', reason '{}' after {} ms", u.index, total,
                     u.exit_code, u.outcome, u.reason, Ms(u.client_ms()));
}

std::string HumanSummary(const MeasuredRun& m) {
  const RunResult& r = m.run;
  const Analysis& a = m.analysis;
  const LoadSummary& l = r.load;
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "handoff bench: {} upgrades, {}\n", r.config.upgrades, Describe(r));
  if (!r.setup_error.empty()) {
    fmt::format_to(it, "  SETUP FAILED: {}\n", r.setup_error);
    return out;
  }
  fmt::format_to(it, "  machine: {} CPUs, load average {} at start\n", r.cpus, r.loadavg);
  if (r.interrupted) out += "  (interrupted: fewer upgrades than asked)\n";
  fmt::format_to(
      it, "  invariants: {}/{} upgrades committed; {} requests, {}; lost writes {} of {} acked ({} read back){}\n",
      a.committed, a.upgrades, l.requests, ErrorsText(l), l.lost_writes, l.writes_acked, l.verified,
      l.verify_errors ? fmt::format(", {} could not be read back", l.verify_errors) : "");
  if (!l.parsed) out += "  baton-load produced no report\n";
  fmt::format_to(it, "  => {}\n", a.invariants_ok ? "OK" : "INVARIANT BROKEN");
  fmt::format_to(
      it, "  trigger->commit, baton upgrade wall time: p50 {} ms  p99 {} ms  max {} ms  (target p50 <= {} ms: {})\n",
      Ms(a.client_ms.p50), Ms(a.client_ms.p99), Ms(a.client_ms.max), kTargetCommitP50Ms,
      Met(a.client_ms.p50, kTargetCommitP50Ms));
  fmt::format_to(it, "  trigger->commit, supervisor total_ms:     p50 {} ms  p99 {} ms  max {} ms  (target: {})\n",
                 Ms(a.total_ms.p50), Ms(a.total_ms.p99), Ms(a.total_ms.max), Met(a.total_ms.p50, kTargetCommitP50Ms));
  fmt::format_to(it, "  of which not warm (total_ms - warm):     p50 {} ms  p99 {} ms  max {} ms\n",
                 Ms(a.total_minus_warm_ms.p50), Ms(a.total_minus_warm_ms.p99), Ms(a.total_minus_warm_ms.max));
  out += "  phases p50/p99 ms:";
  for (std::size_t p = 0; p < kPhases.size(); ++p) {
    fmt::format_to(it, " {} {}/{}", kPhases[p], Ms(a.phases[p].p50), Ms(a.phases[p].p99));
  }
  out += "\n";
  fmt::format_to(it,
                 "  client-seen write window (longest write-ack gap overlapping the upgrade): p50 {} ms  p99 {} ms  "
                 "max {} ms  (targets p50 <= {} ms: {}, p99 <= {} ms: {})\n",
                 Ms(a.window_ms.p50), Ms(a.window_ms.p99), Ms(a.window_ms.max), kTargetWindowP50Ms,
                 Met(a.window_ms.p50, kTargetWindowP50Ms), kTargetWindowP99Ms,
                 Met(a.window_ms.p99, kTargetWindowP99Ms));
  if (a.windows_below_threshold > 0) {
    fmt::format_to(it, "    {} of {} upgrades saw no write gap over {} ms; counted as {} ms\n",
                   a.windows_below_threshold, a.upgrades, r.config.gaps_over_ms, r.config.gaps_over_ms);
  }
  if (l.gaps_dropped > 0) {
    fmt::format_to(it, "    WARNING: baton-load dropped {} gaps over its log bound; late windows are under-counted\n",
                   l.gaps_dropped);
  }
  fmt::format_to(it,
                 "    baseline, equally long windows between upgrades (at most the pause): p50 {} ms  p99 {} ms  "
                 "max {} ms\n",
                 Ms(a.baseline_ms.p50), Ms(a.baseline_ms.p99), Ms(a.baseline_ms.max));
  fmt::format_to(it,
                 "  write window over drain+seal+begin only (bracketed from the phase times): p50 {} ms  p99 {} ms  "
                 "max {} ms\n    baseline, same-length windows between upgrades: p50 {} ms  p99 {} ms  max {} ms\n",
                 Ms(a.bracket_window_ms.p50), Ms(a.bracket_window_ms.p99), Ms(a.bracket_window_ms.max),
                 Ms(a.bracket_baseline_ms.p50), Ms(a.bracket_baseline_ms.p99), Ms(a.bracket_baseline_ms.max));
  fmt::format_to(it, "  kvd WAL at the end: {} records (pre-fill {} + {} acked by the load)\n",
                 r.config.prefill_records + l.writes_acked, r.config.prefill_records, l.writes_acked);
  fmt::format_to(
      it, "  load: {:.1f} s, request latency p50 {} ms p99 {} ms max {} ms, {} reconnects, {} writes unknown\n",
      l.duration_s, Ms(static_cast<double>(l.latency_p50_us) / 1000), Ms(static_cast<double>(l.latency_p99_us) / 1000),
      Ms(static_cast<double>(l.latency_max_us) / 1000), l.reconnects, l.writes_unknown);
  if (r.config.prefill_records > 0) {
    fmt::format_to(it, "  pre-fill: {} records, {:.1f} MB written in {:.1f} s; cold start to healthy {:.1f} s\n",
                   r.config.prefill_records, static_cast<double>(r.prefill_bytes) / 1e6, r.prefill_s, r.start_s);
  }
  return out;
}

std::string MarkdownRun(const MeasuredRun& m) {
  const RunResult& r = m.run;
  const Analysis& a = m.analysis;
  const LoadSummary& l = r.load;
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{} upgrades, {}: {}/{} committed, {} requests, {}, {} lost writes of {} acked.\n\n",
                 r.config.upgrades, Describe(r), a.committed, a.upgrades, l.requests, ErrorsText(l), l.lost_writes,
                 l.writes_acked);
  out += "| metric (ms) | p50 | p99 | max |\n|---|---:|---:|---:|\n";
  auto row = [&](const std::string& name, const Dist& d) {
    fmt::format_to(it, "| {} | {} | {} | {} |\n", name, Ms(d.p50), Ms(d.p99), Ms(d.max));
  };
  row("trigger→commit, `baton upgrade` wall time", a.client_ms);
  row("trigger→commit, supervisor `total_ms`", a.total_ms);
  row("`total_ms` − `warm`", a.total_minus_warm_ms);
  for (std::size_t p = 0; p < kPhases.size(); ++p) row(fmt::format("phase `{}`", kPhases[p]), a.phases[p]);
  row(fmt::format("client-seen write window ({} of {} below {} ms)", a.windows_below_threshold, a.upgrades,
                  r.config.gaps_over_ms),
      a.window_ms);
  row("baseline: equally long window between upgrades (at most the pause)", a.baseline_ms);
  row("write window over drain+seal+begin only", a.bracket_window_ms);
  row("baseline: equally long window between upgrades", a.bracket_baseline_ms);
  return out;
}

std::string MarkdownSweep(const std::vector<MeasuredRun>& runs) {
  std::string out =
      "| conns | mode | WAL records, start → end | pre-fill MB | committed | errors | lost | `baton upgrade` p50 / p99 "
      "| total_ms p50 / p99 "
      "| warm p50 | drain p50 | seal p50 | begin p50 | window p50 / p99 / max | baseline p50 / p99 "
      "| drain→ready window p50 / p99 | its baseline p50 / p99 |\n"
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  auto it = std::back_inserter(out);
  for (const auto& m : runs) {
    const RunResult& r = m.run;
    const Analysis& a = m.analysis;
    if (!r.setup_error.empty()) {
      fmt::format_to(it, "| {} | {} | {} | | setup failed: {} |||||||||||||\n", r.config.connections, Mode(r.config),
                     Records(r.config.prefill_records), r.setup_error);
      continue;
    }
    fmt::format_to(
        it,
        "| {} | {} | {} → {} | {:.0f} | {}/{} | {} | {} | {} / {} | {} / {} | {} | {} | {} | {} | {} / {} / {} "
        "| {} / {} | {} / {} | {} / {} |\n",
        r.config.connections, Mode(r.config), Records(r.config.prefill_records),
        Approx(r.config.prefill_records + r.load.writes_acked), static_cast<double>(r.prefill_bytes) / 1e6, a.committed,
        a.upgrades, r.load.errors_total(), r.load.lost_writes, Ms(a.client_ms.p50), Ms(a.client_ms.p99),
        Ms(a.total_ms.p50), Ms(a.total_ms.p99), Ms(a.phases[PhaseIndex("warm")].p50),
        Ms(a.phases[PhaseIndex("drain")].p50), Ms(a.phases[PhaseIndex("seal")].p50),
        Ms(a.phases[PhaseIndex("begin")].p50), Ms(a.window_ms.p50), Ms(a.window_ms.p99), Ms(a.window_ms.max),
        Ms(a.baseline_ms.p50), Ms(a.baseline_ms.p99), Ms(a.bracket_window_ms.p50), Ms(a.bracket_window_ms.p99),
        Ms(a.bracket_baseline_ms.p50), Ms(a.bracket_baseline_ms.p99));
  }
  return out;
}

std::string MarkdownHistory(const std::vector<MeasuredRun>& runs) {
  std::string out =
      "| history (writes) | checkpoints | cold start s | first snapshot s | committed | errors | lost "
      "| `baton upgrade` p50 / p99 | warm p50 | begin p50 | window p50 | p50 ÷ shortest |\n"
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  auto it = std::back_inserter(out);
  for (const auto& m : runs) {
    const RunResult& r = m.run;
    const Analysis& a = m.analysis;
    const bool on = r.config.checkpoint_bytes != 0;
    if (!r.setup_error.empty()) {
      fmt::format_to(it, "| {} | {} | setup failed: {} |||||||||\n", Records(r.config.prefill_records),
                     on ? "on" : "off", r.setup_error);
      continue;
    }
    // The shortest history measured with the same setting.
    double base = 0;
    uint64_t base_records = UINT64_MAX;
    for (const auto& o : runs) {
      if ((o.run.config.checkpoint_bytes != 0) == on && o.run.setup_error.empty() &&
          o.run.config.prefill_records < base_records) {
        base_records = o.run.config.prefill_records;
        base = o.analysis.client_ms.p50;
      }
    }
    fmt::format_to(it, "| {} | {} | {:.1f} | {} | {}/{} | {} | {} | {} / {} | {} | {} | {} | {:.2f} |\n",
                   Records(r.config.prefill_records), on ? "on" : "off", r.start_s,
                   on ? fmt::format("{:.1f}", r.checkpoint_s) : "–", a.committed, a.upgrades,
                   r.load.errors_total(), r.load.lost_writes, Ms(a.client_ms.p50), Ms(a.client_ms.p99),
                   Ms(a.phases[PhaseIndex("warm")].p50), Ms(a.phases[PhaseIndex("begin")].p50), Ms(a.window_ms.p50),
                   base > 0 ? a.client_ms.p50 / base : 0.0);
  }
  return out;
}

json::object ToJson(const MeasuredRun& m) {
  const RunResult& r = m.run;
  const RunConfig& c = r.config;
  const Analysis& a = m.analysis;
  const LoadSummary& l = r.load;
  json::object o;
  o["config"] = {{"trigger", TriggerName(c.trigger)},
                 {"upgrades", c.upgrades},
                 {"connections", c.connections},
                 {"mode", c.close_mode ? "close" : "keepalive"},
                 {"write_ratio", c.write_ratio},
                 {"rate_limit", c.rate_limit},
                 {"gaps_over_ms", c.gaps_over_ms},
                 {"prefill_records", c.prefill_records},
                 {"value_size", c.value_size},
                 {"settle_ms", c.settle.count()},
                 {"pause_ms", c.pause.count()},
                 {"alternate_binaries", c.alternate_binaries}};
  o["setup_error"] = r.setup_error;
  o["interrupted"] = r.interrupted;
  o["cpus"] = r.cpus;
  o["loadavg_at_start"] = r.loadavg;
  o["prefill_bytes"] = r.prefill_bytes;
  o["prefill_s"] = r.prefill_s;
  o["cold_start_s"] = r.start_s;
  json::object summary;
  summary["upgrades"] = a.upgrades;
  summary["committed"] = a.committed;
  summary["invariants_ok"] = a.invariants_ok;
  summary["client_ms"] = DistJson(a.client_ms);
  summary["total_ms"] = DistJson(a.total_ms);
  summary["total_minus_warm_ms"] = DistJson(a.total_minus_warm_ms);
  json::object phases;
  for (std::size_t p = 0; p < kPhases.size(); ++p) phases[kPhases[p]] = DistJson(a.phases[p]);
  summary["phases_ms"] = std::move(phases);
  summary["window_ms"] = DistJson(a.window_ms);
  summary["windows_below_threshold"] = a.windows_below_threshold;
  summary["baseline_ms"] = DistJson(a.baseline_ms);
  summary["bracket_window_ms"] = DistJson(a.bracket_window_ms);
  summary["bracket_baseline_ms"] = DistJson(a.bracket_baseline_ms);
  o["summary"] = std::move(summary);
  o["load"] = {
      {"parsed", l.parsed},
      {"exit_code", l.exit_code},
      {"duration_s", l.duration_s},
      {"requests", l.requests},
      {"writes_acked", l.writes_acked},
      {"reads", l.reads},
      {"writes_unknown", l.writes_unknown},
      {"reconnects", l.reconnects},
      {"errors",
       {{"refused", l.refused}, {"reset", l.reset}, {"timeout", l.timeout}, {"non2xx", l.non2xx}, {"other", l.other}}},
      {"errors_total", l.errors_total()},
      {"lost_writes", l.lost_writes},
      {"verify_errors", l.verify_errors},
      {"verified", l.verified},
      {"latency_us", {{"p50", l.latency_p50_us}, {"p99", l.latency_p99_us}, {"max", l.latency_max_us}}},
      {"gaps_dropped", l.gaps_dropped}};
  json::array ups;
  for (std::size_t i = 0; i < r.upgrades.size(); ++i) {
    const UpgradeSample& u = r.upgrades[i];
    json::object j{{"index", u.index},
                   {"binary", u.binary},
                   {"trigger_mono_ms", u.trigger_ms},
                   {"return_mono_ms", u.return_ms},
                   {"client_ms", u.client_ms()},
                   {"exit_code", u.exit_code},
                   {"outcome", u.outcome},
                   {"reason", u.reason},
                   {"old_pid", u.old_pid},
                   {"new_pid", u.new_pid},
                   {"total_ms", u.total_ms}};
    json::object ph;
    for (std::size_t p = 0; p < kPhases.size(); ++p) ph[kPhases[p]] = u.phases_ms[p];
    j["phases_ms"] = std::move(ph);
    if (i < a.per_upgrade.size()) {
      const UpgradeWindow& w = a.per_upgrade[i];
      j["window_ms"] = w.window_ms;
      j["window_below_threshold"] = w.below_threshold;
      j["window_gap_start_mono_ms"] = w.gap_start_ms;
      if (w.baseline_valid) j["baseline_ms"] = w.baseline_ms;
      if (w.bracket_valid) {
        j["bracket_from_mono_ms"] = w.bracket_from_ms;
        j["bracket_to_mono_ms"] = w.bracket_to_ms;
        j["bracket_window_ms"] = w.bracket_window_ms;
      }
      if (w.bracket_baseline_valid) j["bracket_baseline_ms"] = w.bracket_baseline_ms;
    }
    if (!u.committed()) j["raw"] = u.raw;
    ups.push_back(std::move(j));
  }
  o["upgrades"] = std::move(ups);
  json::array gaps;
  gaps.reserve(r.gaps.size());
  for (const auto& g : r.gaps) gaps.push_back(json::array{g.start_ms, g.length_ms});
  o["gaps_start_mono_ms_and_length_ms"] = std::move(gaps);
  o["load_end_mono_ms"] = r.load_end_ms;
  if (!r.supervisor_log_tail.empty()) o["supervisor_log_tail"] = r.supervisor_log_tail;
  return o;
}

}  // namespace baton::bench
