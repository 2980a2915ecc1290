// The Postgres side of the leader lease (docs/design.md §8): the SQL contract, one
// bounded statement per operation on one connection.
//
//   baton_lease(name pk, holder, epoch, expires_at, updated_at)
//
// Rows are never deleted (a trigger refuses DELETE, a holder change without
// an epoch bump, and any epoch decrease); expires_at always comes from the
// database's now(). Every change of holder bumps the epoch and sends a
// NOTIFY on channel `baton_lease` from the same statement (so from the same
// transaction): payload "<name> <epoch> <holder>".
//
// Results: an epoch when the compare-and-set matched, std::nullopt when it
// was refused (fenced out), an Error when the outcome is unknown (the
// connection failed or a deadline passed: resolve it with another fenced,
// epoch-bumping Move, never with a plain SELECT).
//
// Threading: one executor; not thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ownership/lease_dsn.h"
#include "ownership/pg_connection.h"

namespace baton::ownership {

inline constexpr const char* kLeaseTable = "baton_lease";
inline constexpr const char* kLeaseChannel = "baton_lease";

// Every SQL statement the lease runs, for review and for tests (no DELETE).
std::vector<std::string_view> LeaseStatements();

// A (holder, epoch) pair a fenced statement may match. Epoch 0 (never a
// held epoch: they start at 1) matches any epoch of that holder: fenced on
// the holder id alone, which is unique to one process, for a row that
// process may hold at an epoch it never learned (an acquire or transfer
// whose outcome is unknown).
struct Holding {
  std::string holder;
  uint64_t epoch = 0;
};

using MaybeEpoch = std::optional<uint64_t>;

// Where a handover went: `to` is the candidate, "" when released instead.
struct Handed {
  uint64_t epoch = 0;
  std::string to;
};

// The lease row and the live candidates, as an operator sees them.
struct LeaseView {
  bool exists = false;           // no row: never taken
  std::string holder;            // "" = free
  uint64_t epoch = 0;
  std::string expires_at;        // UTC, ISO 8601; "" = none
  std::optional<int64_t> expires_in_ms;  // negative: expired
  struct Candidate {
    std::string holder;
    int64_t expires_in_ms = 0;
    bool requested = false;      // an operator asked for a handover to it
  };
  std::vector<Candidate> candidates;
};

class LeaseStore {
 public:
  LeaseStore(boost::asio::any_io_executor ex, std::vector<std::pair<std::string, std::string>> conninfo);

  // Creates the table and its guard trigger if missing (idempotent, safe
  // to race), then checks this role may read and change rows:
  // kPermissionDenied otherwise.
  boost::asio::awaitable<Status> EnsureSchema(TimePoint deadline);
  // LISTEN on the lease channel (again after every reconnect).
  boost::asio::awaitable<Status> Listen(TimePoint deadline);
  boost::asio::awaitable<Result<std::vector<std::string>>> WaitNotifications(TimePoint deadline);
  size_t pending_notifications() const { return conn_.pending_notifications(); }
  void DiscardNotifications() { conn_.DiscardNotifications(); }

  // Free, expired, or already ours by holder id → `holder`, epoch+1.
  boost::asio::awaitable<Result<MaybeEpoch>> Acquire(std::string name, std::string holder, Duration ttl,
                                                     TimePoint deadline);
  // Extends expires_at; fenced on holder and epoch (no epoch change). When
  // renewed, `requested` (if given) receives the live candidate an
  // operator asked this holder to hand over to, or "".
  boost::asio::awaitable<Result<MaybeEpoch>> Renew(std::string name, Holding h, Duration ttl, TimePoint deadline,
                                                   std::string* requested = nullptr);
  // holder NULL, epoch+1; fenced.
  boost::asio::awaitable<Result<MaybeEpoch>> Release(std::string name, Holding h, TimePoint deadline);
  // Transfer / reclaim / resolve: if the row is at `a` or at `b`, it moves to
  // holder `to` at epoch+1 in one UPDATE. A first transfer passes a == b.
  boost::asio::awaitable<Result<MaybeEpoch>> Move(std::string name, Holding a, Holding b, std::string to,
                                                  Duration ttl, TimePoint deadline);

  // Handover to a standby elsewhere: the holding `me` (which no longer
  // acts as leader) moves to a live candidate (`target`, or "" for the one
  // an operator asked for, else the one refreshed last) at epoch+1 in one
  // fenced UPDATE that also NOTIFYs; with no live candidate it is released
  // if `release_if_none`. nullopt: fenced out (or no candidate and no release).
  boost::asio::awaitable<Result<std::optional<Handed>>> Handover(std::string name, Holding me, std::string target,
                                                                 Duration ttl, bool release_if_none,
                                                                 TimePoint deadline);
  // A standby's candidacy (live for `ttl`), refreshed by each of its polls.
  boost::asio::awaitable<Status> Register(std::string name, std::string holder, Duration ttl, TimePoint deadline);
  boost::asio::awaitable<Status> Unregister(std::string name, std::string holder, TimePoint deadline);

  // Operator commands. Release the holding an operator saw (fenced on it;
  // epoch+1; the expiry stays, so nobody acquires before it).
  boost::asio::awaitable<Result<MaybeEpoch>> OperatorRelease(std::string name, Holding seen, TimePoint deadline);
  // Ask the holder to hand over to `to` at its next renew: false when `to`
  // is not a live candidate.
  boost::asio::awaitable<Result<bool>> RequestHandover(std::string name, std::string to, TimePoint deadline);
  boost::asio::awaitable<Status> CancelRequest(std::string name, std::string to, TimePoint deadline);
  boost::asio::awaitable<Result<LeaseView>> View(std::string name, TimePoint deadline);

  bool connected() const { return conn_.connected(); }
  int backend_pid() const { return conn_.backend_pid(); }
  void Close() { conn_.Close(); }

 private:
  boost::asio::awaitable<Result<MaybeEpoch>> RunCas(std::string_view sql, std::vector<pg::Value> params,
                                                    TimePoint deadline, std::string_view what,
                                                    std::string* second = nullptr);
  pg::Connection conn_;
};

}  // namespace baton::ownership
