// The supervisor's answer to a child's Hello (docs/design.md §2 step 2), pure: the
// highest common protocol version, the state-schema check against the
// incumbent when there is one, and the heartbeat and liveness settings both
// sides then use. The handoff machine answers a successor with it; the
// driver answers a cold start with it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/errors.h"
#include "protocol/control.pb.h"
#include "protocol/liveness.h"
#include "protocol/version.h"

namespace baton::supervisor {

struct HelloPolicy {
  protocol::VersionRange protocol{protocol::kProtocolMin, protocol::kProtocolMax};
  // The incumbent's state-schema range; nullopt for a cold start, which
  // takes over no one's state.
  std::optional<protocol::VersionRange> incumbent_schema;
  protocol::LivenessOptions liveness;
  std::string handoff_id;       // "" for a cold start
  std::string_view child_name;  // how a refusal names the child: "daemon", "successor"
};

struct HelloAnswer {
  v1::Envelope ack;              // the HelloAck to send, accepted or not
  std::optional<Error> refusal;  // why it refuses, if it does
};

HelloAnswer AnswerHello(const v1::Hello& hello, const HelloPolicy& policy);

}  // namespace baton::supervisor
