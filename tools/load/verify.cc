#include "tools/load/verify.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <string>

#include "tools/load/client.h"
#include "tools/load/outcome.h"

namespace baton::load {
namespace {

namespace asio = boost::asio;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr uint64_t kMaxLogged = 10;

struct VerifyRun {
  const Target& target;
  const Workload& workload;
  const VerifyConfig& cfg;
  LogSink& log;
  TimePoint deadline;
  std::size_t next = 0;  // index into AckedIds(); workers share it (one thread)
  VerifyResult result;
};

asio::awaitable<void> VerifyLoop(VerifyRun& run) {
  auto ex = co_await asio::this_coro::executor;
  auto http = MakeHttpConnection(ex, run.target, /*keep_alive=*/true);
  asio::steady_timer timer(ex);
  const Clock& clock = RealClock();
  const auto& ids = run.workload.AckedIds();
  while (run.next < ids.size() && clock.Now() < run.deadline) {
    const uint64_t id = ids[run.next++];
    const std::string key = run.workload.Key(id);
    const std::string expected = run.workload.Value(id);
    VerifyVerdict verdict = VerifyVerdict::kRetry;
    std::string detail = "verification deadline passed";
    for (int attempt = 0; attempt < run.cfg.attempts; ++attempt) {
      const TimePoint now = clock.Now();
      if (now >= run.deadline) break;
      const TimePoint deadline = std::min(now + run.cfg.request_timeout, run.deadline);
      std::string path = "/kv/" + key;  // named locals: see LoadLoop on GCC 12
      std::string body;
      Exchange res =
          co_await http->RoundTrip(boost::beast::http::verb::get, std::move(path), std::move(body), deadline);
      verdict = JudgeVerify(res, expected);
      if (verdict != VerifyVerdict::kRetry) {
        if (verdict == VerifyVerdict::kLost) {
          detail =
              res.status == 404 ? "404 not found" : "value differs (" + std::to_string(res.body.size()) + " bytes)";
        }
        break;
      }
      detail = res.error ? std::string(ErrorKindName(*res.error)) + ": " + res.detail
                         : "status " + std::to_string(res.status);
      timer.expires_after(run.cfg.backoff * (attempt + 1));
      co_await timer.async_wait(kTuple);
    }
    switch (verdict) {
      case VerifyVerdict::kOk:
        ++run.result.verified;
        break;
      case VerifyVerdict::kLost:
        if (run.result.lost++ < kMaxLogged) {
          run.log.Emit(
              MakeEvent(Level::kWarn, "load.lost_write", "acknowledged write lost: {}", detail).With("key", key));
        }
        break;
      case VerifyVerdict::kRetry:
        if (run.result.errors++ < kMaxLogged) {
          run.log.Emit(
              MakeEvent(Level::kWarn, "load.verify_error", "could not read back: {}", detail).With("key", key));
        }
        break;
    }
  }
}

}  // namespace

std::string DescribeException(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

Result<VerifyResult> VerifyWrites(asio::io_context& ioc, const Target& target, const Workload& workload,
                                  const VerifyConfig& cfg, LogSink& log) {
  const Clock& clock = RealClock();
  const TimePoint start = clock.Now();
  VerifyRun run{target, workload, cfg, log, start + cfg.verify_timeout, 0, {}};
  const auto total = workload.AckedIds().size();
  const int workers = static_cast<int>(
      std::min<std::size_t>(static_cast<std::size_t>(std::max(cfg.connections, 1)), std::max<std::size_t>(total, 1)));
  std::exception_ptr failure;
  for (int i = 0; i < workers && total > 0; ++i) {
    asio::co_spawn(ioc, VerifyLoop(run), [&failure](std::exception_ptr e) {
      if (e && !failure) failure = e;
    });
  }
  ioc.run();
  ioc.restart();
  if (failure) return Error(Errc::kInternal, "verify: " + DescribeException(failure));
  // Keys no worker reached before the deadline could not be read back.
  run.result.errors += total - std::min<std::size_t>(run.next, total);
  run.result.elapsed = clock.Now() - start;
  return run.result;
}

}  // namespace baton::load
