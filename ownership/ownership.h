// The OS seam the session state machines use for data-dir ownership: one
// small interface so the pure sessions can be tested with a fake.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/errors.h"
#include "ownership/data_dir.h"

namespace baton::ownership {

class Ownership {
 public:
  virtual ~Ownership() = default;
  // Take the data-dir lock without waiting (kFailedPrecondition if held elsewhere).
  virtual Status Acquire() = 0;
  // Drop it (idempotent). Called only after the writer is closed and fsynced.
  virtual void Release() = 0;
  virtual bool Held() const = 0;
  // The current data generation; Bump requires the lock.
  virtual Result<uint64_t> Generation() = 0;
  virtual Result<uint64_t> Bump() = 0;
};

// The real thing over <data-dir>/.baton.lock and .baton.generation.
class DataDirOwnership final : public Ownership {
 public:
  explicit DataDirOwnership(std::string dir) : dir_(std::move(dir)) {}
  Status Acquire() override;
  void Release() override;
  bool Held() const override { return lock_.has_value() && lock_->held(); }
  Result<uint64_t> Generation() override { return ReadGeneration(dir_); }
  Result<uint64_t> Bump() override;

 private:
  std::string dir_;
  std::optional<DataDirLock> lock_;
};

}  // namespace baton::ownership
