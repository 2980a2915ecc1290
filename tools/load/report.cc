#include "tools/load/report.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

#include "base/log.h"

namespace baton::load {
namespace {

// Two significant-ish digits, as a person reads latencies: 0.21, 1.3, 12, 250.
std::string Ms(double ms) {
  if (!std::isfinite(ms) || ms < 0) ms = 0;
  if (ms >= 10) return fmt::format("{:.0f}", ms);
  if (ms >= 1) return fmt::format("{:.1f}", ms);
  return fmt::format("{:.2f}", ms);
}

// JSON numbers must be finite.
double Finite(double v) { return std::isfinite(v) ? v : 0.0; }

}  // namespace

std::string FormatHuman(const LoadReport& r) {
  const double rate = r.duration_s > 0 ? static_cast<double>(r.requests) / r.duration_s : 0.0;
  std::string out = fmt::format(
      "requests {} (writes {}, reads {}) in {:.1f} s = {:.0f} req/s; "
      "errors: refused {}, reset {}, timeout {}, non2xx {}, other {}; "
      "lost writes {} of {}",
      r.requests, r.writes_acked, r.reads, r.duration_s, rate, r.errors.refused, r.errors.reset, r.errors.timeout,
      r.errors.non2xx, r.errors.other, r.lost_writes, r.writes_acked);
  if (r.verify_errors > 0) out += fmt::format(" ({} could not be read back)", r.verify_errors);
  fmt::format_to(std::back_inserter(out), "; latency p50 {} ms p99 {} ms max {} ms",
                 Ms(static_cast<double>(r.p50_us) / 1000.0), Ms(static_cast<double>(r.p99_us) / 1000.0),
                 Ms(static_cast<double>(r.max_us) / 1000.0));
  fmt::format_to(std::back_inserter(out), "; longest write gap {} ms", Ms(r.write_gap_max_ms));
  if (r.mode == "keepalive") {
    fmt::format_to(std::back_inserter(out), "; connections closed by the server {}, reconnects {}", r.server_closed,
                   r.reconnects);
  }
  if (r.idle_connections > 0) {
    fmt::format_to(std::back_inserter(out), "; {} of them idle between bursts", r.idle_connections);
  }
  if (r.watch.streams > 0) {
    const WatchReport& w = r.watch;
    const WatchCounts& c = w.counts;
    fmt::format_to(std::back_inserter(out),
                   "; watch {} streams from rev {}: events {}, gaps {}, duplicates {}, resets {}, server ends {}, "
                   "compacted {}, reconnects {}, errors {}, {}",
                   w.streams, w.from, c.events, c.gaps, c.duplicates, c.resets, c.server_ends, c.compacted,
                   c.reconnects, c.errors, w.Continuous() ? "continuous" : "NOT continuous");
    if (c.first_gap_rev != 0) fmt::format_to(std::back_inserter(out), " (first gap at rev {})", c.first_gap_rev);
    if (c.first_duplicate_rev != 0) {
      fmt::format_to(std::back_inserter(out), " (first duplicate rev {})", c.first_duplicate_rev);
    }
    if (w.checked) {
      fmt::format_to(std::back_inserter(out), ", {} behind the last acked rev {}", w.behind, w.last_acked_rev);
    }
  }
  return out;
}

std::string FormatJson(const LoadReport& r) {
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "{{\"target\":{},\"mode\":{},\"connections\":{},\"duration_s\":{:.3f},", JsonQuote(r.target),
                 JsonQuote(r.mode), r.connections, Finite(r.duration_s));
  fmt::format_to(it,
                 "\"requests\":{},\"writes_acked\":{},\"reads\":{},\"writes_unknown\":{},"
                 "\"read_mismatches\":{},\"reconnects\":{},\"server_closed\":{},",
                 r.requests, r.writes_acked, r.reads, r.writes_unknown, r.read_mismatches, r.reconnects,
                 r.server_closed);
  fmt::format_to(it,
                 "\"errors\":{{\"refused\":{},\"reset\":{},\"timeout\":{},\"non2xx\":{},"
                 "\"other\":{}}},\"errors_total\":{},",
                 r.errors.refused, r.errors.reset, r.errors.timeout, r.errors.non2xx, r.errors.other, r.errors.Total());
  fmt::format_to(it, "\"lost_writes\":{},\"verify_errors\":{},\"verified\":{},\"verify_s\":{:.3f},", r.lost_writes,
                 r.verify_errors, r.verified, Finite(r.verify_s));
  fmt::format_to(it, "\"latency_us\":{{\"p50\":{},\"p99\":{},\"max\":{}}},", r.p50_us, r.p99_us, r.max_us);
  fmt::format_to(it, "\"write_gap_ms\":{{\"max\":{:.3f},\"top\":[", Finite(r.write_gap_max_ms));
  for (std::size_t i = 0; i < r.write_gaps.size(); ++i) {
    fmt::format_to(it, "{}{{\"at_ms\":{:.3f},\"gap_ms\":{:.3f}}}", i ? "," : "", Finite(r.write_gaps[i].at_ms),
                   Finite(r.write_gaps[i].gap_ms));
  }
  out += "]},\"timeline\":[";
  for (std::size_t i = 0; i < r.timeline.size(); ++i) {
    const auto& s = r.timeline[i];
    fmt::format_to(it, "{}{{\"t\":{},\"requests\":{},\"errors\":{},\"p99_us\":{}}}", i ? "," : "", i, s.requests,
                   s.errors, s.p99_us);
  }
  out += "]";
  if (r.gaps_logged) {
    fmt::format_to(it, ",\"gaps_over_ms\":{:.3f},\"gaps_dropped\":{},\"gaps\":[", Finite(r.gaps_over_ms),
                   r.gaps_dropped);
    for (std::size_t i = 0; i < r.gaps.size(); ++i) {
      fmt::format_to(it, "{}{{\"start_mono_ms\":{:.3f},\"gap_ms\":{:.3f}}}", i ? "," : "",
                     Finite(r.gaps[i].start_mono_ms), Finite(r.gaps[i].gap_ms));
    }
    out += "]";
  }
  if (r.idle_connections > 0) fmt::format_to(it, ",\"idle_connections\":{}", r.idle_connections);
  if (r.watch.streams > 0) {
    const WatchReport& w = r.watch;
    const WatchCounts& c = w.counts;
    fmt::format_to(it,
                   ",\"watch\":{{\"streams\":{},\"from\":{},\"events\":{},\"gaps\":{},\"duplicates\":{},"
                   "\"resets\":{},\"server_ends\":{},\"compacted\":{},\"reconnects\":{},\"errors\":{},"
                   "\"first_gap_rev\":{},\"first_duplicate_rev\":{},\"last_acked_rev\":{},\"checked\":{},"
                   "\"behind\":{},\"min_last_rev\":{},\"continuous\":{}}}",
                   w.streams, w.from, c.events, c.gaps, c.duplicates, c.resets, c.server_ends, c.compacted,
                   c.reconnects, c.errors, c.first_gap_rev, c.first_duplicate_rev, w.last_acked_rev,
                   w.checked ? "true" : "false", w.behind, w.min_last_rev, w.Continuous() ? "true" : "false");
  }
  fmt::format_to(it, ",\"ok\":{}}}", r.Clean() ? "true" : "false");
  return out;
}

}  // namespace baton::load
