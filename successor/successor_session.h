// The daemon side of a child from its first frame until it serves: pure
// logic, no I/O. Handles both starts:
//   cold:      Hello → HelloAck → take the lock, bump the generation → serving
//   successor: Hello → HelloAck → Warm → [warm hook] → Warmed → Begin →
//              take the lock, bump the generation → [begin hook] → Ready → serving
// Before Ready the supervisor decides everything: an Abort, a refusal, a hook
// failure or the channel closing (supervisor gone) make this process exit.
//
// Threading: single-threaded; the driver calls it from its executor.
#pragma once

#include <string>

#include "ownership/ownership.h"
#include "protocol/child_env.h"
#include "protocol/session.h"
#include "protocol/version.h"

namespace baton::successor {

struct HelloInfo {
  protocol::VersionRange protocol{protocol::kProtocolMin, protocol::kProtocolMax};
  protocol::VersionRange state_schema{1, 1};
  std::string build_id;
  uint32_t pid = 0;
  std::string lease_holder_id;
};

class SuccessorSession {
 public:
  enum class State { kInit, kAwaitHelloAck, kAwaitWarm, kWarming, kAwaitBegin, kBeginning, kServing, kExited };

  SuccessorSession(protocol::LaunchRole role, HelloInfo hello, ownership::Ownership& ownership);

  protocol::SessionActions Start();
  protocol::SessionActions OnMessage(const v1::Envelope& env);
  protocol::SessionActions OnHookDone(const protocol::HookDone& done);
  protocol::SessionActions OnChannelClosed(const Error& why);

  State state() const { return state_; }
  const std::string& handoff_id() const { return handoff_id_; }
  const v1::HelloAck& hello_ack() const { return ack_; }
  uint64_t data_generation() const { return generation_; }

 private:
  protocol::SessionActions Fail(std::string reason, bool tell_supervisor);
  protocol::SessionActions TakeOwnership(protocol::SessionActions out);

  protocol::LaunchRole role_;
  HelloInfo hello_;
  ownership::Ownership& ownership_;
  State state_ = State::kInit;
  std::string handoff_id_;
  v1::HelloAck ack_;
  uint64_t generation_ = 0;
};

std::string_view StateName(SuccessorSession::State s);

}  // namespace baton::successor
