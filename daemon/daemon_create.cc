// Daemon::Create: the options and the environment checked, then the runtime
// (daemon.cc) built from them.
#include <cstdlib>

#include <fmt/format.h>

#include "baton/daemon.h"
#include "baton/lease.h"
#include "crashpoints/crashpoints.h"
#include "daemon/daemon_impl.h"

namespace baton {

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
  if (!options.lease) {
    // The supervisor's [lease], when the daemon configured none itself.
    auto from_env = LeaseOptionsFromEnvironment();
    if (!from_env) return from_env.error();
    options.lease = std::move(*from_env);
  }
  std::optional<ownership::LeaseConfig> lease;
  if (options.lease) {
    auto cfg = ownership::MakeLeaseConfig(*options.lease);
    if (!cfg) return cfg.error();
    lease = std::move(*cfg);
  }
  auto env = protocol::TakeChildEnvironment();
  if (!env) return env.error();
  std::unique_ptr<LogSink> own_log;
  if (options.log == nullptr) own_log = NewJsonLinesSink(stderr);
  return detail::NewDaemon(std::move(options), std::move(*env), std::move(own_log), std::move(lease));
}

}  // namespace baton
