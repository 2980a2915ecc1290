// Fault injection for daemons' own tests: baton's named crash points.
//
// Every point is listed by `baton crashpoints`. A daemon may place the
// daemon points registered for it (e.g. "kvd.in_seal_fsync") in its own code
// with CrashPoint(name); an armed point writes a marker line naming itself
// (stderr, and $BATON_CRASH_MARKER if set) and ends the process like a
// SIGKILL would, with exit code 86 (BATON_CRASH_ACTION=abort|hang changes
// that). Points are armed by BATON_CRASH_AT=<name> (read by
// Daemon::Create) or by ArmCrashPoint.
#pragma once

#include <string_view>

#include "baton/errors.h"
#include "baton/export.h"

namespace baton::testing {

// Fires if `name` is the armed point; otherwise returns at once (one atomic
// load when nothing is armed). Thread-safe.
BATON_EXPORT void CrashPoint(std::string_view name) noexcept;

// Arms the point called `name` in this process with the `exit` action,
// replacing any armed one. kNotFound for a name `baton crashpoints` does not
// list. Not thread-safe with respect to other ArmCrashPoint calls.
BATON_EXPORT Status ArmCrashPoint(std::string_view name);

}  // namespace baton::testing
