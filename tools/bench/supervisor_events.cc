#include "tools/bench/supervisor_events.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

namespace baton::bench {
namespace {

// The generation listens for the next supervisor as soon as its control
// channel closes; restarting has the harness' usual bound.
constexpr auto kSocketWait = std::chrono::seconds(30);
constexpr auto kRestartWait = std::chrono::seconds(60);

std::string StatusText(const harness::CommandResult& st, const char* key) {
  if (!st.json.is_object()) return "";
  const auto* v = st.json.as_object().if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : "";
}

int64_t StatusInt(const harness::CommandResult& st, const char* key) {
  if (!st.json.is_object()) return 0;
  const auto* v = st.json.as_object().if_contains(key);
  return v != nullptr && v->is_number() ? v->to_number<int64_t>() : 0;
}

UpgradeSample KillAndRestart(harness::Cluster& c, bool adopt, int index) {
  UpgradeSample u;
  u.index = index;
  u.total_ms = -1;
  u.phases_ms.fill(-1);
  const pid_t serving = c.IncumbentPid();
  u.old_pid = serving;
  std::string failure;
  u.trigger_ms = MonoNowMs();
  if (serving <= 0) {
    failure = "no generation served before the kill";
  } else {
    c.KillSupervisor();
    if (!c.WaitForReattachSocket(serving, kSocketWait)) {
      failure = fmt::format("generation {} did not listen for a re-attach within {} s", serving, kSocketWait.count());
    } else if (adopt && ::unlink(c.ReattachSocket(serving).c_str()) != 0) {
      // Without its socket the new supervisor cannot re-attach and adopts
      // (the documented fallback).
      failure = fmt::format("cannot remove {}: {}", c.ReattachSocket(serving), std::strerror(errno));
    } else if (!c.RestartSupervisor(kRestartWait)) {
      failure = fmt::format("no generation served under the restarted supervisor within {} s", kRestartWait.count());
    }
  }
  u.return_ms = MonoNowMs();
  const harness::CommandResult st = c.Status();
  u.new_pid = StatusInt(st, "incumbent_pid");
  const std::string takeover = StatusText(st, "takeover");
  const std::string want = adopt ? fmt::format("adopted pid {}", serving) : fmt::format("re-attached to pid {}", serving);
  if (failure.empty() && takeover.rfind(want, 0) != 0) {
    failure = fmt::format("takeover '{}', not '{}'", takeover, want);
  }
  u.exit_code = failure.empty() ? 0 : 1;
  u.outcome = failure.empty() ? "committed" : "failed";
  u.reason = failure.empty() ? takeover : failure;
  u.raw = st.out + st.err;
  return u;
}

}  // namespace

UpgradeSample SupervisorEvent(harness::Cluster& c, Trigger t, int index) {
  if (t == Trigger::kKillReattach || t == Trigger::kKillAdopt) return KillAndRestart(c, t == Trigger::kKillAdopt, index);
  const double t0 = MonoNowMs();
  const harness::CommandResult res =
      c.Upgrade("", t == Trigger::kSelfUpgrade ? std::vector<std::string>{"--self"} : std::vector<std::string>{});
  const double t1 = MonoNowMs();
  return UpgradeCommandSample(index, "", t0, t1, res);
}

SupervisorBenchResult RunSupervisorBench(const RunConfig& base, int runs,
                                         const std::function<void(const Slot&, const MeasuredRun&)>& progress,
                                         const std::atomic<bool>& stop) {
  constexpr std::size_t kKinds = std::size(kSupervisorTriggers);
  InterleavedRuns r = RunInterleaved(
      base, kKinds, runs, [](RunConfig& cfg, std::size_t i) { cfg.trigger = kSupervisorTriggers[i]; }, progress,
      stop);
  SupervisorBenchResult out;
  for (std::size_t i = 0; i < kKinds; ++i) out.summaries.push_back(SummarizeTrigger(kSupervisorTriggers[i], r.runs[i]));
  SetTriggerRatios(out.summaries);
  out.runs = std::move(r.runs);
  out.interrupted = r.interrupted;
  out.setup.reps = runs;
  out.setup.upgrades_per_rep = base.upgrades;
  out.setup.connections = base.connections;
  out.setup.close_mode = base.close_mode;
  out.setup.rate = base.rate_limit;
  out.setup.write_ratio = base.write_ratio;
  out.setup.gaps_over_ms = base.gaps_over_ms;
  out.setup.cpus = r.cpus;
  out.setup.loadavg = r.loadavg;
  return out;
}

}  // namespace baton::bench
