// Observing a leader lease from outside: the leader intervals every baton
// daemon logs (lease.leader_start / lease.leader_end with the monotonic
// clock in µs, comparable across the processes of one host) and kvd's
// /healthz lease epoch. Used by the lease tests and the lease benchmark.
#pragma once

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/harness/http.h"

namespace baton::harness {

struct LeaderInterval {
  std::string holder;
  uint64_t epoch = 0;
  int64_t start_us = 0;
  int64_t end_us = LLONG_MAX;  // LLONG_MAX: still leader
  bool open() const { return end_us == LLONG_MAX; }
};

// Every leader interval in a log of JSON lines, ordered by start.
std::vector<LeaderInterval> LeaderIntervals(const std::string& log);


// kvd's lease epoch from /healthz (0: not the leader; -1: no answer).
int64_t ServingEpoch(int port);

// The monotonic clock in µs, as the daemons log it.
int64_t MonoMicros();

}  // namespace baton::harness
