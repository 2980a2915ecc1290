// Data-dir ownership (docs/design.md §7).
//
//   <data-dir>/.baton.lock        flock(LOCK_EX|LOCK_NB); never unlinked, so
//                                 every process locks the same inode. The holder
//                                 writes its pid into it for diagnostics.
//   <data-dir>/.baton.generation  a counter the new owner bumps (fsynced)
//                                 before its first write.
//
// Blocking: every call does a few small synchronous syscalls (open, flock,
// write, fsync); none waits for another process.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/errors.h"

namespace baton::ownership {

inline constexpr const char* kLockFile = ".baton.lock";
inline constexpr const char* kGenerationFile = ".baton.generation";

// A held data-dir lock. Move-only; the destructor releases it.
// Owns one O_CLOEXEC fd, so the lock never leaks into a child process.
class DataDirLock {
 public:
  // Takes the lock without waiting. kFailedPrecondition (naming the holder
  // pid when known) if another process holds it.
  static Result<DataDirLock> Acquire(const std::string& data_dir);

  DataDirLock(DataDirLock&& o) noexcept : dir_(std::move(o.dir_)), fd_(o.fd_) { o.fd_ = -1; }
  DataDirLock& operator=(DataDirLock&& o) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock() { Release(); }

  // Releases the lock (LOCK_UN, then closes the fd: a forked child's copy
  // of the descriptor does not keep it). Idempotent.
  void Release();
  bool held() const { return fd_ >= 0; }
  const std::string& dir() const { return dir_; }

 private:
  DataDirLock(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  std::string dir_;
  int fd_ = -1;
};

// The pid recorded by the last holder (0 if none recorded). Diagnostics only.
pid_t RecordedHolder(const std::string& data_dir);

// The current data generation (0 if the file does not exist yet).
Result<uint64_t> ReadGeneration(const std::string& data_dir);
// Writes generation+1 durably (write temp, fsync, rename, fsync dir) and
// returns the new value. Only the lock holder may call it.
Result<uint64_t> BumpGeneration(const DataDirLock& lock);

}  // namespace baton::ownership
