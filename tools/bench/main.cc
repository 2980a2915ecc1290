// baton-bench: measure handoffs of the example daemon under load. Thin:
// parse (CLI11), run the measurements (handoff_run.h), print (report.h).
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <exception>
#include <fstream>
#include <string>
#include <vector>

#include "tools/bench/handoff_run.h"
#include "tools/bench/handoff_stats.h"
#include "tools/bench/languages.h"
#include "tools/bench/languages_run.h"
#include "tools/bench/lease_run.h"
#include "tools/bench/report.h"
#include "tools/bench/supervisor_events.h"

namespace {

using namespace baton::bench;

constexpr int kExitOk = 0;
constexpr int kExitInvariant = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSetup = 3;
constexpr int kExitInterrupted = 130;

constexpr const char* kDescription =
    "baton-bench: measure zero-downtime handoffs of kvd under baton-load.\n\n"
    "Exit codes: 0 every upgrade committed, no request error, no lost write; 1 an invariant broke;\n"
    "2 usage error; 3 a run could not be set up (supervisor, kvd or baton-load did not start);\n"
    "130 interrupted (SIGINT/SIGTERM: the run stops upgrading, verifies the load and cleans up).\n"
    "Targets (trigger->commit p50 <= 15 ms, write window p50 <= 5 ms / p99 <= 15 ms) are reported,\n"
    "not enforced.";

// Raised by SIGINT/SIGTERM: the current run stops upgrading, verifies its
// load and cleans up; no further run starts.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void OnSignal(int) { g_stop.store(true); }

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

struct Flags {
  int upgrades = 100;
  int connections = 32;
  std::string mode = "keepalive";
  double write_ratio = 0.5;
  double rate = 0;
  double gaps_over_ms = 0.5;
  int pause_ms = 100;
  uint64_t prefill = 0;
  std::string json_file;
  bool markdown = false;
  bool sweep = false;
  bool history = false;
  bool demo = false;
  bool verbose = false;
  bool keep = false;
  std::vector<std::string> daemons;  // --daemon LABEL=COMMAND: the per-language mode
  int reps = 5;
};

// Writes `doc` to `path`; false (said on stderr) if it could not.
bool WriteJson(const std::string& path, const boost::json::value& doc) {
  std::ofstream out(path);
  out << boost::json::serialize(doc) << "\n";
  if (!out) fmt::print(stderr, "baton-bench: cannot write {}\n", path);
  return static_cast<bool>(out);
}

// The exit code of an interleaved mode: runs[i] are every run of item i.
int ExitCodeOf(const std::vector<std::vector<MeasuredRun>>& runs, bool interrupted) {
  bool setup_failed = false, ok = true;
  for (const auto& item_runs : runs) {
    for (const auto& m : item_runs) {
      if (!m.run.setup_error.empty()) setup_failed = true;
      if (!m.analysis.invariants_ok) ok = false;
    }
  }
  if (setup_failed) return kExitSetup;
  if (!ok) return kExitInvariant;
  return interrupted || g_stop.load() ? kExitInterrupted : kExitOk;
}

MeasuredRun Measure(const RunConfig& cfg, bool every_progress) {
  auto progress = [every_progress](const UpgradeSample& u, int total) {
    if (every_progress || !u.committed() || u.index % 10 == 0 || u.index == total) {
      fmt::print(stderr, "{}\n", ProgressLine(u, total));
    }
  };
  MeasuredRun m;
  m.run = RunHandoff(cfg, progress, g_stop);
  m.analysis = Analyze(m.run.upgrades, m.run.gaps, cfg.gaps_over_ms, m.run.load, m.run.load_end_ms);
  if (!m.run.supervisor_log_tail.empty() && (!m.analysis.invariants_ok || !m.run.setup_error.empty())) {
    fmt::print(stderr, "--- supervisor log (tail) ---\n{}\n---\n", m.run.supervisor_log_tail);
  }
  return m;
}

std::vector<RunConfig> Plan(const Flags& f, bool upgrades_given) {
  RunConfig base;
  base.upgrades = f.upgrades;
  base.connections = f.connections;
  base.close_mode = f.mode == "close";
  base.write_ratio = f.write_ratio;
  base.rate_limit = f.rate;
  base.gaps_over_ms = f.gaps_over_ms;
  base.pause = std::chrono::milliseconds(f.pause_ms);
  base.prefill_records = f.prefill;
  base.alternate_binaries = f.demo;
  base.keep_dir = f.keep;
  if (f.history) {
    // A long history of a bounded state (10k keys): with checkpoints the
    // cost of an upgrade should not grow with it.
    if (!upgrades_given) base.upgrades = 5;
    std::vector<RunConfig> plan;
    for (uint64_t records : {1000u, 100000u, 1000000u, 10000000u}) {
      for (int64_t checkpoints : {int64_t{-1}, int64_t{0}}) {
        RunConfig r = base;
        r.prefill_records = records;
        r.prefill_keys = 10000;
        r.checkpoint_bytes = checkpoints;
        plan.push_back(r);
      }
    }
    return plan;
  }
  if (!f.sweep) return {base};
  if (!upgrades_given) base.upgrades = 30;
  std::vector<RunConfig> plan;
  for (int c : {1, 32, 256}) {
    RunConfig r = base;
    r.connections = c;
    r.prefill_records = 0;
    plan.push_back(r);
  }
  for (uint64_t records : {100000u, 1000000u}) {
    RunConfig r = base;
    r.connections = 32;
    r.prefill_records = records;
    plan.push_back(r);
  }
  return plan;
}

int RunBench(const Flags& f, bool upgrades_given) {
  InstallSignalHandlers();
  std::vector<MeasuredRun> runs;
  const auto plan = Plan(f, upgrades_given);
  for (std::size_t i = 0; i < plan.size() && !g_stop.load(); ++i) {
    if (plan.size() > 1) {
      fmt::print(stderr, "run {}/{}: {} upgrades, {}\n", i + 1, plan.size(), plan[i].upgrades,
                 fmt::format("{} connections, WAL {} records{}", plan[i].connections, plan[i].prefill_records,
                             plan[i].checkpoint_bytes == 0 ? ", no checkpoints" : ""));
    }
    runs.push_back(Measure(plan[i], f.demo || f.verbose));
    fmt::print("{}", HumanSummary(runs.back()));
    std::fflush(stdout);
  }
  if (f.markdown) {
    fmt::print("\n");
    if (f.history) {
      fmt::print("{}", MarkdownHistory(runs));
    } else if (runs.size() == 1) {
      fmt::print("{}", MarkdownRun(runs.front()));
    } else {
      fmt::print("{}", MarkdownSweep(runs));
    }
  }
  if (!f.json_file.empty()) {
    boost::json::array all;
    for (const auto& m : runs) all.push_back(ToJson(m));
    boost::json::value doc = runs.size() == 1 && !f.sweep ? boost::json::value(all.front())
                                                          : boost::json::value(boost::json::object{{"runs", all}});
    if (!WriteJson(f.json_file, doc)) return kExitUsage;
  }
  bool setup_failed = false;
  bool ok = !runs.empty();
  bool interrupted = g_stop.load();
  for (const auto& m : runs) {
    if (!m.run.setup_error.empty()) setup_failed = true;
    if (!m.analysis.invariants_ok) ok = false;
    if (m.run.interrupted) interrupted = true;
  }
  if (f.demo) {
    fmt::print("demo: {}\n", setup_failed  ? "could not start the cluster"
                             : !ok         ? "FAILED: an invariant broke (see above)"
                             : interrupted ? "interrupted"
                                           : "every upgrade committed, no request failed, no acknowledged write lost");
  }
  if (setup_failed) return kExitSetup;
  if (!ok) return kExitInvariant;
  return interrupted ? kExitInterrupted : kExitOk;
}

// The per-language mode: every daemon measured `reps` times, interleaved.
int RunLanguagesBench(const Flags& f, const std::vector<DaemonSpec>& specs, bool upgrades_given) {
  InstallSignalHandlers();
  RunConfig base = Plan(f, true).front();
  if (!upgrades_given) base.upgrades = 10;
  fmt::print(stderr, "per language: {} daemons x {} reps x {} upgrades\n", specs.size(), f.reps, base.upgrades);
  auto progress = [&](const Slot& slot, const MeasuredRun& m) {
    const auto& a = m.analysis;
    if (!m.run.setup_error.empty()) {
      fmt::print(stderr, "rep {}/{} {}: could not run: {}\n", slot.rep + 1, f.reps, specs[slot.daemon].label,
                 m.run.setup_error);
    } else {
      fmt::print(stderr, "rep {}/{} {}: {}/{} committed, wall p50 {:.1f} ms, window p50 {:.1f} ms{}\n", slot.rep + 1,
                 f.reps, specs[slot.daemon].label, a.committed, a.upgrades, a.client_ms.p50, a.window_ms.p50,
                 a.invariants_ok ? "" : " — INVARIANT BROKEN (see above)");
    }
    if (!m.run.supervisor_log_tail.empty() && (!a.invariants_ok || !m.run.setup_error.empty())) {
      fmt::print(stderr, "--- supervisor log (tail) ---\n{}\n---\n", m.run.supervisor_log_tail);
    }
  };
  const LanguagesResult r = RunLanguages(base, specs, f.reps, progress, g_stop);
  fmt::print("{}", LanguagesMarkdown(r.setup, r.summaries));
  std::fflush(stdout);
  if (!f.json_file.empty()) {
    boost::json::array all;
    for (std::size_t i = 0; i < r.specs.size(); ++i) {
      boost::json::array reps;
      for (const auto& m : r.runs[i]) reps.push_back(ToJson(m));
      all.push_back(boost::json::object{{"label", r.specs[i].label}, {"command", r.specs[i].command}, {"runs", reps}});
    }
    if (!WriteJson(f.json_file, boost::json::object{{"languages", all}})) return kExitUsage;
  }
  return ExitCodeOf(r.runs, r.interrupted);
}

// The supervisor mode: handoff, self-upgrade, kill + re-attach, kill +
// adoption, `runs` runs of each, interleaved.
int RunSupervisorMode(const Flags& f, int runs) {
  InstallSignalHandlers();
  const RunConfig base = Plan(f, true).front();
  fmt::print(stderr, "supervisor: {} kinds x {} runs x {} events\n", std::size(kSupervisorTriggers), runs,
             base.upgrades);
  auto progress = [&](const Slot& slot, const MeasuredRun& m) {
    const auto& a = m.analysis;
    const std::string_view kind = TriggerName(m.run.config.trigger);
    if (!m.run.setup_error.empty()) {
      fmt::print(stderr, "run {}/{} {}: could not run: {}\n", slot.rep + 1, runs, kind, m.run.setup_error);
    } else {
      fmt::print(stderr, "run {}/{} {}: {}/{} completed, trigger->done p50 {} ms, window p50 {} ms max {} ms, {} errors, "
                 "{} lost{}\n",
                 slot.rep + 1, runs, kind, a.committed, a.upgrades, FormatMs(a.client_ms.p50),
                 FormatMs(a.window_ms.p50), FormatMs(a.window_ms.max), m.run.load.errors_total(),
                 m.run.load.lost_writes, a.invariants_ok ? "" : " — INVARIANT BROKEN (see above)");
    }
    for (const auto& u : m.run.upgrades) {
      if (f.verbose || !u.committed()) fmt::print(stderr, "  {}: {}\n", kind, ProgressLine(u, m.run.config.upgrades));
      if (!u.committed() && !u.reason.empty()) fmt::print(stderr, "    {}\n", u.reason);
    }
    if (!m.run.supervisor_log_tail.empty() && (!a.invariants_ok || !m.run.setup_error.empty())) {
      fmt::print(stderr, "--- supervisor log (tail) ---\n{}\n---\n", m.run.supervisor_log_tail);
    }
  };
  const SupervisorBenchResult r = RunSupervisorBench(base, runs, progress, g_stop);
  fmt::print("{}", SupervisorMarkdown(r.setup, r.summaries));
  std::fflush(stdout);
  if (!f.json_file.empty()) {
    boost::json::array all;
    for (std::size_t i = 0; i < r.runs.size(); ++i) {
      boost::json::array kind_runs;
      for (const auto& m : r.runs[i]) kind_runs.push_back(ToJson(m));
      all.push_back(boost::json::object{{"event", TriggerName(kSupervisorTriggers[i])}, {"runs", kind_runs}});
    }
    if (!WriteJson(f.json_file, boost::json::object{{"supervisor", all}})) return kExitUsage;
  }
  return ExitCodeOf(r.runs, r.interrupted);
}

// The load and pacing options the handoff and supervisor modes share.
void AddLoadOptions(CLI::App* app, Flags& f, const char* between) {
  app->add_option("--connections", f.connections, "baton-load connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  app->add_option("--mode", f.mode, "keepalive or close (one connection per request)")
      ->capture_default_str()
      ->check(CLI::IsMember({"keepalive", "close"}));
  app->add_option("--write-ratio", f.write_ratio, "Share of PUTs in the load")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--rate", f.rate, "Total requests/s of the load (0 = as fast as it goes)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app->add_option("--gaps-over", f.gaps_over_ms, "Write-ack gaps longer than this (ms) are logged")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--pause-ms", f.pause_ms, fmt::format("Pause between {}", between))
      ->capture_default_str()
      ->check(CLI::Range(0, 60000));
}

}  // namespace

int RunLease(const LeaseBenchConfig& cfg) {
  InstallSignalHandlers();
  auto r = RunLeaseBench(cfg, g_stop);
  if (!r.error.empty()) {
    fmt::print(stderr, "baton-bench lease: {}\n", r.error);
    return kExitSetup;
  }
  fmt::print("{}", LeaseMarkdown(cfg, r));
  if (r.overlap) {
    fmt::print("FAILED: two leader intervals overlapped\n");
    return kExitInvariant;
  }
  return g_stop.load() ? kExitInterrupted : kExitOk;
}

int main(int argc, char** argv) {
  CLI::App app{kDescription, "baton-bench"};
  app.require_subcommand(1);
  Flags f;
  LeaseBenchConfig lease_cfg;
  int64_t lease_ttl_ms = 2000;
  auto* lease = app.add_subcommand(
      "lease", "Leaderless gap: a baton handoff of a lease-holding kvd vs waiting for TTL expiry (same TTL)");
  lease->add_option("--ttl-ms", lease_ttl_ms, "Lease TTL for both methods")->capture_default_str()->check(
      CLI::Range(int64_t{300}, int64_t{60000}));
  lease->add_option("--handoffs", lease_cfg.handoffs, "baton handoffs")->capture_default_str()->check(
      CLI::Range(1, 10000));
  lease->add_option("--handovers", lease_cfg.handovers, "graceful stops handing over to a standby process")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  lease->add_option("--expiries", lease_cfg.expiries, "TTL-expiry take-overs (about one TTL each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  auto* handoff = app.add_subcommand(
      "handoff", "Upgrade kvd (or each --daemon) N times under load; report timings and the write window");
  // A later value wins (tools/demo passes --upgrades 10, then the user's arguments).
  handoff->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  auto* upgrades_opt =
      handoff->add_option("--upgrades", f.upgrades, "Upgrades per run (sweep default: 30; per language: 10 per rep)")
          ->capture_default_str()
          ->check(CLI::Range(1, 100000));
  AddLoadOptions(handoff, f, "upgrades");
  handoff->add_option("--prefill", f.prefill, "Pre-fill kvd's WAL with this many 64-byte records")
      ->capture_default_str();
  handoff->add_option("--json", f.json_file, "Write every raw number to FILE")->option_text("FILE");
  handoff->add_flag("--markdown", f.markdown, "Also print Markdown table(s)");
  handoff->add_flag("--sweep", f.sweep,
                    "Runs for 1, 32, 256 connections, then WAL pre-filled with 100k and 1M records");
  handoff->add_flag("--history", f.history,
                    "Runs against kvd's history length: WAL pre-filled with 1k, 100k, 1M and 10M writes over 10k "
                    "keys, each with kvd's checkpoints on and off (default: 5 upgrades per run)")
      ->excludes("--sweep");
  handoff->add_flag("--demo", f.demo, "Alternate two kvd binary paths and print every upgrade");
  handoff->add_flag("-v,--verbose", f.verbose, "A progress line per upgrade");
  handoff->add_flag("--keep", f.keep, "Keep each run's temp dir (logs, data)");
  handoff
      ->add_option("--daemon", f.daemons,
                   "Per-language mode: measure this daemon (repeatable; the first is the reference of the ratios). "
                   "COMMAND is started by /bin/sh as `exec COMMAND`; it must serve kvd's HTTP interface")
      ->option_text("LABEL=COMMAND")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* reps_opt = handoff->add_option("--reps", f.reps, "Per-language mode: runs per daemon, interleaved")
                       ->capture_default_str()
                       ->check(CLI::Range(1, 1000));

  Flags sf;  // the supervisor mode's
  sf.upgrades = 10;
  sf.reps = 5;
  auto* sup = app.add_subcommand(
      "supervisor",
      "Write window of the supervisor's own events vs a daemon handoff: baton upgrade, baton upgrade --self, "
      "SIGKILL + restart (re-attach), SIGKILL + restart with the re-attach socket removed (adoption); each kind in "
      "runs of its own under the same load, interleaved");
  sup->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  sup->add_option("--runs", sf.reps, "Runs per kind (each: its own supervisor, kvd and load), interleaved")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  sup->add_option("--events", sf.upgrades, "Events per run")->capture_default_str()->check(CLI::Range(1, 10000));
  AddLoadOptions(sup, sf, "events");
  sup->add_option("--json", sf.json_file, "Write every raw number to FILE")->option_text("FILE");
  sup->add_flag("-v,--verbose", sf.verbose, "A line per event");
  sup->add_flag("--keep", sf.keep, "Keep each run's temp dir (logs, data)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (lease->parsed()) {
    lease_cfg.ttl = std::chrono::milliseconds(lease_ttl_ms);
    try {
      return RunLease(lease_cfg);
    } catch (const std::exception& e) {
      fmt::print(stderr, "baton-bench: {}\n", e.what());
      return kExitSetup;
    }
  }
  if (sup->parsed()) {
    try {
      return RunSupervisorMode(sf, sf.reps);
    } catch (const std::exception& e) {
      fmt::print(stderr, "baton-bench: {}\n", e.what());
      return kExitSetup;
    }
  }
  if (!f.daemons.empty()) {
    auto specs = ParseDaemonSpecs(f.daemons);
    if (!specs) {
      fmt::print(stderr, "baton-bench: {}\n", specs.error().message);
      return kExitUsage;
    }
    if (f.sweep || f.history || f.demo || f.prefill > 0) {
      fmt::print(stderr,
                 "baton-bench: --daemon does not combine with --sweep, --history, --demo or --prefill (kvd only)\n");
      return kExitUsage;
    }
    try {
      return RunLanguagesBench(f, *specs, upgrades_opt->count() > 0);
    } catch (const std::exception& e) {
      fmt::print(stderr, "baton-bench: {}\n", e.what());
      return kExitSetup;
    }
  }
  if (reps_opt->count() > 0) {
    fmt::print(stderr, "baton-bench: --reps needs --daemon LABEL=COMMAND\n");
    return kExitUsage;
  }
  if (f.demo && f.sweep) {
    fmt::print(stderr, "baton-bench: --demo and --sweep do not combine\n");
    return kExitUsage;
  }
  try {
    return RunBench(f, upgrades_opt->count() > 0);
  } catch (const std::exception& e) {
    // Every process a run started was ended while this unwound.
    fmt::print(stderr, "baton-bench: {}\n", e.what());
    return kExitSetup;
  }
}
