#include "tools/bench/lease_run.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "tools/harness/cluster.h"
#include "tools/harness/lease_probe.h"
#include "tools/harness/pg_server.h"
#include "tools/harness/subprocess.h"

namespace baton::bench {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

template <class Pred>
bool WaitUntil(Pred p, milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return p();
}

int ReadPort(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  in >> port;
  return port;
}

// A standalone kvd holding (or waiting for) the lease.
struct Standalone {
  pid_t pid = -1;
  std::string dir;
  int port = 0;
};

Standalone StartKvd(const std::string& dir, const std::string& dsn, milliseconds ttl,
                    const std::string& name = "bench-ttl") {
  Standalone k;
  k.dir = dir;
  ::mkdir((dir + "/data").c_str(), 0755);
  k.pid = harness::SpawnBackground({harness::BinPath("kvd"), "--data-dir", dir + "/data", "--standalone-listen",
                                    "127.0.0.1:0", "--port-file", dir + "/port", "--lease-name", name,
                                    "--lease-dsn", dsn, "--lease-ttl-ms", std::to_string(ttl.count())},
                                   {}, dir + "/out", dir + "/err");
  if (WaitUntil([&] { return ReadPort(dir + "/port") > 0; }, milliseconds(10000))) k.port = ReadPort(dir + "/port");
  return k;
}

void StopKvd(Standalone& k, int sig) {
  if (k.pid <= 0) return;
  ::kill(k.pid, sig);
  if (harness::WaitFor(k.pid, milliseconds(10000)) < 0) {
    ::kill(k.pid, SIGKILL);
    harness::WaitFor(k.pid, milliseconds(5000));
  }
  k.pid = -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

LeaseBenchResult RunLeaseBench(const LeaseBenchConfig& cfg, const std::atomic<bool>& stop) {
  LeaseBenchResult r;
  harness::PgServer pg;
  if (!pg.Start()) {
    r.error = "postgres: " + pg.error();
    return r;
  }

  // baton: handoffs of a supervised kvd; the lease moves inside Seal.
  {
    harness::Cluster c({.kvd_args = {"--lease-name", "bench-baton", "--lease-dsn", pg.dsn(), "--lease-ttl-ms",
                                     std::to_string(cfg.ttl.count())},
                        .supervise_args = {},
                        .env = {}});
    if (!c.Start()) {
      r.error = "supervisor did not start";
      return r;
    }
    const int port = std::stoi(c.url().substr(c.url().rfind(':') + 1));
    if (!WaitUntil([&] { return harness::ServingEpoch(port) > 0; }, milliseconds(15000))) {
      r.error = "kvd never became leader";
      return r;
    }
    for (int i = 0; i < cfg.handoffs && !stop.load(); ++i) {
      auto u = c.Upgrade();
      if (u.exit_code != 0) {
        r.error = fmt::format("upgrade {} ended with exit {}: {}", i + 1, u.exit_code, u.out);
        return r;
      }
      fmt::print(stderr, "baton handoff {}/{} committed\n", i + 1, cfg.handoffs);
    }
    auto iv = harness::LeaderIntervals(c.SupervisorLog());
    for (size_t i = 1; i < iv.size(); ++i) {
      if (iv[i - 1].end_us > iv[i].start_us) r.overlap = true;
      if (!iv[i - 1].open()) r.baton_gaps_ms.push_back(static_cast<double>(iv[i].start_us - iv[i - 1].end_us) / 1000.0);
    }
  }

  // Graceful stop of a leader with a standby elsewhere (another process,
  // its own data dir): SIGTERM, and the stopping leader hands the lease to
  // the live candidate in one statement (docs/lease.md "Handover").
  for (int i = 0; i < cfg.handovers && !stop.load(); ++i) {
    harness::TempDir tmp("lh");
    const std::string& dir = tmp.path();
    ::mkdir((dir + "/a").c_str(), 0755);
    ::mkdir((dir + "/b").c_str(), 0755);
    Standalone a = StartKvd(dir + "/a", pg.dsn(), cfg.ttl, "bench-handover");
    bool ok = a.port > 0 && WaitUntil([&] { return harness::ServingEpoch(a.port) > 0; }, milliseconds(15000));
    Standalone b = ok ? StartKvd(dir + "/b", pg.dsn(), cfg.ttl, "bench-handover") : Standalone{};
    // A candidate once it has logged standing by (it registers first).
    ok = ok && b.port > 0 && WaitUntil([&] {
      return harness::ReadAll(dir + "/b/err").find("lease.standby") != std::string::npos;
    }, milliseconds(15000));
    if (ok) {
      StopKvd(a, SIGTERM);
      ok = WaitUntil([&] { return harness::ServingEpoch(b.port) > 0; }, cfg.ttl * 3);
      auto ia = harness::LeaderIntervals(harness::ReadAll(dir + "/a/err"));
      auto ib = harness::LeaderIntervals(harness::ReadAll(dir + "/b/err"));
      if (ok && !ia.empty() && !ib.empty() && !ia.back().open()) {
        if (ia.back().end_us > ib.front().start_us) r.overlap = true;
        r.handover_gaps_ms.push_back(static_cast<double>(ib.front().start_us - ia.back().end_us) / 1000.0);
        fmt::print(stderr, "graceful stop, handover {}/{}: {:.1f} ms\n", i + 1, cfg.handovers,
                   r.handover_gaps_ms.back());
      } else {
        ok = false;
      }
    }
    StopKvd(a, SIGKILL);
    StopKvd(b, SIGTERM);  // no standby left: releases the lease for the next round
    if (cfg.keep_dir || !ok) tmp.Keep();
    if (!ok) {
      r.error = "handover round " + std::to_string(i + 1) + " did not complete (logs in " + dir + ")";
      return r;
    }
  }

  // Common practice: the old leader dies without handing over; the new one
  // (already running as a standby, polling) waits for the TTL to expire.
  std::mt19937 rng(42);
  for (int i = 0; i < cfg.expiries && !stop.load(); ++i) {
    harness::TempDir tmp("lb");
    const std::string& dir = tmp.path();
    ::mkdir((dir + "/a").c_str(), 0755);
    ::mkdir((dir + "/b").c_str(), 0755);
    Standalone a = StartKvd(dir + "/a", pg.dsn(), cfg.ttl);
    bool ok = a.port > 0 && WaitUntil([&] { return harness::ServingEpoch(a.port) > 0; }, milliseconds(15000));
    Standalone b = ok ? StartKvd(dir + "/b", pg.dsn(), cfg.ttl) : Standalone{};
    ok = ok && b.port > 0 && harness::ServingEpoch(b.port) == 0;
    if (ok) {
      // Die at a random point of the renew cycle, as a crash would.
      const int renew_ms = static_cast<int>(cfg.ttl.count() / 3);
      std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(0, renew_ms)(rng)));
      const int64_t died_us = harness::MonoMicros();
      StopKvd(a, SIGKILL);
      ok = WaitUntil([&] { return harness::ServingEpoch(b.port) > 0; }, cfg.ttl * 3);
      auto iv = harness::LeaderIntervals(harness::ReadAll(dir + "/b/err"));
      if (ok && !iv.empty()) {
        r.ttl_gaps_ms.push_back(static_cast<double>(iv.front().start_us - died_us) / 1000.0);
        fmt::print(stderr, "TTL take-over {}/{}: {:.0f} ms\n", i + 1, cfg.expiries, r.ttl_gaps_ms.back());
      }
    }
    StopKvd(a, SIGKILL);
    StopKvd(b, SIGTERM);  // releases the lease for the next round
    if (cfg.keep_dir || !ok) tmp.Keep();
    if (!ok) {
      r.error = "TTL-expiry round " + std::to_string(i + 1) + " did not complete (logs in " + dir + ")";
      return r;
    }
  }
  return r;
}

std::string LeaseMarkdown(const LeaseBenchConfig& cfg, const LeaseBenchResult& r) {
  const double b50 = Percentile(r.baton_gaps_ms, 0.5);
  const double t50 = Percentile(r.ttl_gaps_ms, 0.5);
  std::string out = fmt::format(
      "| leadership change (TTL {} ms) | samples | gap p50 | gap p99 | gap max |\n"
      "|---|---:|---:|---:|---:|\n",
      cfg.ttl.count());
  auto row = [&](const char* name, const std::vector<double>& v) {
    const double mx = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
    out += fmt::format("| {} | {} | {:.1f} ms | {:.1f} ms | {:.1f} ms |\n", name, v.size(), Percentile(v, 0.5),
                       Percentile(v, 0.99), mx);
  };
  row("baton handoff (transfer inside Seal)", r.baton_gaps_ms);
  row("graceful stop, standby elsewhere (handover + NOTIFY)", r.handover_gaps_ms);
  row("SIGKILL, standby waits for TTL expiry (polling)", r.ttl_gaps_ms);
  out += fmt::format("\nratio (TTL expiry p50 / baton p50): {:.0f}x\n", b50 > 0 ? t50 / b50 : 0.0);
  return out;
}

}  // namespace baton::bench
