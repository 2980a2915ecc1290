// baton-load's engine: probe the target, drive it with N connections for the
// run's duration, then verify every acknowledged write. Everything runs on
// one io_context in the calling thread; RunLoad blocks for about
// duration + verification and always returns (every wait is bounded).
#pragma once

#include "base/errors.h"
#include "base/log.h"
#include "tools/load/options.h"
#include "tools/load/report.h"

namespace baton::load {

// Errors: kInvalidArgument (options failed Validate), kUnavailable (the
// probe connection was refused or timed out: target down), kInternal (a bug).
// Events: "load.start", "load.verify" (info); "load.error" for the first few
// failed requests, "load.lost_write", "load.verify_error" (warn).
Result<LoadReport> RunLoad(const LoadOptions& opts, LogSink& log);

}  // namespace baton::load
