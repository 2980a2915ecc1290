#include "tools/bench/handoff_run.h"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cctype>
#include <filesystem>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "tools/bench/prefill.h"
#include "tools/bench/supervisor_events.h"
#include "tools/harness/http.h"
#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::bench {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using harness::BinPath;

double Num(const json::value& v, std::string_view key, double fallback = 0) {
  if (!v.is_object()) return fallback;
  const auto* f = v.as_object().if_contains(key);
  return f != nullptr && f->is_number() ? f->to_number<double>() : fallback;
}

uint64_t Count(const json::value& v, std::string_view key) {
  const double d = Num(v, key, 0);
  return d > 0 ? static_cast<uint64_t>(d) : 0;
}

std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "";
  const auto* f = v.as_object().if_contains(key);
  return f != nullptr && f->is_string() ? std::string(f->as_string()) : "";
}

std::string Tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : s.substr(s.size() - n); }

// Sleeps `d` in small steps; false if `stop` was raised meanwhile.
bool SleepUnlessStopped(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (!stop.load()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= end) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(end - now, std::chrono::milliseconds(20)));
  }
  return false;
}

// baton-load as a child of ours (the harness' StartLoad has no --gaps-over).
// Killed on destruction unless Finish() reaped it. Output goes to files in
// the cluster dir: stdout is one JSON object of several MB at most.
class LoadProcess {
 public:
  LoadProcess(const harness::Cluster& c, const RunConfig& cfg)
      : out_(c.dir() + "/load.json"), err_(c.dir() + "/load.err") {
    // Long enough for any run; bounded so a load orphaned by a SIGKILLed
    // bench does not run forever.
    const auto bound = std::chrono::duration_cast<std::chrono::seconds>(
        cfg.settle + cfg.upgrades * (cfg.pause + std::chrono::seconds(10)) + std::chrono::seconds(120));
    std::vector<std::string> argv = {BinPath("baton-load"),
                                     "--target",
                                     c.url(),
                                     "--connections",
                                     std::to_string(cfg.connections),
                                     "--duration",
                                     fmt::format("{}s", bound.count()),
                                     "--json",
                                     "--write-ratio",
                                     fmt::format("{}", cfg.write_ratio),
                                     "--value-size",
                                     std::to_string(cfg.value_size),
                                     "--gaps-over",
                                     fmt::format("{}", cfg.gaps_over_ms),
                                     "--rate-limit",
                                     fmt::format("{}", cfg.rate_limit)};
    if (cfg.close_mode) argv.push_back("--close");
    pid_ = harness::SpawnBackground(argv, {}, out_, err_);
  }
  LoadProcess(const LoadProcess&) = delete;
  LoadProcess& operator=(const LoadProcess&) = delete;
  ~LoadProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    harness::WaitFor(pid_, std::chrono::seconds(5));
  }

  // Still running? false (and reaped) if it already exited.
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGINT ends the load phase; baton-load then verifies every acked write.
  harness::CommandResult Finish() {
    harness::CommandResult c;
    if (pid_ > 0) {
      ::kill(pid_, SIGINT);
      int status = harness::WaitFor(pid_, std::chrono::seconds(180));
      if (status == -1) {
        ::kill(pid_, SIGKILL);
        status = harness::WaitFor(pid_, std::chrono::seconds(5));
      }
      pid_ = -1;
      exit_code_ = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    c.exit_code = exit_code_;
    c.out = harness::ReadAll(out_);
    c.err = harness::ReadAll(err_);
    boost::system::error_code ec;
    c.json = json::parse(c.out, ec);
    if (ec) c.json = nullptr;
    return c;
  }

  std::string Stderr() const { return harness::ReadAll(err_); }

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace

UpgradeSample UpgradeCommandSample(int index, const std::string& binary, double t0, double t1,
                                   const harness::CommandResult& r) {
  UpgradeSample u;
  u.index = index;
  u.binary = binary;
  u.trigger_ms = t0;
  u.return_ms = t1;
  u.exit_code = r.exit_code;
  // `baton upgrade --self --json` names the outcome in capitals
  // ("COMMITTED") and its duration in total_us.
  u.outcome = Str(r.json, "outcome");
  for (char& ch : u.outcome) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  u.reason = Str(r.json, "reason");
  u.old_pid = static_cast<int64_t>(Num(r.json, "old_pid"));
  u.new_pid = static_cast<int64_t>(Num(r.json, "new_pid"));
  u.total_ms = Num(r.json, "total_ms", -1);
  if (u.total_ms < 0 && Num(r.json, "total_us", -1) >= 0) u.total_ms = Num(r.json, "total_us") / 1000;
  const json::value* phases = r.json.is_object() ? r.json.as_object().if_contains("phases_ms") : nullptr;
  for (std::size_t p = 0; p < kPhases.size(); ++p) {
    u.phases_ms[p] = phases != nullptr ? Num(*phases, kPhases[p], -1) : -1;
  }
  u.raw = r.out;
  if (!u.committed()) u.raw += r.err;
  return u;
}

namespace {

void ParseLoad(const harness::CommandResult& c, RunResult& r) {
  LoadSummary& l = r.load;
  l.exit_code = c.exit_code;
  const json::value& v = c.json;
  if (!v.is_object()) return;
  l.parsed = true;
  l.requests = Count(v, "requests");
  l.writes_acked = Count(v, "writes_acked");
  l.reads = Count(v, "reads");
  l.writes_unknown = Count(v, "writes_unknown");
  l.reconnects = Count(v, "reconnects");
  l.lost_writes = Count(v, "lost_writes");
  l.verify_errors = Count(v, "verify_errors");
  l.verified = Count(v, "verified");
  l.duration_s = Num(v, "duration_s");
  l.gaps_over_ms = Num(v, "gaps_over_ms");
  l.gaps_dropped = Count(v, "gaps_dropped");
  if (const auto* e = v.as_object().if_contains("errors")) {
    l.refused = Count(*e, "refused");
    l.reset = Count(*e, "reset");
    l.timeout = Count(*e, "timeout");
    l.non2xx = Count(*e, "non2xx");
    l.other = Count(*e, "other");
  }
  if (const auto* lat = v.as_object().if_contains("latency_us")) {
    l.latency_p50_us = Count(*lat, "p50");
    l.latency_p99_us = Count(*lat, "p99");
    l.latency_max_us = Count(*lat, "max");
  }
  if (const auto* gaps = v.as_object().if_contains("gaps"); gaps != nullptr && gaps->is_array()) {
    r.gaps.reserve(gaps->as_array().size());
    for (const auto& g : gaps->as_array()) r.gaps.push_back({Num(g, "start_mono_ms"), Num(g, "gap_ms")});
  }
}

void Measure(harness::Cluster& c, const RunConfig& cfg, const std::function<void(const UpgradeSample&, int)>& progress,
             const std::atomic<bool>& stop, RunResult& r) {
  if (cfg.prefill_records > 0) {
    const auto t0 = std::chrono::steady_clock::now();
    auto p = PrefillWal(c.dir() + "/data", cfg.prefill_records, cfg.value_size, cfg.prefill_keys);
    if (!p) {
      r.setup_error = "prefill: " + p.error().message;
      return;
    }
    r.prefill_bytes = p->bytes;
    r.prefill_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::string alt;
  if (cfg.alternate_binaries) {
    // A second path to the same build: `baton upgrade --binary` execs it.
    alt = c.dir() + "/kvd-b";
    fs::copy_file(BinPath("kvd"), alt, fs::copy_options::overwrite_existing);
    fs::permissions(alt, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec,
                    fs::perm_options::replace);
  }
  const auto started = std::chrono::steady_clock::now();
  if (!c.Start()) {
    r.setup_error = fmt::format("the supervisor did not get {} healthy within 20 s",
                                cfg.daemon_command.empty() ? "kvd" : "'" + cfg.daemon_command + "'");
    r.supervisor_log_tail = Tail(c.SupervisorLog(), 4000);
    return;
  }
  r.start_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // kvd's default --checkpoint-bytes.
  const uint64_t threshold = cfg.checkpoint_bytes > 0 ? static_cast<uint64_t>(cfg.checkpoint_bytes) : 1u << 20;
  if (cfg.prefill_records > 0 && cfg.checkpoint_bytes != 0 && cfg.daemon_command.empty() &&
      r.prefill_bytes >= threshold) {
    // A kvd that has run this long would have checkpointed along the way:
    // measure upgrades once its first snapshot covers the pre-filled history
    // (a shorter one is below kvd's threshold and has none).
    const auto t0 = std::chrono::steady_clock::now();
    const auto until = t0 + std::chrono::minutes(15);
    for (;;) {
      const std::string body = harness::HttpBody(harness::HttpGet(c.port(), "/stats"));
      boost::system::error_code ec;
      const auto stats = boost::json::parse(body, ec);
      if (!ec && stats.is_object() && stats.as_object().contains("snapshot_revision") &&
          stats.at("snapshot_revision").to_number<uint64_t>() >= cfg.prefill_records) {
        break;
      }
      if (std::chrono::steady_clock::now() > until || stop.load()) {
        r.setup_error = "kvd wrote no snapshot covering the pre-fill within 15 min";
        r.supervisor_log_tail = Tail(c.SupervisorLog(), 4000);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    r.checkpoint_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

  LoadProcess load(c, cfg);
  if (!SleepUnlessStopped(cfg.settle, stop)) r.interrupted = true;
  if (!load.Alive()) {
    r.setup_error = "baton-load exited before the first upgrade: " + Tail(load.Stderr(), 2000);
    return;
  }
  int failed = 0;
  for (int i = 1; i <= cfg.upgrades && !r.interrupted; ++i) {
    if (stop.load()) {
      r.interrupted = true;
      break;
    }
    std::string binary;
    if (cfg.alternate_binaries) binary = i % 2 == 1 ? alt : BinPath("kvd");
    if (cfg.trigger == Trigger::kHandoff) {
      const double t0 = MonoNowMs();
      const harness::CommandResult res = c.Upgrade(binary);
      const double t1 = MonoNowMs();
      r.upgrades.push_back(UpgradeCommandSample(i, binary, t0, t1, res));
    } else {
      r.upgrades.push_back(SupervisorEvent(c, cfg.trigger, i));
    }
    if (progress) progress(r.upgrades.back(), cfg.upgrades);
    if (!r.upgrades.back().committed() && ++failed >= cfg.max_failed_upgrades) break;
    if (i < cfg.upgrades && !SleepUnlessStopped(cfg.pause, stop)) r.interrupted = true;
  }
  // One more pause so the last upgrade has a baseline window after it.
  SleepUnlessStopped(cfg.pause, stop);
  r.load_end_ms = MonoNowMs();
  ParseLoad(load.Finish(), r);
  if (failed > 0 || !r.load.parsed) r.supervisor_log_tail = Tail(c.SupervisorLog(), 4000);
}

}  // namespace

std::string_view TriggerName(Trigger t) {
  switch (t) {
    case Trigger::kHandoff:
      return "handoff";
    case Trigger::kSelfUpgrade:
      return "self-upgrade";
    case Trigger::kKillReattach:
      return "kill+reattach";
    case Trigger::kKillAdopt:
      return "kill+adopt";
  }
  return "?";
}

double MonoNowMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

RunResult RunHandoff(const RunConfig& cfg, const std::function<void(const UpgradeSample&, int)>& progress,
                     const std::atomic<bool>& stop) {
  RunResult r;
  r.config = cfg;
  // Other work on the machine shows up in every number: record how busy it was.
  std::istringstream avg(harness::ReadAll("/proc/loadavg"));
  std::string one, five, fifteen;
  avg >> one >> five >> fifteen;
  r.loadavg = one + " " + five + " " + fifteen;
  r.cpus = std::thread::hardware_concurrency();
  // The Cluster removes its temp dir when destroyed unless BATON_KEEP_DIRS is set.
  if (cfg.keep_dir) ::setenv("BATON_KEEP_DIRS", "1", 1);
  harness::Cluster::Options opts;
  if (!cfg.daemon_command.empty()) {
    opts.binary = "/bin/sh";
    opts.kvd_args = {"-c", "exec " + cfg.daemon_command};
  } else if (cfg.checkpoint_bytes >= 0) {
    opts.kvd_args = {"--checkpoint-bytes", std::to_string(cfg.checkpoint_bytes)};
  }
  // A cold start replays a pre-filled WAL: about 2 s per million records.
  opts.start_timeout = std::chrono::seconds(20 + 10 * (cfg.prefill_records / 1000000));
  harness::Cluster cluster(std::move(opts));
  r.dir = cluster.dir();
  Measure(cluster, cfg, progress, stop, r);
  return r;
}

}  // namespace baton::bench
