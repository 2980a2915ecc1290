// kvd's checkpoints: the whole Store written beside the WAL, so that a
// warm-up or a recovery loads the latest one and replays only the records
// after it, and old WAL segments can be removed. Without them the cost of an
// upgrade grows with the daemon's whole history.
//
//   <data-dir>/snap-<revision, 20 digits>.kvs
//
// (integers little-endian):
//
//   8 bytes   magic "KVDSNAP1"
//   u64       revision      the last record applied
//   u64       history hash  the Store's running fingerprint state
//   u32, u64  WAL position  segment and offset just after that record
//   u64       key count
//   per key:  u32 key length, u32 value length, key bytes, value bytes
//   u32       crc32c over everything before it
//
// A snapshot is written to snap-<revision>.tmp, fsynced, renamed into place
// and the directory fsynced: a crash leaves either no snapshot or a whole
// one. A snapshot that fails its checks is skipped (logged) and the next
// older one is used; the WAL is kept from the older of the two newest
// snapshots on (RemoveObsolete), so one bad or missing snapshot never loses
// an acknowledged write.
//
// Threading: nothing here is shared. SnapshotWriter::Write is meant for a
// forked child (see KvService): it allocates nothing and calls only
// async-signal-safe functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "baton/errors.h"
#include "store.h"
#include "wal.h"

namespace baton {
class LogSink;
}

namespace kvd {

std::string SnapshotName(uint64_t revision);  // "snap-00000000000000001234.kvs"

struct SnapshotFile {
  uint64_t revision = 0;
  std::string path;
};
// Whole snapshots in `dir` (not .tmp files), oldest first.
Result<std::vector<SnapshotFile>> ListSnapshots(const std::string& dir);

// Writes one snapshot. Prepare on the thread that owns the Store (it
// allocates the paths and the write buffer); Write may then run in a forked
// child.
class SnapshotWriter {
 public:
  SnapshotWriter(const std::string& dir, const WalPosition& pos);
  // Writes `store` (whose revision must be pos.revision) and renames it into
  // place. Returns 0 or the errno of the first failure (the .tmp file is
  // then removed). Allocates nothing.
  int Write(const Store& store) noexcept;

  const std::string& path() const { return path_; }

 private:
  bool Put(const void* data, size_t n) noexcept;
  bool Flush() noexcept;

  std::string dir_, tmp_, path_;
  WalPosition pos_;
  std::vector<char> buf_;
  size_t len_ = 0;
  uint32_t crc_ = 0;
  int fd_ = -1;
};

struct LoadedSnapshot {
  std::unordered_map<std::string, std::string> map;
  uint64_t revision = 0;
  uint64_t history = 0;
  WalPosition position;
  std::string path;
  uint64_t bytes = 0;  // the file's size
};

// The newest snapshot that passes its checks, or nullopt when there is none.
// Bad ones are logged (kvd.snapshot.bad) and skipped. Errors: only for a
// data dir that cannot be listed.
Result<std::optional<LoadedSnapshot>> LoadLatestSnapshot(const std::string& dir, baton::LogSink* log);

// Reads and checks one snapshot file.
Result<LoadedSnapshot> ReadSnapshot(const std::string& path);

struct GcResult {
  uint32_t segments_removed = 0;
  uint32_t snapshots_removed = 0;
  uint32_t kept_from_segment = 0;  // the oldest WAL segment still needed
};
// The data-dir lock holder only: keeps the two newest snapshots and every
// WAL segment from the older one's position on; removes older snapshots and
// segments, and .tmp files older than the newest snapshot. With fewer than
// two snapshots nothing is removed.
Result<GcResult> RemoveObsolete(const std::string& dir);

}  // namespace kvd
