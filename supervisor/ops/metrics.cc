#include "supervisor/ops/metrics.h"

#include <fmt/format.h>

#include "supervisor/notify_message.h"

namespace baton::supervisor {
namespace {

int64_t IntField(const Event& e, std::string_view key) {
  const FieldValue* v = e.Get(key);
  if (v == nullptr) return 0;
  if (const auto* i = std::get_if<int64_t>(v)) return *i;
  if (const auto* u = std::get_if<uint64_t>(v)) return static_cast<int64_t>(*u);
  return 0;
}

// Label values: escape backslash, quote and newline (exposition format).
std::string LabelValue(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void Metrics::Histogram::Observe(double seconds) {
  ++count;
  sum += seconds;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++buckets[i];
      return;
    }
  }
}

void Metrics::OnEvent(const Event& e, int64_t wall_ms) {
  if (e.name == "handoff.start") {
    in_progress_ = true;
  } else if (e.name == "handoff.phase") {
    phases_[e.GetString("phase")].Observe(static_cast<double>(IntField(e, "duration_us")) / 1e6);
  } else if (e.name == "handoff.end") {
    const std::string outcome = e.GetString("outcome");
    ++handoffs_[outcome];
    handoff_duration_.Observe(static_cast<double>(IntField(e, "total_us")) / 1e6);
    in_progress_ = false;
    last_handoff_ms_ = wall_ms;
    if (outcome == "committed") ++generation_;
  } else if (e.name == "handoff.refused") {
    ++handoffs_["refused"];
  } else if (e.name == "child.spawn") {
    if (e.GetString("role") == "cold") ++generation_;
  } else if (e.name == "child.restart") {
    ++restarts_;
  } else if (e.name == "child.exit") {
    ++child_exits_;
  } else if (e.name == "notify.rejected") {
    ++notify_rejected_[e.GetString("kind")];
  } else if (e.name == "revert") {
    ++reverts_[e.GetString("check")];
  } else if (e.name == "handoff.not_ready") {
    not_ready_.Observe(static_cast<double>(IntField(e, "duration_us")) / 1e6);
  }
}

void Metrics::RenderHistogram(std::string& out, const std::string& name, const std::string& labels,
                              const Histogram& h) {
  uint64_t cumulative = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += h.buckets[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, kBuckets[i], cumulative);
  }
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, h.count);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n", name, braces, h.sum);
  out += fmt::format("{}_count{} {}\n", name, braces, h.count);
}

std::string Metrics::Render() const {
  std::string out;
  out += "# HELP baton_info The supervised service.\n# TYPE baton_info gauge\n";
  out += fmt::format("baton_info{{service=\"{}\"}} 1\n", LabelValue(service_));
  out += "# HELP baton_listener_info A listener the supervisor owns and passes to every generation (the address as "
         "bound: port 0 resolved).\n# TYPE baton_listener_info gauge\n";
  for (const std::string& l : listeners_) {
    const size_t eq = l.find('=');
    const std::string_view name = std::string_view(l).substr(0, eq);
    const std::string_view address = eq == std::string::npos ? std::string_view() : std::string_view(l).substr(eq + 1);
    const size_t colon = address.find(':');  // tcp://, udp://, unix:
    out += fmt::format("baton_listener_info{{name=\"{}\",transport=\"{}\",address=\"{}\"}} 1\n", LabelValue(name),
                       LabelValue(address.substr(0, colon)), LabelValue(address));
  }
  out += "# HELP baton_handoffs_total Handoffs (upgrade requests) by outcome.\n# TYPE baton_handoffs_total counter\n";
  for (const char* o : {"committed", "rolled_back", "refused", "failed"}) {
    auto it = handoffs_.find(o);
    out += fmt::format("baton_handoffs_total{{outcome=\"{}\"}} {}\n", o, it == handoffs_.end() ? 0 : it->second);
  }
  out += "# HELP baton_handoff_phase_seconds Duration of each handoff phase.\n"
         "# TYPE baton_handoff_phase_seconds histogram\n";
  for (const auto& [phase, h] : phases_) {
    RenderHistogram(out, "baton_handoff_phase_seconds", fmt::format("phase=\"{}\"", LabelValue(phase)), h);
  }
  out += "# HELP baton_handoff_seconds Duration of whole handoffs (any outcome).\n"
         "# TYPE baton_handoff_seconds histogram\n";
  RenderHistogram(out, "baton_handoff_seconds", "", handoff_duration_);
  out += "# HELP baton_generation Generations that have served (cold starts and committed handoffs).\n"
         "# TYPE baton_generation gauge\n";
  out += fmt::format("baton_generation {}\n", generation_);
  out += "# HELP baton_handoff_in_progress 1 while a handoff runs.\n# TYPE baton_handoff_in_progress gauge\n";
  out += fmt::format("baton_handoff_in_progress {}\n", in_progress_ ? 1 : 0);
  out += "# HELP baton_restarts_total Restarts of the daemon after it died outside a handoff.\n"
         "# TYPE baton_restarts_total counter\n";
  out += fmt::format("baton_restarts_total {}\n", restarts_);
  out += "# HELP baton_reverts_total Reverts to the previous pinned binary, by the check that failed.\n"
         "# TYPE baton_reverts_total counter\n";
  for (const char* r : {"exit", "heartbeat", "health", "probe", "crash_loop", "operator"}) {
    auto it = reverts_.find(r);
    out += fmt::format("baton_reverts_total{{reason=\"{}\"}} {}\n", r, it == reverts_.end() ? 0 : it->second);
  }
  out += "# HELP baton_child_exits_total Exits of daemon processes (any generation, any reason).\n"
         "# TYPE baton_child_exits_total counter\n";
  out += fmt::format("baton_child_exits_total {}\n", child_exits_);
  out += "# HELP baton_notify_rejected_total Notify datagrams (or parts) refused, by kind (docs/unmodified.md).\n"
         "# TYPE baton_notify_rejected_total counter\n";
  for (auto kind : kAllNotifyRejects) {
    auto it = notify_rejected_.find(std::string(NotifyRejectName(kind)));
    out += fmt::format("baton_notify_rejected_total{{kind=\"{}\"}} {}\n", NotifyRejectName(kind),
                       it == notify_rejected_.end() ? 0 : it->second);
  }
  out += "# HELP baton_handoff_not_ready_seconds Sequential handoffs of a notify daemon: how long the service was "
         "not ready.\n# TYPE baton_handoff_not_ready_seconds histogram\n";
  RenderHistogram(out, "baton_handoff_not_ready_seconds", "", not_ready_);
  out += "# HELP baton_last_handoff_timestamp_seconds When the last handoff ended (0: none yet).\n"
         "# TYPE baton_last_handoff_timestamp_seconds gauge\n";
  out += fmt::format("baton_last_handoff_timestamp_seconds {:.3f}\n", static_cast<double>(last_handoff_ms_) / 1000.0);
  return out;
}

}  // namespace baton::supervisor
