// BATON_CHECK: a broken internal invariant aborts with file and line.
// Peer input, timeouts and OS errors are never checked this way: they are
// results (see errors.h).
#pragma once

namespace baton::detail {
[[noreturn]] void CheckFailed(const char* expr, const char* file, int line, const char* msg);
}  // namespace baton::detail

#define BATON_CHECK(cond)                                                          \
  do {                                                                             \
    if (!(cond)) ::baton::detail::CheckFailed(#cond, __FILE__, __LINE__, nullptr); \
  } while (0)

#define BATON_CHECK_MSG(cond, msg)                                             \
  do {                                                                         \
    if (!(cond)) ::baton::detail::CheckFailed(#cond, __FILE__, __LINE__, msg); \
  } while (0)
