// The lease benchmark: the leaderless gap of a baton handoff (the lease is
// transferred inside Seal) against the common practice — the old process
// goes away without handing over and the new one waits for the lease to
// expire — with the same TTL, on the same private PostgreSQL 15. Between
// the two: a leader stopped gracefully (SIGTERM) that hands the lease to a
// standby in another process.
//
// Gaps are measured from the moment the old leader stops acting (its
// lease.leader_end, or the SIGKILL in TTL mode) to the new leader's
// lease.leader_start, all on the host's monotonic clock.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

namespace baton::bench {

struct LeaseBenchConfig {
  std::chrono::milliseconds ttl{2000};
  int handoffs = 20;    // baton handoffs
  int handovers = 20;   // graceful stops of a leader with a standby in another process
  int expiries = 5;     // TTL-expiry take-overs (each costs about one TTL)
  bool keep_dir = false;
};

struct LeaseBenchResult {
  std::vector<double> baton_gaps_ms;
  std::vector<double> handover_gaps_ms;
  std::vector<double> ttl_gaps_ms;
  bool overlap = false;  // two leader intervals overlapped (an invariant broke)
  std::string error;     // set when a run could not be set up
};

LeaseBenchResult RunLeaseBench(const LeaseBenchConfig& cfg, const std::atomic<bool>& stop);

// A Markdown table and the ratio (TTL-expiry p50 / baton p50).
std::string LeaseMarkdown(const LeaseBenchConfig& cfg, const LeaseBenchResult& r);

}  // namespace baton::bench
