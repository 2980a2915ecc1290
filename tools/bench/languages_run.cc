#include "tools/bench/languages_run.h"

namespace baton::bench {

InterleavedRuns RunInterleaved(const RunConfig& base, std::size_t items, int reps,
                               const std::function<void(RunConfig&, std::size_t item)>& configure,
                               const std::function<void(const Slot&, const MeasuredRun&)>& progress,
                               const std::atomic<bool>& stop) {
  InterleavedRuns out;
  out.runs.resize(items);
  for (const Slot& slot : Schedule(items, reps)) {
    if (stop.load()) {
      out.interrupted = true;
      break;
    }
    RunConfig cfg = base;
    configure(cfg, slot.daemon);
    MeasuredRun m;
    m.run = RunHandoff(cfg, {}, stop);
    m.analysis = Analyze(m.run.upgrades, m.run.gaps, cfg.gaps_over_ms, m.run.load, m.run.load_end_ms);
    if (m.run.interrupted) out.interrupted = true;
    if (out.cpus == 0) {
      out.cpus = m.run.cpus;
      out.loadavg = m.run.loadavg;
    }
    if (progress) progress(slot, m);
    out.runs[slot.daemon].push_back(std::move(m));
  }
  return out;
}

LanguagesResult RunLanguages(const RunConfig& base, const std::vector<DaemonSpec>& specs, int reps,
                             const std::function<void(const Slot&, const MeasuredRun&)>& progress,
                             const std::atomic<bool>& stop) {
  LanguagesResult out;
  out.specs = specs;
  InterleavedRuns runs = RunInterleaved(
      base, specs.size(), reps, [&](RunConfig& cfg, std::size_t i) { cfg.daemon_command = specs[i].command; },
      progress, stop);
  out.runs = std::move(runs.runs);
  out.interrupted = runs.interrupted;
  out.setup.cpus = runs.cpus;
  out.setup.loadavg = runs.loadavg;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    std::vector<LanguageRep> lreps;
    for (const MeasuredRun& m : out.runs[i]) lreps.push_back({m.run.upgrades, m.analysis, m.run.setup_error});
    out.summaries.push_back(SummarizeLanguage(specs[i], lreps));
  }
  SetRatios(out.summaries);
  out.setup.reps = reps;
  out.setup.upgrades_per_rep = base.upgrades;
  out.setup.connections = base.connections;
  out.setup.close_mode = base.close_mode;
  out.setup.rate = base.rate_limit;
  out.setup.write_ratio = base.write_ratio;
  out.setup.gaps_over_ms = base.gaps_over_ms;
  return out;
}

}  // namespace baton::bench
