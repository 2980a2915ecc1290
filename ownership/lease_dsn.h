// The lease's connection settings (docs/design.md §8): the user's DSN,
// validated and turned into libpq keyword/value pairs with the server-side
// bounds every lease connection runs under, and never echoing a password.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"

namespace baton::ownership {

// Connection settings: the user's DSN (a libpq conninfo string or URI; ""
// means libpq's PG* environment variables) plus server-side bounds.
struct StoreSettings {
  std::string dsn;
  std::string application_name;   // used unless the DSN sets one
  Duration statement_timeout = milliseconds(1000);
  Duration lock_timeout = milliseconds(500);
  Duration idle_in_transaction_timeout = milliseconds(2000);
};

// Validates the DSN and returns keyword/value pairs for libpq, with the
// server-side timeouts appended to `options`. kInvalidArgument names the
// problem (never echoing a password); kFailedPrecondition when libpq cannot
// be loaded (ownership/libpq.h).
Result<std::vector<std::pair<std::string, std::string>>> BuildConnInfo(const StoreSettings& s);

}  // namespace baton::ownership
