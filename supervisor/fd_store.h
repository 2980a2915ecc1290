// The file descriptor store of one service (systemd's FDSTORE=1, FDNAME=,
// FDSTOREREMOVE=1; docs/design.md §14): descriptors a daemon parks in the
// supervisor, handed to every later generation (the successor of a handoff,
// a crash-restarted one) after the listeners, through LISTEN_FDS and
// LISTEN_FDNAMES.
//
// Bounded: at most `max` entries; what does not fit is closed at once and
// reported, never kept. The same open file stored again (a daemon storing
// the descriptor it was given back) is recognised and not stored twice, so
// a daemon that re-stores on every start does not grow the store. Names are
// unique here: a different file under a stored name replaces it (systemd
// would keep both; LISTEN_FDNAMES could not tell them apart).
//
// Owns every descriptor it holds (O_CLOEXEC as received) and closes it on
// removal, replacement and destruction. Threading: the supervisor's executor.
#pragma once

#include <cstddef>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/owned_fd.h"

namespace baton::supervisor {

class FdStore {
 public:
  // `reserved`: names that may not be used (the listeners').
  FdStore(size_t max, std::set<std::string> reserved) : max_(max), reserved_(std::move(reserved)) {}

  struct AddResult {
    size_t stored = 0;      // new entries (including replacements)
    size_t duplicates = 0;  // already stored: closed, nothing changed
    size_t replaced = 0;    // entries of the same name closed and replaced
    size_t refused = 0;     // beyond the maximum or a reserved name: closed
  };
  // Stores `fds` under `name` (the first as `name`, later ones as
  // `name`-2, `name`-3, ...). Takes every descriptor: kept or closed.
  AddResult Add(const std::string& name, std::vector<OwnedFd> fds);
  // Closes and drops the entry `name` (and its numbered siblings). Returns
  // how many were dropped.
  size_t Remove(const std::string& name);

  // (name, fd) in store order, for the next launch; the fds stay owned here.
  std::vector<std::pair<std::string, int>> Entries() const;
  size_t size() const { return entries_.size(); }
  size_t max() const { return max_; }

 private:
  struct Entry {
    std::string name;
    OwnedFd fd;
    unsigned long long dev = 0, ino = 0;
  };
  size_t max_;
  std::set<std::string> reserved_;
  std::vector<Entry> entries_;
};

}  // namespace baton::supervisor
