// One PostgreSQL connection on libpq's non-blocking API, driven by Asio:
// the libpq socket is registered with the executor and every wait is raced
// against a deadline, so no call ever blocks the thread or outlives its
// deadline. After a failed or timed-out call the connection is closed (its
// state is unknown); the next call reconnects. libpq is loaded by the first
// connect (ownership/libpq.h); if it cannot be, every call fails with
// kFailedPrecondition.
//
// Threading: every member is called from one executor's thread (the
// coroutines run there). Owns the libpq connection and its socket; the
// socket is libpq's (O_CLOEXEC set by libpq) and is never closed by Asio.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "base/clock.h"
#include "base/errors.h"

namespace baton::ownership::pg {

using Value = std::optional<std::string>;  // NULL = nullopt
using Row = std::vector<Value>;

inline constexpr size_t kMaxPendingNotifications = 64;

struct QueryResult {
  std::vector<Row> rows;
  uint64_t affected = 0;  // rows changed by the last command
};

// Maps a libpq failure to a baton error: insufficient privilege →
// kPermissionDenied, lock/statement timeouts → kDeadlineExceeded, bad
// connection parameters → kInvalidArgument, the rest → kUnavailable.
Error PgError(std::string_view what, std::string_view sqlstate, std::string_view message);

class Connection {
 public:
  // `conninfo` is passed to PQconnectStartParams as keyword/value pairs
  // (already validated by the caller).
  Connection(boost::asio::any_io_executor ex, std::vector<std::pair<std::string, std::string>> conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects unless connected. Bounded by `deadline`.
  boost::asio::awaitable<Status> Ensure(TimePoint deadline);
  // One statement with text parameters ($1, $2...), bounded by `deadline`.
  boost::asio::awaitable<Result<QueryResult>> Query(std::string sql, std::vector<Value> params,
                                                    TimePoint deadline);
  // Several ';'-separated statements without parameters (simple protocol).
  boost::asio::awaitable<Result<QueryResult>> Exec(std::string sql, TimePoint deadline);
  // Waits until the server sent something (e.g. a NOTIFY) or `deadline`;
  // returns the notification payloads read so far (possibly none).
  boost::asio::awaitable<Result<std::vector<std::string>>> WaitNotifications(TimePoint deadline);
  // Notifications read with other results and not yet taken: at most
  // kMaxPendingNotifications, the oldest dropped first (a listener that
  // stops waiting for them loses only stale wake-ups, never memory).
  size_t pending_notifications() const;
  void DiscardNotifications();

  bool connected() const;
  // The server process id of this connection (0 if not connected).
  int backend_pid() const;
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::ownership::pg
