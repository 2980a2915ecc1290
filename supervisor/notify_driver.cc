// SupervisorImpl, part 4 (supervisor_impl.h): systemd's conventions
// (docs/design.md §14). Every child's NOTIFY_SOCKET, judged by
// supervisor/notify_message.h; the FD store; the watchdog; for a daemon of
// protocol notify, readiness (READY=1 or a probe) fed to the notify handoff
// machine or, outside a handoff, bounded by the ready deadline.
#include <signal.h>

#include <fmt/format.h>

#include "supervisor/supervisor_impl.h"

namespace baton::supervisor {
namespace {

namespace asio = boost::asio;

int64_t Ms(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

}  // namespace

std::string_view ChildProtocolName(ChildProtocol p) { return p == ChildProtocol::kNotify ? "notify" : "baton"; }

void SupervisorImpl::StartNotify(const std::shared_ptr<Child>& g) {
  std::weak_ptr<Child> weak = g;
  g->notify->Start([this, weak](const NotifyDatagram& d, std::vector<OwnedFd> fds) {
    if (auto g = weak.lock()) OnNotify(g, d, std::move(fds));
  });
  // Like systemd, the watchdog runs from the start: a generation that hangs
  // before it is ready is caught too. Every WATCHDOG=1 re-arms it, with
  // the period its WATCHDOG_USEC= set if it did (kept across a self-upgrade).
  auto period = watchdog_periods_.find(g->number);
  ArmWatchdog(g, period != watchdog_periods_.end() ? period->second : opts_.notify.watchdog);  // 0: off
  // A generation resumed by a self-upgrade may be ready already.
  if (!g->plain || g->ready) return;
  // Outside a handoff nothing else bounds a start that never gets ready: a
  // generation that is not ready in time is hung, ended, and restarted.
  g->ready_timer = std::make_unique<asio::steady_timer>(io_, opts_.notify.ready);
  g->ready_timer->async_wait([this, weak](const boost::system::error_code& ec) {
    auto g = weak.lock();
    if (ec || !g || !g->alive || g->ready) return;
    if (PartOf(g) != HandoffPart::kNone || (handoff_ && g == handoff_->restored)) return;  // the machine's deadline
    Emit(MakeEvent(Level::kError, "child.not_ready", "pid {} was not ready within {} ms; ending it", g->pid,
                   Ms(opts_.notify.ready))
             .With("pid", int64_t{g->pid}));
    g->proc->Signal(SIGKILL);
  });
  if (opts_.notify.readiness == NotifyOptions::Readiness::kProbe) ArmProbe(g);
}

void SupervisorImpl::StopNotify(const std::shared_ptr<Child>& g) {
  if (g->notify) g->notify->Close();
  for (auto* t : {&g->ready_timer, &g->probe_timer, &g->watchdog_timer}) {
    if (*t) (*t)->cancel();
  }
  watchdog_periods_.erase(g->number);
}

void SupervisorImpl::ArmProbe(const std::shared_ptr<Child>& g) {
  if (!g->probe_timer) g->probe_timer = std::make_unique<asio::steady_timer>(io_);
  g->probe_timer->expires_after(opts_.notify.probe_interval);
  g->probe_timer->async_wait([this, weak = std::weak_ptr<Child>(g)](const boost::system::error_code& ec) {
    auto g = weak.lock();
    if (ec || !g || !g->alive || g->ready) return;
    RunProbe(io_, opts_.notify.probe, g->pid, opts_.notify.probe_interval,
             [this, weak = std::weak_ptr<Child>(g)](bool ok, const std::string& why) {
               auto g = weak.lock();
               if (!g || !g->alive || g->ready) return;
               if (ok) return OnChildReady(g, "probe: " + why);
               ArmProbe(g);
             });
  });
}

void SupervisorImpl::ArmWatchdog(const std::shared_ptr<Child>& g, Duration period) {
  if (period <= Duration::zero()) return;
  if (!g->watchdog_timer) g->watchdog_timer = std::make_unique<asio::steady_timer>(io_);
  g->watchdog_timer->expires_after(period);
  g->watchdog_timer->async_wait([this, weak = std::weak_ptr<Child>(g), period](const boost::system::error_code& ec) {
    auto g = weak.lock();
    if (ec || !g || !g->alive) return;
    // A missed watchdog is a hang: outside a handoff the generation is
    // ended and restarted; a successor is a failed handoff (rolled back).
    Emit(MakeEvent(Level::kError, "child.watchdog", "pid {} missed its watchdog ({} ms); ending it", g->pid, Ms(period))
             .With("pid", int64_t{g->pid}));
    // (Once promoted, the successor is the service: it is ended like any
    // serving generation and the restart loop takes over.)
    if (handoff_ && handoff_->notify && PartOf(g) == HandoffPart::kSuccessor && !handoff_->notify->promoted()) {
      Execute(handoff_->notify->OnSuccessorFailed(fmt::format("missed its watchdog ({} ms)", Ms(period)),
                                                  RealClock().Now()));
      return;
    }
    g->proc->Signal(SIGKILL);
  });
}

void SupervisorImpl::Rejected(const std::shared_ptr<Child>& g, NotifyReject kind, const std::string& reason) {
  Event e = MakeEvent(Level::kWarn, "notify.rejected", "notify datagram on {} ({}): {}", g->notify->path(),
                      NotifyRejectName(kind), reason)
                .With("kind", std::string(NotifyRejectName(kind)))
                .With("pid", int64_t{g->pid});
  // Logged once per kind; every one is counted (baton_notify_rejected_total).
  if (rejected_logged_.insert(kind).second) {
    e.message += " (further ones of this kind are only counted)";
    Emit(std::move(e));
  } else if (opts_.on_counted) {
    opts_.on_counted(e);
  }
}

void SupervisorImpl::OnNotify(const std::shared_ptr<Child>& g, const NotifyDatagram& d, std::vector<OwnedFd> fds) {
  NotifyVerdict v = JudgeNotify(d, g->pid);
  for (const auto& r : v.refusals) Rejected(g, r.kind, r.reason);
  if (!v.message || !g->alive) return;  // `fds` are closed on the way out: nothing changed
  const NotifyMessage& m = *v.message;
  const TimePoint now = RealClock().Now();
  if (m.status) g->status = *m.status;
  if (m.fdstore) {
    StoreFds(g, m, std::move(fds));
  } else if (m.fdstore_remove) {
    const size_t n = fd_store_.Remove(*m.fdname);
    Emit(MakeEvent(Level::kInfo, "notify.fdstore_remove", "pid {} removed {} from the FD store ({} closed)", g->pid,
                   *m.fdname, n)
             .With("pid", int64_t{g->pid})
             .With("name", *m.fdname));
  }
  if (m.watchdog_usec) {
    if (*m.watchdog_usec == Duration::zero()) {
      ArmWatchdog(g, milliseconds(1));  // WATCHDOG=trigger
    } else {
      watchdog_periods_[g->number] = *m.watchdog_usec;
      ArmWatchdog(g, *m.watchdog_usec);
    }
  }
  if (m.watchdog) {
    auto it = watchdog_periods_.find(g->number);
    ArmWatchdog(g, it != watchdog_periods_.end() ? it->second : opts_.notify.watchdog);
  }
  if (m.extend_timeout && handoff_ && handoff_->notify &&
      (PartOf(g) == HandoffPart::kSuccessor || g == handoff_->restored)) {
    Execute(handoff_->notify->OnExtend(*m.extend_timeout, now));
  }
  if (m.reloading) {
    Emit(MakeEvent(Level::kInfo, "notify.reloading", "pid {} is reloading", g->pid).With("pid", int64_t{g->pid}));
  }
  if (m.errno_value) {
    Emit(MakeEvent(Level::kWarn, "notify.errno", "pid {} reports errno {} ({})", g->pid, *m.errno_value,
                   std::strerror(*m.errno_value))
             .With("pid", int64_t{g->pid})
             .With("errno", int64_t{*m.errno_value}));
  }
  if (!g->plain) return;  // a native daemon's readiness is its Hello / Ready
  if (!g->ready && (m.stopping || m.errno_value)) {
    return OnChildFailed(g, m.errno_value ? fmt::format("it reported errno {} ({}) before it was ready", *m.errno_value,
                                                       std::strerror(*m.errno_value))
                                          : std::string("it said STOPPING=1 before it was ready"));
  }
  if (m.ready && !g->ready && opts_.notify.readiness == NotifyOptions::Readiness::kNotify) {
    OnChildReady(g, "READY=1");
  }
}

void SupervisorImpl::StoreFds(const std::shared_ptr<Child>& g, const NotifyMessage& m, std::vector<OwnedFd> fds) {
  if (fd_store_.max() == 0) {
    return Rejected(g, NotifyReject::kFdStoreFull, "FDSTORE=1, but no FD store is configured (fd_store_max = 0)");
  }
  const std::string name = m.fdname.value_or("stored");
  const FdStore::AddResult r = fd_store_.Add(name, std::move(fds));
  if (r.refused > 0) {
    Rejected(g, NotifyReject::kFdStoreFull,
             fmt::format("{} descriptor(s) named {} refused and closed: the store holds {} of at most {} "
                         "(or the name is a listener's)",
                         r.refused, name, fd_store_.size(), fd_store_.max()));
  }
  if (r.replaced > 0) {
    Emit(MakeEvent(Level::kInfo, "notify.fdstore_replace", "pid {} replaced {} in the FD store", g->pid, name)
             .With("pid", int64_t{g->pid})
             .With("name", name));
  }
}

void SupervisorImpl::OnChildReady(const std::shared_ptr<Child>& g, const std::string& how) {
  g->ready = true;
  if (g->ready_timer) g->ready_timer->cancel();
  if (g->probe_timer) g->probe_timer->cancel();
  Emit(MakeEvent(Level::kInfo, "child.ready", "generation pid {} is ready ({})", g->pid, how)
           .With("pid", int64_t{g->pid}));
  if (!handoff_ || !handoff_->notify) return;
  const TimePoint now = RealClock().Now();
  if (PartOf(g) == HandoffPart::kSuccessor) return Execute(handoff_->notify->OnSuccessorReady(now));
  if (g == handoff_->restored) return Execute(handoff_->notify->OnRestoreReady(now));
}

void SupervisorImpl::OnChildFailed(const std::shared_ptr<Child>& g, const std::string& why) {
  Emit(MakeEvent(Level::kError, "child.failed", "pid {}: {}", g->pid, why).With("pid", int64_t{g->pid}));
  if (handoff_ && handoff_->notify) {
    const TimePoint now = RealClock().Now();
    if (PartOf(g) == HandoffPart::kSuccessor) return Execute(handoff_->notify->OnSuccessorFailed(why, now));
    if (g == handoff_->restored) {
      g->proc->Signal(SIGKILL);
      return Execute(handoff_->notify->OnRestoreFailed(why, now));
    }
  }
  // Outside a handoff: it will not serve; end it and let the restart loop
  // start another.
  g->proc->Signal(SIGKILL);
}

}  // namespace baton::supervisor
