// The result of a baton-load run as plain values, and its two renderings:
// one human line and one JSON object. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/load/stats.h"
#include "tools/load/watch_parse.h"

namespace baton::load {

struct GapReport {
  double at_ms = 0;  // gap start, since the load phase started
  double gap_ms = 0;
};

// A logged gap (--gaps-over): absolute CLOCK_MONOTONIC start, comparable
// with std::chrono::steady_clock in any process on the host.
struct MonoGapReport {
  double start_mono_ms = 0;
  double gap_ms = 0;
};

// The watch streams (--watches), summed over the streams.
struct WatchReport {
  int streams = 0;
  uint64_t from = 0;  // the revision every stream started at
  WatchCounts counts;
  // The highest revision a PUT was acknowledged with (kvd answers a PUT
  // with its revision); 0 if unknown.
  uint64_t last_acked_rev = 0;
  // Whether the end-of-run check ran (--watch-wait > 0 and last_acked_rev
  // known); then how many streams ended before last_acked_rev, and the
  // lowest revision a stream reached (from - 1 if it got nothing).
  bool checked = false;
  uint64_t behind = 0;
  uint64_t min_last_rev = 0;

  bool Continuous() const { return counts.Continuous(); }
  bool Ok() const { return streams == 0 || (Continuous() && behind == 0); }
};

struct LoadReport {
  std::string target;
  std::string mode;  // "keepalive" or "close"
  int connections = 0;
  double duration_s = 0;  // load phase, until the last in-flight request finished

  uint64_t requests = 0;  // completed requests: successes + errors (retries not counted)
  uint64_t writes_acked = 0;
  uint64_t reads = 0;            // successful GETs (value matched)
  uint64_t writes_unknown = 0;   // PUTs that failed after (maybe) reaching the server
  uint64_t read_mismatches = 0;  // GETs of acked keys with another value (counted in errors.other)
  // Keep-alive mode: connections opened after each worker's first, and
  // connections the server ended without costing a request
  // (HttpConnection::Reconnects, ServerCloses). Both 0 in close mode.
  uint64_t reconnects = 0;
  uint64_t server_closed = 0;
  ErrorCounts errors;

  uint64_t verified = 0;  // acked writes read back intact
  uint64_t lost_writes = 0;
  uint64_t verify_errors = 0;
  double verify_s = 0;

  uint64_t p50_us = 0;
  uint64_t p99_us = 0;
  uint64_t max_us = 0;

  double write_gap_max_ms = 0;
  std::vector<GapReport> write_gaps;  // longest first, at most 5
  std::vector<SecondStats> timeline;  // index = second since start

  // --gaps-over: every write gap longer than gaps_over_ms, oldest first,
  // at most kMaxLoggedGaps (the rest counted in gaps_dropped).
  bool gaps_logged = false;
  double gaps_over_ms = 0;
  std::vector<MonoGapReport> gaps;
  uint64_t gaps_dropped = 0;

  int idle_connections = 0;  // --idle-fraction: connections that idle between bursts
  WatchReport watch;         // streams == 0: no --watches

  // A stream that is not continuous, or did not reach the last acked
  // revision, fails the run like an error.
  bool Clean() const { return errors.Total() == 0 && lost_writes == 0 && verify_errors == 0 && watch.Ok(); }
};

// One line, e.g. "requests 123 (writes 61, reads 62) in 10.0 s = 12 req/s; errors: ...".
std::string FormatHuman(const LoadReport& r);
// Exactly one JSON object, no trailing newline.
std::string FormatJson(const LoadReport& r);

// Process exit codes (documented in `baton-load --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailures = 1;  // errors, lost writes, unverifiable writes or a broken watch stream
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;  // could not connect at start

inline int ExitCodeFor(const LoadReport& r) { return r.Clean() ? kExitOk : kExitFailures; }

}  // namespace baton::load
