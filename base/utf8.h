// UTF-8 checks for text that came from outside (a daemon's STATUS=, a
// name in a frame) before it is shown or written into JSON.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace baton {

// The length of the well-formed UTF-8 sequence at the start of `s`
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
// or 0 if `s` is empty or does not start with one.
size_t Utf8SequenceLength(std::string_view s);

// True if all of `s` is well-formed UTF-8.
bool IsUtf8(std::string_view s);

// `s` with each byte of an ill-formed sequence replaced by U+FFFD.
std::string ToUtf8(std::string_view s);

}  // namespace baton
