// The adoption record: `<runtime-dir>/supervisor.journal`, naming the
// supervisor and every generation it started that may still run. A
// supervisor that starts after another one died reads it to find the
// generations left behind (orphans) and take over their listeners
// (adoption.h). Rewritten whole (temp file + rename) on every change, so a
// reader sees the old or the new version, never a torn one.
//
// Format, one process per line, pid plus its start time (clock ticks since
// boot, /proc/<pid>/stat field 22) so a recycled pid is never mistaken for
// ours:
//   supervisor <pid> <start-time>
//   child <pid> <start-time> <role>
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/errors.h"

namespace baton::supervisor {

struct RecordedProcess {
  pid_t pid = 0;
  uint64_t start_time = 0;
  std::string role;  // children: "cold" | "successor"
};

struct AdoptionRecord {
  RecordedProcess supervisor;
  std::vector<RecordedProcess> children;
};

std::string AdoptionRecordPath(const std::string& runtime_dir);
// nullopt when there is no journal; an error when it exists but is unreadable
// or malformed (naming the line).
Result<std::optional<AdoptionRecord>> ReadAdoptionRecord(const std::string& path);
Status WriteAdoptionRecord(const std::string& path, const AdoptionRecord& state);

// The start time of `pid` (field 22 of /proc/<pid>/stat); an error when the
// process does not exist.
Result<uint64_t> ProcessStartTime(pid_t pid);
// The entry's process still runs (same pid and start time) and is not a zombie.
bool StillRunning(const RecordedProcess& e);
// An entry for a live process (ours, or a child just spawned).
Result<RecordedProcess> EntryFor(pid_t pid, std::string role);

}  // namespace baton::supervisor
