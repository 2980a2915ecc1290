// Human durations for flags and config: "250ms", "5s", "2m", "1h", "1500us".
#pragma once

#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/errors.h"

namespace baton {

// A bare number is an error: the unit must be explicit.
Result<Duration> ParseDuration(std::string_view text);
// "1.5 s", "250 ms", "80 us" for humans.
std::string FormatDuration(Duration d);

}  // namespace baton
