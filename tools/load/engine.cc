#include "tools/load/engine.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <exception>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "base/clock.h"
#include "tools/load/client.h"
#include "tools/load/outcome.h"
#include "tools/load/recorder.h"
#include "tools/load/verify.h"
#include "tools/load/watch.h"
#include "tools/load/workload.h"

namespace baton::load {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// After a failed request a connection pauses before the next one, so a
// target that is down is not hammered with connects (the error is counted).
constexpr auto kErrorBackoff = milliseconds(10);
constexpr uint64_t kMaxLoggedErrors = 10;

// State shared by the load coroutines; touched only from the io_context thread.
struct LoadRun {
  const LoadOptions& opts;
  LogSink& log;
  uint64_t seed;
  Workload workload;
  Pacer pacer;
  LoadRecorder recorder;
  TimePoint end;
  TimePoint started;  // for event offsets; `end` may move earlier on SIGINT
  uint64_t logged_errors = 0;
  uint64_t max_acked_rev = 0;  // the highest revision a PUT was answered with
  // The connections' timers, cancelled when SIGINT moves `end` so that a
  // connection idling (or pacing) past the new end notices at once.
  std::set<asio::steady_timer*> timers{};
};

// kvd answers a PUT with its revision ("42\n"); 0 if the body is not one.
uint64_t AckedRevision(const std::string& body) {
  uint64_t rev = 0;
  const char* end = body.data() + body.size();
  auto [p, ec] = std::from_chars(body.data(), end, rev);
  if (ec != std::errc() || p == body.data() || (p != end && *p != '\n')) return 0;
  return rev;
}

asio::awaitable<void> LoadLoop(LoadRun& run, uint32_t conn) {
  auto ex = co_await asio::this_coro::executor;
  auto http = MakeHttpConnection(ex, run.opts.target, !run.opts.close_mode);
  Rng rng(run.seed + 0x9e3779b97f4a7c15ULL * (conn + 1));
  asio::steady_timer timer(ex);
  run.timers.insert(&timer);
  const Clock& clock = RealClock();
  std::optional<BurstCycle> cycle;
  if (IdlesBetweenBursts(conn, run.opts.connections, run.opts.idle_fraction)) {
    const auto burst_ticks = static_cast<uint64_t>(run.opts.burst.count());
    const Duration phase(static_cast<Duration::rep>(rng() % burst_ticks));
    cycle.emplace(run.started, run.opts.burst, run.opts.idle, phase);
  }
  for (;;) {
    const TimePoint now = clock.Now();
    if (now >= run.end) break;
    if (cycle) {
      // Idle on the open connection; the next request reuses it.
      if (const auto until = cycle->IdleUntil(now)) {
        timer.expires_at(std::min(*until, run.end));
        co_await timer.async_wait(kTuple);
        continue;
      }
    }
    if (!run.pacer.Unlimited()) {
      const TimePoint slot = run.pacer.Reserve(now);
      if (slot >= run.end) break;
      if (slot > now) {
        timer.expires_at(slot);
        co_await timer.async_wait(kTuple);
      }
    }
    const Workload::Op op = run.workload.Next(conn, rng);
    const std::string key = run.workload.Key(op.id);
    std::string value = run.workload.Value(op.id);  // the PUT body, or what a GET must return
    // Arguments are named locals: GCC 12 mishandles temporaries (notably
    // from ?:) inside a co_await expression and destroys them twice.
    const http::verb verb = op.write ? http::verb::put : http::verb::get;
    std::string path = "/kv/" + key;
    std::string body;
    if (op.write) body = value;
    const TimePoint started = clock.Now();
    const TimePoint deadline = started + run.opts.request_timeout;
    Exchange res = co_await http->RoundTrip(verb, std::move(path), std::move(body), deadline);
    const TimePoint done = clock.Now();
    const Outcome outcome = Judge(op.write, res, value);
    run.recorder.Record(op.write, outcome, started, done);
    if (outcome.write_acked) {
      run.workload.Acked(op.id);
      run.max_acked_rev = std::max(run.max_acked_rev, AckedRevision(res.body));
    }
    if (outcome.error) {
      if (run.logged_errors++ < kMaxLoggedErrors) {
        run.log.Emit(MakeEvent(Level::kWarn, "load.error", "{} {} failed: {} ({})", op.write ? "PUT" : "GET", key,
                               ErrorKindName(*outcome.error),
                               res.error ? res.detail : "status " + std::to_string(res.status))
                         .With("kind", std::string(ErrorKindName(*outcome.error)))
                         .With("conn", static_cast<int64_t>(conn))
                         .With("at_ms", ToMillis(done - run.started)));
      }
      timer.expires_after(kErrorBackoff);
      co_await timer.async_wait(kTuple);
    }
  }
  run.timers.erase(&timer);
  run.recorder.AddReconnects(http->Reconnects());
  run.recorder.AddServerCloses(http->ServerCloses());
}

asio::awaitable<void> Probe(const Target& target, Duration timeout, boost::system::error_code& out) {
  auto ex = co_await asio::this_coro::executor;
  auto http = MakeHttpConnection(ex, target, true);
  out = co_await http->Connect(RealClock().Now() + timeout);
  http->Close();
}

uint64_t PickSeed(uint64_t requested) {
  if (requested != 0) return requested;
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

}  // namespace

Result<LoadReport> RunLoad(const LoadOptions& opts, LogSink& log) {
  if (auto st = Validate(opts); !st) return st.error();
  // Bounds the probe, the revision read and each watch stream's connect.
  const Duration connect_timeout = std::min(opts.request_timeout, Duration(seconds(5)));
  const Clock& clock = RealClock();
  asio::io_context ioc;
  std::exception_ptr failure;
  auto on_done = [&failure](std::exception_ptr e) {
    if (e && !failure) failure = e;
  };

  // Phase 0: is anybody there? A run against a dead target is a usage
  // problem (exit 3), not a measurement.
  boost::system::error_code probe_ec;
  asio::co_spawn(ioc, Probe(opts.target, connect_timeout, probe_ec), on_done);
  ioc.run();
  ioc.restart();
  if (failure) return Error(Errc::kInternal, "probe: " + DescribeException(failure));
  if (probe_ec) {
    return Error(Errc::kUnavailable, "connect " + opts.target.ToString() + ": " + probe_ec.message());
  }

  // The revision the watch streams start at: the current one + 1, read
  // before any write of ours.
  uint64_t watch_from = opts.watch_from.value_or(0);
  if (opts.watches > 0 && !opts.watch_from) {
    Result<uint64_t> rev = Error(Errc::kInternal, "not read");
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { rev = co_await ReadRevision(opts.target, connect_timeout); }, on_done);
    ioc.run();
    ioc.restart();
    if (failure) return Error(Errc::kInternal, "watch: " + DescribeException(failure));
    if (!rev) return Error(Errc::kUnavailable, "watch: the current revision: " + rev.error().message);
    watch_from = *rev + 1;
  }

  // Phase 1: load.
  const uint64_t seed = PickSeed(opts.seed);
  const TimePoint start = clock.Now();
  LoadRun run{opts,
              log,
              seed,
              Workload(seed, opts.connections, opts.value_size, opts.write_ratio, opts.key_space, opts.max_writes),
              Pacer(opts.rate_limit),
              LoadRecorder(start, opts.gaps_over),
              start + opts.duration,
              start};
  log.Emit(MakeEvent(Level::kInfo, "load.start", "{} connections to {} for {} ms", opts.connections,
                     opts.target.ToString(), ToMillis(opts.duration))
               .With("seed", seed));
  // SIGINT / SIGTERM end the load phase early; verification still runs, so
  // a test can run the load "until the upgrades are done".
  asio::signal_set stop_signals(ioc, SIGINT, SIGTERM);
  stop_signals.async_wait([&run, &clock](const boost::system::error_code& ec, int) {
    if (ec) return;
    run.end = clock.Now();
    for (auto* t : run.timers) t->cancel();
  });
  // The watch streams run beside the load; once the last connection is
  // done they get --watch-wait to reach the last acknowledged revision,
  // then stop.
  WatchStreams watches(ioc.get_executor(), opts.target, opts.watches, watch_from, connect_timeout, log);
  watches.Start(on_done);
  const bool check_watches = opts.watches > 0 && opts.watch_wait > Duration::zero();
  int active = opts.connections;
  TimePoint load_end = start;
  for (int i = 0; i < opts.connections; ++i) {
    asio::co_spawn(ioc, LoadLoop(run, static_cast<uint32_t>(i)), [&](std::exception_ptr e) {
      on_done(e);
      if (--active > 0) return;
      load_end = clock.Now();
      stop_signals.cancel();
      const uint64_t target = check_watches ? run.max_acked_rev : 0;
      asio::co_spawn(ioc, watches.FinishAt(target, clock.Now() + opts.watch_wait), on_done);
    });
  }
  // Returns once every connection stopped issuing and its in-flight request
  // finished (bounded by --request-timeout), and the watch streams stopped
  // (bounded by --watch-wait).
  ioc.run();
  ioc.restart();
  if (failure) return Error(Errc::kInternal, "load: " + DescribeException(failure));

  LoadReport report;
  report.target = opts.target.ToString();
  report.mode = opts.close_mode ? "close" : "keepalive";
  report.connections = opts.connections;
  run.recorder.Fill(report, load_end);
  for (int i = 0; i < opts.connections; ++i) {
    report.idle_connections += IdlesBetweenBursts(static_cast<uint32_t>(i), opts.connections, opts.idle_fraction);
  }
  report.watch = watches.Report(run.max_acked_rev, check_watches && run.max_acked_rev > 0);

  // Phase 2: every acknowledged write must read back.
  log.Emit(MakeEvent(Level::kInfo, "load.verify", "verifying {} acknowledged writes", run.workload.AckedIds().size()));
  VerifyConfig vcfg;
  vcfg.connections = std::min(opts.verify_connections, opts.connections);
  vcfg.request_timeout = opts.request_timeout;
  vcfg.verify_timeout = opts.verify_timeout;
  auto verified = VerifyWrites(ioc, opts.target, run.workload, vcfg, log);
  if (!verified) return verified.error();
  report.verified = verified->verified;
  report.lost_writes = verified->lost;
  report.verify_errors = verified->errors;
  report.verify_s = std::chrono::duration<double>(verified->elapsed).count();
  return report;
}

}  // namespace baton::load
