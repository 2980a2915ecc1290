// Metrics across a self-upgrade's exec (docs/design.md §15): the counters
// and histograms as supervisor/self_state.proto's MetricsState.
#include "supervisor/ops/metrics.h"
#include "supervisor/self_state.pb.h"

namespace baton::supervisor {
namespace {

template <typename H>
void SaveHistogram(const H& h, selfstate::v1::Histogram* out) {
  for (uint64_t b : h.buckets) out->add_buckets(b);
  out->set_count(h.count);
  out->set_sum(h.sum);
}

template <typename H>
void LoadHistogram(const selfstate::v1::Histogram& in, H& h) {
  h = H{};
  for (int i = 0; i < in.buckets_size() && static_cast<size_t>(i) < h.buckets.size(); ++i) h.buckets[i] = in.buckets(i);
  h.count = in.count();
  h.sum = in.sum();
}

}  // namespace

std::string Metrics::Save() const {
  selfstate::v1::MetricsState s;
  for (const auto& [k, v] : handoffs_) (*s.mutable_handoffs())[k] = v;
  for (const auto& [k, h] : phases_) SaveHistogram(h, &(*s.mutable_phases())[k]);
  SaveHistogram(handoff_duration_, s.mutable_handoff_duration());
  s.set_generation(generation_);
  s.set_restarts(restarts_);
  s.set_child_exits(child_exits_);
  s.set_last_handoff_ms(last_handoff_ms_);
  for (const auto& [k, v] : reverts_) (*s.mutable_reverts())[k] = v;
  for (const auto& [k, v] : notify_rejected_) (*s.mutable_notify_rejected())[k] = v;
  SaveHistogram(not_ready_, s.mutable_not_ready());
  return s.SerializeAsString();
}

void Metrics::Load(const std::string& bytes) {
  selfstate::v1::MetricsState s;
  if (!s.ParseFromString(bytes)) return;
  handoffs_ = {s.handoffs().begin(), s.handoffs().end()};
  phases_.clear();
  for (const auto& [k, h] : s.phases()) LoadHistogram(h, phases_[k]);
  LoadHistogram(s.handoff_duration(), handoff_duration_);
  generation_ = s.generation();
  restarts_ = s.restarts();
  child_exits_ = s.child_exits();
  last_handoff_ms_ = s.last_handoff_ms();
  reverts_ = {s.reverts().begin(), s.reverts().end()};
  notify_rejected_ = {s.notify_rejected().begin(), s.notify_rejected().end()};
  LoadHistogram(s.not_ready(), not_ready_);
}

}  // namespace baton::supervisor
