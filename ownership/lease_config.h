// The lease's configuration: LeaseOptions validated, defaults filled in,
// the DSN resolved into libpq keyword/value pairs, and a holder id unique
// to this process. Pure functions; thread-safe (MakeLeaseConfig reads the
// environment through ResolveLeaseDsn, as getenv(3) allows).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"
#include "baton/lease.h"

namespace baton::ownership {

struct LeaseConfig {
  std::string name;
  std::string holder_id;
  std::vector<std::pair<std::string, std::string>> conninfo;
  Duration ttl = seconds(10);
  Duration renew_interval = milliseconds(3333);
  Duration op_timeout = seconds(1);
  Duration poll_interval = milliseconds(2500);
};

// The longest holder id label a user may set (LeaseOptions::holder_id).
inline constexpr size_t kMaxHolderLabel = 64;

// Validates the options (kInvalidArgument with the reason: empty name, bad
// DSN, renew interval not below the TTL, a holder label too long...),
// resolves the DSN and fills in defaults. The holder id is always unique to
// this process: "<host>/<pid>/<random hex>", after "<label>/" when the user
// set one. Loads libpq (kFailedPrecondition if it cannot).
Result<LeaseConfig> MakeLeaseConfig(const LeaseOptions& o);
// "<host, at most 64 bytes>/<pid>/<random hex>".
std::string GenerateHolderId();

}  // namespace baton::ownership
