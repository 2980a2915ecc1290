#include "tools/load/recorder.h"

#include <chrono>

namespace baton::load {
namespace {

double ToMs(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

void LoadRecorder::Record(bool write, const Outcome& o, TimePoint started, TimePoint done) {
  ++requests_;
  if (o.write_unknown) ++writes_unknown_;
  if (o.read_mismatch) ++read_mismatches_;
  if (o.error) {
    errors_.Add(*o.error);
    timeline_.RecordError(done);
    return;
  }
  const auto elapsed = done < started ? Duration::zero() : done - started;
  const auto us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
  latency_.Record(us);
  timeline_.RecordSuccess(done, us);
  if (write) {
    ++writes_acked_;
    gaps_.RecordAck(done);
  } else {
    ++reads_;
  }
}

void LoadRecorder::Fill(LoadReport& r, TimePoint end) const {
  r.duration_s = std::chrono::duration<double>(end < start_ ? Duration::zero() : end - start_).count();
  r.requests = requests_;
  r.writes_acked = writes_acked_;
  r.reads = reads_;
  r.writes_unknown = writes_unknown_;
  r.read_mismatches = read_mismatches_;
  r.reconnects = reconnects_;
  r.server_closed = server_closed_;
  r.errors = errors_;
  r.p50_us = latency_.Percentile(0.50);
  r.p99_us = latency_.Percentile(0.99);
  r.max_us = latency_.Max();
  r.write_gap_max_ms = ToMs(gaps_.Max());
  r.write_gaps.clear();
  for (const auto& g : gaps_.Top()) r.write_gaps.push_back({ToMs(g.at), ToMs(g.length)});
  r.timeline = timeline_.Seconds();
  r.gaps_logged = gaps_.Logging();
  r.gaps.clear();
  if (r.gaps_logged) {
    r.gaps_over_ms = ToMs(gaps_.LogThreshold());
    r.gaps_dropped = gaps_.LoggedDropped();
    r.gaps.reserve(gaps_.Logged().size());
    for (const auto& g : gaps_.Logged()) r.gaps.push_back({ToMs(g.start.time_since_epoch()), ToMs(g.length)});
  }
}

}  // namespace baton::load
