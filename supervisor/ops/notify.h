// systemd integration of the supervisor (Type=notify): which sd_notify(3)
// messages the supervisor's events turn into (NotifyPolicy, pure), and the
// libsystemd-backed sender (SdNotifier). Without $NOTIFY_SOCKET everything
// here is a no-op, so the same binary runs under any process manager.
//
//   first generation serving          READY=1, STATUS=serving ...
//   handoff starts                    RELOADING=1, MONOTONIC_USEC=, EXTEND_TIMEOUT_USEC=, STATUS=
//   each phase done                   EXTEND_TIMEOUT_USEC=, STATUS=
//   handoff ends (any outcome)        READY=1, STATUS=<outcome>: <reason>
//   daemon died, restart scheduled    STATUS=
//   supervisor stopping               STOPPING=1, STATUS=stopping
//
// Threading: the supervisor's executor only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"
#include "base/log.h"

namespace baton::supervisor {

class NotifyPolicy {
 public:
  // `extend`: how long systemd should wait for the handoff (its deadline
  // plus slack), sent as EXTEND_TIMEOUT_USEC while it runs.
  NotifyPolicy(std::string service, Duration extend) : service_(std::move(service)), extend_(extend) {}
  // The message for this event ("" = nothing to say). `monotonic_us` is
  // CLOCK_MONOTONIC in microseconds (for MONOTONIC_USEC with RELOADING=1).
  std::string OnEvent(const Event& e, uint64_t monotonic_us);

 private:
  std::string service_;
  Duration extend_;
  bool ready_ = false;
};

class SdNotifier {
 public:
  // True when $NOTIFY_SOCKET is set (started by systemd with Type=notify).
  static bool Enabled();
  // sd_notify(0, msg); errors are returned for the log, never fatal.
  static Status Notify(const std::string& msg);
  // Parks `fd` in the service's FD store under `name` (FDSTORE=1), so a
  // restarted supervisor gets it back in LISTEN_FDS/LISTEN_FDNAMES.
  static Status StoreFd(const std::string& name, int fd);
};

}  // namespace baton::supervisor
