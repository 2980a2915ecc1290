#include "protocol/liveness.h"

#include <algorithm>

namespace baton::protocol {

Liveness::Liveness(LivenessOptions opts, TimePoint now)
    : opts_(opts), last_received_(now), last_sent_(now) {}

Liveness::Tick Liveness::Poll(TimePoint now) const {
  Tick t;
  const TimePoint silent_at = last_received_ + opts_.liveness_timeout;
  if (now >= silent_at) {
    t.peer = PeerState::kSilent;
    t.next_deadline = now;
    return t;
  }
  if (write_started_ && now >= *write_started_ + opts_.send_timeout) {
    t.peer = PeerState::kSendStuck;
    t.next_deadline = now;
    return t;
  }
  if (write_started_) {
    // While a write is pending a heartbeat would only queue behind it; the
    // send timeout is what matters.
    t.next_deadline = std::min(silent_at, *write_started_ + opts_.send_timeout);
    return t;
  }
  TimePoint heartbeat_at = last_sent_ + opts_.heartbeat_interval;
  if (now >= heartbeat_at) {
    t.send_heartbeat = true;
    heartbeat_at = now + opts_.heartbeat_interval;
  }
  t.next_deadline = std::min(silent_at, heartbeat_at);
  return t;
}

}  // namespace baton::protocol
