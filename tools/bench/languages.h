// The per-language mode of `baton-bench handoff` (--daemon LABEL=COMMAND,
// repeatable): the same upgrade-under-load measurement for several daemons
// in one run, repetitions interleaved so that machine noise hits every
// daemon alike, then one table with each daemon's figures and its ratio to
// the first daemon's. Pure: parsing, the schedule, aggregation and the
// table; no clock, no I/O (languages_run.h runs the measurements).
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "baton/errors.h"
#include "tools/bench/handoff_stats.h"

namespace baton::bench {

// One --daemon argument.
struct DaemonSpec {
  std::string label;    // [A-Za-z0-9._+-], at most 32 characters: a table row
  std::string command;  // run by /bin/sh as `exec COMMAND`; may start with `env VAR=value`
};

// "LABEL=COMMAND", split at the first '='. InvalidArgument, naming the
// argument and what to write instead, for an empty or malformed label or an
// empty command.
Result<DaemonSpec> ParseDaemonSpec(std::string_view arg);
// Every argument parsed, labels unique; at least one.
Result<std::vector<DaemonSpec>> ParseDaemonSpecs(const std::vector<std::string>& args);

// The order of the measurements: `reps` rounds, each measuring every daemon
// once; round r starts at daemon r mod n, so no daemon always runs first
// (after an idle machine) or last.
struct Slot {
  int rep = 0;             // 0-based
  std::size_t daemon = 0;  // index into the specs
};
std::vector<Slot> Schedule(std::size_t daemons, int reps);

// p50/p95/max by nearest rank; all zero (n = 0) for no values.
struct Spread {
  std::size_t n = 0;
  double p50 = 0;
  double p95 = 0;
  double max = 0;
};
Spread SpreadOf(std::vector<double> values);

// One repetition of one daemon: a RunHandoff of it and its Analyze.
struct LanguageRep {
  std::vector<UpgradeSample> upgrades;
  Analysis analysis;  // per_upgrade[i] belongs to upgrades[i]
  std::string error;  // the run could not be set up (nothing measured)
};

// Every repetition of one daemon, reduced. Timings and windows are over
// committed upgrades only; `upgrades - committed` did not commit.
struct LanguageSummary {
  std::string label;
  std::string command;
  int reps = 0;
  int failed_reps = 0;  // could not be set up, or an invariant broke (error, lost write)
  int upgrades = 0;
  int committed = 0;
  Spread wall_ms;   // the `baton upgrade` command's wall time, trigger -> return
  Spread total_ms;  // the supervisor's trigger -> commit (total_ms)
  std::array<Spread, kPhases.size()> phases_ms;
  Spread window_ms;    // client-seen write window: longest write-ack gap overlapping the upgrade
  Spread baseline_ms;  // the same measure over equally long windows between upgrades
  int windows_below_threshold = 0;
  // This daemon's p50 over the first daemon's p50; 0 when that is 0.
  double wall_ratio = 0;
  double total_ratio = 0;
  double window_ratio = 0;
};

LanguageSummary SummarizeLanguage(const DaemonSpec& spec, const std::vector<LanguageRep>& reps);
// Fills the ratios of every summary from the first one.
void SetRatios(std::vector<LanguageSummary>& summaries);

// What the run was, for the table's header lines.
struct LanguagesSetup {
  int reps = 0;
  int upgrades_per_rep = 0;
  int connections = 0;
  bool close_mode = false;
  double rate = 0;
  double write_ratio = 0;
  double gaps_over_ms = 0;
  unsigned cpus = 0;
  std::string loadavg;
};

// Markdown: a header line, the main table (wall time, trigger -> commit and
// write window, p50/p95/max, each with its ratio to the first daemon), then
// the phases table (p50/p95/max per phase). Ends with a newline.
std::string LanguagesMarkdown(const LanguagesSetup& setup, const std::vector<LanguageSummary>& summaries);

}  // namespace baton::bench
