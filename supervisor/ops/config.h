// The supervisor's configuration file (TOML, `baton supervise --config FILE`,
// `baton check-config FILE`). Parsing is pure: text in, a ServiceConfig or an
// error naming the file, line and key out. Every key is listed in
// docs/operations.md; unknown keys are errors (a typo must not silently fall
// back to a default at 3 a.m.).
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"
#include "supervisor/child_policy.h"
#include "supervisor/handoff_machine.h"
#include "supervisor/listeners.h"
#include "supervisor/notify_options.h"
#include "supervisor/probation_options.h"

namespace baton::supervisor {

// Everything the file can say. Fields the file leaves out keep their
// defaults; `set` records which keys were given, so flags can override.
struct ServiceConfig {
  std::string name;  // the service's name in events, metrics and STATUS=
  std::vector<ListenerSpec> listeners;
  std::string data_dir;
  std::string runtime_dir;
  std::string binary;
  std::vector<std::string> args;
  // Extra variables for every generation (after sanitizing, see
  // supervisor/child_policy.h) and names passed through from our own
  // environment.
  std::map<std::string, std::string> environment;
  std::vector<std::string> pass_environment;
  // Canonical paths or fnmatch(3) patterns; empty = any executable.
  std::vector<std::string> allowed_binaries;
  std::set<uid_t> admin_uids;
  HandoffTimeouts timeouts;
  Duration heartbeat = seconds(1);
  Duration liveness = seconds(5);
  Duration restart_backoff_min = milliseconds(100);
  Duration restart_backoff_max = seconds(5);
  // Descriptors an incumbent may hand over in one handoff (docs/protocol.md).
  size_t max_handover_fds = 1024;
  std::optional<LeaseConfig> lease;
  // Operator surface.
  std::string metrics_listen;         // HOST:PORT, "" = off
  uint64_t events_max_bytes = 4u << 20;  // events.jsonl rotates beyond this
  bool fd_store = false;               // park listeners in systemd's FD store
  // `protocol` and the [notify] table (docs/unmodified.md).
  NotifyOptions notify;
  // `probation = "30s"`, or the [probation] table (docs/operations.md).
  ProbationOptions probation;

  std::set<std::string> set;  // dotted keys given in the file, e.g. "timeouts.warm"
};

// The field of `c` a timeout name stands for, as [timeouts] and
// `baton supervise --timeout NAME=DURATION` spell it ("hello", "warm",
// "drain", "seal", "begin", "commit", "resume", "term_grace", "handoff",
// "heartbeat", "liveness"); nullptr for any other name.
Duration* TimeoutByName(ServiceConfig& c, std::string_view name);

// Parses TOML text. `source` names the file in errors:
// "kvd.toml:7: timeouts.warm: bad duration 'soon' (e.g. 250ms, 5s, 2m)".
Result<ServiceConfig> ParseConfig(std::string_view text, const std::string& source);
// Reads and parses a file.
Result<ServiceConfig> LoadConfig(const std::string& path);
// The checks that need the whole picture (after flags were merged): a
// binary, a data dir, at least one listener, sane timeouts.
Status ValidateConfig(const ServiceConfig& c);
// "baton" / "notify" and "overlap" / "sequential", for the flags too.
Status ParseProtocol(std::string_view text, NotifyOptions& out);
Status ParseStrategy(std::string_view text, NotifyOptions& out);

}  // namespace baton::supervisor
