#include "wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "log.h"
#include "baton/testing.h"

namespace kvd {
namespace {

using baton::Errc;
using baton::Error;
using baton::ErrnoError;

constexpr std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = MakeCrcTable();

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t GetU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string PathOf(const std::string& dir, uint32_t segment) { return dir + "/" + SegmentName(segment); }

}  // namespace

Result<std::vector<uint32_t>> ListSegments(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoError(fmt::format("wal: opendir {}", dir), errno);
  std::vector<uint32_t> out;
  while (dirent* e = ::readdir(d)) {
    unsigned n = 0;
    char tail[8] = {};
    // Exactly "wal-" + 6 digits + ".log".
    if (std::strlen(e->d_name) == 14 && std::sscanf(e->d_name, "wal-%6u.%3s", &n, tail) == 2 &&
        std::string_view(tail) == "log" && n > 0 && SegmentName(n) == e->d_name) {
      out.push_back(n);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

// The bytes of `path` from `start` to its end.
// Opens `path` (O_CLOEXEC added) and reports its size; the caller owns the fd.
struct SizedFd {
  int fd;
  uint64_t size;
};
Result<SizedFd> OpenSized(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoError(fmt::format("wal: open {}", path), errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError(fmt::format("wal: stat {}", path), err);
  }
  return SizedFd{fd, static_cast<uint64_t>(st.st_size)};
}

Result<std::string> ReadFrom(const std::string& path, uint64_t start) {
  auto opened = OpenSized(path, O_RDONLY);
  if (!opened) return opened.error();
  const int fd = opened->fd;
  const uint64_t size = opened->size;
  if (size < start) {
    ::close(fd);
    return Error(Errc::kFailedPrecondition,
                 fmt::format("wal: {} has {} bytes, shorter than the replay position {}", path, size, start));
  }
  std::string data(size - start, '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(start + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoError(fmt::format("wal: read {}", path), err);
    }
    if (n == 0) break;  // shrank under us: what we have is what there is
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  ::close(fd);
  return data;
}

Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ErrnoError(fmt::format("wal: open {}", path), errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError(fmt::format("wal: fsync {}", path), err);
  return {};
}

Status TruncateDurably(const std::string& path, uint64_t size) {
  if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
    return ErrnoError(fmt::format("wal: truncate {}", path), errno);
  }
  return FsyncPath(path, O_WRONLY);
}

bool AllZero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

enum class Parse { kOk, kBad };

// Parses the record at data[off]. On kBad, `past_eof` says whether the record
// as framed would run past the end of `data`.
Parse ParseRecord(std::string_view data, size_t off, WalRecord* rec, size_t* next, bool* past_eof) {
  *past_eof = false;
  const size_t left = data.size() - off;
  if (left < kRecordHeaderBytes) {
    *past_eof = true;
    return Parse::kBad;
  }
  const uint32_t len = GetU32(data.data() + off);
  const uint32_t crc = GetU32(data.data() + off + 4);
  if (uint64_t{kRecordHeaderBytes} + len > left) {
    *past_eof = true;
    return Parse::kBad;
  }
  if (len < kMinPayloadBytes || len > kMaxPayloadBytes) return Parse::kBad;
  const std::string_view payload = data.substr(off + kRecordHeaderBytes, len);
  if (Crc32c(payload, Crc32c(data.substr(off, 4))) != crc) return Parse::kBad;
  uint32_t key_len = GetU32(payload.data() + 8);
  size_t key_at = kMinPayloadBytes;
  rec->epoch = 0;
  if ((key_len & kEpochFlag) != 0) {
    key_len &= ~kEpochFlag;
    if (len < kMinPayloadBytes + 8) return Parse::kBad;
    rec->epoch = GetU64(payload.data() + kMinPayloadBytes);
    key_at += 8;
  }
  if (key_len > len - key_at) return Parse::kBad;
  rec->revision = GetU64(payload.data());
  rec->key = payload.substr(key_at, key_len);
  rec->value = payload.substr(key_at + key_len);
  *next = off + kRecordHeaderBytes + len;
  return Parse::kOk;
}

}  // namespace

uint32_t Crc32cPortable(std::string_view data, uint32_t crc) {
  crc = ~crc;
  for (unsigned char c : data) crc = kCrcTable[(crc ^ c) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
// SSE4.2's crc32 instruction computes CRC-32C 8 bytes at a time; replay
// checks every record, so this is most of the per-byte cost of a warm-up.
static __attribute__((target("sse4.2"))) uint32_t Crc32cSse42(std::string_view data, uint32_t crc) {
  uint64_t c = ~crc;
  const char* p = data.data();
  size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, static_cast<unsigned char>(*p));
  return ~c32;
}
#endif

uint32_t Crc32c(std::string_view data, uint32_t crc) {
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return Crc32cSse42(data, crc);
#endif
  return Crc32cPortable(data, crc);
}

std::string SegmentName(uint32_t segment) { return fmt::format("wal-{:06}.log", segment); }

std::string EncodeRecord(const WalRecord& r) {
  std::string payload;
  payload.reserve(kMinPayloadBytes + r.key.size() + r.value.size());
  PutU64(payload, r.revision);
  if (r.epoch != 0) {
    PutU32(payload, static_cast<uint32_t>(r.key.size()) | kEpochFlag);
    PutU64(payload, r.epoch);
  } else {
    PutU32(payload, static_cast<uint32_t>(r.key.size()));
  }
  payload.append(r.key);
  payload.append(r.value);
  std::string out;
  out.reserve(kRecordHeaderBytes + payload.size());
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU32(out, Crc32c(payload, Crc32c(out)));
  out.append(payload);
  return out;
}

Result<ReplayResult> ReplayWal(const std::string& dir, const WalPosition& from, ReplayMode mode,
                               const std::function<Status(const WalRecord&)>& apply, baton::LogSink* log) {
  auto segments = ListSegments(dir);
  if (!segments) return segments.error();
  std::vector<uint32_t> todo;
  for (uint32_t s : *segments) {
    if (s >= from.segment) todo.push_back(s);
  }
  if (from.segment != 0 && (todo.empty() || todo.front() != from.segment)) {
    return Error(Errc::kFailedPrecondition,
                 fmt::format("wal: {} (the replay position) is gone from {}", SegmentName(from.segment), dir));
  }
  ReplayResult result;
  result.end = from;
  uint64_t revision = from.revision;
  for (size_t i = 0; i < todo.size(); ++i) {
    const uint32_t seg = todo[i];
    const bool last = i + 1 == todo.size();
    const std::string path = PathOf(dir, seg);
    const uint64_t start = seg == from.segment ? from.offset : 0;
    auto data = ReadFrom(path, start);
    if (!data) return data.error();
    const std::string_view bytes = *data;
    size_t off = 0;
    while (off < bytes.size()) {
      WalRecord rec{};
      size_t next = 0;
      bool past_eof = false;
      if (ParseRecord(bytes, off, &rec, &next, &past_eof) == Parse::kBad) {
        const uint64_t at = start + off;
        // Not past EOF means the header is whole and the framed record fits.
        const bool nothing_after =
            past_eof || AllZero(bytes.substr(off)) ||
            AllZero(bytes.substr(off + kRecordHeaderBytes + GetU32(bytes.data() + off)));
        if (!last || !nothing_after) {
          return Error(Errc::kFailedPrecondition,
                       fmt::format("wal: corrupt record in {} at offset {} ({} more bytes follow it): "
                                   "acknowledged data is damaged, refusing to continue",
                                   path, at, bytes.size() - off));
        }
        result.tail_bytes = bytes.size() - off;
        if (mode == ReplayMode::kRepair) {
          if (auto st = TruncateDurably(path, at); !st) return st.error();
          if (log != nullptr) {
            log->Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.wal.truncated",
                                       "truncated a torn tail of {} bytes from {} at offset {}",
                                       result.tail_bytes, path, at)
                          .With("segment", SegmentName(seg))
                          .With("offset", at)
                          .With("bytes", uint64_t{result.tail_bytes}));
          }
        }
        break;
      }
      if (rec.revision != revision + 1) {
        return Error(Errc::kFailedPrecondition,
                     fmt::format("wal: {} offset {}: revision {} follows {} (a record or segment is missing)", path,
                                 start + off, rec.revision, revision));
      }
      if (auto st = apply(rec); !st) return st.error();
      revision = rec.revision;
      ++result.records;
      off = next;
    }
    result.end = WalPosition{seg, start + off, revision};
  }
  return result;
}

// ---- WalWriter --------------------------------------------------------------

namespace {

Result<int> CreateSegment(const std::string& dir, uint32_t segment) {
  const std::string path = PathOf(dir, segment);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(fmt::format("wal: create {}", path), errno);
  // The new name must survive a crash before its first record is acknowledged.
  if (auto st = FsyncPath(dir, O_RDONLY | O_DIRECTORY); !st) {
    ::close(fd);
    return st.error();
  }
  return fd;
}

}  // namespace

Result<WalWriter> WalWriter::Open(const std::string& dir, const WalPosition& end, uint64_t rotate_bytes) {
  if (end.segment == 0 || end.offset >= rotate_bytes) {
    const uint32_t seg = end.segment + 1;
    auto fd = CreateSegment(dir, seg);
    if (!fd) return fd.error();
    return WalWriter(dir, *fd, WalPosition{seg, 0, end.revision}, rotate_bytes);
  }
  const std::string path = PathOf(dir, end.segment);
  auto opened = OpenSized(path, O_WRONLY | O_APPEND);
  if (!opened) return opened.error();
  if (opened->size != end.offset) {
    ::close(opened->fd);
    return Error(Errc::kFailedPrecondition,
                 fmt::format("wal: {} has {} bytes but the replay ended at {}: replay with repair first", path,
                             opened->size, end.offset));
  }
  return WalWriter(dir, opened->fd, end, rotate_bytes);
}

WalWriter::WalWriter(WalWriter&& o) noexcept
    : dir_(std::move(o.dir_)), fd_(o.fd_), pos_(o.pos_), rotate_bytes_(o.rotate_bytes_) {
  o.fd_ = -1;
}

WalWriter& WalWriter::operator=(WalWriter&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    dir_ = std::move(o.dir_);
    fd_ = o.fd_;
    pos_ = o.pos_;
    rotate_bytes_ = o.rotate_bytes_;
    o.fd_ = -1;
  }
  return *this;
}

WalWriter::~WalWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status WalWriter::Rotate() {
  // The old segment is complete and durable before the next one exists, so
  // only the last segment can ever hold a torn tail.
  if (auto st = Sync(); !st) return st;
  ::close(fd_);
  fd_ = -1;
  auto fd = CreateSegment(dir_, pos_.segment + 1);
  if (!fd) return fd.error();
  fd_ = *fd;
  pos_ = WalPosition{pos_.segment + 1, 0, pos_.revision};
  return {};
}

Status WalWriter::Append(std::string_view records, uint64_t last_revision) {
  if (fd_ < 0) return Error(Errc::kFailedPrecondition, "wal: append to a closed writer");
  if (pos_.offset >= rotate_bytes_) {
    if (auto st = Rotate(); !st) return st;
  }
  size_t done = 0;
  while (done < records.size()) {
    ssize_t n = ::write(fd_, records.data() + done, records.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(fmt::format("wal: write {}", SegmentName(pos_.segment)), errno);
    done += static_cast<size_t>(n);
  }
  pos_.offset += records.size();
  pos_.revision = last_revision;
  baton::testing::CrashPoint("kvd.after_wal_append");
  return {};
}

Status WalWriter::Sync() {
  if (fd_ < 0) return {};
  if (::fdatasync(fd_) != 0) return ErrnoError(fmt::format("wal: fdatasync {}", SegmentName(pos_.segment)), errno);
  return {};
}

Status WalWriter::Rewind(const WalPosition& durable) {
  if (fd_ < 0) {
    // A rotation that failed to create the next segment had synced and
    // closed the full one first: nothing was written after `durable`.
    if (pos_ == durable) return {};
    return Error(Errc::kFailedPrecondition, "wal: rewind of a closed writer");
  }
  uint64_t keep = 0;
  if (durable.segment == pos_.segment) {
    keep = durable.offset;
  } else if (durable.segment + 1 != pos_.segment) {
    return Error(Errc::kInternal, fmt::format("wal: cannot rewind {} to {} offset {}", SegmentName(pos_.segment),
                                              SegmentName(durable.segment), durable.offset));
  }
  // (A failed write leaves pos_ where it was, so the file may be longer.)
  if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0) {
    return ErrnoError(fmt::format("wal: truncate {} to {}", SegmentName(pos_.segment), keep), errno);
  }
  if (::fdatasync(fd_) != 0) return ErrnoError(fmt::format("wal: fdatasync {}", SegmentName(pos_.segment)), errno);
  pos_ = WalPosition{pos_.segment, keep, durable.revision};
  return {};
}

Status WalWriter::Close() {
  if (fd_ < 0) return {};
  auto st = Sync();
  ::close(fd_);
  fd_ = -1;
  return st;
}

}  // namespace kvd
