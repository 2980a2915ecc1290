// baton-soak: hundreds of upgrades of kvd under verifying load, with a
// random fault in one upgrade out of K (docs/design.md §4 invariants 2, 3, 6, 7).
//
// Each fault has a documented outcome (docs/reliability.md); the soak checks
// every upgrade's exit code against it, and at the end: zero lost writes,
// zero refused connections, no zombie, the supervisor's FD count flat and
// its RSS flat. Prints one line per upgrade (or --json at the end).
//
// Exit codes: 0 every check held; 1 a check failed; 2 usage; 3 set-up failed.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace {

using baton::harness::BinPath;
using baton::harness::Cluster;
using namespace std::chrono_literals;

// One kind of fault and what `baton upgrade` must answer when it is injected.
struct Fault {
  std::string name;
  std::set<int> exit_codes;
};

// The faults one upgrade can carry. "incumbent:" faults are armed in the
// generation installed by the previous (clean) upgrade, so they fire when it
// is the incumbent of this one.
const std::vector<Fault>& Faults() {
  static const std::vector<Fault> kFaults = {
      {"successor:successor.before_hello", {3}}, {"successor:successor.in_warm", {3}},
      {"successor:successor.after_begin", {3}},  {"successor:successor.after_flock", {3}},
      {"successor:successor.before_ready", {3}}, {"successor:kvd.in_begin_replay", {3}},
      {"incumbent:incumbent.in_drain", {0}},     {"incumbent:incumbent.in_seal", {0}},
      {"incumbent:incumbent.after_flock_release", {0}}, {"incumbent:kvd.in_seal_fsync", {0}},
      {"knob:--fail-begin", {3}},                {"knob:--exit-at-start", {3}},
      {"knob:incompatible-schema", {4}},         {"missing-binary", {4}},
      {"abort-in-warm", {3}},                    {"kill-incumbent-before", {0}},
  };
  return kFaults;
}

struct Sample {
  int upgrade;
  int fds;
  long rss_kib;
};

int Run(int upgrades, int fault_every, uint64_t seed, int connections, int rate, bool json) {
  Cluster::Options opts;
  Cluster c(opts);
  if (!c.Start()) {
    fmt::print(stderr, "soak: the supervisor did not come up:\n{}\n", c.SupervisorLog());
    return 3;
  }
  c.StartLoad(connections, "24h", false, 0.5, {"--rate-limit", std::to_string(rate)});
  std::this_thread::sleep_for(300ms);
  std::mt19937_64 rng(seed);
  const auto& faults = Faults();
  // Plan: which upgrade carries which fault (index into Faults(), -1 none).
  std::vector<int> plan(static_cast<size_t>(upgrades), -1);
  for (int i = 0; i < upgrades; ++i) {
    if (fault_every > 0 && rng() % static_cast<uint64_t>(fault_every) == 0) {
      int f = static_cast<int>(rng() % faults.size());
      // Incumbent faults need a clean upgrade before them to install the armed binary.
      if (faults[static_cast<size_t>(f)].name.rfind("incumbent:", 0) == 0 && (i == 0 || plan[static_cast<size_t>(i - 1)] != -1)) {
        f = 0;
      }
      plan[static_cast<size_t>(i)] = f;
    }
  }
  const std::string kvd = BinPath("kvd");
  std::map<std::string, int> outcomes;
  std::vector<Sample> samples;
  int failures = 0;
  int injected = 0;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < upgrades; ++i) {
    const int f = plan[static_cast<size_t>(i)];
    const int next = i + 1 < upgrades ? plan[static_cast<size_t>(i + 1)] : -1;
    std::string binary = kvd;
    std::set<int> want = {0};
    std::string label = "clean";
    // The next upgrade's incumbent fault is armed in the binary installed now.
    if (next >= 0 && faults[static_cast<size_t>(next)].name.rfind("incumbent:", 0) == 0) {
      const std::string point = faults[static_cast<size_t>(next)].name.substr(10);
      binary = c.Script(fmt::format("inc{}", i), fmt::format("exec {} --crash-at {} \"$@\"", kvd, point));
    }
    std::thread aborter;
    if (f >= 0) {
      ++injected;
      const Fault& fault = faults[static_cast<size_t>(f)];
      label = fault.name;
      want = fault.exit_codes;
      if (fault.name.rfind("successor:", 0) == 0) {
        // --crash-at arms the point in this successor only.
        binary = c.Script(fmt::format("suc{}", i), fmt::format("exec {} --crash-at {} \"$@\"", kvd, fault.name.substr(10)));
      } else if (fault.name == "knob:--fail-begin" || fault.name == "knob:--exit-at-start") {
        binary = c.Script(fmt::format("knob{}", i), fmt::format("exec {} {} \"$@\"", kvd, fault.name.substr(5)));
      } else if (fault.name == "knob:incompatible-schema") {
        binary = c.Script(fmt::format("schema{}", i), fmt::format("exec {} --schema-min 90 --schema-max 99 \"$@\"", kvd));
      } else if (fault.name == "missing-binary") {
        binary = c.dir() + "/no-such-binary";
      } else if (fault.name == "abort-in-warm") {
        binary = c.Script(fmt::format("slow{}", i), fmt::format("exec {} --warm-delay-ms 2000 \"$@\"", kvd));
        aborter = std::thread([&c] {
          std::this_thread::sleep_for(500ms);
          baton::harness::RunCommand({BinPath("baton"), "abort", "--runtime-dir", c.dir() + "/run"}, 20s);
        });
      } else if (fault.name == "kill-incumbent-before") {
        // Outside any handoff: the supervisor restarts it with back-off.
        const pid_t victim = c.IncumbentPid();
        if (victim > 0) ::kill(victim, SIGKILL);
        for (int k = 0; k < 500; ++k) {
          const pid_t now = c.IncumbentPid();
          if (now > 0 && now != victim && c.Healthy()) break;
          std::this_thread::sleep_for(20ms);
        }
      }
    }
    auto r = c.Upgrade(binary);
    if (aborter.joinable()) aborter.join();
    const bool ok = want.count(r.exit_code) > 0;
    if (!ok) {
      ++failures;
      fmt::print(stderr, "soak: upgrade {} ({}): exit {} not in the expected set\n{}{}\n", i + 1, label, r.exit_code,
                 r.out, r.err);
    }
    ++outcomes[fmt::format("exit {}", r.exit_code)];
    // A failed (5) or crashed-after-Ready upgrade ends with a restart: wait
    // until a generation serves again before the next one.
    for (int k = 0; k < 1000; ++k) {
      auto s = c.Status();
      if (s.exit_code == 0 && s.json.is_object() && s.json.at("incumbent_pid").to_number<int64_t>() > 0 &&
          s.json.at("handoff_in_progress").as_string().empty() && c.Healthy()) {
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    if (!json) fmt::print("upgrade {:3}/{}: {:42} exit {}{}\n", i + 1, upgrades, label, r.exit_code, ok ? "" : "  UNEXPECTED");
    if ((i + 1) % 10 == 0 || i == 0) {
      // Sample with no handoff running: one generation, the same FDs each
      // time. The least of a few readings: an admin connection of the
      // status call just made may still be closing.
      int fds = 1 << 30;
      for (int k = 0; k < 5; ++k) {
        std::this_thread::sleep_for(20ms);
        fds = std::min(fds, baton::harness::CountFds(c.supervisor_pid()));
      }
      samples.push_back({i + 1, fds, baton::harness::RssKib(c.supervisor_pid())});
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto load = c.FinishLoad();
  const int zombies = baton::harness::CountZombieChildren(c.supervisor_pid());
  auto num = [&](std::initializer_list<const char*> path) -> int64_t {
    const boost::json::value* v = &load.json;
    for (const char* k : path) {
      if (!v->is_object() || !v->as_object().contains(k)) return -1;
      v = &v->as_object().at(k);
    }
    return v->is_number() ? v->to_number<int64_t>() : -1;
  };
  const int64_t lost = num({"lost_writes"}), refused = num({"errors", "refused"}), acked = num({"writes_acked"});
  const int64_t verify_errors = num({"verify_errors"}), resets = num({"errors", "reset"});
  // Flat: the FD count at the end equals the one after the first upgrade;
  // RSS after the first third (allocator and event ring warmed up) grows by
  // less than 2 MiB to the end.
  const Sample first = samples.front(), last = samples.back();
  const Sample third = samples[samples.size() / 3];
  long rss_max = 0;
  for (const auto& s : samples) rss_max = std::max(rss_max, s.rss_kib);
  const bool fds_flat = first.fds == last.fds;
  const bool rss_flat = last.rss_kib - third.rss_kib < 2048;
  const bool pass = failures == 0 && lost == 0 && refused == 0 && verify_errors == 0 && zombies == 0 && fds_flat &&
                    rss_flat && acked > 0;
  std::string outcome_text;
  for (const auto& [k, v] : outcomes) outcome_text += fmt::format("{}{}: {}", outcome_text.empty() ? "" : ", ", k, v);
  if (json) {
    fmt::print(
        "{{\"pass\":{},\"upgrades\":{},\"faults_injected\":{},\"unexpected_exit_codes\":{},\"seconds\":{:.1f},"
        "\"writes_acked\":{},\"lost_writes\":{},\"refused\":{},\"resets\":{},\"verify_errors\":{},\"zombies\":{},"
        "\"supervisor_fds\":[{},{}],\"supervisor_rss_kib\":[{},{},{}],\"rss_max_kib\":{},\"seed\":{}}}\n",
        pass, upgrades, injected, failures, seconds, acked, lost, refused, resets, verify_errors, zombies, first.fds,
        last.fds, first.rss_kib, third.rss_kib, last.rss_kib, rss_max, seed);
  } else {
    fmt::print("\n{} upgrades in {:.0f} s (seed {}), {} with an injected fault; outcomes: {}\n", upgrades, seconds, seed,
               injected, outcome_text);
    fmt::print("unexpected exit codes: {}\n", failures);
    fmt::print("writes acknowledged {}, lost {}, verify errors {}; refused connections {}, resets {}\n", acked, lost,
               verify_errors, refused, resets);
    fmt::print("supervisor FDs {} -> {} ({}); RSS {} KiB after upgrade {}, {} KiB after {}, {} KiB at the end ({}); zombies {}\n",
               first.fds, last.fds, fds_flat ? "flat" : "NOT FLAT", first.rss_kib, first.upgrade, third.rss_kib,
               third.upgrade, last.rss_kib, rss_flat ? "flat" : "GROWING", zombies);
    fmt::print("{}\n", pass ? "soak: PASS" : "soak: FAIL");
  }
  if (!fds_flat) {
    fmt::print(stderr, "soak: the supervisor's FDs at the end:\n");
    for (const auto& e : std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", c.supervisor_pid()))) {
      std::error_code ec;
      fmt::print(stderr, "  {} -> {}\n", e.path().filename().string(), std::filesystem::read_symlink(e.path(), ec).string());
    }
  }
  if (!pass && load.json.is_null()) fmt::print(stderr, "baton-load said: {}{}\n", load.out, load.err);
  return pass ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "baton-soak: many upgrades of kvd under verifying load, a random fault in one of every K, then checks: "
      "every exit code as documented, zero lost writes, zero refused connections, no zombies, the supervisor's "
      "FD count and RSS flat.\n\nExit codes: 0 pass; 1 a check failed; 2 usage; 3 set-up failed."};
  int upgrades = 300, fault_every = 5, connections = 16, rate = 2000;
  uint64_t seed = 0;
  bool json = false;
  app.add_option("--upgrades", upgrades, "How many upgrades")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--fault-every", fault_every, "A fault in one upgrade out of this many on average (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_option("--seed", seed, "Random seed (0: random; printed in --json)");
  app.add_option("--connections", connections, "baton-load connections")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--rate", rate, "baton-load requests/s (the WAL, and so each warm-up, grows with it)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  app.add_flag("--json", json, "One JSON object at the end instead of a line per upgrade");
  CLI11_PARSE(app, argc, argv);
  if (seed == 0) seed = std::random_device{}();
  return Run(upgrades, fault_every, seed, connections, rate, json);
}
