// Renderings of handoff benchmark results: the human summary, Markdown
// tables (one run, and the sweep) and the raw-numbers JSON. Pure.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "tools/bench/handoff_run.h"
#include "tools/bench/handoff_stats.h"

namespace baton::bench {

struct MeasuredRun {
  RunResult run;
  Analysis analysis;
};

// The targets the numbers are judged against (docs/benchmarks.md).
inline constexpr double kTargetCommitP50Ms = 15;
inline constexpr double kTargetWindowP50Ms = 5;
inline constexpr double kTargetWindowP99Ms = 15;

// A time in ms as every table shows it: "142", "8.1", "0.53"; "-" when unknown.
std::string FormatMs(double ms);
// "32 conns keep-alive, WAL 100000 records (9.6 MB)".
std::string Describe(const RunResult& r);
// A few lines: invariants, then the latency figures; ends with a newline.
std::string HumanSummary(const MeasuredRun& m);
// One progress line: "upgrade 3/10 committed in 8.1 ms (baton upgrade 11.2 ms)".
std::string ProgressLine(const UpgradeSample& u, int total);
// The metric x {p50, p99, max} table for one run, with a header line.
std::string MarkdownRun(const MeasuredRun& m);
// One row per run: how the figures move with connections and WAL size.
std::string MarkdownSweep(const std::vector<MeasuredRun>& runs);
// One row per run of --history: how `baton upgrade` moves with the length of
// kvd's history, with and without checkpoints, as a ratio to the shortest
// history measured with the same setting.
std::string MarkdownHistory(const std::vector<MeasuredRun>& runs);
// Everything measured, per upgrade, plus the logged gaps.
boost::json::object ToJson(const MeasuredRun& m);

}  // namespace baton::bench
