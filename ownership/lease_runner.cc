// baton::LeaseRunner (baton/lease.h): a LeaseClient on a thread of its own,
// campaigning from Create on, with the user's callbacks as its observer.
#include <future>
#include <memory>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "ownership/lease_client.h"

namespace baton {
namespace {

namespace asio = boost::asio;

class LeaseRunnerImpl final : public LeaseRunner {
 public:
  LeaseRunnerImpl(ownership::LeaseConfig cfg, LeaseCallbacks callbacks, LogSink* log, std::unique_ptr<LogSink> own_log)
      : own_log_(std::move(own_log)),
        log_(log != nullptr ? log : own_log_.get()),
        op_timeout_(cfg.op_timeout),
        work_(asio::make_work_guard(io_)),
        client_(io_.get_executor(), std::move(cfg), RealClock(), *log_),
        callbacks_(std::move(callbacks)) {
    client_.set_observer([this](bool started, uint64_t epoch, LeaseEndReason why) {
      if (started && callbacks_.on_start) callbacks_.on_start(epoch);
      if (!started && callbacks_.on_end) callbacks_.on_end(epoch, why);
    });
  }

  ~LeaseRunnerImpl() override {
    Stop(std::chrono::duration_cast<std::chrono::milliseconds>(op_timeout_ + milliseconds(500)));
  }

  // Checks the tables, then campaigns. Configuration errors fail it.
  Status Open() {
    thread_ = std::thread([this] { io_.run(); });
    auto opened = std::make_shared<std::promise<Status>>();
    const TimePoint deadline = RealClock().Now() + 2 * op_timeout_;
    asio::post(io_, [this, opened, deadline] {
      client_.Start();
      client_.Open(deadline, [opened](Status st) { opened->set_value(std::move(st)); });
    });
    Status st = opened->get_future().get();
    if (!st) {
      const Error& e = st.error();
      if (e.Is(Errc::kPermissionDenied) || e.Is(Errc::kFailedPrecondition) || e.Is(Errc::kInvalidArgument)) {
        return Error(e.code, fmt::format("lease '{}': {}", client_.name(), e.message));
      }
      Event ev{Level::kWarn, "lease.unavailable",
               fmt::format("lease '{}': {}; will keep trying", client_.name(), e.message)};
      log_->Emit(ev);
    }
    asio::post(io_, [this] { client_.Campaign(); });
    return {};
  }

  const std::string& name() const override { return client_.name(); }
  const std::string& holder_id() const override { return client_.holder_id(); }
  uint64_t epoch() const override { return client_.epoch(); }
  bool reachable() const override { return client_.reached(); }

  void Stop(std::chrono::milliseconds bound) override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (!thread_.joinable()) return;
    if (std::this_thread::get_id() == thread_.get_id()) return;  // from a callback: refused (see the header)
    auto stopped = std::make_shared<std::promise<void>>();
    const TimePoint deadline = RealClock().Now() + Duration(bound);
    asio::post(io_, [this, stopped, deadline] { client_.Stop(deadline, [stopped] { stopped->set_value(); }); });
    stopped->get_future().wait_for(bound + milliseconds(200));
    work_.reset();
    io_.stop();
    thread_.join();
  }

 private:
  std::unique_ptr<LogSink> own_log_;
  LogSink* log_;
  Duration op_timeout_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  ownership::LeaseClient client_;  // io thread only (epoch(), reached(), name() from any)
  LeaseCallbacks callbacks_;
  std::mutex stop_mu_;
  std::thread thread_;
};

}  // namespace

const char* LeaseEndReasonName(LeaseEndReason r) noexcept {
  switch (r) {
    case LeaseEndReason::kLost: return "lost";
    case LeaseEndReason::kLapsed: return "lapsed";
    case LeaseEndReason::kHandedOver: return "handed_over";
    case LeaseEndReason::kStopped: return "stopped";
  }
  return "unknown";
}

Result<std::unique_ptr<LeaseRunner>> LeaseRunner::Create(LeaseOptions options, LeaseCallbacks callbacks,
                                                         LogSink* log) {
  auto cfg = ownership::MakeLeaseConfig(options);
  if (!cfg) return cfg.error();
  std::unique_ptr<LogSink> own_log;
  if (log == nullptr) own_log = NewJsonLinesSink(stderr);
  auto runner = std::make_unique<LeaseRunnerImpl>(std::move(*cfg), std::move(callbacks), log, std::move(own_log));
  if (auto st = runner->Open(); !st) return st.error();
  return std::unique_ptr<LeaseRunner>(std::move(runner));
}

}  // namespace baton
