// Accumulates the load phase: every judged request goes through Record(),
// which feeds the latency histogram, the write-gap tracker, the timeline and
// the counters. Pure and single-threaded (the io_context thread).
#pragma once

#include <cstdint>
#include <optional>

#include "base/clock.h"
#include "tools/load/outcome.h"
#include "tools/load/report.h"
#include "tools/load/stats.h"

namespace baton::load {

class LoadRecorder {
 public:
  // `gaps_over`: also log every write gap longer than this (LoadReport::gaps).
  explicit LoadRecorder(TimePoint start, std::optional<Duration> gaps_over = std::nullopt)
      : start_(start), gaps_(start), timeline_(start) {
    if (gaps_over) gaps_.LogGapsOver(*gaps_over);
  }

  // One finished request: `started` when it was issued, `done` when its
  // outcome was known.
  void Record(bool write, const Outcome& o, TimePoint started, TimePoint done);
  // HttpConnection::Reconnects and ServerCloses of one connection.
  void AddReconnects(uint64_t n) { reconnects_ += n; }
  void AddServerCloses(uint64_t n) { server_closed_ += n; }

  uint64_t Requests() const { return requests_; }
  const ErrorCounts& Errors() const { return errors_; }

  // Fills the load-phase fields of `r` (not target/mode/connections nor the
  // verification results). `end` closes the load phase.
  void Fill(LoadReport& r, TimePoint end) const;

 private:
  TimePoint start_;
  LatencyHistogram latency_;
  GapTracker gaps_;
  Timeline timeline_;
  ErrorCounts errors_;
  uint64_t requests_ = 0;
  uint64_t writes_acked_ = 0;
  uint64_t reads_ = 0;
  uint64_t writes_unknown_ = 0;
  uint64_t read_mismatches_ = 0;
  uint64_t reconnects_ = 0;
  uint64_t server_closed_ = 0;
};

}  // namespace baton::load
