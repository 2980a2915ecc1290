// systemd's notify protocol (sd_notify(3)) as the supervisor hears it from
// its children, pure: a datagram's bytes, the sender's credentials and the
// number of descriptors that came with it in; a message, or the reason it
// is refused, out. No I/O: supervisor/notify_socket.h receives and closes
// descriptors, the supervisor acts on what is accepted (docs/design.md §14).
//
// A datagram is newline-separated KEY=VALUE assignments, at most
// kNotifyMaxBytes (systemd's own limit). Understood: READY=1, STATUS=,
// STOPPING=1, RELOADING=1, ERRNO=, EXTEND_TIMEOUT_USEC=, WATCHDOG=1,
// WATCHDOG_USEC=, FDSTORE=1, FDNAME=, FDSTOREREMOVE=1; other well-formed
// keys are ignored, as systemd does. MAINPID= is refused (the supervisor
// watches the process it spawned, nothing else) but the rest of the
// datagram still applies.
//
// Whatever is refused changes nothing: the whole datagram is dropped (its
// descriptors closed by the caller) and counted under one of the kinds below.
//
// Threading: none (values and pure functions).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"

namespace baton::supervisor {

// systemd's NOTIFY_BUFFER_MAX: a longer datagram is refused as oversized.
inline constexpr size_t kNotifyMaxBytes = 4096;
// The most descriptors one datagram may carry (systemd's limit is 768; a
// store is bounded separately, supervisor/fd_store.h).
inline constexpr size_t kNotifyMaxFds = 64;

// Why a datagram (or part of one) was refused. Each kind is a label of
// baton_notify_rejected_total{kind} and is logged once per supervisor.
enum class NotifyReject {
  kMalformed,      // not KEY=VALUE lines, a NUL byte, a bad value for a known key
  kOversized,      // longer than kNotifyMaxBytes (or truncated control data)
  kForged,         // sent by another process than the child it belongs to
  kUnannouncedFd,  // descriptors without FDSTORE=1
  kMainPid,        // MAINPID=: refused, the rest applies
  kFdStoreFull,    // FDSTORE=1 beyond the configured maximum
};
std::string_view NotifyRejectName(NotifyReject k);
inline constexpr NotifyReject kAllNotifyRejects[] = {NotifyReject::kMalformed,     NotifyReject::kOversized,
                                                     NotifyReject::kForged,        NotifyReject::kUnannouncedFd,
                                                     NotifyReject::kMainPid,       NotifyReject::kFdStoreFull};

// One datagram as received.
struct NotifyDatagram {
  std::string_view payload;          // the bytes received (at most the buffer)
  size_t length = 0;                 // the datagram's real length (MSG_TRUNC)
  std::optional<pid_t> sender_pid;   // from SCM_CREDENTIALS; nullopt = none came
  size_t fds = 0;                    // descriptors received with it (SCM_RIGHTS)
  bool control_truncated = false;    // MSG_CTRUNC: descriptors were lost
};

// What an accepted datagram says. Absent fields were not in it.
struct NotifyMessage {
  bool ready = false;
  bool stopping = false;
  bool reloading = false;
  bool watchdog = false;           // WATCHDOG=1: a keep-alive
  bool fdstore = false;            // FDSTORE=1: the descriptors are to be stored
  bool fdstore_remove = false;     // FDSTOREREMOVE=1: drop FDNAME from the store
  std::optional<std::string> status;
  std::optional<int> errno_value;
  std::optional<Duration> extend_timeout;
  std::optional<Duration> watchdog_usec;
  std::optional<std::string> fdname;
  size_t fds = 0;                  // how many descriptors come with it
};

struct NotifyVerdict {
  std::optional<NotifyMessage> message;  // nullopt: the whole datagram is refused
  // Refusals, in order: the one that dropped the datagram, or parts of an
  // accepted one (MAINPID=).
  struct Refusal {
    NotifyReject kind;
    std::string reason;
  };
  std::vector<Refusal> refusals;
};

// Parses `d.payload` and judges it as coming from the child with pid
// `child_pid` (systemd's NotifyAccess=main: only that process may speak).
NotifyVerdict JudgeNotify(const NotifyDatagram& d, pid_t child_pid);

// A valid FDNAME (systemd's rules: 1..255 printable ASCII, no ':').
bool ValidFdName(std::string_view name);

}  // namespace baton::supervisor
