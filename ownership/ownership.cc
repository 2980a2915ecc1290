#include "ownership/ownership.h"

namespace baton::ownership {

Status DataDirOwnership::Acquire() {
  if (Held()) return {};
  auto lock = DataDirLock::Acquire(dir_);
  if (!lock) return lock.error();
  lock_.emplace(std::move(*lock));
  return {};
}

void DataDirOwnership::Release() { lock_.reset(); }

Result<uint64_t> DataDirOwnership::Bump() {
  if (!Held()) return Error(Errc::kFailedPrecondition, "bump generation: the data-dir lock is not held");
  return BumpGeneration(*lock_);
}

}  // namespace baton::ownership
