#include "kvd_hooks.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <memory>
#include <thread>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "log.h"
#include "baton/testing.h"

namespace kvd {

using baton::Errc;
using baton::Error;
using baton::Result;
using baton::SealReport;
using baton::Status;

template <class T>
T KvdHooks::OnIo(std::function<void(std::function<void(T)>)> f) {
  auto promise = std::make_shared<std::promise<T>>();
  auto result = promise->get_future();
  boost::asio::post(io_, [f = std::move(f), promise] { f([promise](T v) { promise->set_value(std::move(v)); }); });
  return result.get();
}

Status KvdHooks::Serve(const char* phase) {
  if (!service_.writable()) {
    if (auto st = service_.OpenWriter(); !st) return st;
  }
  server_.StartAccepting();
  service_.set_phase(phase);
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.serving", "serving on port {} at revision {}",
                             server_.port(), service_.store().revision())
                .With("port", uint64_t{server_.port()})
                .With("revision", service_.store().revision())
                .With("fingerprint", service_.store().fingerprint()));
  return {};
}

namespace {
// Warm stops catching up once a pass found this few new records.
constexpr uint64_t kWarmTailRecords = 256;
constexpr int kWarmMaxPasses = 8;
}  // namespace

Status KvdHooks::Warm() {
  if (opts_.warm_delay.count() > 0) std::this_thread::sleep_for(opts_.warm_delay);
  while (opts_.hang_in_warm) std::this_thread::sleep_for(std::chrono::hours(1));
  // Not on the io thread: a thread of our own whose priority we can lower
  // without lowering the serving thread's after Begin (an unprivileged
  // process cannot raise it back). Nothing reads the store until Begin.
  Status result;
  std::thread replay([this, &result] {
    if (opts_.warm_nice > 0 && ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), opts_.warm_nice) != 0) {
      log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.warm", "could not lower the warm-up's priority: {}",
                                 std::strerror(errno)));
    }
    service_.set_phase("warm");
    // Read-only: the incumbent still owns the data dir and may be appending.
    auto r = service_.CatchUp(ReplayMode::kReadOnly);
    // Catch up again while the incumbent keeps appending: each pass replays
    // only what arrived during the previous one, so the tail left for Begin
    // (inside the write-unavailable window) shrinks to a few ms of writes.
    for (int pass = 0; r && r->records > kWarmTailRecords && pass < kWarmMaxPasses; ++pass) {
      r = service_.CatchUp(ReplayMode::kReadOnly);
    }
    if (!r) result = r.error();
  });
  replay.join();
  return result;
}

Status KvdHooks::Drain(Deadline deadline_at) {
  const auto deadline = std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                    deadline_at - std::chrono::steady_clock::now()));
  // Only to a successor that takes them: handed to one that does not,
  // connections would wait on a process that never serves them.
  if (opts_.hand_over && daemon_ != nullptr && daemon_->SuccessorAcceptsHandover()) {
    auto conns = OnIo<std::vector<HandedConnection>>([this, deadline](auto done) {
      service_.set_phase("draining");
      server_.DrainForHandover(deadline, [this, done](std::vector<HandedConnection> released) {
        service_.WhenIdle([done, released] { done(released); });
      });
    });
    // Until the commit they stay ours (the library keeps them); a rollback
    // gives them back to Resume.
    // A keep-alive connection as "http-N" with its unread bytes; a watch
    // stream, released between two chunks, as "watch-N" with its position
    // ("kvd-watch/1 next=REV", watch_stream.h).
    size_t n = 0;
    for (auto& c : conns) {
      const bool watch = c.stream.has_value();
      const std::string name = fmt::format("{}-{}", watch ? "watch" : "http", n++);
      if (auto st = daemon_->HandOver(baton::HandoverKind::kConnection, name, c.fd, watch ? *c.stream : c.unread);
          !st) {
        log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.handover_failed", "closing a connection instead: {}",
                                 st.error().message));
        ::close(c.fd);
      }
    }
    return {};
  }
  return OnIo<Status>([this, deadline](auto done) {
    service_.set_phase("draining");
    server_.Drain(deadline, [this, done] {
      // No request in flight any more; wait for the last group commit.
      service_.WhenIdle([done] { done(Status{}); });
    });
  });
}

Result<SealReport> KvdHooks::Seal() {
  if (opts_.fail_seal) return Error(Errc::kInternal, "seal: refused by --fail-seal (test knob)");
  if (opts_.seal_delay.count() > 0) std::this_thread::sleep_for(opts_.seal_delay);
  return OnIo<Result<SealReport>>([this](auto done) {
    server_.StopAccepting();  // normally Drain did; a bare Seal must not accept either
    service_.WhenIdle([this, done] {
      baton::testing::CrashPoint("kvd.in_seal_fsync");
      if (auto st = service_.CloseWriter(); !st) {
        done(Error(st.error().code, "seal: " + st.error().message));
        return;
      }
      service_.set_phase("sealed");
      done(SealReport{service_.store().revision(), service_.store().fingerprint()});
    });
  });
}

Status KvdHooks::Begin(const baton::SealedState& sealed) {
  return OnIo<Status>([this, sealed](auto done) {
    baton::testing::CrashPoint("kvd.in_begin_replay");
    // Only the records written between Warm and Seal are read here.
    if (auto r = service_.CatchUp(ReplayMode::kRepair); !r) {
      log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.begin.full_replay",
                                 "tail replay failed ({}); replaying the whole WAL", r.error().message));
      if (auto st = service_.Reload(); !st) {
        done(Error(st.error().code, "begin: " + st.error().message));
        return;
      }
    }
    if (opts_.fail_begin) {
      done(Error(Errc::kInternal, "begin: refused by --fail-begin (test knob)"));
      return;
    }
    const auto& store = service_.store();
    if (!sealed.sealed) {
      // The incumbent died before sealing: nothing to compare, and every
      // acknowledged write was fsynced, so the WAL on disk is the truth.
      log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.begin.unsealed", "no seal to verify; trusting the WAL"));
    } else if (store.revision() != sealed.revision || store.fingerprint() != sealed.fingerprint) {
      done(Error(Errc::kFailedPrecondition,
                 fmt::format("begin: replayed revision {} fingerprint {}, but the incumbent sealed revision {} "
                             "fingerprint {}",
                             store.revision(), store.fingerprint(), sealed.revision, sealed.fingerprint)));
      return;
    }
    done(Serve("serving"));
  });
}

Status KvdHooks::Resume(bool data_changed) {
  return OnIo<Status>([this, data_changed](auto done) {
    service_.WhenIdle([this, data_changed, done] {
      if (data_changed) {
        // Another process owned the data: memory may be stale, disk is not.
        if (service_.writable()) (void)service_.CloseWriter();
        if (auto st = service_.Reload(); !st) {
          done(Error(st.error().code, "resume: " + st.error().message));
          return;
        }
      } else if (!service_.writable()) {
        // Sealed and unchanged: the WAL must end exactly where we closed it.
        auto r = service_.CatchUp(ReplayMode::kRepair);
        if (!r || r->records > 0 || r->tail_bytes > 0) {
          log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.resume.reload",
                                     "the WAL changed although the generation did not; reloading"));
          if (auto st = service_.Reload(); !st) {
            done(Error(st.error().code, "resume: " + st.error().message));
            return;
          }
        }
      }
      auto st = Serve("serving");
      if (st) AdoptOnIo();  // a rollback gave our connections back
      done(st);
    });
  });
}

void KvdHooks::AdoptHandedOver() {
  OnIo<bool>([this](auto done) {
    AdoptOnIo();
    done(true);
  });
}

void KvdHooks::AdoptOnIo() {
  if (daemon_ == nullptr || !opts_.accept_handover) return;
  size_t adopted = 0;
  for (auto& h : daemon_->TakeHandedOver()) {
    if (h.kind != baton::HandoverKind::kConnection) {
      ::close(h.fd);
      continue;
    }
    baton::Status st;
    if (h.name.starts_with("watch-")) {
      auto source = service_.ResumeWatch(h.metadata);
      if (source) {
        st = server_.AdoptStream(h.fd, std::move(*source));
      } else {
        ::close(h.fd);
        st = source.error();
      }
    } else {
      st = server_.Adopt(h.fd, h.metadata);
    }
    if (!st) {
      log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.adopt_failed", "{}: {}", h.name, st.error().message));
      continue;
    }
    ++adopted;
  }
  if (adopted > 0) {
    log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.adopted", "serving {} handed-over connections", adopted)
                  .With("connections", uint64_t{adopted}));
  }
}

void KvdHooks::Retire() { (void)Shutdown(opts_.retire_grace); }

Status KvdHooks::StartServing() {
  return OnIo<Status>([this](auto done) {
    // We hold the lock: a torn tail left by a crash is truncated here.
    if (auto r = service_.CatchUp(ReplayMode::kRepair); !r) {
      done(r.error());
      return;
    }
    done(Serve("serving"));
  });
}

Status KvdHooks::Shutdown(std::chrono::milliseconds grace) {
  return OnIo<Status>([this, grace](auto done) {
    service_.set_phase("stopping");
    server_.Stop(grace, [this, done] {
      service_.WhenIdle([this, done] {
        Status st;
        if (service_.writable()) st = service_.CloseWriter();
        service_.set_phase("stopped");
        done(st);
      });
    });
  });
}

}  // namespace kvd
