// The daemon side of a child from its first frame until it serves: pure
// logic, no I/O. Handles both starts:
//   cold:      Hello → HelloAck → take the lock, bump the generation → serving
//   successor: Hello → HelloAck → Warm → [warm hook] → Warmed → Begin →
//              [confirm the lease] → take the lock, bump the generation →
//              [begin hook] → Ready → serving
// With a lease (a non-empty holder id in Hello): a cold start campaigns for
// it; a successor confirms the epoch the incumbent transferred (a failure
// aborts the handoff), or campaigns when there is none to confirm.
// Before Ready the supervisor decides everything: an Abort, a refusal, a hook
// failure or the channel closing (supervisor gone) make this process exit.
//
// Threading: single-threaded; the driver calls it from its executor.
#pragma once

#include <string>

#include "base/clock.h"

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
  std::string lease_holder_id;  // "" = no lease
  bool accepts_handover = false;  // capability "handover": the daemon takes handed-over descriptors
};

// The Hello a child opens its control channel with; `role` as BATON_ROLE
// said ("cold", "successor"), or "reattach" on a re-attach connection.
v1::Envelope MakeHello(const HelloInfo& info, std::string_view role);

struct SuccessorOptions {
  Duration lease_confirm_budget = seconds(2);
};

class SuccessorSession {
 public:
  enum class State {
    kInit,
    kAwaitHelloAck,
    kAwaitWarm,
    kWarming,
    kAwaitBegin,
    kConfirmingLease,
    kBeginning,
    kServing,
    kExited
  };

  SuccessorSession(protocol::LaunchRole role, HelloInfo hello, ownership::Ownership& ownership,
                   SuccessorOptions opts = {});

  protocol::SessionActions Start();
  protocol::SessionActions OnMessage(const v1::Envelope& env);
  protocol::SessionActions OnHookDone(const protocol::HookDone& done);
  protocol::SessionActions OnLeaseDone(const protocol::LeaseDone& done);
  protocol::SessionActions OnChannelClosed(const Error& why);

  State state() const { return state_; }
  const std::string& handoff_id() const { return handoff_id_; }
  const v1::HelloAck& hello_ack() const { return ack_; }
  uint64_t data_generation() const { return generation_; }
  uint64_t lease_epoch() const { return lease_epoch_; }

 private:
  protocol::SessionActions Fail(std::string reason, bool tell_supervisor);
  protocol::SessionActions TakeOwnership(protocol::SessionActions out);

  protocol::LaunchRole role_;
  HelloInfo hello_;
  ownership::Ownership& ownership_;
  SuccessorOptions opts_;
  State state_ = State::kInit;
  v1::Begin begin_;          // kept while the lease is confirmed
  uint64_t lease_epoch_ = 0;
  std::string handoff_id_;
  v1::HelloAck ack_;
  uint64_t generation_ = 0;
};

std::string_view StateName(SuccessorSession::State s);

}  // namespace baton::successor
