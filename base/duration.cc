#include "base/duration.h"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace baton {

Result<Duration> ParseDuration(std::string_view text) {
  const std::string_view original = text;
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) {
    return Error(Errc::kInvalidArgument, fmt::format("duration '{}': expected a number and a unit (ms, s, m, h)", original));
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, value);
  if (ec != std::errc() || ptr != text.data() + digits || value < 0) {
    return Error(Errc::kInvalidArgument, fmt::format("duration '{}': bad number", original));
  }
  const std::string_view unit = text.substr(digits);
  double us = 0;
  if (unit == "us") {
    us = value;
  } else if (unit == "ms") {
    us = value * 1e3;
  } else if (unit == "s") {
    us = value * 1e6;
  } else if (unit == "m" || unit == "min") {
    us = value * 60e6;
  } else if (unit == "h") {
    us = value * 3600e6;
  } else {
    return Error(Errc::kInvalidArgument,
                 fmt::format("duration '{}': unknown unit '{}' (use us, ms, s, m or h)", original, unit));
  }
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::micro>(us));
}

std::string FormatDuration(Duration d) {
  const double us = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  if (us < 1000) return fmt::format("{:.0f} us", us);
  if (us < 1e6) return fmt::format("{:.1f} ms", us / 1e3);
  return fmt::format("{:.2f} s", us / 1e6);
}

}  // namespace baton
