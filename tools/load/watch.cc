#include "tools/load/watch.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/http/verb.hpp>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "base/check.h"
#include "tools/load/client.h"

namespace baton::load {

namespace asio = boost::asio;
namespace beast = boost::beast;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// After a failed connect or a broken stream, before the next connect: a
// target that is down, or has no /watch, is not hammered (each failure is
// counted). Doubles per failure in a row; a stream answered 200 resets it.
constexpr auto kBackoff = milliseconds(10);
constexpr auto kMaxBackoff = milliseconds(500);
constexpr uint64_t kMaxLogged = 10;
// While waiting for the streams to catch up at the end.
constexpr auto kPollInterval = milliseconds(10);

}  // namespace

struct WatchStreams::Stream {
  Stream(int i, uint64_t from) : index(i), checker(from) {}
  int index;
  WatchChecker checker;
  WatchCounts counts;
  bool ended = false;  // the coroutine finished (stopped, or gave up after "compacted")
  // Closes the current connection and cancels a backoff wait; set while
  // the coroutine runs.
  std::function<void()> close;
};

WatchStreams::WatchStreams(asio::any_io_executor ex, const Target& target, int streams, uint64_t from,
                           Duration connect_timeout, LogSink& log)
    : ex_(std::move(ex)), target_(target), from_(from), connect_timeout_(connect_timeout), log_(log) {
  for (int i = 0; i < streams; ++i) streams_.push_back(std::make_unique<Stream>(i, from));
}

WatchStreams::~WatchStreams() = default;

void WatchStreams::Start(const std::function<void(std::exception_ptr)>& on_done) {
  for (auto& s : streams_) asio::co_spawn(ex_, Run(*s), on_done);
}

asio::awaitable<void> WatchStreams::Run(Stream& s) {
  // Arguments are named locals: GCC 12 mishandles temporaries inside a
  // co_await expression (see engine.cc).
  if (target_.kind == Target::Kind::kUnix) {
    const asio::local::stream_protocol::endpoint ep(target_.path);
    co_await RunOn<asio::local::stream_protocol>(s, ep);
  } else {
    error_code ec;
    const auto addr = asio::ip::make_address(target_.host, ec);
    BATON_CHECK_MSG(!ec, "Target.host must come from ParseTarget");
    const asio::ip::tcp::endpoint ep(addr, target_.port);
    co_await RunOn<asio::ip::tcp>(s, ep);
  }
}

template <class Protocol>
asio::awaitable<void> WatchStreams::RunOn(Stream& s, typename Protocol::endpoint ep) {
  using Socket = beast::basic_stream<Protocol, asio::any_io_executor, beast::unlimited_rate_policy>;
  std::optional<Socket> sock;
  asio::steady_timer backoff(ex_);
  s.close = [&sock, &backoff] {
    if (sock) {
      error_code ignored;
      sock->socket().close(ignored);
    }
    backoff.cancel();
  };
  const auto log = [this, &s](Level level, const char* event, std::string msg) {
    if (logged_++ >= kMaxLogged) return;
    log_.Emit(MakeEvent(level, event, "watch stream {}: {}", s.index, msg)
                  .With("stream", static_cast<int64_t>(s.index))
                  .With("last_rev", s.checker.Last()));
  };
  bool connected_before = false;
  Duration delay = kBackoff;
  std::array<char, 16 * 1024> buf{};
  std::vector<WatchLine> lines;
  while (!stopping_) {
    bool failed = false;     // back off before the next connect
    bool compacted = false;  // the stream cannot continue: give up
    sock.emplace(ex_);
    sock->expires_after(connect_timeout_);
    auto [cec] = co_await sock->async_connect(ep, kTuple);
    if (stopping_) break;
    if (cec) {
      ++s.counts.errors;
      log(Level::kWarn, "load.watch_error", "connect: " + cec.message());
      failed = true;
    } else {
      if (connected_before) ++s.counts.reconnects;
      connected_before = true;
      if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
        error_code ignored;
        sock->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
      }
      const std::string req = fmt::format(
          "GET /watch?from={} HTTP/1.1\r\nHost: {}\r\nUser-Agent: baton-load\r\nAccept: application/x-ndjson\r\n\r\n",
          s.checker.Next(), target_.HostHeader());
      auto [wec, written] = co_await asio::async_write(*sock, asio::buffer(req), kTuple);
      (void)written;
      if (stopping_) break;
      if (wec) {
        ++s.counts.errors;
        log(Level::kWarn, "load.watch_error", "send: " + wec.message());
        failed = true;
      }
    }
    if (!failed) {
      // A watch may be quiet for as long as nobody writes: no read deadline.
      sock->expires_never();
      WatchResponseParser parser;
      for (;;) {
        auto [rec, got] = co_await sock->async_read_some(asio::buffer(buf), kTuple);
        if (stopping_) break;
        lines.clear();
        if (rec) {
          if (!parser.FinishAtEof(lines)) {
            if (parser.HeadersDone() && parser.status() == 200) {
              ++s.counts.resets;
              log(Level::kWarn, "load.watch_reset", "connection lost mid-stream: " + rec.message());
            } else {
              ++s.counts.errors;
              log(Level::kWarn, "load.watch_error", "connection lost before the answer: " + rec.message());
            }
            failed = true;
            break;
          }
        } else if (auto st = parser.Feed(std::string_view(buf.data(), got), lines); !st) {
          ++s.counts.errors;
          log(Level::kWarn, "load.watch_error", st.error().message);
          failed = true;
          break;
        }
        if (parser.status() == 200) delay = kBackoff;
        for (const WatchLine& l : lines) {
          if (l.kind == WatchLine::Kind::kCompacted) {
            compacted = true;
          } else if (parser.status() != 200) {
            // judged below, with the status
          } else if (l.kind == WatchLine::Kind::kEvent) {
            const uint64_t gaps = s.counts.gaps;
            const uint64_t dups = s.counts.duplicates;
            const uint64_t expected = s.checker.Next();
            s.checker.OnEvent(l.rev, s.counts);
            if (s.counts.gaps != gaps) {
              log(Level::kWarn, "load.watch_gap", fmt::format("rev {} where {} was expected", l.rev, expected));
            } else if (s.counts.duplicates != dups) {
              log(Level::kWarn, "load.watch_duplicate", fmt::format("rev {} again (expected {})", l.rev, expected));
            }
          } else {
            ++s.counts.errors;
            log(Level::kWarn, "load.watch_error", "a line that is neither an event nor an error");
          }
        }
        if (parser.Done()) {
          if (parser.status() == 200) {
            ++s.counts.server_ends;
            if (parser.Pending() != 0) {
              ++s.counts.errors;
              log(Level::kWarn, "load.watch_error", "the stream ended inside a line");
            }
            log(Level::kInfo, "load.watch_end", "the server ended the stream");
          } else if (!compacted) {
            ++s.counts.errors;
            log(Level::kWarn, "load.watch_error",
                fmt::format("status {}: {}", parser.status(), parser.ErrorBody().substr(0, 200)));
            failed = true;
          }
          break;
        }
      }
    }
    if (stopping_) break;
    error_code ignored;
    sock->socket().close(ignored);
    if (compacted) {
      ++s.counts.compacted;
      log(Level::kWarn, "load.watch_compacted",
          fmt::format("from={} is compacted away; stream given up", s.checker.Next()));
      break;
    }
    if (failed) {
      backoff.expires_after(delay);
      co_await backoff.async_wait(kTuple);
      delay = std::min<Duration>(2 * delay, kMaxBackoff);
    }
  }
  s.close = nullptr;
  s.ended = true;
}

asio::awaitable<void> WatchStreams::FinishAt(uint64_t target_rev, TimePoint deadline) {
  const Clock& clock = RealClock();
  asio::steady_timer timer(ex_);
  while (target_rev > 0 && clock.Now() < deadline) {
    const bool all = std::all_of(streams_.begin(), streams_.end(),
                                 [target_rev](const auto& s) { return s->ended || s->checker.Last() >= target_rev; });
    if (all) break;
    timer.expires_after(kPollInterval);
    co_await timer.async_wait(kTuple);
  }
  stopping_ = true;
  for (auto& s : streams_) {
    if (s->close) s->close();
  }
}

WatchReport WatchStreams::Report(uint64_t target_rev, bool checked) const {
  WatchReport r;
  r.streams = static_cast<int>(streams_.size());
  r.from = from_;
  r.last_acked_rev = target_rev;
  r.checked = checked;
  bool first = true;
  for (const auto& s : streams_) {
    r.counts.Add(s->counts);
    const uint64_t last = s->checker.Last();
    r.min_last_rev = first ? last : std::min(r.min_last_rev, last);
    first = false;
    if (checked && last < target_rev) ++r.behind;
  }
  return r;
}

asio::awaitable<Result<uint64_t>> ReadRevision(const Target& target, Duration timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto http = MakeHttpConnection(ex, target, false);
  std::string path = "/healthz";
  std::string body;
  const TimePoint deadline = RealClock().Now() + timeout;
  const beast::http::verb verb = beast::http::verb::get;
  Exchange res = co_await http->RoundTrip(verb, std::move(path), std::move(body), deadline);
  if (res.error) co_return Error(Errc::kUnavailable, "GET /healthz: " + res.detail);
  constexpr std::string_view kRevision = "\"revision\":";
  const auto at = res.body.find(kRevision);
  uint64_t rev = 0;
  if (res.status == 200 && at != std::string::npos) {
    const char* begin = res.body.data() + at + kRevision.size();
    const char* end = res.body.data() + res.body.size();
    auto [p, ec] = std::from_chars(begin, end, rev);
    if (ec == std::errc() && p != begin) co_return rev;
  }
  co_return Error(Errc::kProtocolError,
                  fmt::format("GET /healthz: status {}, no \"revision\" in '{}'", res.status, res.body.substr(0, 200)));
}

}  // namespace baton::load
