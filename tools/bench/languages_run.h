// Runs the per-language mode of `baton-bench handoff`: for every slot of
// Schedule(), one RunHandoff of that daemon (its own supervisor, load and
// temp dir), analysed at once. Blocking, on the calling thread; every process
// a run starts is ended before its RunHandoff returns.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "tools/bench/languages.h"
#include "tools/bench/report.h"

namespace baton::bench {

// The interleaving both the per-language and the supervisor modes use: for
// every slot of Schedule(n, reps), a RunConfig copied from `base` and
// adjusted by `configure(cfg, item)`, one RunHandoff and its Analyze.
// `progress` (may be empty) is called after each run; `stop` ends the run in
// progress early (it still verifies its load) and starts no other.
struct InterleavedRuns {
  std::vector<std::vector<MeasuredRun>> runs;  // runs[i]: every rep of item i, in the order run
  bool interrupted = false;
  unsigned cpus = 0;    // of the first run
  std::string loadavg;  // when the first run started
};
InterleavedRuns RunInterleaved(const RunConfig& base, std::size_t items, int reps,
                               const std::function<void(RunConfig&, std::size_t item)>& configure,
                               const std::function<void(const Slot&, const MeasuredRun&)>& progress,
                               const std::atomic<bool>& stop);

struct LanguagesResult {
  std::vector<DaemonSpec> specs;
  std::vector<std::vector<MeasuredRun>> runs;  // runs[i]: every rep of specs[i], in the order run
  std::vector<LanguageSummary> summaries;      // one per spec, ratios set
  LanguagesSetup setup;
  bool interrupted = false;
};

// `base` is every run's configuration but the daemon; `progress` (may be
// empty) is called after each run with its slot. `stop` ends the run in
// progress early (it still verifies its load) and starts no other.
LanguagesResult RunLanguages(const RunConfig& base, const std::vector<DaemonSpec>& specs, int reps,
                             const std::function<void(const Slot&, const MeasuredRun&)>& progress,
                             const std::atomic<bool>& stop);

}  // namespace baton::bench
