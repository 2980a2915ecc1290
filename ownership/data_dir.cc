#include "ownership/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace baton::ownership {
namespace {

std::string PathIn(const std::string& dir, const char* name) { return fmt::format("{}/{}", dir, name); }

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(fmt::format("write {}", what), errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> ReadSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(fmt::format("open {}", path), errno);
  char buf[64];
  ssize_t n;
  do {
    n = ::pread(fd, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (n < 0) return ErrnoError(fmt::format("read {}", path), err);
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

DataDirLock& DataDirLock::operator=(DataDirLock&& o) noexcept {
  if (this != &o) {
    Release();
    dir_ = std::move(o.dir_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Result<DataDirLock> DataDirLock::Acquire(const std::string& data_dir) {
  struct stat st {};
  if (::stat(data_dir.c_str(), &st) != 0) return ErrnoError(fmt::format("data dir {}", data_dir), errno);
  if (!S_ISDIR(st.st_mode)) return Error(Errc::kFailedPrecondition, fmt::format("data dir {}: not a directory", data_dir));
  const std::string path = PathIn(data_dir, kLockFile);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(fmt::format("open {}", path), errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      const pid_t holder = RecordedHolder(data_dir);
      return Error(Errc::kFailedPrecondition,
                   holder > 0 ? fmt::format("data dir {} is locked by another process (pid {})", data_dir, holder)
                              : fmt::format("data dir {} is locked by another process", data_dir));
    }
    return ErrnoError(fmt::format("flock {}", path), err);
  }
  // Diagnostics only: nobody trusts this pid for correctness.
  const std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd, 0) == 0) {
    (void)::pwrite(fd, pid.data(), pid.size(), 0);
  }
  return DataDirLock(data_dir, fd);
}

void DataDirLock::Release() {
  if (fd_ >= 0) {
    // Unlock explicitly: closing drops the flock only with the last
    // reference to this open file description, and a child the daemon
    // forked (a snapshot writer, system()) holds one until it closes its
    // copy or execs, which would keep the successor out.
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
    fd_ = -1;
  }
}

pid_t RecordedHolder(const std::string& data_dir) {
  auto text = ReadSmallFile(PathIn(data_dir, kLockFile));
  if (!text) return 0;
  int pid = 0;
  std::from_chars(text->data(), text->data() + text->size(), pid);
  return pid;
}

Result<uint64_t> ReadGeneration(const std::string& data_dir) {
  const std::string path = PathIn(data_dir, kGenerationFile);
  auto text = ReadSmallFile(path);
  if (!text) {
    if (text.error().Is(Errc::kNotFound)) return uint64_t{0};
    return text.error();
  }
  uint64_t gen = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), gen);
  if (ec != std::errc() || (ptr != text->data() + text->size() && *ptr != '\n')) {
    return Error(Errc::kFailedPrecondition, fmt::format("{}: corrupt generation '{}'", path, *text));
  }
  return gen;
}

Result<uint64_t> BumpGeneration(const DataDirLock& lock) {
  if (!lock.held()) return Error(Errc::kFailedPrecondition, "bump generation: the data-dir lock is not held");
  auto current = ReadGeneration(lock.dir());
  if (!current) return current.error();
  const uint64_t next = *current + 1;
  const std::string path = PathIn(lock.dir(), kGenerationFile);
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(fmt::format("open {}", tmp), errno);
  Status st = WriteAll(fd, fmt::format("{}\n", next), tmp);
  if (st && ::fsync(fd) != 0) st = ErrnoError(fmt::format("fsync {}", tmp), errno);
  ::close(fd);
  if (!st) return st.error();
  // rename is atomic: a crash leaves either the old or the new counter.
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError(fmt::format("rename {}", tmp), errno);
  int dfd = ::open(lock.dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError(fmt::format("open {}", lock.dir()), errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return ErrnoError(fmt::format("fsync {}", lock.dir()), err);
  return next;
}

}  // namespace baton::ownership
