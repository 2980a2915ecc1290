// The numbers of a handoff benchmark run and their analysis: percentiles,
// the client-seen write-unavailability window of each upgrade (the longest
// gap between write acknowledgements that overlaps it) and a same-length
// baseline window between upgrades. Pure: no clock, no I/O.
//
// Times are CLOCK_MONOTONIC milliseconds (std::chrono::steady_clock since its
// epoch), the clock baton-load stamps its gaps with, so the bench process and
// the load process agree on them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace baton::bench {

// The supervisor's phases, in handoff order (`baton upgrade --json` phases_ms).
inline constexpr std::array<std::string_view, 7> kPhases = {"spawn", "hello", "warm",  "drain",
                                                            "seal",  "begin", "commit"};

// A gap between two consecutive write acks, as baton-load --gaps-over reports it.
struct WriteGap {
  double start_ms = 0;
  double length_ms = 0;
  double end_ms() const { return start_ms + length_ms; }
};

// One `baton upgrade` call.
struct UpgradeSample {
  int index = 0;          // 1-based
  std::string binary;     // what --binary said ("" = the supervised one)
  double trigger_ms = 0;  // just before the CLI was spawned
  double return_ms = 0;   // just after it exited
  int exit_code = -1;
  std::string outcome;  // "committed", "rolled_back", ... or "" if no JSON
  std::string reason;
  int64_t old_pid = 0;
  int64_t new_pid = 0;
  double total_ms = -1;                            // the supervisor's trigger->commit; -1 if unknown
  std::array<double, kPhases.size()> phases_ms{};  // -1 when missing
  std::string raw;                                 // the CLI's stdout (+stderr when it failed)

  double client_ms() const { return return_ms - trigger_ms; }
  bool committed() const { return exit_code == 0 && outcome == "committed"; }
};

// p50/p99/max by nearest rank; all zero (n = 0) for no values.
struct Dist {
  std::size_t n = 0;
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};
Dist Summarize(std::vector<double> values);
// Nearest-rank quantile of sorted values, q in [0, 1]; 0 when empty.
double NearestRank(const std::vector<double>& sorted, double q);

// The longest gap that overlaps the open interval (from, to); gaps sorted by
// start, not overlapping one another (consecutive ack-to-ack intervals).
std::optional<WriteGap> LongestOverlapping(const std::vector<WriteGap>& gaps, double from, double to);

// What the load tool reported, reduced to what the bench uses.
struct LoadSummary {
  bool parsed = false;
  int exit_code = -1;
  uint64_t requests = 0;
  uint64_t writes_acked = 0;
  uint64_t reads = 0;
  uint64_t writes_unknown = 0;
  uint64_t reconnects = 0;
  uint64_t refused = 0, reset = 0, timeout = 0, non2xx = 0, other = 0;
  uint64_t lost_writes = 0;
  uint64_t verify_errors = 0;
  uint64_t verified = 0;
  double duration_s = 0;
  uint64_t latency_p50_us = 0, latency_p99_us = 0, latency_max_us = 0;
  double gaps_over_ms = 0;
  uint64_t gaps_dropped = 0;
  uint64_t errors_total() const { return refused + reset + timeout + non2xx + other; }
};

// Per-upgrade derived numbers.
struct UpgradeWindow {
  // Over the whole call, [trigger, return]: what the benchmark reports.
  double window_ms = 0;          // longest overlapping gap, or the threshold when none
  bool below_threshold = false;  // no gap over the threshold overlapped
  double gap_start_ms = 0;       // of that gap (0 when below threshold)
  double baseline_ms = 0;        // same measure over an equally long window between upgrades
  bool baseline_valid = false;

  // Over the handoff's write-unavailable steps only (drain, seal, begin:
  // docs/design.md §2 steps 4-6), bracketed from the supervisor's phase times as
  // [trigger + spawn + hello + warm, return - commit]. The bracket always
  // contains those steps: the CLI's own start-up and exit only widen it.
  bool bracket_valid = false;  // phases known
  double bracket_from_ms = 0, bracket_to_ms = 0;
  double bracket_window_ms = 0;
  double bracket_baseline_ms = 0;  // equally long window between upgrades
  bool bracket_baseline_valid = false;
};

struct Analysis {
  int upgrades = 0;
  int committed = 0;
  Dist client_ms;  // `baton upgrade` wall time, trigger -> return
  Dist total_ms;   // supervisor total_ms
  std::array<Dist, kPhases.size()> phases;
  Dist total_minus_warm_ms;  // total_ms - warm: the part the incumbent is not serving normally
  Dist window_ms;
  Dist baseline_ms;
  int windows_below_threshold = 0;
  Dist bracket_window_ms;
  Dist bracket_baseline_ms;
  std::vector<UpgradeWindow> per_upgrade;
  bool invariants_ok = false;  // all committed, no error, no lost write, load verified
};

// `threshold_ms`: what --gaps-over was. Baseline windows are centred between
// an upgrade's return and the next trigger (or `load_end_ms` after the last),
// clipped to that pause; an upgrade whose pause is empty has none.
Analysis Analyze(const std::vector<UpgradeSample>& upgrades, const std::vector<WriteGap>& gaps, double threshold_ms,
                 const LoadSummary& load, double load_end_ms);

// The committed upgrades of one or more runs, pooled: what the per-language
// and supervisor tables summarise. `upgrades - committed` did not commit;
// their numbers are left out.
struct Pooled {
  int upgrades = 0;
  int committed = 0;
  int windows_below_threshold = 0;
  std::vector<double> wall_ms;   // client_ms(): the trigger -> return wall time
  std::vector<double> total_ms;  // the supervisor's total_ms, where known
  std::array<std::vector<double>, kPhases.size()> phases_ms;
  std::vector<double> window_ms;    // client-seen write window
  std::vector<double> baseline_ms;  // its baseline, where valid
};
// Adds one run: `a` is Analyze() of `upgrades` (per_upgrade[i] belongs to upgrades[i]).
void Pool(const std::vector<UpgradeSample>& upgrades, const Analysis& a, Pooled& into);

}  // namespace baton::bench
