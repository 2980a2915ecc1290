#include "daemon/handover_link.h"

#include <fmt/format.h>

#include "crashpoints/crashpoints.h"

namespace baton::detail {

using protocol::HookKind;

Status HandoverLink::OnFds(Phase phase, const std::string& handoff_id, const v1::Envelope& env,
                           std::vector<OwnedFd> fds) {
  if (phase == Phase::kNone || !env.has_handover() || env.handover().handoff_id() != handoff_id) {
    return Error(Errc::kProtocolError, fmt::format("a {} frame carried {} descriptors where none are allowed",
                                                   protocol::MessageName(env), fds.size()));
  }
  return store_.Receive(env.handover(), std::move(fds));
}

Status HandoverLink::OnMessage(Phase phase, const v1::Envelope& env) {
  if (env.has_handover()) return Error(Errc::kProtocolError, "a Handover frame without descriptors");
  if (env.has_begin() && phase == Phase::kAwaitingBegin) {
    const size_t got = store_.received();
    if (env.begin().handover_count() != got) {
      return Error(Errc::kProtocolError, fmt::format("Begin announces {} handed-over descriptors but {} arrived",
                                                     env.begin().handover_count(), got));
    }
    if (got > 0 && !store_.accepts()) {
      // Only an older supervisor passes descriptors to a generation that
      // did not accept them; left here they would never be served.
      log_.Emit(MakeEvent(Level::kWarn, "daemon.handover_not_accepted",
                          "{} descriptors handed over to a daemon that did not call AcceptHandover: closed", got)
                    .With("count", static_cast<int64_t>(got)));
      store_.DropReceived();
    } else {
      store_.AcceptReceived();
      if (got > 0) {
        log_.Emit(MakeEvent(Level::kInfo, "daemon.handover_received", "{} descriptors handed over", got)
                      .With("count", static_cast<int64_t>(got)));
      }
    }
    BATON_CRASH_POINT(kSuccessorAfterRecvHandover);
  }
  if (env.has_prepare()) store_.SetSuccessorAccepts(env.prepare().successor_accepts_handover());
  if (env.has_resume() && phase == Phase::kSealed) {
    const size_t got = store_.received();
    if (env.resume().handover_count() != got) {
      // Ours are kept: resume with them whatever the supervisor returned.
      log_.Emit(MakeEvent(Level::kWarn, "daemon.handover_mismatch",
                          "Resume announces {} returned descriptors but {} arrived; resuming with our own",
                          env.resume().handover_count(), got));
    }
    store_.DropReceived();
  }
  return {};
}

void HandoverLink::BeforeSend(protocol::Channel& channel, v1::Envelope& env) {
  if (!env.has_seal_complete() || channel.closed()) return;
  size_t count = 0;
  auto batches = store_.Batches(env.seal_complete().handoff_id(), count);
  for (size_t i = 0; i < batches.size(); ++i) {
    std::function<void()> after;
    if (i + 1 == batches.size()) after = [] { BATON_CRASH_POINT(kIncumbentAfterSendHandover); };
    if (auto st = channel.SendWithFds(batches[i].env, batches[i].fds, std::move(after)); !st) {
      // The supervisor sees fewer than the count and refuses the seal; we
      // resume with our own.
      log_.Emit(MakeEvent(Level::kError, "daemon.handover_failed", "{}", st.error().message));
    }
  }
  env.mutable_seal_complete()->set_handover_count(static_cast<uint32_t>(count));
  if (count > 0) {
    log_.Emit(MakeEvent(Level::kInfo, "daemon.handover_sent", "{} descriptors handed over", count)
                  .With("count", static_cast<int64_t>(count)));
  }
}

void HandoverLink::BeforeHook(HookKind hook) {
  switch (hook) {
    case HookKind::kDrain:
    case HookKind::kSeal: store_.Open(); break;
    case HookKind::kResume: store_.ReturnOwn(); break;
    case HookKind::kRetire: store_.Drop(); break;
    default: break;
  }
}

void HandoverLink::AfterHook(HookKind hook) {
  if (hook == HookKind::kDrain || hook == HookKind::kSeal) store_.Close();
}

}  // namespace baton::detail
