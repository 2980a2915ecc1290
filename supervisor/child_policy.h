// What the supervisor lets a generation be: which binaries an upgrade may
// exec (an allow-list of canonical paths or fnmatch(3) patterns), and the
// sanitized environment every child starts from. Pure functions apart from
// realpath(3) on the candidate binary.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"

namespace baton::supervisor {

// Optional Postgres leader lease (docs/design.md §8). The supervisor does not talk to
// Postgres: it hands these to every generation as BATON_LEASE_* variables.
struct LeaseConfig {
  std::string dsn;          // BATON_LEASE_DSN
  std::string name;         // BATON_LEASE_NAME: the leadership domain (row)
  Duration ttl = seconds(10);          // BATON_LEASE_TTL_MS
  Duration op_timeout = seconds(1);    // BATON_LEASE_OP_TIMEOUT_MS
};

// Resolves `binary` to its canonical path (symlinks and ".." resolved) and
// checks it against `allowed` (canonical paths or patterns such as
// "/opt/kvd/releases/*/kvd"; '*' does not cross '/'). Empty `allowed` means
// any executable is allowed and `binary` is returned unchanged. The caller
// execs the returned path, so a symlink swapped after the check cannot
// smuggle in another file. kPermissionDenied names the canonical path.
Result<std::string> CheckAllowedBinary(const std::vector<std::string>& allowed, const std::string& binary);

// The variables a child keeps from the supervisor's environment when no
// pass_environment says otherwise: locale, time zone, PATH/HOME/USER,
// systemd's journal stream, sanitizer options, and baton's crash-point
// variables (filtered per role later). Everything else (LD_PRELOAD,
// NOTIFY_SOCKET, credentials in the deploy shell, ...) is dropped.
bool KeptByDefault(const std::string& name);

// `ours` ("K=V" strings) filtered down to the kept names plus `pass`, then
// `extra` (config [environment]) and the lease variables added on top.
std::vector<std::string> SanitizedEnvironment(const std::vector<std::string>& ours,
                                              const std::vector<std::string>& pass,
                                              const std::map<std::string, std::string>& extra,
                                              const std::optional<LeaseConfig>& lease);

}  // namespace baton::supervisor
