// baton::Daemon: role detection and the standalone / supervised runtime.
#include "baton/daemon.h"

#include <condition_variable>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "base/log.h"
#include "crashpoints/crashpoints.h"
#include "ownership/data_dir.h"
#include "protocol/child_env.h"

namespace baton {
namespace {

class DaemonImpl final : public Daemon {
 public:
  DaemonImpl(DaemonOptions opts, protocol::ChildEnvironment env, std::unique_ptr<LogSink> own_log)
      : opts_(std::move(opts)), env_(std::move(env)), own_log_(std::move(own_log)) {
    log_ = opts_.log != nullptr ? opts_.log : own_log_.get();
    for (const auto& l : env_.listeners) listeners_.push_back({l.name, l.fd});
    switch (env_.role) {
      case protocol::LaunchRole::kNone: role_ = Role::kStandalone; break;
      case protocol::LaunchRole::kCold: role_ = Role::kColdStart; break;
      case protocol::LaunchRole::kSuccessor: role_ = Role::kSuccessor; break;
    }
  }

  Role role() const override { return role_; }
  const std::vector<InheritedSocket>& listeners() const override { return listeners_; }
  Result<int> Listener(std::string_view name) const override {
    for (const auto& l : listeners_) {
      if (l.name == name) return l.fd;
    }
    return Error(Errc::kNotFound, fmt::format("no inherited listener named '{}'", name));
  }
  const std::string& data_dir() const override { return opts_.data_dir; }

  Status Start(Hooks& hooks) override {
    hooks_ = &hooks;
    if (role_ != Role::kStandalone) {
      return Error(Errc::kFailedPrecondition,
                   "supervised start is not implemented in this build yet (run without a supervisor)");
    }
    auto lock = ownership::DataDirLock::Acquire(opts_.data_dir);
    if (!lock) return lock.error();
    lock_.emplace(std::move(*lock));
    auto gen = ownership::BumpGeneration(*lock_);
    if (!gen) return gen.error();
    log_->Emit(MakeEvent(Level::kInfo, "daemon.start", "standalone start, data generation {}", *gen)
                   .With("generation", *gen));
    return {};
  }

  int WaitForExit() override {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return exit_code_.has_value(); });
    return *exit_code_;
  }

 private:
  DaemonOptions opts_;
  protocol::ChildEnvironment env_;
  std::unique_ptr<LogSink> own_log_;
  LogSink* log_ = nullptr;
  Role role_ = Role::kStandalone;
  std::vector<InheritedSocket> listeners_;
  Hooks* hooks_ = nullptr;
  std::optional<ownership::DataDirLock> lock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<int> exit_code_;
};

}  // namespace

Result<std::unique_ptr<Daemon>> Daemon::Create(DaemonOptions options) {
  if (auto st = crashpoints::ArmFromEnvironment(); !st) return st.error();
  if (options.data_dir.empty()) {
    if (const char* d = std::getenv("BATON_DATA_DIR"); d != nullptr) options.data_dir = d;
  }
  if (options.data_dir.empty()) {
    return Error(Errc::kInvalidArgument, "no data dir: set DaemonOptions::data_dir or BATON_DATA_DIR");
  }
  if (options.state_schema_min > options.state_schema_max) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("state schema range [{},{}] is empty", options.state_schema_min, options.state_schema_max));
  }
  auto env = protocol::TakeChildEnvironment();
  if (!env) return env.error();
  std::unique_ptr<LogSink> own_log;
  if (options.log == nullptr) own_log = std::make_unique<JsonLinesSink>(stderr);
  return std::unique_ptr<Daemon>(new DaemonImpl(std::move(options), std::move(*env), std::move(own_log)));
}

}  // namespace baton
