// baton-load options: the target URL, durations and the validated option set.
// Pure parsing (no I/O, no DNS): the CLI and the tests call these directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/duration.h"
#include "base/errors.h"

namespace baton::load {

// Where kvd listens. Only loopback TCP ("http://127.0.0.1:8080",
// "http://localhost:8080", "http://[::1]:8080") or a unix socket
// ("unix:/run/kvd.sock"): a load generator must not be pointed at a remote host.
struct Target {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // IP literal, already resolved ("localhost" -> "127.0.0.1")
  uint16_t port = 80;
  std::string path;  // unix socket path

  // The Host header value.
  std::string HostHeader() const;
  // Canonical form, for reports: "http://127.0.0.1:8080" or "unix:/x.sock".
  std::string ToString() const;
};

// Errors are kInvalidArgument with a message naming the problem.
Result<Target> ParseTarget(std::string_view url);

// "10s", "500ms", "2m", "1.5s", "250us", "1h": the project's one parser.
using baton::ParseDuration;

struct LoadOptions {
  Target target;
  int connections = 1;
  Duration duration = seconds(10);
  double write_ratio = 0.5;     // probability that a request is a PUT
  bool close_mode = false;      // one connection per request
  uint64_t key_space = 0;       // GETs pick among the last K acked writes; 0 = all
  uint64_t max_writes = 0;      // GETs only once this many writes are acked; 0 = no limit
  std::size_t value_size = 64;  // bytes per PUT body
  Duration request_timeout = seconds(5);
  Duration verify_timeout = seconds(60);
  double rate_limit = 0;       // total requests/s across connections; 0 = unlimited
  uint64_t seed = 0;           // 0 = random
  int verify_connections = 4;  // capped by `connections`
  // Log every write-ack gap longer than this (absolute start times); unset = off.
  std::optional<Duration> gaps_over;

  // Half-idle connections: this fraction of the keep-alive connections
  // (spread evenly over them) alternates `burst` of requests with `idle`
  // without any, on the same connection; each starts at a random point of
  // its first burst. 0 = every connection is busy all the time.
  double idle_fraction = 0;
  Duration burst = seconds(1);
  Duration idle = seconds(3);

  // Watch streams (`GET /watch?from=REV`): how many, and the first
  // revision they ask for (unset: the target's current revision + 1, read
  // from /healthz once at start).
  int watches = 0;
  std::optional<uint64_t> watch_from;
  // At the end of the load, how long the streams may take to reach the last
  // revision acknowledged to a writer; zero = do not check.
  Duration watch_wait = seconds(10);
};

// Range checks; kInvalidArgument naming the offending option.
Status Validate(const LoadOptions& o);

}  // namespace baton::load
