// Runs daemon hooks one at a time on a dedicated thread, so the io thread
// keeps heartbeating while a hook blocks for as long as it needs; and what
// running one means (RunHook).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "baton/daemon.h"
#include "base/log.h"
#include "protocol/session.h"

namespace baton::detail {

class HookRunner {
 public:
  HookRunner();
  ~HookRunner();  // finishes the running task, drops queued ones, joins
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Queues `task`; thread-safe.
  void Post(std::function<void()> task);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  std::thread thread_;
};

// Runs the hook `a` names (on the hook thread), with its crash point; a
// hook that throws fails with the exception's message. Logs the outcome.
protocol::HookDone RunHook(Hooks& hooks, LogSink& log, const protocol::RunHookAction& a);

}  // namespace baton::detail
