// The one JSON helper kvd needs: a string literal.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace kvd {

// Appends `s` as a JSON string literal (quotes included) to `out`: `"` and
// `\` escaped, control characters as \u00XX, every other byte as it is (so
// UTF-8 stays UTF-8; kvd does not check that keys and values are UTF-8).
inline void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

inline std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

}  // namespace kvd
