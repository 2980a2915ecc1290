// The supervisor mode of baton-bench (`baton-bench supervisor`): a daemon
// handoff, a self-upgrade of the supervisor, and a SIGKILL + restart of it
// that re-attaches or adopts, each measured in runs of its own under the
// same load, the runs interleaved (languages_run.h RunInterleaved), then one
// table: per kind of event, its trigger -> done time, the client-seen write
// window, the load's errors and lost writes, and the ratios to the handoff.
// Pure: aggregation and rendering; no clock, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/bench/handoff_run.h"
#include "tools/bench/handoff_stats.h"
#include "tools/bench/languages.h"
#include "tools/bench/report.h"

namespace baton::bench {

// The kinds, in table order; the first (the daemon handoff) is the
// reference of the ratios.
inline constexpr Trigger kSupervisorTriggers[] = {Trigger::kHandoff, Trigger::kSelfUpgrade, Trigger::kKillReattach,
                                                  Trigger::kKillAdopt};

// Every run of one kind, pooled. Times are over completed events only.
struct TriggerSummary {
  Trigger trigger = Trigger::kHandoff;
  int runs = 0;
  int failed_runs = 0;  // could not be set up, or an invariant broke (an event failed, an error, a lost write)
  int events = 0;
  int completed = 0;  // UpgradeSample::committed(): the event did what was asked
  Dist done_ms;       // trigger -> done, wall time (UpgradeSample::client_ms)
  Dist window_ms;     // client-seen write window: the longest write-ack gap overlapping the event
  Dist baseline_ms;   // the same measure over equally long windows between events
  int windows_below_threshold = 0;
  // The load of every run, summed.
  uint64_t requests = 0;
  uint64_t writes_acked = 0;
  uint64_t errors = 0;   // every failed request, refused included
  uint64_t refused = 0;  // connections refused
  uint64_t lost_writes = 0;
  uint64_t writes_unknown = 0;  // sent, never answered: neither acked nor lost
  uint64_t reconnects = 0;
  // p50 (and window p99, max) over the first kind's; 0 when that is 0.
  double done_ratio = 0;
  double window_p50_ratio = 0;
  double window_p99_ratio = 0;
  double window_max_ratio = 0;
};

TriggerSummary SummarizeTrigger(Trigger t, const std::vector<MeasuredRun>& runs);
// Fills the ratios of every summary from the first one.
void SetTriggerRatios(std::vector<TriggerSummary>& summaries);

// The target of each supervisor event against the handoff (the first row):
// complete every time, no client error, no lost write, and a write window
// no larger than the handoff's at p50 and p99. "met", "MISSED (why)", or
// "reference" for the first row.
std::string TargetVerdict(const TriggerSummary& s, const TriggerSummary& reference);

// Markdown: header lines (LanguagesSetup: reps = runs per kind,
// upgrades_per_rep = events per run), the table, one row per kind. Ends
// with a newline.
std::string SupervisorMarkdown(const LanguagesSetup& setup, const std::vector<TriggerSummary>& summaries);

}  // namespace baton::bench
