// Prometheus metrics of the supervisor, derived only from its structured
// events (the same facts the CLI and events.jsonl see): handoffs by outcome,
// phase and handoff duration histograms, the current generation, restarts,
// child exits and the last handoff's wall-clock time. Render() produces the
// text exposition format (version 0.0.4) served by `baton metrics` and
// --metrics-listen.
//
// Threading: the supervisor's executor only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/log.h"

namespace baton::supervisor {

class Metrics {
 public:
  // Upper bounds (seconds) of the duration histograms.
  static constexpr std::array<double, 16> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                      0.5,   1,      2.5,   5,    10,    30,    120,  300};

  explicit Metrics(std::string service = "") : service_(std::move(service)) {}

  // `wall_ms`: when the event happened, milliseconds since the epoch.
  void OnEvent(const Event& e, int64_t wall_ms);
  std::string Render() const;
  // The supervisor's listeners, "NAME=ADDRESS" as Supervisor::Addresses()
  // gives them (fixed for its life; a self-upgrade's new image sets them
  // again): one baton_listener_info series each.
  void SetListeners(std::vector<std::string> listeners) { listeners_ = std::move(listeners); }
  // The counters carried across a self-upgrade's exec (metrics_state.cc):
  // a serialised selfstate::v1::MetricsState, and back.
  std::string Save() const;
  void Load(const std::string& bytes);

 private:
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};  // non-cumulative
    uint64_t count = 0;
    double sum = 0;
    void Observe(double seconds);
  };
  static void RenderHistogram(std::string& out, const std::string& name, const std::string& labels,
                              const Histogram& h);

  std::string service_;
  std::map<std::string, uint64_t> handoffs_;  // outcome -> count
  std::map<std::string, Histogram> phases_;   // phase -> durations
  Histogram handoff_duration_;
  uint64_t generation_ = 0;
  uint64_t restarts_ = 0;
  uint64_t child_exits_ = 0;
  bool in_progress_ = false;
  int64_t last_handoff_ms_ = 0;
  std::map<std::string, uint64_t> reverts_;  // by check ("exit", "probe", ...)
  std::map<std::string, uint64_t> notify_rejected_;  // kind -> count
  Histogram not_ready_;
  std::vector<std::string> listeners_;
};

}  // namespace baton::supervisor
