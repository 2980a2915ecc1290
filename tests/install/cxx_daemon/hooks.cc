#include "hooks.h"

#include <cstdio>
#include <string>

namespace cxxd {
namespace {

// How long a drain lets an idle keep-alive connection send its next request.
constexpr std::chrono::milliseconds kDrainIdleWait{1000};

void Log(const std::string& line) { std::fprintf(stderr, "cxx_daemon: %s\n", line.c_str()); }

}  // namespace

baton::Status KvHooks::Serve() {
  if (auto st = store_.OpenWriter(); !st) return st;
  server_.Accept(true);
  Log("serving at revision " + std::to_string(store_.revision()) + " fingerprint " + store_.fingerprint());
  return {};
}

baton::Status KvHooks::Warm() {
  return server_.Call([this](KvServer::Done done) {
    auto r = store_.CatchUp(ReplayMode::kReadOnly);
    if (!r) return done(baton::Error(r.error().code, "warm: " + r.error().message));
    Log("warm: replayed " + std::to_string(*r) + " records read-only");
    done({});
  });
}

baton::Status KvHooks::Drain(Deadline deadline) {
  return server_.Call([this, deadline](KvServer::Done done) {
    server_.Drain(deadline, kDrainIdleWait, [done] { done({}); });
  });
}

baton::Result<baton::SealReport> KvHooks::Seal() {
  baton::SealReport report;
  auto st = server_.Call([this, &report](KvServer::Done done) {
    server_.Accept(false);  // normally Drain did; a bare Seal must not accept either
    // Commits are synchronous on this thread: none is half done here.
    if (auto c = store_.CloseWriter(); !c) return done(baton::Error(c.error().code, "seal: " + c.error().message));
    report = {store_.revision(), store_.fingerprint()};
    done({});
  });
  if (!st) return st.error();
  return report;
}

baton::Status KvHooks::Begin(const baton::SealedState& sealed) {
  return server_.Call([this, sealed](KvServer::Done done) {
    // We hold the lock now: only what was appended after Warm is read, and
    // a torn tail (an incumbent that died mid-append) is truncated.
    auto r = store_.CatchUp(ReplayMode::kRepair);
    if (!r) return done(baton::Error(r.error().code, "begin: " + r.error().message));
    if (sealed.sealed && (store_.revision() != sealed.revision || store_.fingerprint() != sealed.fingerprint)) {
      return done(baton::Error(baton::Errc::kFailedPrecondition,
                               "begin: replayed revision " + std::to_string(store_.revision()) + " fingerprint " +
                                   store_.fingerprint() + ", but the incumbent sealed revision " +
                                   std::to_string(sealed.revision) + " fingerprint " + sealed.fingerprint));
    }
    if (!sealed.sealed) Log("begin: the incumbent did not seal; trusting the log");
    Log("begin: replayed a tail of " + std::to_string(*r) + " records");
    done(Serve());
  });
}

baton::Status KvHooks::Resume(bool data_changed) {
  return server_.Call([this, data_changed](KvServer::Done done) {
    if (data_changed) {
      // Another process owned the data meanwhile: memory may be stale.
      if (auto st = store_.CloseWriter(); !st) return done(st);
      if (auto st = store_.Reload(); !st) return done(baton::Error(st.error().code, "resume: " + st.error().message));
      Log("resume: reloaded the log, revision " + std::to_string(store_.revision()));
    } else if (!store_.writable()) {
      // Sealed, and nobody wrote since: the log must end where we closed it.
      auto r = store_.CatchUp(ReplayMode::kRepair);
      if (!r || *r != 0) {
        Log("resume: the log changed although the data generation did not; reloading");
        if (auto st = store_.Reload(); !st) {
          return done(baton::Error(st.error().code, "resume: " + st.error().message));
        }
      }
    }
    done(Serve());
  });
}

void KvHooks::Retire() {
  if (auto st = Shutdown(std::chrono::milliseconds(5000)); !st) Log("retire: " + st.error().message);
}

baton::Status KvHooks::StartServing() {
  return server_.Call([this](KvServer::Done done) {
    auto r = store_.CatchUp(ReplayMode::kRepair);
    if (!r) return done(baton::Error(r.error().code, "recovery: " + r.error().message));
    done(Serve());
  });
}

baton::Status KvHooks::Shutdown(std::chrono::milliseconds grace) {
  return server_.Call([this, grace](KvServer::Done done) {
    server_.Drain(Clock::now() + grace, std::chrono::milliseconds(0), [this, done] { done(store_.CloseWriter()); });
  });
}

}  // namespace cxxd
