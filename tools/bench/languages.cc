#include "tools/bench/languages.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace baton::bench {
namespace {

constexpr std::size_t kMaxLabel = 32;

bool LabelChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '+';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Ms(double ms) { return ms >= 100 ? fmt::format("{:.0f}", ms) : fmt::format("{:.1f}", ms); }

std::string Three(const Spread& s) {
  if (s.n == 0) return "–";
  return fmt::format("{} / {} / {}", Ms(s.p50), Ms(s.p95), Ms(s.max));
}

std::string Ratio(double r) { return r > 0 ? fmt::format("{:.2f}×", r) : "–"; }

double RatioOf(const Spread& s, const Spread& first) { return first.n > 0 && first.p50 > 0 ? s.p50 / first.p50 : 0; }

}  // namespace

Result<DaemonSpec> ParseDaemonSpec(std::string_view arg) {
  const auto eq = arg.find('=');
  if (eq == std::string_view::npos) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("--daemon '{}': expected LABEL=COMMAND, e.g. --daemon 'gokvd=build/bin/gokvd'", arg));
  }
  const std::string_view label = Trim(arg.substr(0, eq));
  const std::string_view command = Trim(arg.substr(eq + 1));
  if (label.empty()) return Error(Errc::kInvalidArgument, fmt::format("--daemon '{}': the label is empty", arg));
  if (label.size() > kMaxLabel || !std::all_of(label.begin(), label.end(), LabelChar)) {
    return Error(
        Errc::kInvalidArgument,
        fmt::format("--daemon '{}': the label '{}' must be 1 to {} of A-Z a-z 0-9 . _ - +", arg, label, kMaxLabel));
  }
  if (command.empty()) {
    return Error(Errc::kInvalidArgument, fmt::format("--daemon '{}': no command after '{}='", arg, label));
  }
  return DaemonSpec{std::string(label), std::string(command)};
}

Result<std::vector<DaemonSpec>> ParseDaemonSpecs(const std::vector<std::string>& args) {
  if (args.empty()) return Error(Errc::kInvalidArgument, "no --daemon LABEL=COMMAND given");
  std::vector<DaemonSpec> specs;
  std::set<std::string> labels;
  for (const auto& a : args) {
    auto spec = ParseDaemonSpec(a);
    if (!spec) return spec.error();
    if (!labels.insert(spec->label).second) {
      return Error(Errc::kInvalidArgument, fmt::format("--daemon: the label '{}' is given twice", spec->label));
    }
    specs.push_back(std::move(*spec));
  }
  return specs;
}

std::vector<Slot> Schedule(std::size_t daemons, int reps) {
  std::vector<Slot> slots;
  if (daemons == 0 || reps <= 0) return slots;
  slots.reserve(daemons * static_cast<std::size_t>(reps));
  for (int r = 0; r < reps; ++r) {
    for (std::size_t i = 0; i < daemons; ++i) slots.push_back({r, (static_cast<std::size_t>(r) + i) % daemons});
  }
  return slots;
}

Spread SpreadOf(std::vector<double> values) {
  Spread s;
  s.n = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.p50 = NearestRank(values, 0.50);
  s.p95 = NearestRank(values, 0.95);
  s.max = values.back();
  return s;
}

LanguageSummary SummarizeLanguage(const DaemonSpec& spec, const std::vector<LanguageRep>& reps) {
  LanguageSummary s;
  s.label = spec.label;
  s.command = spec.command;
  s.reps = static_cast<int>(reps.size());
  Pooled pooled;
  for (const LanguageRep& rep : reps) {
    if (!rep.error.empty() || !rep.analysis.invariants_ok) ++s.failed_reps;
    Pool(rep.upgrades, rep.analysis, pooled);
  }
  s.upgrades = pooled.upgrades;
  s.committed = pooled.committed;
  s.windows_below_threshold = pooled.windows_below_threshold;
  s.wall_ms = SpreadOf(std::move(pooled.wall_ms));
  s.total_ms = SpreadOf(std::move(pooled.total_ms));
  for (std::size_t p = 0; p < kPhases.size(); ++p) s.phases_ms[p] = SpreadOf(std::move(pooled.phases_ms[p]));
  s.window_ms = SpreadOf(std::move(pooled.window_ms));
  s.baseline_ms = SpreadOf(std::move(pooled.baseline_ms));
  return s;
}

void SetRatios(std::vector<LanguageSummary>& summaries) {
  if (summaries.empty()) return;
  const LanguageSummary first = summaries.front();
  for (auto& s : summaries) {
    s.wall_ratio = RatioOf(s.wall_ms, first.wall_ms);
    s.total_ratio = RatioOf(s.total_ms, first.total_ms);
    s.window_ratio = RatioOf(s.window_ms, first.window_ms);
  }
}

std::string LanguagesMarkdown(const LanguagesSetup& setup, const std::vector<LanguageSummary>& summaries) {
  std::string out = fmt::format(
      "Per language: {} reps x {} upgrades per daemon, interleaved; baton-load {} connections {}, {} req/s, "
      "{:.0f}% writes; write gaps over {} ms logged; {} CPUs, load average {} at the start.\n"
      "Times in ms, p50 / p95 / max over committed upgrades; ×: p50 over the first daemon's p50.\n\n",
      setup.reps, setup.upgrades_per_rep, setup.connections, setup.close_mode ? "close" : "keep-alive",
      setup.rate > 0 ? fmt::format("{:g}", setup.rate) : "unlimited", setup.write_ratio * 100,
      fmt::format("{:g}", setup.gaps_over_ms), setup.cpus, setup.loadavg.empty() ? "?" : setup.loadavg);
  out +=
      "| daemon | committed | `baton upgrade` wall | × | trigger → commit | × | write window | × | "
      "baseline window |\n"
      "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : summaries) {
    out += fmt::format("| {} | {}/{}{} | {} | {} | {} | {} | {} | {} | {} |\n", s.label, s.committed, s.upgrades,
                       s.failed_reps > 0 ? fmt::format(" ({} bad reps)", s.failed_reps) : "", Three(s.wall_ms),
                       Ratio(s.wall_ratio), Three(s.total_ms), Ratio(s.total_ratio), Three(s.window_ms),
                       Ratio(s.window_ratio), Three(s.baseline_ms));
  }
  out += "\nPhases as the supervisor reports them (ms, p50 / p95 / max):\n\n| daemon |";
  for (auto p : kPhases) out += fmt::format(" {} |", p);
  out += "\n|---|";
  for (std::size_t p = 0; p < kPhases.size(); ++p) out += "---|";
  out += "\n";
  for (const auto& s : summaries) {
    out += fmt::format("| {} |", s.label);
    for (const auto& ph : s.phases_ms) out += fmt::format(" {} |", Three(ph));
    out += "\n";
  }
  return out;
}

}  // namespace baton::bench
