// baton-load: drive kvd over HTTP/1.1 and check that no acknowledged write
// is lost. Thin: parse (CLI11), call RunLoad, print the report.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <tuple>

#include "base/log.h"
#include "tools/load/engine.h"
#include "tools/load/options.h"
#include "tools/load/report.h"

namespace {

using baton::load::kExitUsage;

constexpr const char* kDescription =
    "baton-load: drive an HTTP key-value server (kvd) on a loopback address or unix socket,\n"
    "then read back every acknowledged PUT.\n\n"
    "Durations take a unit: 250us, 500ms, 10s, 2m, 1h.\n"
    "Exit codes: 0 no errors and no lost writes; 1 errors, lost writes, writes that could not\n"
    "be read back, or a watch stream that was not continuous or did not reach the last\n"
    "acknowledged revision; 2 usage error; 3 target unreachable at start (or, with --watches,\n"
    "its revision unreadable).";

int Usage(const std::string& msg) {
  fmt::print(stderr, "baton-load: {}\n", msg);
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{kDescription, "baton-load"};
  std::string target;
  std::string duration = "10s";
  std::string request_timeout = "5s";
  std::string verify_timeout = "60s";
  baton::load::LoadOptions opts;
  bool json = false;
  bool verbose = false;
  double gaps_over_ms = -1;
  std::string burst = "1s";
  std::string idle = "3s";
  std::string watch_wait = "10s";
  uint64_t watch_from = 0;

  app.add_option("--target", target, "http://HOST:PORT (loopback only) or unix:/PATH")->required();
  app.add_option("-c,--connections", opts.connections, "Concurrent connections")->capture_default_str();
  app.add_option("-d,--duration", duration, "How long to issue requests")->capture_default_str();
  app.add_option("--write-ratio", opts.write_ratio, "Probability that a request is a PUT")->capture_default_str();
  app.add_flag("--close", opts.close_mode, "One connection per request (Connection: close)");
  app.add_flag("--json", json, "Print one JSON object instead of the summary line");
  app.add_option("--key-space", opts.key_space, "GETs read among the last K acknowledged writes (0 = all)")
      ->capture_default_str();
  app.add_option("--max-writes", opts.max_writes,
                 "GETs only once N writes are acknowledged: at most N keys plus the writes in flight\n"
                 "(0 = no limit)")
      ->capture_default_str();
  app.add_option("--value-size", opts.value_size, "Bytes per PUT value")->capture_default_str();
  app.add_option("--request-timeout", request_timeout, "Per-request timeout")->capture_default_str();
  app.add_option("--verify-timeout", verify_timeout, "Bound on the read-back phase")->capture_default_str();
  app.add_option("--rate-limit", opts.rate_limit, "Total requests/s (0 = as fast as possible)")->capture_default_str();
  app.add_option("--seed", opts.seed, "Random seed (0 = random)")->capture_default_str();
  app.add_option("--gaps-over", gaps_over_ms,
                 "Also report every gap between write acks longer than MS milliseconds, with its\n"
                 "CLOCK_MONOTONIC start (JSON \"gaps\"; at most 100000)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--idle-fraction", opts.idle_fraction,
                 "Fraction of the keep-alive connections that alternate --burst of requests with --idle\n"
                 "without any, reusing the same connection")
      ->capture_default_str();
  app.add_option("--burst", burst, "With --idle-fraction: how long a busy period lasts")->capture_default_str();
  app.add_option("--idle", idle, "With --idle-fraction: how long a connection then stays idle")->capture_default_str();
  app.add_option("--watches", opts.watches,
                 "Watch streams (GET /watch?from=REV) checked for continuity beside the load (JSON \"watch\")")
      ->capture_default_str();
  app.add_option("--watch-from", watch_from, "First revision the streams ask for (default: current + 1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--watch-wait", watch_wait,
                 "After the load: how long the streams may take to reach the last acknowledged revision\n"
                 "(0 = do not check)")
      ->capture_default_str();
  app.add_flag("-v,--verbose", verbose, "Log progress events (JSON lines on stderr)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  auto parsed_target = baton::load::ParseTarget(target);
  if (!parsed_target) return Usage(parsed_target.error().message);
  opts.target = *parsed_target;
  for (auto [text, out, name] : {std::tuple{&duration, &opts.duration, "--duration"},
                                 std::tuple{&request_timeout, &opts.request_timeout, "--request-timeout"},
                                 std::tuple{&verify_timeout, &opts.verify_timeout, "--verify-timeout"},
                                 std::tuple{&burst, &opts.burst, "--burst"}, std::tuple{&idle, &opts.idle, "--idle"}}) {
    auto d = baton::load::ParseDuration(*text);
    if (!d) return Usage(fmt::format("{}: {}", name, d.error().message));
    *out = *d;
  }
  if (watch_wait == "0") {
    opts.watch_wait = baton::Duration::zero();
  } else {
    auto d = baton::load::ParseDuration(watch_wait);
    if (!d) return Usage(fmt::format("--watch-wait: {}", d.error().message));
    opts.watch_wait = *d;
  }
  if (watch_from != 0) opts.watch_from = watch_from;
  if (gaps_over_ms >= 0) {
    opts.gaps_over =
        std::chrono::duration_cast<baton::Duration>(std::chrono::duration<double, std::milli>(gaps_over_ms));
  }
  if (auto st = baton::load::Validate(opts); !st) return Usage(st.error().message);

  baton::JsonLinesSink log(stderr, verbose ? baton::Level::kInfo : baton::Level::kWarn);
  auto report = baton::load::RunLoad(opts, log);
  if (!report) {
    fmt::print(stderr, "baton-load: {}\n", report.error().message);
    if (report.error().Is(baton::Errc::kUnavailable)) return baton::load::kExitUnreachable;
    if (report.error().Is(baton::Errc::kInvalidArgument)) return kExitUsage;
    return baton::load::kExitFailures;
  }
  if (json) {
    fmt::print("{}\n", baton::load::FormatJson(*report));
  } else {
    fmt::print("{}\n", baton::load::FormatHuman(*report));
  }
  std::fflush(stdout);
  return baton::load::ExitCodeFor(*report);
}
