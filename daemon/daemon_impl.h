// The runtime behind baton::Daemon (daemon.cc), as Daemon::Create
// (daemon_create.cc) builds it once the options and the environment are
// checked.
#pragma once

#include <memory>
#include <optional>

#include "base/log.h"
#include "baton/daemon.h"
#include "ownership/lease_config.h"
#include "protocol/child_env.h"

namespace baton::detail {

std::unique_ptr<Daemon> NewDaemon(DaemonOptions options, protocol::ChildEnvironment env,
                                  std::unique_ptr<LogSink> own_log, std::optional<ownership::LeaseConfig> lease);

}  // namespace baton::detail
