// kvd's write-ahead log: append-only segment files in the data dir,
//
//   <data-dir>/wal-000001.log, wal-000002.log, ...
//
// each a sequence of records (all integers little-endian):
//
//   u32 length      of the payload
//   u32 crc32c      over the 4 length bytes, then the payload
//   payload:        u64 revision, u32 key length, key bytes, value bytes
//   or, when kvd runs with a leader lease (the key length's top bit set):
//                   u64 revision, u32 key length | 0x80000000, u64 lease
//                   epoch, key bytes, value bytes
//
// The epoch is the fencing token the writer held when it accepted the
// write; along the log it never decreases. (Builds from before the lease
// cannot replay epoch-stamped records: they see corruption.)
//
// Revisions start at 1 and grow by exactly one per record across segments, so
// a missing segment or record is detected on replay. A record never spans two
// segments.
//
// Recovery rule (ReplayMode::kRepair): a bad record in the last segment with
// nothing after it (it runs past end of file, or only zero bytes follow it) is
// a torn tail, the remains of a write that was never acknowledged: it is
// truncated and logged. Any other bad record is corruption in the middle of
// acknowledged data: an error, nothing is modified.
//
// Threading: nothing here is shared; every call does blocking file I/O on the
// calling thread. Every fd is O_CLOEXEC.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/errors.h"

namespace baton {
class LogSink;
}

namespace kvd {

using baton::Result;
using baton::Status;

inline constexpr uint32_t kRecordHeaderBytes = 8;
inline constexpr uint32_t kMinPayloadBytes = 12;
inline constexpr uint32_t kEpochFlag = 0x80000000u;
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;

// CRC-32C (Castagnoli). `crc` continues a previous call. Uses the CPU's
// crc32 instruction where there is one (x86-64 with SSE4.2), else a table.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);
// The table-driven version (what Crc32c falls back to; tests compare them).
uint32_t Crc32cPortable(std::string_view data, uint32_t crc = 0);

std::string SegmentName(uint32_t segment);  // "wal-000007.log"
// Segment numbers present in `dir`, ascending.
Result<std::vector<uint32_t>> ListSegments(const std::string& dir);

// A point in the log: the byte just after the last record read, and that
// record's revision. segment 0 = before the first segment.
struct WalPosition {
  uint32_t segment = 0;
  uint64_t offset = 0;
  uint64_t revision = 0;
  bool operator==(const WalPosition&) const = default;
};

struct WalRecord {
  uint64_t revision;
  std::string_view key;
  std::string_view value;
  uint64_t epoch = 0;  // the writer's lease epoch (0 = no lease)
};

// The bytes of one record (header included).
std::string EncodeRecord(const WalRecord& r);

enum class ReplayMode {
  kReadOnly,  // opens files O_RDONLY, never modifies; a bad tail record just ends the replay
  kRepair,    // the data-dir lock holder's recovery: truncates a torn tail (fsynced)
};

struct ReplayResult {
  WalPosition end;          // where a writer continues / the next replay starts
  uint64_t records = 0;     // records delivered by this call
  uint64_t tail_bytes = 0;  // bytes of an unfinished tail left (read-only) or truncated (repair)
};

// Replays every record after `from` in order into `apply`, which may stop the
// replay by returning an error. Errors: kFailedPrecondition for corruption or
// a `from` that does not exist on disk (with file and offset in the message),
// errno errors for I/O. `log` (may be null) gets a kvd.wal.truncated event.
Result<ReplayResult> ReplayWal(const std::string& dir, const WalPosition& from, ReplayMode mode,
                               const std::function<Status(const WalRecord&)>& apply, baton::LogSink* log);

// Appends to the log. Only the data-dir lock holder opens one. Not
// thread-safe: one thread at a time (kvd hands it between the io thread and
// its disk thread, see committer.h).
class WalWriter {
 public:
  // Continues after `end`, which must be what a kRepair replay returned (the
  // last segment's size must equal end.offset). Starts a new segment when
  // there is none or the last one has reached `rotate_bytes`.
  static Result<WalWriter> Open(const std::string& dir, const WalPosition& end, uint64_t rotate_bytes);

  WalWriter(WalWriter&& o) noexcept;
  WalWriter& operator=(WalWriter&& o) noexcept;
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;
  ~WalWriter();  // closes without fsync: call Sync()/Close() for durability

  // Writes whole records (a batch of EncodeRecord outputs, `last_revision`
  // being the last one's). Rotates first if the segment is full. Not durable
  // until Sync().
  Status Append(std::string_view records, uint64_t last_revision);
  // fdatasync of the current segment.
  Status Sync();
  // Sync, then close. Idempotent.
  Status Close();
  // After a failed Append or Sync: cuts the log back to `durable`, the
  // position the last successful Sync reached (in this segment, or at the
  // end of the previous one when the failed Append had rotated), and
  // fsyncs, so that the log again ends with the last durable record and a
  // replay finds exactly what was acknowledged. Cutting frees space, so it
  // works on a full disk.
  Status Rewind(const WalPosition& durable);

  bool is_open() const { return fd_ >= 0; }
  // The position after the last appended record.
  const WalPosition& position() const { return pos_; }

 private:
  WalWriter(std::string dir, int fd, WalPosition pos, uint64_t rotate_bytes)
      : dir_(std::move(dir)), fd_(fd), pos_(pos), rotate_bytes_(rotate_bytes) {}
  Status Rotate();

  std::string dir_;
  int fd_ = -1;
  WalPosition pos_;
  uint64_t rotate_bytes_ = 0;
};

}  // namespace kvd
