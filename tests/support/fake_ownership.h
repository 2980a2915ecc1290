// A fake data-dir ownership that records what happened.
#pragma once

#include <string>
#include <vector>

#include "ownership/ownership.h"

namespace baton::testsupport {

class FakeOwnership final : public ownership::Ownership {
 public:
  Status Acquire() override {
    calls.push_back("acquire");
    if (held_elsewhere) return Error(Errc::kFailedPrecondition, "data dir is locked by another process");
    held = true;
    return {};
  }
  void Release() override {
    if (held) calls.push_back("release");
    held = false;
  }
  bool Held() const override { return held; }
  Result<uint64_t> Generation() override { return generation; }
  Result<uint64_t> Bump() override {
    if (!held) return Error(Errc::kFailedPrecondition, "not held");
    calls.push_back("bump");
    return ++generation;
  }

  bool held = false;
  bool held_elsewhere = false;
  uint64_t generation = 0;
  std::vector<std::string> calls;
};

}  // namespace baton::testsupport
