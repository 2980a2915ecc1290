// The supervisor's own events, as `baton-bench supervisor` triggers them
// against a running cluster (tools/harness Cluster): a self-upgrade, and a
// SIGKILL of the supervisor followed at once by a restart with the same
// arguments, which re-attaches to the serving generation or, with the
// generation's re-attach socket removed, adopts it (drains it and
// cold-starts one of its own; docs/design.md §15, docs/operations.md "If
// the supervisor itself dies").
//
// Each event is returned as an UpgradeSample so that handoff_stats' analysis
// (the client-seen write window, its baseline) applies unchanged.
// Blocking; runs on the calling thread.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "tools/bench/handoff_run.h"
#include "tools/bench/handoff_stats.h"
#include "tools/bench/languages_run.h"
#include "tools/bench/supervisor_report.h"
#include "tools/harness/cluster.h"

namespace baton::bench {

// One event of kind `t`, numbered `index`:
// * kHandoff, kSelfUpgrade: `baton upgrade [--self] --json`; the sample is
//   that command's (UpgradeCommandSample: trigger -> return, its outcome,
//   total_ms; a self-upgrade has no phases).
// * kKillReattach, kKillAdopt: trigger_ms just before the SIGKILL,
//   return_ms once a generation serves under the restarted supervisor (the
//   harness polls `baton status` and /healthz every 50 ms). The sample is
//   "committed" (exit 0) only when the takeover was the one asked for
//   (`baton status` takeover "re-attached to pid N", or "adopted pid N");
//   `reason` is that takeover or what went wrong; old_pid and new_pid are
//   the generations serving before and after. total_ms and phases: -1.
UpgradeSample SupervisorEvent(harness::Cluster& c, Trigger t, int index);

struct SupervisorBenchResult {
  std::vector<std::vector<MeasuredRun>> runs;  // runs[i]: every run of kSupervisorTriggers[i]
  std::vector<TriggerSummary> summaries;       // one per kind, ratios set
  LanguagesSetup setup;
  bool interrupted = false;
};

// `runs` runs of every kind in kSupervisorTriggers, interleaved, each with
// `base`'s load and `base.upgrades` events. `progress` and `stop`: as for
// RunInterleaved.
SupervisorBenchResult RunSupervisorBench(const RunConfig& base, int runs,
                                         const std::function<void(const Slot&, const MeasuredRun&)>& progress,
                                         const std::atomic<bool>& stop);

}  // namespace baton::bench
