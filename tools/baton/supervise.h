// `baton supervise` and `baton check-config`: the config file merged with
// the flags (flags win), then the supervisor and its operator surface.
#pragma once

#include "base/errors.h"
#include "supervisor/ops/config.h"
#include "tools/baton/commands.h"

namespace baton::cli {

// Applies every flag that was given on top of `base` (from --config or
// defaults). Errors name the flag. The result is not validated yet
// (supervisor::ValidateConfig): socket activation may still add listeners.
Result<supervisor::ServiceConfig> MergeFlags(supervisor::ServiceConfig base, const SuperviseArgs& args);

}  // namespace baton::cli
