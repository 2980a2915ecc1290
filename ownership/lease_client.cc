#include "ownership/lease_client.h"

#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <random>
#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace baton::ownership {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Pause between attempts of a call that failed at once (refused connection).
constexpr Duration kRetryPause = milliseconds(50);

int64_t MonoMicros(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

class BootTimeClock final : public Clock {
 public:
  TimePoint Now() const override {
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return TimePoint(std::chrono::duration_cast<Duration>(std::chrono::seconds(ts.tv_sec) +
                                                          std::chrono::nanoseconds(ts.tv_nsec)));
  }
};

}  // namespace

const Clock& BootClock() {
  static const BootTimeClock clock;
  return clock;
}

LeaseClient::LeaseClient(asio::any_io_executor ex, LeaseConfig cfg, const Clock& clock, LogSink& log,
                         const Clock& validity_clock)
    : ex_(ex),
      cfg_(std::move(cfg)),
      clock_(clock),
      validity_(validity_clock),
      log_(log),
      store_(ex, cfg_.conninfo),
      wake_(ex) {}

LeaseClient::~LeaseClient() = default;

uint64_t LeaseClient::epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (held_epoch_ != 0 && validity_.Now() < valid_until_) return held_epoch_;
  return 0;
}

void LeaseClient::Emit(Level level, std::string name, std::string message, uint64_t epoch, TimePoint at) {
  Event e;
  e.level = level;
  e.name = std::move(name);
  e.message = std::move(message);
  e.With("lease", cfg_.name).With("holder", cfg_.holder_id).With("epoch", epoch).With("mono_us", MonoMicros(at));
  log_.Emit(e);
}

void LeaseClient::BecomeLeader(uint64_t epoch, TimePoint valid_sent, std::string_view why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_epoch_ = epoch;
    // Measured from when the statement was sent: the database's expiry is
    // later than that. 2% covers clock rate differences. On the validity
    // clock (boot time), which keeps counting while the host is suspended.
    valid_until_ = valid_sent + cfg_.ttl - cfg_.ttl / 50;
  }
  holding_ = Holding{cfg_.holder_id, epoch};
  standby_noted_ = false;
  maybe_held_ = false;
  offered_epoch_ = 0;
  if (!acting_) {
    acting_ = true;
    Emit(Level::kInfo, "lease.leader_start", fmt::format("leader of '{}' at epoch {} ({})", cfg_.name, epoch, why),
         epoch, clock_.Now());
    if (observer_) observer_(true, epoch, LeaseEndReason::kStopped);
  }
}

void LeaseClient::EndLeadership(std::string_view why, TimePoint at, LeaseEndReason reason) {
  uint64_t epoch = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    epoch = held_epoch_;
    held_epoch_ = 0;
  }
  if (acting_) {
    acting_ = false;
    Emit(Level::kInfo, "lease.leader_end", fmt::format("no longer leader of '{}' ({})", cfg_.name, why), epoch, at);
    if (observer_) observer_(false, epoch, reason);
  }
}

void LeaseClient::NoteLapse(TimePoint now) {
  if (!acting_) return;
  const TimePoint valid_now = validity_.Now();
  TimePoint until;
  uint64_t epoch = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    until = valid_until_;
    epoch = held_epoch_;
  }
  if (valid_now < until) return;
  // epoch() already returns 0; the database may still name us, so a later
  // fenced renew can restore leadership at the same epoch.
  acting_ = false;
  Emit(Level::kWarn, "lease.leader_end", fmt::format("no longer leader of '{}' (local validity lapsed)", cfg_.name),
       epoch, now - (valid_now - until));  // when it lapsed, on the monotonic clock
  if (observer_) observer_(false, epoch, LeaseEndReason::kLapsed);
}

TimePoint LeaseClient::OpDeadline(TimePoint limit) const { return std::min(limit, clock_.Now() + cfg_.op_timeout); }

void LeaseClient::Post(Command c) {
  asio::post(ex_, [this, c = std::move(c)]() mutable {
    commands_.push_back(std::move(c));
    wake_.cancel();
  });
}

void LeaseClient::Start() {
  if (started_) return;
  started_ = true;
  asio::co_spawn(ex_, Loop(), asio::detached);
}

asio::awaitable<void> LeaseClient::Pause(Duration d) {
  asio::steady_timer t(ex_, d);
  co_await t.async_wait(kTuple);
}

asio::awaitable<void> LeaseClient::Loop() {
  while (!stopping_) {
    if (!commands_.empty()) {
      Command c = std::move(commands_.front());
      commands_.pop_front();
      co_await c();
      continue;
    }
    const TimePoint now = clock_.Now();
    NoteLapse(now);
    if (now >= next_op_) {
      if (mode_ == Mode::kHolding) {
        co_await RenewOnce();
        continue;
      }
      if (mode_ == Mode::kCampaign) {
        co_await AcquireOnce();
        continue;
      }
      if (mode_ == Mode::kResolve) {
        co_await ResolveOnce(clock_.Now() + cfg_.op_timeout);
        continue;
      }
    }
    // Only a standby looks at notifications; everyone else still receives
    // them with every result (LISTEN stays on, and other leases' changes
    // share the channel), so drop them here or they pile up while holding.
    if (mode_ != Mode::kCampaign) store_.DiscardNotifications();
    TimePoint wake = (mode_ == Mode::kIdle || mode_ == Mode::kPaused) ? now + std::chrono::hours(1) : next_op_;
    if (acting_) {
      std::lock_guard<std::mutex> lock(mu_);
      wake = std::min(wake, now + (valid_until_ - validity_.Now()));
    }
    wake_.expires_at(wake);
    if (mode_ == Mode::kCampaign && listen_pid_ != 0 && listen_pid_ == store_.backend_pid()) {
      // A standby: woken by the holder's NOTIFY, the poll is the backstop.
      auto r = co_await (wake_.async_wait(kTuple) || store_.WaitNotifications(wake));
      if (r.index() == 1) {
        auto& notes = std::get<1>(r);
        if (!notes) {
          listen_pid_ = 0;
        } else {
          for (const auto& n : *notes) {
            // "<name> <epoch> <holder>": wake when the lease is free or handed
            // to us; a change to another holder leaves nothing to try.
            if (n.rfind(cfg_.name + " ", 0) != 0) continue;
            const std::string_view rest = std::string_view(n).substr(cfg_.name.size() + 1);
            const size_t sp = rest.find(' ');
            const std::string_view holder = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
            uint64_t e = 0;
            std::from_chars(rest.data(), rest.data() + std::min(sp, rest.size()), e);
            if (holder == cfg_.holder_id) offered_epoch_ = e;
            if (holder.empty() || holder == cfg_.holder_id) next_op_ = clock_.Now();
          }
        }
      }
    } else {
      co_await wake_.async_wait(kTuple);
    }
  }
}

asio::awaitable<void> LeaseClient::AcquireOnce() {
  const TimePoint t0 = clock_.Now();
  next_op_ = t0 + cfg_.poll_interval;
  if (!schema_ok_) {
    // One-time set-up, off any handoff's critical path: a roomier bound.
    auto st = co_await store_.EnsureSchema(t0 + std::max(cfg_.op_timeout, Duration(seconds(2))));
    if (!st) {
      if (t0 - last_error_log_ >= seconds(5)) {
        last_error_log_ = t0;
        Emit(Level::kWarn, "lease.error", st.error().message, 0, t0);
      }
      next_op_ = t0 + std::min(cfg_.poll_interval, Duration(seconds(1)));
      co_return;
    }
    schema_ok_ = true;
    reached_ = true;
  }
  // Each statement gets its own op timeout: one measured from t0 would be
  // spent already after a slow first schema check, and a LISTEN that fails
  // leaves a standby deaf to NOTIFY until the next poll.
  if (listen_pid_ == 0 || listen_pid_ != store_.backend_pid()) {
    if (auto st = co_await store_.Listen(clock_.Now() + cfg_.op_timeout); st) listen_pid_ = store_.backend_pid();
  }
  if (offered_epoch_ != 0) {
    // The holder handed the lease to us (it stopped acting first): confirm
    // that epoch, a fenced renew, rather than bump it once more.
    const uint64_t offered = offered_epoch_;
    offered_epoch_ = 0;
    const TimePoint sent = clock_.Now();
    const TimePoint valid_sent = validity_.Now();
    Holding h{cfg_.holder_id, offered};
    auto c = co_await store_.Renew(cfg_.name, std::move(h), cfg_.ttl, sent + cfg_.op_timeout);
    if (c && *c) {
      BecomeLeader(**c, valid_sent, "handed over by the previous holder");
      mode_ = Mode::kHolding;
      next_op_ = sent + cfg_.renew_interval;
      co_return;
    }
  }
  const TimePoint sent = clock_.Now();
  const TimePoint valid_sent = validity_.Now();
  auto r = co_await store_.Acquire(cfg_.name, cfg_.holder_id, cfg_.ttl, sent + cfg_.op_timeout);
  if (r && *r) {
    BecomeLeader(**r, valid_sent, "acquired");
    mode_ = Mode::kHolding;
    next_op_ = sent + cfg_.renew_interval;
  } else if (r) {
    maybe_held_ = false;  // the acquire also matches a row under our own id
    // Not listening (LISTEN failed): poll soon rather than stay deaf.
    if (listen_pid_ != store_.backend_pid()) next_op_ = clock_.Now() + std::min(cfg_.poll_interval, Duration(seconds(1)));
    // Held by another process: stand by as a candidate for its handover,
    // live until a TTL after this poll.
    if (auto reg = co_await store_.Register(cfg_.name, cfg_.holder_id, cfg_.ttl, clock_.Now() + cfg_.op_timeout); reg) {
      candidate_ = true;
    } else if (clock_.Now() - last_error_log_ >= seconds(5)) {
      last_error_log_ = clock_.Now();
      Emit(Level::kWarn, "lease.error", reg.error().message, 0, clock_.Now());
    }
    // Say so once per stretch as a standby.
    if (!standby_noted_) {
      standby_noted_ = true;
      Emit(Level::kInfo, "lease.standby", fmt::format("'{}' is held by another process; standing by", cfg_.name), 0,
           clock_.Now());
    }
  } else {
    // It may have committed: the row may name us at an epoch we never saw.
    maybe_held_ = true;
    if (t0 - last_error_log_ >= seconds(5)) {
      last_error_log_ = t0;
      Emit(Level::kWarn, "lease.error", r.error().message, 0, t0);
    }
    next_op_ = clock_.Now() + std::min(cfg_.poll_interval, Duration(seconds(1)));
  }
}

asio::awaitable<void> LeaseClient::RenewOnce() {
  const TimePoint sent = clock_.Now();
  const TimePoint valid_sent = validity_.Now();
  std::string requested;
  auto r = co_await store_.Renew(cfg_.name, *holding_, cfg_.ttl, sent + cfg_.op_timeout, &requested);
  if (mode_ != Mode::kHolding) co_return;
  if (r && *r) {
    BecomeLeader(**r, valid_sent, "renewed");
    next_op_ = sent + cfg_.renew_interval;
    if (!requested.empty()) {
      // An operator asked for a handover to this live candidate
      // (`baton lease transfer`); we stand by afterwards.
      co_await HandOver(requested, TimePoint{}, false);
    }
  } else if (r) {
    // Fenced out: somebody else holds a newer epoch.
    EndLeadership("fenced out: the lease has a newer epoch", clock_.Now(), LeaseEndReason::kLost);
    holding_.reset();
    Emit(Level::kWarn, "lease.lost", "renew refused: the lease has a newer epoch", 0, clock_.Now());
    mode_ = Mode::kCampaign;
    next_op_ = clock_.Now();
  } else {
    Emit(Level::kWarn, "lease.error", r.error().message, holding_->epoch, clock_.Now());
    next_op_ = clock_.Now() + std::min(cfg_.renew_interval / 2, Duration(milliseconds(250)));
  }
}

asio::awaitable<void> LeaseClient::ResolveOnce(TimePoint deadline) {
  const TimePoint sent = clock_.Now();
  const TimePoint valid_sent = validity_.Now();
  auto r = co_await store_.Move(cfg_.name, resolve_a_, resolve_b_, cfg_.holder_id, cfg_.ttl, OpDeadline(deadline));
  if (r && *r) {
    BecomeLeader(**r, valid_sent, "reclaimed");
    mode_ = Mode::kHolding;
    next_op_ = sent + cfg_.renew_interval;
    Emit(Level::kInfo, "lease.reclaimed", fmt::format("lease '{}' is ours again at epoch {}", cfg_.name, **r), **r,
         clock_.Now());
  } else if (r) {
    // Neither holding matches: somebody else took it meanwhile. Stand by.
    Emit(Level::kWarn, "lease.reclaim_refused", "the lease moved on; standing by", 0, clock_.Now());
    mode_ = Mode::kCampaign;
    next_op_ = clock_.Now();
  } else {
    Emit(Level::kWarn, "lease.error", r.error().message, 0, clock_.Now());
    mode_ = Mode::kResolve;
    next_op_ = clock_.Now() + milliseconds(250);
  }
}

void LeaseClient::Open(TimePoint deadline, std::function<void(Status)> done) {
  Post([this, deadline, done = std::move(done)]() -> asio::awaitable<void> {
    auto st = co_await store_.EnsureSchema(OpDeadline(deadline));
    if (st) schema_ok_ = true;
    if (st) reached_ = true;
    done(st);
  });
}

void LeaseClient::Campaign() {
  Post([this]() -> asio::awaitable<void> {
    if (mode_ != Mode::kHolding && mode_ != Mode::kResolve) {
      mode_ = Mode::kCampaign;
      next_op_ = clock_.Now();
    }
    co_return;
  });
}

void LeaseClient::Quiesce(std::function<void()> done) {
  Post([this, done = std::move(done)]() -> asio::awaitable<void> {
    // Any renew that was in flight has returned: commands run between
    // statements. An unresolved earlier transfer keeps resolving: if it
    // resolves to us before Transfer runs, Transfer hands it on.
    if (mode_ != Mode::kResolve) mode_ = holding_ ? Mode::kPaused : Mode::kIdle;
    done();
    co_return;
  });
}

void LeaseClient::Transfer(std::string to, TimePoint deadline, std::function<void(Result<uint64_t>)> done) {
  Post([this, to = std::move(to), deadline, done = std::move(done)]() -> asio::awaitable<void> {
    if (!holding_ && mode_ == Mode::kResolve) {
      // We may or may not hold it: handing over "nothing" could leave N
      // waiting for a TTL, so fail the seal and keep resolving.
      done(Error(Errc::kUnavailable,
                 fmt::format("lease '{}': the outcome of an earlier transfer is not resolved yet", cfg_.name)));
      co_return;
    }
    mode_ = Mode::kIdle;
    if (!holding_ && maybe_held_ && !to.empty()) {
      // An acquire whose outcome we never learned: hand over whatever row
      // names our holder id (ours alone), or learn for sure we hold none.
      holding_ = Holding{cfg_.holder_id, 0};
    }
    if (!holding_ || to.empty()) {
      // Nothing to hand over (a standby, or a successor without a lease).
      if (holding_ && to.empty()) {
        Emit(Level::kWarn, "lease.no_successor_holder", "the successor has no lease holder id; keeping the lease",
             holding_->epoch, clock_.Now());
        mode_ = Mode::kPaused;
      }
      done(uint64_t{0});
      co_return;
    }
    const Holding me = *holding_;
    // Stop acting as leader before the UPDATE can commit: our intervals and
    // the successor's never overlap.
    EndLeadership(fmt::format("transfer to {}", to), clock_.Now(), LeaseEndReason::kHandedOver);
    Holding a = me;
    Holding b = me;
    for (;;) {
      auto r = co_await store_.Move(cfg_.name, a, b, to, cfg_.ttl, OpDeadline(deadline));
      if (r && *r) {
        holding_.reset();
        maybe_held_ = false;
        handed_ = Holding{to, **r};
        Emit(Level::kInfo, "lease.transferred", fmt::format("lease '{}' handed to {} at epoch {}", cfg_.name, to, **r),
             **r, clock_.Now());
        done(**r);
        co_return;
      }
      if (r && me.epoch == 0) {
        // Neither our id nor `to` holds it: the unknown acquire never took
        // (had it, the row would name us, or `to` after an earlier try).
        holding_.reset();
        maybe_held_ = false;
        done(uint64_t{0});
        co_return;
      }
      if (r) {
        holding_.reset();
        maybe_held_ = false;
        mode_ = Mode::kCampaign;
        next_op_ = clock_.Now();
        done(Error(Errc::kFailedPrecondition,
                   fmt::format("lease transfer refused: epoch {} of '{}' is no longer ours", me.epoch, cfg_.name)));
        co_return;
      }
      // Unknown outcome: the UPDATE may have committed. Retry with a CAS that
      // also matches the moved row (bumping it once more), never a SELECT.
      b = Holding{to, me.epoch == 0 ? 0 : me.epoch + 1};
      if (clock_.Now() + kRetryPause >= deadline) {
        holding_.reset();
        maybe_held_ = false;  // kResolve takes it over
        resolve_a_ = me;
        resolve_b_ = b;
        mode_ = Mode::kResolve;
        next_op_ = clock_.Now();
        done(Error(r.error().code, fmt::format("lease transfer within the seal budget: {}", r.error().message)));
        co_return;
      }
      co_await Pause(kRetryPause);
    }
  });
}

void LeaseClient::Confirm(uint64_t epoch, TimePoint deadline, std::function<void(Status)> done) {
  Post([this, epoch, deadline, done = std::move(done)]() -> asio::awaitable<void> {
    const Holding h{cfg_.holder_id, epoch};
    for (;;) {
      const TimePoint sent = clock_.Now();
      const TimePoint valid_sent = validity_.Now();
      auto r = co_await store_.Renew(cfg_.name, h, cfg_.ttl, OpDeadline(deadline));
      if (r && *r) {
        BecomeLeader(**r, valid_sent, "confirmed after a handoff");
        mode_ = Mode::kHolding;
        next_op_ = sent + cfg_.renew_interval;
        done(Status{});
        co_return;
      }
      if (r) {
        done(Error(Errc::kFailedPrecondition,
                   fmt::format("lease confirm: epoch {} of '{}' is not held by {}", epoch, cfg_.name, cfg_.holder_id)));
        co_return;
      }
      if (clock_.Now() + kRetryPause >= deadline) {
        done(Error(r.error().code, fmt::format("lease confirm: {}", r.error().message)));
        co_return;
      }
      co_await Pause(kRetryPause);
    }
  });
}

void LeaseClient::Resume(TimePoint deadline, std::function<void(Status)> done) {
  Post([this, deadline, done = std::move(done)]() -> asio::awaitable<void> {
    if (handed_) {
      // Reverse transfer from the (reaped) successor; also matches a row we
      // already took back (an earlier unknown outcome).
      resolve_a_ = *handed_;
      resolve_b_ = Holding{cfg_.holder_id, handed_->epoch + 1};
      handed_.reset();
      co_await ResolveOnce(deadline);
    } else if (mode_ == Mode::kPaused && holding_) {
      mode_ = Mode::kHolding;
      next_op_ = clock_.Now();
    } else if (mode_ != Mode::kResolve && mode_ != Mode::kHolding) {
      mode_ = Mode::kCampaign;
      next_op_ = clock_.Now();
    }
    done(Status{});
  });
}

}  // namespace baton::ownership
