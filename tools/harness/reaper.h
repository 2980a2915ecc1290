// Ties the process groups a test starts to the test process: when the test
// process dies, however it dies (SIGKILL by ctest's timeout, ^C, a crash),
// every group still registered here is SIGKILLed.
//
// The first registration starts a small reaper process, detached (its own
// session, re-parented away from the test, so neither ^C nor ctest killing
// the test's process tree reaches it). It holds one end of a socket pair
// whose other end only the test process holds (O_CLOEXEC, so exec'd
// children never do); end of file on it means the test process is gone. The reaper then kills the groups it was told about and exits.
//
// A forked child that registers gets a reaper of its own (tied to the
// child). Thread-safe. The reaper only ever kills groups: a process that
// leaves its group (setsid, setpgid) escapes it. It spares a group whose
// leader's pid now belongs to another process (the start time differs);
// still, forget a group once it is over, as its number may be reused.
#pragma once

#include <sys/types.h>

namespace baton::harness {

// SIGKILL process group `pgid` when this process dies. Call it while the
// group's leader (pid `pgid`) runs. Idempotent.
void KillGroupOnExit(pid_t pgid);
// The caller has ended group `pgid` itself: forget it, so that the number,
// once reused, is never killed.
void ForgetGroup(pid_t pgid);

}  // namespace baton::harness
