// Version negotiation (docs/design.md §6): each side speaks an inclusive [min, max]
// range; the highest common version wins, no overlap is a refusal that names
// both ranges. The same rule applies to the daemon's state-schema range.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/errors.h"

namespace baton::protocol {

// The control protocol versions this build speaks.
inline constexpr uint32_t kProtocolMin = 1;
inline constexpr uint32_t kProtocolMax = 1;

struct VersionRange {
  uint32_t min = 0;
  uint32_t max = 0;
  bool Valid() const { return min <= max; }
  std::string ToString() const;
};

// The highest version in both ranges. Errors: kInvalidArgument for a range
// with min > max, kIncompatible when the ranges do not overlap; `what` names
// the thing negotiated ("protocol", "state schema") and `ours_name` /
// `theirs_name` the parties, e.g. "supervisor" / "successor".
Result<uint32_t> Negotiate(VersionRange ours, VersionRange theirs, std::string_view what = "protocol",
                           std::string_view ours_name = "ours", std::string_view theirs_name = "theirs");

}  // namespace baton::protocol
