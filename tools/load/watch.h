// baton-load's watch streams (--watches): N long-lived `GET /watch?from=REV`
// responses read alongside the load, each checked for continuity
// (watch_parse.h) and reconnected with from=last+1 after an end or an
// error. Asio driver on the caller's executor; everything runs on the one
// io_context thread. Each stream owns its socket (Asio opens it O_CLOEXEC).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/clock.h"
#include "base/log.h"
#include "tools/load/options.h"
#include "tools/load/report.h"
#include "tools/load/watch_parse.h"

namespace baton::load {

class WatchStreams {
 public:
  // `connect_timeout` bounds each connect and request write (a stream's
  // reads are unbounded: a watch may be quiet). `log` must outlive this.
  WatchStreams(boost::asio::any_io_executor ex, const Target& target, int streams, uint64_t from,
               Duration connect_timeout, LogSink& log);
  ~WatchStreams();
  WatchStreams(const WatchStreams&) = delete;
  WatchStreams& operator=(const WatchStreams&) = delete;

  // Spawns the streams; `on_done` gets each one's exception (nullptr when it
  // ended normally), once per stream.
  void Start(const std::function<void(std::exception_ptr)>& on_done);

  // Waits until every stream that is still going has received `target_rev`
  // (0: do not wait) or `deadline` passed, then stops every stream (closes
  // its connection). The streams' coroutines end soon after.
  boost::asio::awaitable<void> FinishAt(uint64_t target_rev, TimePoint deadline);

  // The summed counts. `target_rev`/`checked`: fill the end-of-run check.
  WatchReport Report(uint64_t target_rev, bool checked) const;

  struct Stream;

 private:
  boost::asio::awaitable<void> Run(Stream& s);
  template <class Protocol>
  boost::asio::awaitable<void> RunOn(Stream& s, typename Protocol::endpoint ep);

  boost::asio::any_io_executor ex_;
  Target target_;
  uint64_t from_;
  Duration connect_timeout_;
  LogSink& log_;
  bool stopping_ = false;
  uint64_t logged_ = 0;
  std::vector<std::unique_ptr<Stream>> streams_;
};

// Reads the target's current revision from /healthz ("revision":N).
// Errors: kUnavailable (could not connect or no answer), kProtocolError
// (no revision in the answer).
boost::asio::awaitable<Result<uint64_t>> ReadRevision(const Target& target, Duration timeout);

}  // namespace baton::load
