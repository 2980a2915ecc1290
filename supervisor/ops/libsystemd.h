// libsystemd, loaded on first use. The supervisor needs it only when
// systemd started it (NOTIFY_SOCKET, LISTEN_FDS); the same binary is also
// the `baton` command every deploy script runs, and linking libsystemd
// (with libgcrypt, liblzma, libzstd, liblz4 and libcap behind it) would make
// every one of those short runs pay for loading them.
//
// Threading: Load() may be called from any thread; the result is computed
// once and never changes.
#pragma once

#include <systemd/sd-daemon.h>

#include "base/errors.h"

namespace baton::supervisor {

struct Libsystemd {
  decltype(&::sd_notify) notify = nullptr;
  decltype(&::sd_pid_notify_with_fds) pid_notify_with_fds = nullptr;
  decltype(&::sd_listen_fds_with_names) listen_fds_with_names = nullptr;

  // libsystemd.so.0, loaded once (success or error is remembered).
  static Result<const Libsystemd*> Load();
  // From another file name, not cached (tests).
  static Result<Libsystemd> LoadFrom(const char* soname);
};

}  // namespace baton::supervisor
