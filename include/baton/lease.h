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
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "baton/errors.h"
#include "baton/export.h"

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

// Owned by the Daemon (Daemon::lease()); all members are thread-safe.
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
