// Re-attaching to the generation a dead supervisor left serving
// (docs/design.md §15), the first thing a new supervisor tries before it
// falls back to adoption (adoption.h).
//
// A generation whose supervisor is gone while it serves (not mid-handoff)
// listens at protocol::ReattachSocketPath(runtime dir, its pid), mode 0600,
// for a peer of its own uid or root. The new supervisor connects there,
// checks with SO_PEERCRED that the listening process is the orphan the
// journal names (and whose pidfd it holds), takes the listeners over with
// pidfd_getfd as adoption does, and then answers the generation's Hello on
// that connection: from there on it is the serving generation, neither
// drained nor replaced. Any failure leaves adoption to take over, unchanged.
#pragma once

#include <string>

#include "base/errors.h"
#include "base/log.h"
#include "supervisor/adoption.h"
#include "supervisor/fd_store.h"

namespace baton::supervisor {

// Connects to `orphan`'s re-attach socket under `runtime_dir`: a connected
// stream socket (O_CLOEXEC, non-blocking) whose peer is that very process.
// Errors say why not (no socket: it is mid-handoff, or a daemon too old to
// listen; refused; another process listens there).
Result<int> ConnectForReattach(const std::string& runtime_dir, const Orphan& orphan);

// The connection to re-attach through, when `orphans` is one generation
// that listens; otherwise none, with the reason logged (more than one still
// run while the orphan rules settle a handoff: the supervisor retries once
// one is left; or ConnectForReattach's).
OwnedFd ConnectToOrphan(const std::string& runtime_dir, const std::vector<Orphan>& orphans, LogSink& log);

}  // namespace baton::supervisor
