// The runtime's descriptor handover on the control channel (docs/protocol.md,
// "Descriptor handover"): which frames may carry descriptors when, the
// counts in SealComplete, Begin and Resume, and the HandoverStore's
// moments around the hooks. The sessions stay pure: they never see a
// descriptor.
//
// Threading: the io thread (the runtime calls it where it drives the sessions).
#pragma once

#include <string>
#include <vector>

#include "base/log.h"
#include "daemon/handover_store.h"
#include "protocol/channel.h"
#include "protocol/session.h"

namespace baton::detail {

class HandoverLink {
 public:
  // Where the session stands, as far as handover cares.
  enum class Phase {
    kNone,            // no descriptor may arrive
    kAwaitingBegin,   // successor: O's descriptors may arrive, then Begin
    kSealed,          // incumbent: its own may come back, then Resume
  };

  HandoverLink(HandoverStore& store, LogSink& log) : store_(store), log_(log) {}

  // A frame with descriptors; an error is bad input (close the session).
  Status OnFds(Phase phase, const std::string& handoff_id, const v1::Envelope& env, std::vector<OwnedFd> fds);
  // Every other frame, before the session sees it; an error is bad input.
  // Begin: the count must match what arrived. Resume: the returned copies
  // are checked and closed (the incumbent kept its own).
  Status OnMessage(Phase phase, const v1::Envelope& env);
  // SealComplete: sends the handed-over descriptors first, and sets its count.
  void BeforeSend(protocol::Channel& channel, v1::Envelope& env);
  void BeforeHook(protocol::HookKind hook);
  void AfterHook(protocol::HookKind hook);

 private:
  HandoverStore& store_;
  LogSink& log_;
};

}  // namespace baton::detail
