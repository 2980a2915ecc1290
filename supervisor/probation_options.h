// After the commit (docs/design.md §16): the probation window, its external
// probe, how many pinned binaries are kept, and the crash-loop limit.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/clock.h"
#include "supervisor/probe.h"

namespace baton::supervisor {

struct ProbationOptions {
  // The window after each commit in which a failure reverts to the previous
  // pinned binary; 0 = no probation (`baton upgrade --probation` overrides).
  Duration window = Duration::zero();
  // Optional external probe during the window: `probe_failures` failed
  // attempts in a row (one every `probe_interval`, each bounded by it) fail
  // the probation.
  bool probe_enabled = false;
  ProbeSpec probe;
  Duration probe_interval = seconds(1);
  uint32_t probe_failures = 3;
  // Pinned binaries kept: the serving one and the ones before it (>= 2 for
  // a revert to be possible).
  size_t keep_binaries = 2;
  // Outside a probation: this many exits of the serving generation within
  // `crash_loop_window` revert to the previous pinned binary (when
  // `crash_loop_revert` and there is one) instead of restarting it again.
  uint32_t crash_loop_limit = 5;
  Duration crash_loop_window = seconds(60);
  bool crash_loop_revert = true;
};

}  // namespace baton::supervisor
