// The supervisor's words for its children, apart from any process: the role
// a child is started in, and how a child ended. Pure values: the handoff
// machine decides on them without seeing a process.
#pragma once

#include <string>
#include <string_view>

namespace baton::supervisor {

// A cold start (no handoff: the first generation, or a restart) or the
// successor of a handoff. As a child sees it in BATON_ROLE.
enum class ChildRole { kCold, kSuccessor };
// "cold" | "successor": BATON_ROLE, the journal, events, crash-point targets.
std::string_view ChildRoleName(ChildRole role);

// How a child ended, from its wait status.
class ChildExit {
 public:
  static ChildExit Exited(int code) { return ChildExit(Kind::kExited, code); }
  static ChildExit Signalled(int signal) { return ChildExit(Kind::kSignalled, signal); }
  // A waitpid(2) status; negative: the child was reaped elsewhere.
  static ChildExit FromWaitStatus(int status);

  bool exited() const { return kind_ == Kind::kExited; }
  bool signalled() const { return kind_ == Kind::kSignalled; }
  // The exit code if exited(), the signal if signalled().
  int value() const { return value_; }
  bool SignalledBy(int signal) const { return signalled() && value_ == signal; }
  // "exited with status 1", "killed by signal 9", ...
  std::string Describe() const;

 private:
  enum class Kind { kExited, kSignalled, kVanished, kOther };
  ChildExit(Kind kind, int value) : kind_(kind), value_(value) {}

  Kind kind_;
  int value_;
};

}  // namespace baton::supervisor
