#include "supervisor/child_status.h"

#include <sys/wait.h>

#include <fmt/format.h>

namespace baton::supervisor {

std::string_view ChildRoleName(ChildRole role) {
  switch (role) {
    case ChildRole::kCold: return "cold";
    case ChildRole::kSuccessor: return "successor";
  }
  return "unknown";
}

ChildExit ChildExit::FromWaitStatus(int status) {
  if (status < 0) return ChildExit(Kind::kVanished, status);
  if (WIFEXITED(status)) return Exited(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return Signalled(WTERMSIG(status));
  return ChildExit(Kind::kOther, status);
}

std::string ChildExit::Describe() const {
  switch (kind_) {
    case Kind::kExited: return fmt::format("exited with status {}", value_);
    case Kind::kSignalled: return fmt::format("killed by signal {}", value_);
    case Kind::kVanished: return "vanished (not our child any more)";
    case Kind::kOther: break;
  }
  return fmt::format("ended with wait status {}", value_);
}

}  // namespace baton::supervisor
