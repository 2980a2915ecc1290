// How the supervisor talks to its daemon (docs/design.md §14): the native
// control protocol, or systemd's conventions alone for a daemon that was
// never written for baton, and the notify socket, FD store and watchdog
// every child gets.
#pragma once

#include <signal.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "supervisor/notify_handoff.h"
#include "supervisor/probe.h"

namespace baton::supervisor {

enum class ChildProtocol { kBaton, kNotify };
std::string_view ChildProtocolName(ChildProtocol p);

struct NotifyOptions {
  ChildProtocol protocol = ChildProtocol::kBaton;
  // protocol = notify only:
  NotifyStrategy strategy = NotifyStrategy::kOverlap;
  int stop_signal = SIGTERM;
  Duration ready = seconds(30);  // spawn -> ready, every generation
  // Readiness: READY=1 on NOTIFY_SOCKET, or a probe every `probe_interval`.
  enum class Readiness { kNotify, kProbe } readiness = Readiness::kNotify;
  ProbeSpec probe;
  Duration probe_interval = milliseconds(200);
  // Every child: the FD store's bound (0 = no store; FDSTORE=1 is refused)
  // and the watchdog (0 = off; else WATCHDOG_USEC for the child, and a
  // ready generation silent for this long is hung).
  size_t fd_store_max = 0;
  Duration watchdog = Duration::zero();
};

}  // namespace baton::supervisor
