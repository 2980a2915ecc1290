// SupervisorImpl taking over from a dead supervisor: adoption (adoption.h)
// and re-attach (reattach.h), where the orphan's Hello on the connection
// Create() opened makes it the serving generation; anything else falls back
// to adoption.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "crashpoints/crashpoints.h"
#include "incumbent/incumbent_session.h"
#include "protocol/frame.h"
#include "supervisor/hello.h"
#include "supervisor/reattach.h"
#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {
namespace {

// A handoff the old supervisor left half done is resolved by the orphan
// rules of docs/design.md §3 within the liveness timeout plus the incumbent's orphan
// grace; a second more and it is surely settled.
const Duration kOrphanSettleTime = incumbent::IncumbentOptions{}.orphan_grace + seconds(1);
// Orphans are not our children, so nothing tells us they ended: we poll.
constexpr Duration kOrphanPoll = milliseconds(50);

}  // namespace

void SupervisorImpl::AdoptOrphans() {
  std::vector<std::string> pids;
  for (const auto& o : orphans_) pids.push_back(fmt::format("{} ({})", o.pid(), o.role()));
  takeover_ = fmt::format("adopted pid {}", fmt::join(pids, ", pid "));
  Emit(MakeEvent(Level::kWarn, "supervisor.orphans",
                 "a previous supervisor left {} running; serving through their listeners until they end",
                 fmt::join(pids, ", "))
           .With("count", static_cast<int64_t>(orphans_.size())));
  UpdateAdoptionRecord();
  // Let the orphan rules settle a half-done handoff, then end whatever
  // still runs.
  orphan_settle_deadline_ = RealClock().Now() + opts_.liveness.liveness_timeout + kOrphanSettleTime;
  CheckOrphans();
}

void SupervisorImpl::CheckOrphans() {
  if (orphans_.empty()) return;
  size_t running = 0;
  for (const auto& o : orphans_) running += o.Running() ? 1 : 0;
  const TimePoint now = RealClock().Now();
  if (running == 0) {
    Emit(MakeEvent(Level::kInfo, "supervisor.orphans_gone", "the previous supervisor's generations have ended"));
    orphans_.clear();
    orphan_timer_.cancel();
    UpdateAdoptionRecord();
    ColdStart();
    return;
  }
  if (reattach_when_settled_ && running == 1 && now < orphan_settle_deadline_ && ReattachSettled()) return;
  if (!orphans_signalled_ && ((running <= 1 && !reattach_when_settled_) || now >= orphan_settle_deadline_)) {
    // Graceful: the orphan drains its connections at response boundaries
    // and exits; the listeners stay open in us meanwhile.
    orphans_signalled_ = true;
    for (const auto& o : orphans_) {
      if (!o.Running()) continue;
      Emit(MakeEvent(Level::kInfo, "supervisor.orphan_term", "ending orphan pid {} (SIGTERM)", o.pid())
               .With("pid", int64_t{o.pid()}));
      (void)o.Signal(SIGTERM);
    }
    orphan_kill_deadline_ = now + opts_.timeouts.drain + opts_.timeouts.term_grace;
  }
  if (orphans_signalled_ && now >= orphan_kill_deadline_) {
    for (const auto& o : orphans_) {
      if (o.Running()) (void)o.Signal(SIGKILL);
    }
  }
  // Orphans are not our children, so nothing tells us they ended: poll
  // (which also reaches the deadlines).
  orphan_timer_.expires_after(kOrphanPoll);
  orphan_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) CheckOrphans();
  });
}


void SupervisorImpl::StartReattach() {
  BATON_CRASH_POINT(kSupervisorReattachBeforeHello);
  const Orphan& o = orphans_.front();
  Emit(MakeEvent(Level::kInfo, "supervisor.reattaching",
                 "re-attaching to generation pid {}, left serving by the previous supervisor", o.pid())
           .With("pid", int64_t{o.pid()}));
  // Until its Hello it has the hello timeout to speak, like a new child.
  protocol::LivenessOptions liveness = opts_.liveness;
  liveness.liveness_timeout = std::max(liveness.liveness_timeout, opts_.timeouts.hello);
  auto g = AttachChild(io_, o.pid(), reattach_.Release(), liveness, Callbacks());
  if (!g) return ReattachFailed(g.error().message);
  (*g)->number = ++spawned_;
  (*g)->record = o.entry();
  std::error_code ec;
  (*g)->binary = std::filesystem::read_symlink(fmt::format("/proc/{}/exe", o.pid()), ec).string();
  reattaching_ = *g;
}

bool SupervisorImpl::ReattachSettled() {
  std::vector<Orphan> left;
  for (auto& o : orphans_) {
    if (o.Running()) left.push_back(std::move(o));
  }
  orphans_ = std::move(left);
  if (orphans_.size() != 1) return false;
  // Not listening yet (still settling, or resuming): poll again.
  auto fd = ConnectForReattach(opts_.runtime_dir, orphans_.front());
  if (!fd) return false;
  reattach_when_settled_ = false;
  reattach_ = OwnedFd(*fd);
  orphan_timer_.cancel();
  StartReattach();
  return true;
}

void SupervisorImpl::OnReattachMessage(const std::shared_ptr<Child>& g, const v1::Envelope& env) {
  if (!env.has_hello()) {
    return ReattachFailed(fmt::format("{} instead of Hello", protocol::MessageName(env)));
  }
  if (env.hello().pid() != static_cast<uint32_t>(g->pid)) {
    return ReattachFailed(fmt::format("Hello claims pid {} but the peer is pid {}", env.hello().pid(), g->pid));
  }
  // What a restart would run: the configured binary, as after an adoption.
  auto pin = PinnedBinary::Open(opts_.binary, opts_.args);
  if (!pin) return ReattachFailed(pin.error().message);
  HelloPolicy policy;
  policy.liveness = opts_.liveness;
  policy.child_name = "daemon";
  HelloAnswer answer = AnswerHello(env.hello(), policy);
  g->channel->Send(answer.ack);
  if (answer.refusal) return ReattachFailed(answer.refusal->message);
  g->channel->SetLivenessOptions(opts_.liveness);
  g->reattaching = false;
  g->hello = env.hello();
  g->said_hello = true;
  g->pin = *pin;
  if (g->binary.empty()) g->binary = (*pin)->path;
  reattaching_.reset();
  orphans_.clear();  // it is ours now, not an orphan
  children_[g->number] = g;
  incumbent_ = g;
  ++generation_number_;
  pins_.Serving(*pin);
  UpdateAdoptionRecord();
  takeover_ = fmt::format("re-attached to pid {}", g->pid);
  Emit(MakeEvent(Level::kInfo, "supervisor.reattach",
                 "re-attached to generation pid {} ({}): it serves on, nothing drained or started", g->pid,
                 env.hello().build_id())
           .With("pid", int64_t{g->pid})
           .With("build_id", env.hello().build_id()));
}

void SupervisorImpl::ReattachFailed(const std::string& why) {
  reattach_.Reset();
  reattach_when_settled_ = false;
  const pid_t pid = orphans_.empty() ? 0 : orphans_.front().pid();
  if (auto g = std::move(reattaching_)) {
    // Still marked reattaching: its late callbacks are ignored, and its exit
    // is adoption's business now.
    reattaching_.reset();
    if (g->channel) g->channel->Close();
  }
  Emit(MakeEvent(Level::kWarn, "supervisor.reattach_failed", "re-attach to pid {}: {}; adopting it instead", pid, why)
           .With("pid", int64_t{pid}));
  AdoptOrphans();
}

}  // namespace baton::supervisor
