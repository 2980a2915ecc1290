#include "daemon/hook_runner.h"

#include <algorithm>
#include <chrono>
#include <exception>

#include <fmt/format.h>

#include "crashpoints/crashpoints.h"

namespace baton::detail {
namespace {

// The longest drain deadline handed to a hook: a day.
constexpr uint64_t kMaxDrainMs = 24ull * 3600 * 1000;
using protocol::HookDone;
using protocol::HookKind;

}  // namespace

HookDone RunHook(Hooks& hooks, LogSink& log, const protocol::RunHookAction& a) {
  HookDone done{a.hook, {}, 0, ""};
  try {
    switch (a.hook) {
      case HookKind::kWarm:
        BATON_CRASH_POINT(kSuccessorInWarm);
        done.status = hooks.Warm();
        break;
      case HookKind::kDrain:
        BATON_CRASH_POINT(kIncumbentInDrain);
        // Clamped so that no deadline the wire can carry overflows the clock.
        done.status = hooks.Drain(std::chrono::steady_clock::now() +
                                    milliseconds(std::min<uint64_t>(a.deadline_ms, kMaxDrainMs)));
        break;
      case HookKind::kSeal: {
        BATON_CRASH_POINT(kIncumbentInSeal);
        auto r = hooks.Seal();
        if (r) {
          done.revision = r->revision;
          done.fingerprint = r->fingerprint;
        } else {
          done.status = r.error();
        }
        break;
      }
      case HookKind::kBegin: {
        SealedState s;
        s.sealed = a.sealed.sealed();
        s.revision = a.sealed.revision();
        s.fingerprint = a.sealed.fingerprint();
        s.data_generation = a.sealed.data_generation();
        s.lease_epoch = a.sealed.lease_epoch();
        done.status = hooks.Begin(s);
        break;
      }
      case HookKind::kResume:
        done.status = hooks.Resume(a.data_changed);
        break;
      case HookKind::kRetire:
        hooks.Retire();
        break;
    }
  } catch (const std::exception& e) {
    done.status = Error(Errc::kInternal, fmt::format("{} hook threw: {}", protocol::HookName(a.hook), e.what()));
  }
  log.Emit(MakeEvent(done.status ? Level::kInfo : Level::kError, "daemon.hook", "{} hook {}",
                       protocol::HookName(a.hook), done.status ? "done" : done.status.error().message));
  return done;
}


HookRunner::HookRunner() : thread_([this] { Loop(); }) {}

HookRunner::~HookRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    tasks_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

void HookRunner::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void HookRunner::Loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
      if (stop_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace baton::detail
