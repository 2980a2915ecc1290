// How much slower this build runs its processes than a plain one: a
// sanitizer's factor. The harness and the tests scale their generous upper
// bounds by it (a deadline, a budget, a median a design target sets); they
// never use it to expect speed.
#pragma once

namespace baton::harness {

#if defined(__SANITIZE_THREAD__)
inline constexpr int kSanitizerSlowdown = 4;
#elif defined(__SANITIZE_ADDRESS__)
inline constexpr int kSanitizerSlowdown = 2;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr int kSanitizerSlowdown = 4;
#elif __has_feature(address_sanitizer)
inline constexpr int kSanitizerSlowdown = 2;
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif
#else
inline constexpr int kSanitizerSlowdown = 1;
#endif

}  // namespace baton::harness
