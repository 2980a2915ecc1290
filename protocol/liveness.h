// The pure heartbeat / liveness / send-timeout policy of one control channel.
// No I/O and no clock reads: the caller passes `now` and arms one timer for
// the returned deadline. Channel drives it; tests drive it with a FakeClock.
#pragma once

#include <optional>

#include "base/clock.h"

namespace baton::protocol {

struct LivenessOptions {
  Duration heartbeat_interval = seconds(1);  // send something at least this often
  Duration liveness_timeout = seconds(5);    // no frame from the peer for this long = dead
  Duration send_timeout = seconds(5);        // a write pending this long = dead peer
};

enum class PeerState { kAlive, kSilent, kSendStuck };

class Liveness {
 public:
  Liveness(LivenessOptions opts, TimePoint now);

  void OnFrameReceived(TimePoint now) { last_received_ = now; }
  void OnFrameSent(TimePoint now) { last_sent_ = now; }
  void OnWriteStarted(TimePoint now) {
    if (!write_started_) write_started_ = now;
  }
  void OnWriteCompleted(TimePoint now) {
    write_started_.reset();
    last_sent_ = now;
  }

  struct Tick {
    bool send_heartbeat = false;     // the caller should send a Heartbeat now
    PeerState peer = PeerState::kAlive;
    TimePoint next_deadline;         // when to call Poll() again
  };
  // What is due at `now`. Idempotent for a fixed `now` apart from the
  // heartbeat: after send_heartbeat the caller reports OnWriteStarted/Sent.
  Tick Poll(TimePoint now) const;

  const LivenessOptions& options() const { return opts_; }

 private:
  LivenessOptions opts_;
  TimePoint last_received_;
  TimePoint last_sent_;
  std::optional<TimePoint> write_started_;
};

}  // namespace baton::protocol
