#include "tools/bench/languages_run.h"

namespace baton::bench {

LanguagesResult RunLanguages(const RunConfig& base, const std::vector<DaemonSpec>& specs, int reps,
                             const std::function<void(const Slot&, const MeasuredRun&)>& progress,
                             const std::atomic<bool>& stop) {
  LanguagesResult out;
  out.specs = specs;
  out.runs.resize(specs.size());
  for (const Slot& slot : Schedule(specs.size(), reps)) {
    if (stop.load()) {
      out.interrupted = true;
      break;
    }
    RunConfig cfg = base;
    cfg.daemon_command = specs[slot.daemon].command;
    MeasuredRun m;
    m.run = RunHandoff(cfg, {}, stop);
    m.analysis = Analyze(m.run.upgrades, m.run.gaps, cfg.gaps_over_ms, m.run.load, m.run.load_end_ms);
    if (m.run.interrupted) out.interrupted = true;
    if (out.setup.cpus == 0) {
      out.setup.cpus = m.run.cpus;
      out.setup.loadavg = m.run.loadavg;
    }
    if (progress) progress(slot, m);
    out.runs[slot.daemon].push_back(std::move(m));
  }
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
