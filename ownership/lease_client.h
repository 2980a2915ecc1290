// The leader lease of one process (docs/design.md §8): a single actor coroutine on
// the process's executor owns the Postgres connection and runs one
// statement at a time — campaign (acquire, woken by NOTIFY, polled as a
// backstop), renew, and the handoff commands (quiesce, transfer, confirm,
// resume/reclaim, stop). A command waits for the statement in flight, so
// "stop renewing and await any renew in flight" is Quiesce's completion.
//
// Leadership is local: epoch() is non-zero only while the last successful
// acquire/renew/confirm, measured from when it was *sent*, is younger than
// the TTL (less a drift allowance) on the validity clock — boot time
// (CLOCK_BOOTTIME), which, unlike the monotonic clock, keeps counting
// while the host is suspended, so a host that wakes up is not "still
// leader" of a lease the database let expire meanwhile. Every start and end of
// leadership is logged (lease.leader_start / lease.leader_end) with the
// monotonic time in microseconds, so intervals of two processes on one
// host can be compared.
//
// Threading: the command methods are called on the executor's thread and
// call back there; epoch() is thread-safe. Destroy only once Stop() called
// back or the executor no longer runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/clock.h"
#include "base/log.h"
#include "baton/lease.h"
#include "ownership/lease_config.h"
#include "ownership/lease_store.h"

namespace baton::ownership {

// CLOCK_BOOTTIME as a Clock: the monotonic clock plus time suspended.
// Thread-safe; a process-wide instance.
const Clock& BootClock();

class LeaseClient final : public Lease {
 public:
  // `clock` drives timers and the logged mono_us (it must be the steady
  // clock the executor's timers use); `validity_clock` measures local
  // validity (BootClock(); tests pass a fake one to simulate a suspend).
  LeaseClient(boost::asio::any_io_executor ex, LeaseConfig cfg, const Clock& clock, LogSink& log,
              const Clock& validity_clock = BootClock());
  ~LeaseClient() override;
  LeaseClient(const LeaseClient&) = delete;
  LeaseClient& operator=(const LeaseClient&) = delete;

  const std::string& name() const override { return cfg_.name; }
  const std::string& holder_id() const override { return cfg_.holder_id; }
  uint64_t epoch() const override;

  // Told of every start (epoch) and end (epoch, why) of leadership, on the
  // executor's thread, strictly alternating, a start first. Set before Start().
  using Observer = std::function<void(bool started, uint64_t epoch, LeaseEndReason why)>;
  void set_observer(Observer o) { observer_ = std::move(o); }

  // Starts the actor (idle). Call once.
  void Start();
  // Creates/checks the schema within `deadline`: kInvalidArgument,
  // kPermissionDenied or kFailedPrecondition are configuration errors.
  void Open(TimePoint deadline, std::function<void(Status)> done);
  // Become leader when the lease is free or expired; then hold and renew.
  void Campaign();
  // Seal, step 1: stop renewing/campaigning; calls back once no statement
  // is in flight. Leadership (epoch()) is kept until Transfer.
  void Quiesce(std::function<void()> done);
  // Seal, step 2: stop acting as leader, then hand the lease to `to` in one
  // fenced UPDATE (epoch+1); retried (resolving an unknown outcome) until
  // `deadline`. Calls back with the new epoch, 0 if this process held
  // nothing, or an error (the lease then resolves back to us by itself).
  // After an acquire whose outcome is unknown, whatever row names our
  // holder id is handed over, so "nothing" is only ever a definite answer.
  void Transfer(std::string to, TimePoint deadline, std::function<void(Result<uint64_t>)> done);
  // Successor at Begin: confirm the epoch O handed us (a fenced renew).
  void Confirm(uint64_t epoch, TimePoint deadline, std::function<void(Status)> done);
  // Incumbent after a rollback (the successor is gone): reclaim a lease we
  // handed over, or resume renewing/campaigning. Calls back after the first
  // attempt; a failed reclaim is retried in the background.
  void Resume(TimePoint deadline, std::function<void(Status)> done);
  // Hands the lease to a live candidate (a standby elsewhere, woken by the
  // NOTIFY) in one fenced statement, or releases it when there is none
  // (bounded), withdraws our own candidacy, closes the connection, ends the
  // actor. Holding nothing it knows of, it still releases any row naming
  // its holder id (an unknown acquire, or a transfer to it never confirmed)
  // when connected or after an unknown acquire, so a standby need not wait
  // for the TTL.
  void Stop(TimePoint deadline, std::function<void()> done);

  // Whether the lease tables were reached and checked (Open or a campaign). Thread-safe.
  bool reached() const { return reached_.load(); }
  // The server pid of the lease connection (0 if none); for tests and logs.
  int backend_pid() const { return store_.backend_pid(); }
  // Notifications read and not yet looked at; for tests. Executor thread only.
  size_t pending_notifications() const { return store_.pending_notifications(); }

 private:
  enum class Mode { kIdle, kCampaign, kHolding, kPaused, kResolve };
  using Command = std::function<boost::asio::awaitable<void>()>;

  void Post(Command c);
  boost::asio::awaitable<void> Loop();
  boost::asio::awaitable<void> AcquireOnce();
  boost::asio::awaitable<void> RenewOnce();
  // Ends leadership, then hands over to `target` ("" = any live candidate),
  // else releases if `release_if_none`. deadline {} = one op timeout from
  // after the end.
  boost::asio::awaitable<void> HandOver(std::string target, TimePoint deadline, bool release_if_none);
  boost::asio::awaitable<void> ResolveOnce(TimePoint deadline);
  boost::asio::awaitable<void> Pause(Duration d);
  boost::asio::awaitable<void> StopNow(TimePoint deadline);
  TimePoint OpDeadline(TimePoint limit) const;

  void BecomeLeader(uint64_t epoch, TimePoint sent, std::string_view why);
  void EndLeadership(std::string_view why, TimePoint at, LeaseEndReason reason);
  void NoteLapse(TimePoint now);
  void Emit(Level level, std::string name, std::string message, uint64_t epoch, TimePoint at);

  boost::asio::any_io_executor ex_;
  LeaseConfig cfg_;
  const Clock& clock_;
  const Clock& validity_;
  LogSink& log_;
  LeaseStore store_;
  boost::asio::steady_timer wake_;
  std::deque<Command> commands_;
  Mode mode_ = Mode::kIdle;
  TimePoint next_op_{};
  std::optional<Holding> holding_;  // what we hold in the database (maybe locally lapsed)
  std::optional<Holding> handed_;   // the holding we transferred, for a reclaim
  Holding resolve_a_, resolve_b_;   // kResolve: either of these → us
  // A row may name us at an epoch we never learned (an acquire whose
  // outcome is unknown): resolved by statements fenced on our holder id.
  bool maybe_held_ = false;
  bool acting_ = false;             // a leader_start was logged without its end
  bool schema_ok_ = false;
  bool standby_noted_ = false;      // lease.standby logged since we last led
  uint64_t offered_epoch_ = 0;      // a handover named us at this epoch (NOTIFY): confirm it
  bool candidate_ = false;          // our candidacy row may be live
  Observer observer_;
  int listen_pid_ = 0;              // backend that ran LISTEN
  bool stopping_ = false;
  bool started_ = false;
  TimePoint last_error_log_{};

  std::atomic<bool> reached_{false};
  mutable std::mutex mu_;
  uint64_t held_epoch_ = 0;  // guarded by mu_
  TimePoint valid_until_{};  // on validity_; guarded by mu_
};

}  // namespace baton::ownership
