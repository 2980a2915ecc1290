// Named crash points (docs/design.md §9). Every point is compiled into every build;
// an unarmed point costs one relaxed atomic load.
//
//   BATON_CRASH_AT=<name>[@<role>]   arm one point in this process; the
//                                    supervisor routes it (see Target)
//   BATON_CRASH_ACTION=exit|abort|hang   what it does (default: exit)
//   BATON_CRASH_MARKER=<path>        where the marker line is appended
//                                    (always also written to stderr)
//
// `exit` writes the marker and _exit()s with kCrashExitCode, skipping
// destructors and atexit handlers like a SIGKILL would.
#pragma once

#include <atomic>
#include <span>
#include <string>
#include <string_view>

#include "base/errors.h"

namespace baton::crashpoints {

inline constexpr int kCrashExitCode = 86;

enum class Point : int {
#define BATON_CRASHPOINT(id, name, role, desc) id,
#include "crashpoints/points.inc"
#undef BATON_CRASHPOINT
  kCount
};

enum class Role { kSupervisor, kIncumbent, kSuccessor, kDaemon, kTest };
std::string_view RoleName(Role r);

enum class Action { kExit, kAbort, kHang };

struct Info {
  Point point;
  std::string_view name;
  Role role;
  std::string_view description;
};

// Every point, in registry order.
std::span<const Info> All();
// The point with this name, or an error naming the unknown point.
Result<const Info*> Find(std::string_view name);
Result<Action> ParseAction(std::string_view s);

// Where the supervisor delivers an armed point: once, to the first child it
// spawns in `child_role` ("cold" or "successor"), so a restarted generation
// never inherits the fault (a crash loop is not a single fault). Incumbent
// points go to the first cold start, successor points to the first
// successor, supervisor points to no child. Daemon points (a daemon's own
// hooks) run in either role: "kvd.in_begin_replay@successor" picks one; the
// default is "cold".
struct Target {
  const Info* info = nullptr;
  std::string child_role;  // "" for supervisor and test points
};
// Parses "<name>" or "<name>@cold|@successor"; errors name the bad part.
Result<Target> ParseTarget(std::string_view text);

// Arms `point` in this process. Not thread-safe with respect to other Arm
// calls; Hit() may race with it harmlessly.
void Arm(Point point, Action action);
void Disarm();
// Reads BATON_CRASH_AT / BATON_CRASH_ACTION / BATON_CRASH_MARKER. Unset →
// disarmed, ok. An unknown point or action is an error (a typo must not
// silently turn a crash test into a pass).
Status ArmFromEnvironment();

namespace detail {
extern std::atomic<int> armed;  // index of the armed point, -1 when none
[[noreturn]] void Fire(Point p);
}  // namespace detail

// The hot path: one relaxed load when unarmed.
inline void Hit(Point p) {
  if (detail::armed.load(std::memory_order_relaxed) == static_cast<int>(p)) [[unlikely]] {
    detail::Fire(p);
  }
}

}  // namespace baton::crashpoints

#define BATON_CRASH_POINT(id) ::baton::crashpoints::Hit(::baton::crashpoints::Point::id)
