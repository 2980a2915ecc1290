// Pre-fills an empty kvd data dir with a WAL of N records by running
// `kvd --prefill N` (kvd writes its own WAL format), so a benchmark can
// measure handoffs over a large WAL without first pushing a million PUTs
// through HTTP. Blocks until kvd is done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/errors.h"

namespace baton::bench {

struct PrefillResult {
  uint64_t records = 0;
  uint64_t bytes = 0;  // WAL bytes written
};

// Keys "prefill-<n>" (never produced by baton-load), values of `value_size`
// bytes. The data dir must hold no WAL yet. kvd replays it at cold start as
// if it had acknowledged every record itself.
// `keys` > 0: the records cycle over that many keys.
Result<PrefillResult> PrefillWal(const std::string& data_dir, uint64_t records, std::size_t value_size,
                                 uint64_t keys = 0);

}  // namespace baton::bench
