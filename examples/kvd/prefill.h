// `kvd --prefill N`: fills an empty data dir with a WAL of N records, so a
// benchmark can measure handoffs over a large WAL without first pushing a
// million PUTs through HTTP. Blocking file I/O on the calling thread;
// fsynced once at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "wal.h"

namespace kvd {

struct PrefillResult {
  uint64_t records = 0;
  uint64_t bytes = 0;  // WAL bytes written
};

// Keys "prefill-<n>" (never produced by baton-load), values of `value_size`
// bytes, segments of `rotate_bytes`. The data dir must hold no WAL yet. kvd
// replays it at cold start as if it had acknowledged every record itself.
// `keys` > 0: the records cycle over that many keys (prefill-<n mod keys>),
// a long history over a bounded state.
Result<PrefillResult> PrefillWal(const std::string& data_dir, uint64_t records, std::size_t value_size,
                                 uint64_t rotate_bytes, uint64_t keys = 0);

}  // namespace kvd
