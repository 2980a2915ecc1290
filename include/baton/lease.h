// The Postgres leader lease a daemon may hold (docs/design.md §8).
//
//   baton::DaemonOptions o{...};
//   o.lease = baton::LeaseOptions{.name = "reconciler", .dsn = flag_dsn};
//   auto daemon = baton::Daemon::Create(std::move(o));
//   ...
//   if (uint64_t e = daemon->lease()->epoch(); e != 0) WriteFenced(e, ...);
//
// The library acquires the lease on a cold start (and waits as a standby if
// another process holds it: NOTIFY, with a poll as the backstop), renews
// it, and hands it to the successor inside Seal: no leaderless gap of a TTL,
// never two holders. The daemon only reads epoch().
//
// Without a Daemon (no data dir, no handoff), a process holds a lease with
// a LeaseRunner:
//
//   auto lease = baton::LeaseRunner::Create({.name = "reconciler"},
//       {.on_start = [](uint64_t epoch) { StartWork(epoch); },
//        .on_end = [](uint64_t, baton::LeaseEndReason) { StopWork(); }});
//   ...
//   (*lease)->Stop(std::chrono::seconds(1));  // hands over to a standby, or releases
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "baton/errors.h"
#include "baton/export.h"
#include "baton/log.h"

namespace baton {

struct LeaseOptions {
  std::string name{};       // the leadership domain (one row); required, at most 200 bytes
  std::string dsn{};        // libpq conninfo or URI; "" = $BATON_LEASE_DSN, else libpq's PG* variables
  // A label (at most 64 bytes, no control characters) put in front of the
  // holder id, which is always unique per process: "<label>/<host>/<pid>/<random>",
  // or without "<label>/" when empty. Two processes never share a holder id.
  std::string holder_id{};
  std::chrono::milliseconds ttl{10000};
  std::chrono::milliseconds renew_interval{0};  // 0 = ttl / 3
  std::chrono::milliseconds op_timeout{1000};   // client deadline of every Postgres call
  std::chrono::milliseconds poll_interval{0};   // standby backstop; 0 = ttl / 4
};

// Owned by the Daemon (Daemon::lease()) or a LeaseRunner (below); all members
// are thread-safe.
class BATON_EXPORT Lease {
 public:
  virtual ~Lease() = default;
  virtual const std::string& name() const = 0;
  // This process's holder id (see LeaseOptions::holder_id).
  virtual const std::string& holder_id() const = 0;
  // The epoch under which this process may act as leader right now, or 0
  // when it may not (not holding, handed over, or its local monotonic
  // validity deadline passed, whatever the database says). Use it as the
  // fencing token of your own writes. Thread-safe, never blocks.
  virtual uint64_t epoch() const = 0;
  bool is_leader() const { return epoch() != 0; }
};

// Why leadership ended.
enum class LeaseEndReason {
  kLost,        // fenced out: the row has a newer epoch (an operator's release, or it expired and was taken)
  kLapsed,      // local validity ran out without a renew (Postgres unreachable or slow): a
                // later renew at the same epoch may start it again
  kHandedOver,  // handed to a standby an operator asked for (`baton lease transfer`)
  kStopped,     // Stop(): handed to a live standby, or released
};
// "lost", "lapsed", "handed_over", "stopped".
BATON_EXPORT const char* LeaseEndReasonName(LeaseEndReason r) noexcept;

// Called on the lease's own thread, in order, strictly alternating (a start
// first, then its end, ...). The runner campaigns from inside Create, so
// on_start may run before Create has returned. A callback must not block for long (it delays
// renewals; keep it well below the TTL), must not throw, and must not call
// LeaseRunner::Stop() nor destroy the runner. Stop work in on_end before
// returning: the next holder may start as soon as it returns (after a
// handover or a release).
struct LeaseCallbacks {
  std::function<void(uint64_t epoch)> on_start{};
  std::function<void(uint64_t epoch, LeaseEndReason why)> on_end{};
};

// A lease held on its own, without a Daemon. Campaigns from Create on: it
// waits as a standby while another process holds the lease, registered as a
// candidate for that holder's handover, and becomes leader when the lease is
// handed to it, freed or expired; then renews it. Owns a thread.
// All members are thread-safe except as the callbacks say.
class BATON_EXPORT LeaseRunner : public Lease {
 public:
  // Validates the options (kInvalidArgument: a bad name, DSN, TTL...;
  // kFailedPrecondition: no libpq) and checks the lease tables within two
  // op timeouts (kPermissionDenied: the role lacks a privilege). An
  // unreachable Postgres is not an error: the runner keeps trying, and
  // reachable() says whether it has reached it yet. `log` (not owned; must
  // outlive the runner) receives the lease.* events; nullptr = JSON lines
  // on stderr.
  static Result<std::unique_ptr<LeaseRunner>> Create(LeaseOptions options, LeaseCallbacks callbacks = {},
                                                     LogSink* log = nullptr);
  // Stops (the destructor calls it): a leader stops acting (on_end with
  // kStopped) and hands the lease to a live candidate in one fenced
  // statement, or releases it when none is live; a standby withdraws its
  // candidacy. Returns within `bound` (then whatever was not done is left
  // to the TTL). Idempotent.
  virtual void Stop(std::chrono::milliseconds bound = std::chrono::milliseconds(2000)) = 0;
  // Whether a statement has reached the lease's PostgreSQL since Create.
  virtual bool reachable() const = 0;
};

// The DSN to use: `flag` if set, else $BATON_LEASE_DSN, else "" (libpq
// then reads PGHOST, PGPORT, PGUSER, PGDATABASE, ...).
BATON_EXPORT std::string ResolveLeaseDsn(const std::string& flag);

// The lease `baton supervise` gives every generation (its [lease] section,
// as BATON_LEASE_NAME, BATON_LEASE_DSN, BATON_LEASE_TTL_MS and
// BATON_LEASE_OP_TIMEOUT_MS), or no value when BATON_LEASE_NAME is unset or
// empty. A malformed number is kInvalidArgument naming the variable.
// Daemon::Create uses it when DaemonOptions::lease is unset, so a daemon
// need not read these variables itself; call it to start from the
// supervisor's settings and change some. Reads the environment: call it
// while no other thread changes the environment (as getenv(3) requires).
BATON_EXPORT Result<std::optional<LeaseOptions>> LeaseOptionsFromEnvironment();

}  // namespace baton
