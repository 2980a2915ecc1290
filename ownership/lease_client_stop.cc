// LeaseClient's way out: handing the lease to a standby elsewhere (on Stop,
// or when an operator asks), releasing it, withdrawing a candidacy.
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "ownership/lease_client.h"

namespace baton::ownership {

namespace asio = boost::asio;

void LeaseClient::Stop(TimePoint deadline, std::function<void()> done) {
  if (!started_) {
    done();
    return;
  }
  asio::post(ex_, [this, deadline, done = std::move(done)]() mutable {
    if (stopping_) {
      done();  // already stopped: nothing runs commands any more
      return;
    }
    commands_.push_back([this, deadline, done = std::move(done)]() -> asio::awaitable<void> {
      co_await StopNow(deadline);
      done();
    });
    wake_.cancel();
  });
}

asio::awaitable<void> LeaseClient::HandOver(std::string target, TimePoint deadline, bool release_if_none) {
  const Holding me = *holding_;
  // Stop acting as leader before the UPDATE can commit: our interval and
  // the candidate's never overlap.
  EndLeadership(target.empty() ? "stopping" : fmt::format("handover to {} asked for", target), clock_.Now(),
                target.empty() ? LeaseEndReason::kStopped : LeaseEndReason::kHandedOver);
  // The end may have taken a while (the observer stops the leader's work):
  // an asked-for handover (no deadline) gets its op timeout from now.
  const TimePoint limit = deadline == TimePoint{} ? clock_.Now() + cfg_.op_timeout : OpDeadline(deadline);
  auto r = co_await store_.Handover(cfg_.name, me, std::move(target), cfg_.ttl, release_if_none, limit);
  if (r && *r && !(*r)->to.empty()) {
    Emit(Level::kInfo, "lease.handed_over",
         fmt::format("lease '{}' handed to the standby {} at epoch {}", cfg_.name, (*r)->to, (*r)->epoch), (*r)->epoch,
         clock_.Now());
  } else if (r && *r) {
    Emit(Level::kInfo, "lease.released", fmt::format("lease '{}' released (no live standby)", cfg_.name), (*r)->epoch,
         clock_.Now());
  } else if (r && !release_if_none) {
    // The candidate went away, or the lease moved on: keep holding if it
    // is still ours (the next renew tells), as a leader again then.
    mode_ = Mode::kHolding;
    next_op_ = clock_.Now();
    co_return;
  }
  holding_.reset();
  maybe_held_ = !r;  // unknown outcome: the row may still name us
  mode_ = Mode::kCampaign;
  next_op_ = clock_.Now() + cfg_.poll_interval;
}

asio::awaitable<void> LeaseClient::StopNow(TimePoint deadline) {
  if (holding_) {
    // Best effort: a standby elsewhere holds it after one NOTIFY (or, with
    // none, takes it at once) instead of after the TTL.
    co_await HandOver(std::string(), deadline, true);
  } else if (maybe_held_ || store_.connected()) {
    // Nothing held that we know of, but a row may name us at an epoch we
    // never learned: an acquire whose outcome is unknown, or a transfer to
    // us (a successor) never confirmed because the handoff stopped. Our
    // holder id is ours alone and we are not acting, so releasing whatever
    // it holds is safe, and a standby need not wait for the TTL.
    // Named, not a temporary inside co_await: GCC 12 destroys such
    // temporaries twice in a branch of a coroutine.
    Holding any_of_ours{cfg_.holder_id, 0};
    auto r = co_await store_.Release(cfg_.name, std::move(any_of_ours), OpDeadline(deadline));
    if (r && *r) {
      Emit(Level::kInfo, "lease.released", fmt::format("lease '{}' released (held under our id unconfirmed)", cfg_.name),
           **r, clock_.Now());
    } else if (!r) {
      Emit(Level::kWarn, "lease.error",
           fmt::format("lease '{}' not released at stop ({}); a row naming us expires after its TTL", cfg_.name,
                       r.error().message),
           0, clock_.Now());
    }
  }
  if (candidate_ && store_.connected()) {
    // A standby that goes away is no candidate for a handover any more.
    // Best effort: a candidacy left behind lapses a TTL after our last poll.
    if (auto st = co_await store_.Unregister(cfg_.name, cfg_.holder_id, OpDeadline(deadline)); !st) {
      Emit(Level::kDebug, "lease.error", st.error().message, 0, clock_.Now());
    }
  }
  candidate_ = false;
  maybe_held_ = false;
  mode_ = Mode::kIdle;
  stopping_ = true;
  store_.Close();
}

}  // namespace baton::ownership
