// Taking over from a supervisor that died (docs/design.md §3, "S dies or hangs").
//
// The generations it started keep running without it (the orphan rules of
// §3 decide which one keeps serving) and keep the listening sockets open, so
// clients are never refused; but nobody can upgrade or restart them any
// more. A new supervisor for the same runtime dir reads the old journal,
// duplicates the orphans' listening sockets into itself with pidfd_getfd(2)
// (same open file description: still no refused connection), lets the
// orphan rules settle, then ends the orphans gracefully (SIGTERM: drain and
// exit) and cold-starts a generation it controls. The cost is one write
// pause of a drain plus a cold start; no acknowledged write is lost because
// every acknowledged write was fsynced.
//
// pidfd_getfd needs ptrace rights over the orphan (same uid, and with Yama's
// ptrace_scope >= 1, CAP_SYS_PTRACE). Without them the new supervisor ends
// the orphans first and binds afresh: a short window of refused
// connections, which it logs.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/errors.h"
#include "supervisor/adoption_record.h"
#include "supervisor/listeners.h"

namespace baton::supervisor {

// A generation of a dead supervisor that still runs. Owns `pidfd`
// (O_CLOEXEC), which pins the process identity against pid reuse.
class Orphan {
 public:
  Orphan(RecordedProcess entry, int pidfd) : entry_(std::move(entry)), pidfd_(pidfd) {}
  Orphan(Orphan&& o) noexcept : entry_(std::move(o.entry_)), pidfd_(o.pidfd_) { o.pidfd_ = -1; }
  Orphan& operator=(Orphan&&) = delete;
  ~Orphan();

  pid_t pid() const { return entry_.pid; }
  const std::string& role() const { return entry_.role; }
  int pidfd() const { return pidfd_; }
  // How the journal names it (pid + start time).
  const RecordedProcess& entry() const { return entry_; }
  bool Running() const;
  Status Signal(int sig) const;

 private:
  RecordedProcess entry_;
  int pidfd_ = -1;
};

// The journal's children that still run. Processes that went away (or whose
// pid now names another process) are skipped.
std::vector<Orphan> FindOrphans(const AdoptionRecord& journal);

// A duplicate (O_CLOEXEC) of the listening socket an orphan holds for
// `spec`: the same socket, so the accept queue and its waiting clients carry
// over. Errors say why none could be taken (no rights, not found).
Result<int> TakeListener(const std::vector<Orphan>& orphans, const ListenerSpec& spec);

}  // namespace baton::supervisor
