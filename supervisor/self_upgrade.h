// What a self-upgrade (`baton upgrade --self`, docs/design.md §15) keeps in
// the supervisor: the run in the image that execs, and what the new image
// resumed with until it answered. Private to this directory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "supervisor/admin_server.h"
#include "supervisor/child_process.h"
#include "supervisor/fd_store.h"
#include "supervisor/self_state.pb.h"

namespace baton::supervisor {

// In the image that re-executes: from the request to the exec (or the end).
struct SelfUpgradeRun {
  std::string binary;                        // what to exec
  std::shared_ptr<AdminConnection> client;   // null for SIGUSR2
  uint64_t requested_at_us = 0;              // CLOCK_MONOTONIC
  // The pre-flight: `binary self-check`, its output, its deadline.
  std::unique_ptr<ChildProcess> check;
  OwnedFd check_out;
  std::unique_ptr<boost::asio::steady_timer> check_timer;
  bool check_timed_out = false;
  uint32_t state_version = 0;  // the format to write, once the pre-flight chose it
};

// In the image that resumed, until Start() answered and let the watchdog go.
struct Resumed {
  OwnedFd resumed_fd;  // "R" goes here
  pid_t watchdog = 0;
  int caller_fd = -1;  // the `baton upgrade --self` connection, -1 for SIGUSR2
  std::string old_binary;
  std::string new_binary;
  uint64_t requested_at_us = 0;
  std::string fallback;  // set: we are the previous binary, re-executed because the new one failed (why)
  uint32_t state_version = 0;  // the format it was handed
};

// CLOCK_MONOTONIC in microseconds: it runs on across an exec.
uint64_t MonotonicMicros();

}  // namespace baton::supervisor
