#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace cxxd {
namespace {

constexpr size_t kHeader = 16;

uint64_t Fnv1a(uint64_t h, const std::string& s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t Checksum(const Record& r) { return Fnv1a(Fnv1a(0xcbf29ce484222325ULL, r.key), r.value); }

baton::Error Sys(const std::string& what) {
  return baton::Error(baton::Errc::kInternal, what + ": " + std::strerror(errno));
}

}  // namespace

Store::Store(std::string data_dir) : dir_(std::move(data_dir)), path_(dir_ + "/kv.log") {}

Store::~Store() {
  if (fd_ >= 0) ::close(fd_);
}

baton::Result<uint64_t> Store::CatchUp(ReplayMode mode) {
  const int flags = (mode == ReplayMode::kRepair ? O_RDWR : O_RDONLY) | O_CLOEXEC;
  const int fd = ::open(path_.c_str(), flags);
  if (fd < 0) {
    if (errno == ENOENT && offset_ == 0) return uint64_t{0};  // nothing written yet
    return Sys("open " + path_);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    baton::Error e = Sys("stat " + path_);
    ::close(fd);
    return e;
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < offset_) {
    ::close(fd);
    return baton::Error(baton::Errc::kFailedPrecondition,
                        path_ + " is shorter (" + std::to_string(size) + " bytes) than what was replayed");
  }
  std::string buf(size - offset_, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n = ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(offset_ + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // shorter than fstat said: the rest is a partial tail
    got += static_cast<size_t>(n);
  }
  buf.resize(got);

  uint64_t applied = 0;
  size_t pos = 0;
  bool torn = false;
  while (pos < buf.size()) {
    if (buf.size() - pos < kHeader) {
      torn = true;
      break;
    }
    uint32_t klen = 0, vlen = 0;
    uint64_t sum = 0;
    std::memcpy(&klen, buf.data() + pos, 4);
    std::memcpy(&vlen, buf.data() + pos + 4, 4);
    std::memcpy(&sum, buf.data() + pos + 8, 8);
    if (buf.size() - pos - kHeader < uint64_t{klen} + vlen) {
      torn = true;
      break;
    }
    Record r{buf.substr(pos + kHeader, klen), buf.substr(pos + kHeader + klen, vlen)};
    if (Checksum(r) != sum) {
      if (mode == ReplayMode::kReadOnly) break;  // a record still being written
      ::close(fd);
      return baton::Error(baton::Errc::kFailedPrecondition,
                          path_ + ": corrupt record at offset " + std::to_string(offset_ + pos));
    }
    pos += kHeader + klen + vlen;
    Apply(std::move(r), sum);
    offset_ += kHeader + klen + vlen;
    ++applied;
  }
  // A record cut short by a crash was never acknowledged: drop it, so the
  // writer appends right after the last complete record.
  if (torn && mode == ReplayMode::kRepair && ::ftruncate(fd, static_cast<off_t>(offset_)) != 0) {
    baton::Error e = Sys("truncate the torn tail of " + path_);
    ::close(fd);
    return e;
  }
  ::close(fd);
  return applied;
}

baton::Status Store::Reload() {
  map_.clear();
  offset_ = revision_ = chain_ = 0;
  auto r = CatchUp(ReplayMode::kRepair);
  if (!r) return r.error();
  return {};
}

baton::Status Store::OpenWriter() {
  if (fd_ >= 0) return {};
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return Sys("open " + path_ + " for appending");
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || static_cast<uint64_t>(st.st_size) != offset_) {
    ::close(fd_);
    fd_ = -1;
    return baton::Error(baton::Errc::kFailedPrecondition, path_ + " does not end where the replay did");
  }
  // The log may have just been created: make its directory entry durable.
  const int dir = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return {};
}

baton::Status Store::Commit(const std::vector<Record>& batch) {
  if (fd_ < 0) return baton::Error(baton::Errc::kFailedPrecondition, "not the writer");
  std::string bytes;
  std::vector<uint64_t> sums;
  for (const auto& r : batch) {
    const uint32_t klen = static_cast<uint32_t>(r.key.size());
    const uint32_t vlen = static_cast<uint32_t>(r.value.size());
    const uint64_t sum = Checksum(r);
    sums.push_back(sum);
    bytes.append(reinterpret_cast<const char*>(&klen), 4);
    bytes.append(reinterpret_cast<const char*>(&vlen), 4);
    bytes.append(reinterpret_cast<const char*>(&sum), 8);
    bytes += r.key;
    bytes += r.value;
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // The log may now end in a partial record: stop writing; a replay
      // (Resume or the next generation's Begin) truncates it.
      baton::Error e = Sys("append to " + path_);
      ::close(fd_);
      fd_ = -1;
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd_) != 0) {
    baton::Error e = Sys("fdatasync " + path_);
    ::close(fd_);
    fd_ = -1;
    return e;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    offset_ += kHeader + batch[i].key.size() + batch[i].value.size();
    Apply(batch[i], sums[i]);
  }
  return {};
}

baton::Status Store::CloseWriter() {
  if (fd_ < 0) return {};
  const int fd = fd_;
  fd_ = -1;
  if (::fsync(fd) != 0) {
    baton::Error e = Sys("fsync " + path_);
    ::close(fd);
    return e;
  }
  if (::close(fd) != 0) return Sys("close " + path_);
  return {};
}

const std::string* Store::Get(const std::string& key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

std::string Store::fingerprint() const {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(chain_));
  return hex;
}

void Store::Apply(Record record, uint64_t checksum) {
  chain_ = (chain_ ^ checksum) * 0x100000001b3ULL + 0x9e3779b97f4a7c15ULL;
  ++revision_;
  map_.insert_or_assign(std::move(record.key), std::move(record.value));
}

}  // namespace cxxd
