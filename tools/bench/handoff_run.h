// One handoff measurement against real processes: a supervisor running kvd
// or another daemon speaking kvd's HTTP interface (tools/harness Cluster),
// baton-load with --gaps-over for the whole run, N `baton upgrade` calls back
// to back, then the load's verification.
//
// Blocking; runs on the calling thread. Every process it starts is ended
// before RunHandoff returns, whether the run succeeded, failed or threw
// (RAII guards; the Cluster destructor stops the supervisor's process group).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/bench/handoff_stats.h"
#include "tools/harness/cluster.h"

namespace baton::bench {

// What each of a run's `upgrades` events is: a daemon handoff (`baton
// upgrade`), or one of the supervisor's own events (supervisor_events.h).
enum class Trigger {
  kHandoff,       // `baton upgrade`: the daemon is handed off to a new generation
  kSelfUpgrade,   // `baton upgrade --self`: the supervisor re-executes itself in place
  kKillReattach,  // SIGKILL the supervisor, start it again: it re-attaches to the generation
  kKillAdopt,     // the same with the re-attach socket removed: it adopts (drain + cold start)
};

// "handoff", "self-upgrade", "kill+reattach", "kill+adopt".
std::string_view TriggerName(Trigger t);

struct RunConfig {
  Trigger trigger = Trigger::kHandoff;
  int upgrades = 100;  // events, whatever the trigger
  int connections = 32;
  bool close_mode = false;
  double write_ratio = 0.5;
  double rate_limit = 0;  // baton-load --rate-limit: total requests/s, 0 = as fast as it can
  double gaps_over_ms = 0.5;
  uint64_t prefill_records = 0;  // kvd WAL records written before kvd starts
  uint64_t prefill_keys = 0;     // >0: the pre-fill cycles over this many keys (history longer than the state)
  int64_t checkpoint_bytes = -1;  // kvd --checkpoint-bytes (0: no checkpoints); -1: kvd's default
  std::size_t value_size = 64;
  std::chrono::milliseconds settle{1000};  // load running before the first upgrade
  std::chrono::milliseconds pause{100};    // between upgrades
  bool alternate_binaries = false;         // demo: upgrade to a copy of kvd, then back, ...
  int max_failed_upgrades = 5;             // stop early after this many non-committed upgrades
  bool keep_dir = false;                   // leave the temp dir (logs, data): sets BATON_KEEP_DIRS
  // The daemon, as a shell command the supervisor starts as
  // `/bin/sh -c 'exec COMMAND'` (exec keeps the pid the supervisor spawned);
  // every upgrade starts the same command. "" = this build's kvd.
  std::string daemon_command;
};

struct RunResult {
  RunConfig config;
  std::string setup_error;  // non-empty: the run could not be measured
  std::string dir;          // the cluster's temp dir (the Cluster removes it unless keep_dir)
  uint64_t prefill_bytes = 0;
  double prefill_s = 0;
  double start_s = 0;  // supervisor start to kvd healthy (includes the cold replay)
  double checkpoint_s = 0;  // then until kvd's first snapshot covered the pre-fill (with checkpoints)
  std::vector<UpgradeSample> upgrades;
  double load_end_ms = 0;  // when the load was told to stop (CLOCK_MONOTONIC ms)
  LoadSummary load;
  std::vector<WriteGap> gaps;
  std::string supervisor_log_tail;  // on failure
  bool interrupted = false;
  std::string loadavg;  // /proc/loadavg's 1/5/15-minute averages when the run started
  unsigned cpus = 0;
};

// `progress` is called after each upgrade (may be empty). `stop` ends the
// upgrade loop early (SIGINT); the load is still verified and everything
// cleaned up.
RunResult RunHandoff(const RunConfig& cfg, const std::function<void(const UpgradeSample&, int total)>& progress,
                     const std::atomic<bool>& stop);

// One `baton upgrade [--self] --json` call, triggered at `trigger_ms` and
// returned at `return_ms`, as a sample.
UpgradeSample UpgradeCommandSample(int index, const std::string& binary, double trigger_ms, double return_ms,
                                   const harness::CommandResult& r);

// CLOCK_MONOTONIC now, in ms.
double MonoNowMs();

}  // namespace baton::bench
