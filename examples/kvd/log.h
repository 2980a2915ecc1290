// kvd's own events, sent to the same baton::LogSink as the library's.
#pragma once

#include <string>
#include <utility>

#include <fmt/format.h>

#include "baton/log.h"

namespace kvd {

// MakeEvent(Level::kInfo, "kvd.replay", "replayed {} records", n).
template <class... Args>
baton::Event MakeEvent(baton::Level level, std::string name, fmt::format_string<Args...> f, Args&&... args) {
  return baton::Event{level, std::move(name), fmt::format(f, std::forward<Args>(args)...), {}};
}

}  // namespace kvd
