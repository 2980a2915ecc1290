#include "protocol/version.h"

#include <algorithm>

#include <fmt/format.h>

namespace baton::protocol {

std::string VersionRange::ToString() const { return fmt::format("[{},{}]", min, max); }

Result<uint32_t> Negotiate(VersionRange ours, VersionRange theirs, std::string_view what,
                           std::string_view ours_name, std::string_view theirs_name) {
  if (!ours.Valid()) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("{} range of the {} is invalid: {}", what, ours_name, ours.ToString()));
  }
  if (!theirs.Valid()) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("{} range of the {} is invalid: {}", what, theirs_name, theirs.ToString()));
  }
  const uint32_t lo = std::max(ours.min, theirs.min);
  const uint32_t hi = std::min(ours.max, theirs.max);
  if (lo > hi) {
    return Error(Errc::kIncompatible,
                 fmt::format("no common {} version: {} speaks {}, {} speaks {}", what, ours_name,
                             ours.ToString(), theirs_name, theirs.ToString()));
  }
  return hi;
}

}  // namespace baton::protocol
