#include "crashpoints/crashpoints.h"

#include "baton/testing.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

namespace baton::crashpoints {
namespace {

constexpr Role kRole_supervisor = Role::kSupervisor;
constexpr Role kRole_incumbent = Role::kIncumbent;
constexpr Role kRole_successor = Role::kSuccessor;
constexpr Role kRole_daemon = Role::kDaemon;
constexpr Role kRole_test = Role::kTest;

constexpr std::array<Info, static_cast<size_t>(Point::kCount)> kRegistry = {{
#define BATON_CRASHPOINT(id, name, role, desc) {Point::id, name, kRole_##role, desc},
#include "crashpoints/points.inc"
#undef BATON_CRASHPOINT
}};

// Set once by Arm(); read by Fire() after fork-safe points only.
std::atomic<int> armed_action{static_cast<int>(Action::kExit)};
// Marker path; fixed buffer so Fire() never allocates.
char marker_path[512] = {0};

void WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
}

}  // namespace

namespace detail {
std::atomic<int> armed{-1};

void Fire(Point p) {
  // Only async-signal-safe calls from here on: the process may be anywhere.
  const Info& info = kRegistry[static_cast<size_t>(p)];
  // The monotonic clock in µs, as the lease.leader_* events log it: a test
  // can end the leader interval of a process that died at a point.
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const long long mono_us = static_cast<long long>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
  char line[256];
  int len = std::snprintf(line, sizeof(line), "baton crashpoint %.*s pid %d mono_us %lld\n",
                          static_cast<int>(info.name.size()), info.name.data(),
                          static_cast<int>(::getpid()), mono_us);
  if (len < 0) len = 0;
  if (len > static_cast<int>(sizeof(line))) len = sizeof(line) - 1;
  WriteAll(STDERR_FILENO, line, static_cast<size_t>(len));
  if (marker_path[0] != '\0') {
    int fd = ::open(marker_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      WriteAll(fd, line, static_cast<size_t>(len));
      ::fsync(fd);
      ::close(fd);
    }
  }
  switch (static_cast<Action>(armed_action.load(std::memory_order_relaxed))) {
    case Action::kAbort:
      std::abort();
    case Action::kHang:
      for (;;) ::pause();
    case Action::kExit:
      break;
  }
  ::_exit(kCrashExitCode);
}
}  // namespace detail

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kSupervisor: return "supervisor";
    case Role::kIncumbent: return "incumbent";
    case Role::kSuccessor: return "successor";
    case Role::kDaemon: return "daemon";
    case Role::kTest: return "test";
  }
  return "unknown";
}

std::span<const Info> All() { return kRegistry; }

Result<const Info*> Find(std::string_view name) {
  for (const auto& info : kRegistry) {
    if (info.name == name) return &info;
  }
  return Error(Errc::kNotFound,
               fmt::format("unknown crash point '{}' (see `baton crashpoints`)", name));
}

Result<Target> ParseTarget(std::string_view text) {
  const size_t at = text.find('@');
  const std::string_view name = text.substr(0, at);
  auto info = Find(name);
  if (!info) return info.error();
  Target t{*info, ""};
  switch ((*info)->role) {
    case Role::kIncumbent: t.child_role = "cold"; break;
    case Role::kSuccessor: t.child_role = "successor"; break;
    case Role::kDaemon: t.child_role = "cold"; break;
    case Role::kSupervisor:
    case Role::kTest: break;
  }
  if (at == std::string_view::npos) return t;
  const std::string_view route = text.substr(at + 1);
  if ((*info)->role != Role::kDaemon) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("crash point '{}' belongs to the {} role; only daemon points take '@{}'", name,
                             RoleName((*info)->role), route));
  }
  if (route != "cold" && route != "successor") {
    return Error(Errc::kInvalidArgument,
                 fmt::format("crash point '{}': '@{}' must be '@cold' or '@successor'", text, route));
  }
  t.child_role = std::string(route);
  return t;
}

Result<Action> ParseAction(std::string_view s) {
  if (s.empty() || s == "exit") return Action::kExit;
  if (s == "abort") return Action::kAbort;
  if (s == "hang") return Action::kHang;
  return Error(Errc::kInvalidArgument,
               fmt::format("BATON_CRASH_ACTION='{}': expected exit, abort or hang", s));
}

void Arm(Point point, Action action) {
  armed_action.store(static_cast<int>(action), std::memory_order_relaxed);
  detail::armed.store(static_cast<int>(point), std::memory_order_relaxed);
}

void Disarm() { detail::armed.store(-1, std::memory_order_relaxed); }

Status ArmFromEnvironment() {
  const char* at = std::getenv("BATON_CRASH_AT");
  if (at == nullptr || *at == '\0') {
    Disarm();
    return {};
  }
  auto target = ParseTarget(at);
  if (!target) return target.error();
  const char* action_env = std::getenv("BATON_CRASH_ACTION");
  auto action = ParseAction(action_env ? action_env : "");
  if (!action) return action.error();
  const char* marker = std::getenv("BATON_CRASH_MARKER");
  if (marker != nullptr) {
    if (std::strlen(marker) >= sizeof(marker_path)) {
      return Error(Errc::kInvalidArgument, "BATON_CRASH_MARKER: path too long");
    }
    std::strncpy(marker_path, marker, sizeof(marker_path) - 1);
  } else {
    marker_path[0] = '\0';
  }
  Arm(target->info->point, *action);
  return {};
}

}  // namespace baton::crashpoints

// The public face of the registry for daemons' own tests (baton/testing.h).
namespace baton::testing {

void CrashPoint(std::string_view name) noexcept {
  const int armed = crashpoints::detail::armed.load(std::memory_order_relaxed);
  if (armed < 0) [[likely]] return;
  const auto all = crashpoints::All();
  if (static_cast<size_t>(armed) < all.size() && all[static_cast<size_t>(armed)].name == name) {
    crashpoints::detail::Fire(all[static_cast<size_t>(armed)].point);
  }
}

Status ArmCrashPoint(std::string_view name) {
  auto info = crashpoints::Find(name);
  if (!info) return info.error();
  crashpoints::Arm((*info)->point, crashpoints::Action::kExit);
  return {};
}

}  // namespace baton::testing
