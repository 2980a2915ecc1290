// Socket activation: listeners passed by systemd (a .socket unit, or the FD
// store of a previous supervisor) in LISTEN_FDS/LISTEN_FDNAMES, matched to
// the configured listeners by name. A matched listener is adopted instead of
// bound; a listener configured as "systemd" must be among them.
#pragma once

#include <string>
#include <vector>

#include "base/errors.h"
#include "supervisor/listeners.h"

namespace baton::supervisor {

struct ActivatedSocket {
  std::string name;  // FileDescriptorName= ("unknown" if the unit gives none)
  int fd = -1;       // owned by the caller from now on
};

// Takes the sockets systemd passed to this process (sd_listen_fds_with_names,
// unsetting the variables so no child sees them). Empty when not activated.
Result<std::vector<ActivatedSocket>> TakeActivatedSockets();

// Pure apart from getsockname(2): sets inherited_fd on every configured
// listener whose name matches; with no listener configured at all, every
// activated socket becomes one under its own name. An activated socket the
// config does not name is an error naming it (a misnamed .socket unit would
// otherwise be silently ignored). The same socket passed twice under one
// name (socket unit + FD store) is kept once; two different ones are an error.
Result<std::vector<ListenerSpec>> MatchActivated(std::vector<ListenerSpec> configured,
                                                 const std::vector<ActivatedSocket>& activated);

}  // namespace baton::supervisor
