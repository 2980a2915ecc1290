#include "snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "log.h"
#include "baton/testing.h"

namespace kvd {
namespace {

using baton::Errc;
using baton::Error;
using baton::ErrnoError;

constexpr char kMagic[8] = {'K', 'V', 'D', 'S', 'N', 'A', 'P', '1'};
constexpr size_t kHeaderBytes = 8 + 8 + 8 + 4 + 8 + 8;
constexpr size_t kBufferBytes = 1u << 20;

uint32_t LoadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
uint64_t LoadU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
void StoreU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void StoreU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// "snap-<20 digits>.kvs" or ".tmp": the revision, else nullopt.
std::optional<uint64_t> ParseName(std::string_view name, std::string_view ext) {
  if (name.size() != 5 + 20 + 4 || !name.starts_with("snap-") || !name.ends_with(ext)) return std::nullopt;
  uint64_t rev = 0;
  for (char c : name.substr(5, 20)) {
    if (c < '0' || c > '9') return std::nullopt;
    rev = rev * 10 + static_cast<uint64_t>(c - '0');
  }
  return rev;
}

Result<std::vector<SnapshotFile>> ListNamed(const std::string& dir, std::string_view ext) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoError(fmt::format("snapshot: opendir {}", dir), errno);
  std::vector<SnapshotFile> out;
  while (dirent* e = ::readdir(d)) {
    if (auto rev = ParseName(e->d_name, ext)) out.push_back({*rev, dir + "/" + e->d_name});
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.revision < b.revision; });
  return out;
}

int FsyncDir(const char* dir) noexcept {
  const int fd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? 0 : err;
}

}  // namespace

std::string SnapshotName(uint64_t revision) { return fmt::format("snap-{:020}.kvs", revision); }

Result<std::vector<SnapshotFile>> ListSnapshots(const std::string& dir) { return ListNamed(dir, ".kvs"); }

SnapshotWriter::SnapshotWriter(const std::string& dir, const WalPosition& pos)
    : dir_(dir),
      tmp_(fmt::format("{}/snap-{:020}.tmp", dir, pos.revision)),
      path_(dir + "/" + SnapshotName(pos.revision)),
      pos_(pos),
      buf_(kBufferBytes) {}

bool SnapshotWriter::Flush() noexcept {
  size_t done = 0;
  while (done < len_) {
    const ssize_t n = ::write(fd_, buf_.data() + done, len_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    done += static_cast<size_t>(n);
  }
  len_ = 0;
  return true;
}

bool SnapshotWriter::Put(const void* data, size_t n) noexcept {
  const char* p = static_cast<const char*>(data);
  crc_ = Crc32c(std::string_view(p, n), crc_);
  while (n > 0) {
    if (len_ == buf_.size() && !Flush()) return false;
    const size_t k = std::min(n, buf_.size() - len_);
    std::memcpy(buf_.data() + len_, p, k);
    len_ += k;
    p += k;
    n -= k;
  }
  return true;
}

int SnapshotWriter::Write(const Store& store) noexcept {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) return errno;
  auto fail = [this]() noexcept {
    const int err = errno != 0 ? errno : EIO;
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
    return err;
  };
  char header[kHeaderBytes];
  std::memcpy(header, kMagic, 8);
  StoreU64(header + 8, store.revision());
  StoreU64(header + 16, store.history_hash());
  StoreU32(header + 24, pos_.segment);
  StoreU64(header + 28, pos_.offset);
  StoreU64(header + 36, store.map().size());
  if (!Put(header, sizeof header)) return fail();
  for (const auto& [key, value] : store.map()) {
    char lens[8];
    StoreU32(lens, static_cast<uint32_t>(key.size()));
    StoreU32(lens + 4, static_cast<uint32_t>(value.size()));
    if (!Put(lens, 8) || !Put(key.data(), key.size()) || !Put(value.data(), value.size())) return fail();
  }
  char trailer[4];
  StoreU32(trailer, crc_);
  // The trailer is not part of its own checksum: write it around Put.
  if (!Flush() || ::write(fd_, trailer, 4) != 4 || ::fsync(fd_) != 0) return fail();
  if (::close(fd_) != 0) {
    fd_ = -1;
    const int err = errno;
    ::unlink(tmp_.c_str());
    return err;
  }
  fd_ = -1;
  baton::testing::CrashPoint("kvd.checkpoint_before_rename");
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    return err;
  }
  return FsyncDir(dir_.c_str());
}

Result<LoadedSnapshot> ReadSnapshot(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(fmt::format("snapshot: open {}", path), errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError(fmt::format("snapshot: stat {}", path), err);
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::pread(fd, data.data() + got, data.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      return ErrnoError(fmt::format("snapshot: read {}", path), err);
    }
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  auto bad = [&path](std::string_view why) {
    return Error(Errc::kFailedPrecondition, fmt::format("snapshot: {}: {}", path, why));
  };
  if (data.size() < kHeaderBytes + 4 || std::memcmp(data.data(), kMagic, 8) != 0) return bad("not a kvd snapshot");
  const std::string_view body(data.data(), data.size() - 4);
  if (Crc32c(body) != LoadU32(data.data() + body.size())) return bad("checksum mismatch");
  LoadedSnapshot out;
  out.path = path;
  out.bytes = data.size();
  out.revision = LoadU64(data.data() + 8);
  out.history = LoadU64(data.data() + 16);
  out.position = {LoadU32(data.data() + 24), LoadU64(data.data() + 28), out.revision};
  const uint64_t count = LoadU64(data.data() + 36);
  if (out.position.segment == 0 || out.revision == 0) return bad("no WAL position");
  size_t off = kHeaderBytes;
  out.map.reserve(static_cast<size_t>(std::min<uint64_t>(count, body.size() / 8)));
  for (uint64_t i = 0; i < count; ++i) {
    if (body.size() - off < 8) return bad("truncated");
    const uint32_t klen = LoadU32(body.data() + off);
    const uint32_t vlen = LoadU32(body.data() + off + 4);
    off += 8;
    if (body.size() - off < uint64_t{klen} + vlen) return bad("truncated");
    out.map.emplace(std::string(body.substr(off, klen)), std::string(body.substr(off + klen, vlen)));
    off += uint64_t{klen} + vlen;
  }
  if (off != body.size()) return bad("trailing bytes after the last key");
  if (out.map.size() != count) return bad("a key appears twice");
  return out;
}

Result<std::optional<LoadedSnapshot>> LoadLatestSnapshot(const std::string& dir, baton::LogSink* log) {
  auto all = ListSnapshots(dir);
  if (!all) return all.error();
  for (auto it = all->rbegin(); it != all->rend(); ++it) {
    auto s = ReadSnapshot(it->path);
    if (s) return std::optional<LoadedSnapshot>(std::move(*s));
    if (log != nullptr) {
      log->Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.snapshot.bad", "skipping a snapshot: {}", s.error().message)
                    .With("path", it->path));
    }
  }
  return std::optional<LoadedSnapshot>();
}

Result<GcResult> RemoveObsolete(const std::string& dir) {
  GcResult out;
  auto snaps = ListSnapshots(dir);
  if (!snaps) return snaps.error();
  if (snaps->size() < 2) return out;
  const SnapshotFile& older = (*snaps)[snaps->size() - 2];
  auto kept = ReadSnapshot(older.path);
  // Without a readable older snapshot we cannot say what it needs: keep all.
  if (!kept) return out;
  out.kept_from_segment = kept->position.segment;
  auto tmps = ListNamed(dir, ".tmp");
  if (!tmps) return tmps.error();
  const uint64_t newest = snaps->back().revision;
  std::vector<std::string> doomed;
  for (size_t i = 0; i + 2 < snaps->size(); ++i) doomed.push_back((*snaps)[i].path);
  for (const auto& t : *tmps) {
    if (t.revision < newest) doomed.push_back(t.path);
  }
  auto segments = ListSegments(dir);
  if (!segments) return segments.error();
  std::vector<std::string> old_segments;
  for (uint32_t s : *segments) {
    if (s < out.kept_from_segment) old_segments.push_back(dir + "/" + SegmentName(s));
  }
  // Snapshots first, then segments oldest first: a crash in between leaves
  // a WAL that is still contiguous from what the kept snapshots need.
  for (const auto& p : doomed) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return ErrnoError(fmt::format("snapshot: unlink {}", p), errno);
    if (p.ends_with(".kvs")) ++out.snapshots_removed;
  }
  for (const auto& p : old_segments) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return ErrnoError(fmt::format("snapshot: unlink {}", p), errno);
    ++out.segments_removed;
    baton::testing::CrashPoint("kvd.checkpoint_mid_gc");
  }
  return out;
}

}  // namespace kvd
