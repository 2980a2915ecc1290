#include "base/duration.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace baton {

Result<Duration> ParseDuration(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) ++i;
  const std::string_view number = text.substr(0, i);
  const std::string_view unit = text.substr(i);
  double value = 0;
  const auto* end = number.data() + number.size();
  auto [p, ec] = std::from_chars(number.data(), end, value);
  if (number.empty() || ec != std::errc() || p != end || !std::isfinite(value)) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("duration '{}': expected a number with a unit, e.g. 10s, 500ms, 2m", text));
  }
  double ns_per_unit = 0;
  if (unit == "us") {
    ns_per_unit = 1e3;
  } else if (unit == "ms") {
    ns_per_unit = 1e6;
  } else if (unit == "s") {
    ns_per_unit = 1e9;
  } else if (unit == "m" || unit == "min") {
    ns_per_unit = 60e9;
  } else if (unit == "h") {
    ns_per_unit = 3600e9;
  } else if (unit.empty()) {
    return Error(Errc::kInvalidArgument, fmt::format("duration '{}': missing unit (us, ms, s, m or h)", text));
  } else {
    return Error(Errc::kInvalidArgument,
                 fmt::format("duration '{}': unknown unit '{}' (us, ms, s, m or h)", text, unit));
  }
  const double ns = value * ns_per_unit;
  // Beyond ~290 years int64 nanoseconds overflow.
  if (ns > 1e18) return Error(Errc::kInvalidArgument, fmt::format("duration '{}': too long", text));
  return std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(std::llround(ns)));
}

std::string FormatDuration(Duration d) {
  const double us = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  if (us < 1000) return fmt::format("{:.0f} us", us);
  if (us < 1e6) return fmt::format("{:.1f} ms", us / 1e3);
  return fmt::format("{:.2f} s", us / 1e6);
}

}  // namespace baton
