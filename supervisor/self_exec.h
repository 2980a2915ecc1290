// The process-level steps of a supervisor re-executing itself in place
// (`baton upgrade --self`, docs/design.md §15): its own command line, the
// descriptors it carries across execve, the sealed memfd of its state, the
// exec itself and the watchdog that covers a new image dying before it
// resumed. Nothing here knows the supervisor's objects (self_upgrade.cc and
// self_resume.cc do).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "supervisor/fd_store.h"

namespace baton::supervisor {

// The state formats this build writes and reads (supervisor/self_state.proto):
// the newest, and the oldest it still reads. A self-upgrade writes the
// oldest format both binaries read that can carry everything it holds.
inline constexpr uint32_t kSelfStateVersion = 2;
inline constexpr uint32_t kSelfStateVersionMin = 1;

// The formats this binary reads, [min, max]: [kSelfStateVersionMin,
// kSelfStateVersion], unless the test-only BATON_TEST_SELF_STATE_VERSION=N
// says [N, N] (a stand-in for a release that reads another format).
struct StateFormats {
  uint32_t min = 0;
  uint32_t max = 0;
};
StateFormats SelfStateVersionsRead();

// Set in the environment of the previous binary re-executed after a new one
// failed to resume: why. A failed resume with it set does not fall back
// again (the watchdog takes over).
inline constexpr const char* kFallbackEnv = "BATON_SELF_UPGRADE_FALLBACK";

// The flags that tell `baton supervise` it resumes (hidden from --help).
inline constexpr const char* kResumeStateFlag = "--resume-state-fd";
inline constexpr const char* kResumePreviousFlag = "--resume-previous-fd";

// The file this process runs (/proc/self/exe, a " (deleted)" suffix dropped).
std::string OwnBinaryPath();

// This process's command line (/proc/self/cmdline) without the resume flags.
Result<std::vector<std::string>> OwnArgv();
// `argv` with the resume flags inserted right after "supervise".
Result<std::vector<std::string>> ResumeArgv(std::vector<std::string> argv, int state_fd, int previous_fd);
// Our environment without the variables that must not outlive one image
// (BATON_CRASH_AT, the fallback mark, the test's state version), plus `extra`.
std::vector<std::string> CleanEnvironment(const std::vector<std::string>& extra = {});

Status SetCloexec(int fd, bool on);

// The signals `baton supervise` handles (TERM, INT, HUP, USR2): blocked
// over a self-upgrade's exec, unblocked once the new image handles them.
sigset_t SupervisorSignals();

// `bytes` in a memfd sealed against any change, not close-on-exec.
Result<OwnedFd> SealedMemfd(const std::string& bytes);
// What a sealed memfd holds; an error if it is not one (or not sealed).
Result<std::string> ReadSealedMemfd(int fd);

// What the watchdog does if the image it watches dies before it resumed.
struct WatchdogPlan {
  int resumed_read = -1;   // "R" arrives here once resumed; EOF = the image died
  int resumed_write = -1;  // closed in the watchdog
  int previous_fd = -1;    // the binary to start again (O_RDONLY)
  std::vector<std::string> argv;  // a plain `baton supervise ...` (no resume flags)
  std::vector<std::string> env;
  std::string reattach_socket;  // the serving generation's re-attach socket ("" = none: protocol notify)
};
// Forks the watchdog. On EOF it closes every descriptor but the previous
// binary's (so the serving generation's channel closes and it listens for a
// re-attach), waits up to 10 s for `reattach_socket`, and execs the previous
// binary as a fresh supervisor, which re-attaches (docs/design.md §15), or
// adopts a generation of protocol notify (no socket: it starts at once).
Result<pid_t> ForkWatchdog(const WatchdogPlan& plan);

// Re-executes the previous binary (`previous_fd`) in place with the same
// state and descriptors, marked with kFallbackEnv=`why`, plus `extra`
// environment (the socket activation this image was given); returns only
// when that is not possible (a fallback cannot fall back again).
Error ReexecPrevious(int state_fd, int previous_fd, const std::string& why, const std::vector<std::string>& extra);

// The resume flags' values in a raw command line (before any "--"), when
// both are there: (state fd, previous binary fd).
std::optional<std::pair<int, int>> ResumeFdsIn(int argc, char** argv);

// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES as in our environment now (to
// hand on: the first look at them takes them out).
std::vector<std::string> ActivationEnvironment();

// execve of `path`, or (fd >= 0) execveat(fd, "", AT_EMPTY_PATH). Returns
// only on failure.
Error ExecImage(const std::string& path, int fd, const std::vector<std::string>& argv,
                const std::vector<std::string>& env);

// The one line `baton self-check` prints, and its parse. `state_min` is
// printed as `state_min=` after `state_version=` (the newest format); a
// line without it (a build that reads one format) parses as state_min =
// state_version.
struct SelfCheck {
  uint32_t state_version = 0;
  uint32_t state_min = 0;
  uint32_t protocol_min = 0;
  uint32_t protocol_max = 0;
  std::string version;
};
std::string FormatSelfCheck(const SelfCheck& c);
Result<SelfCheck> ParseSelfCheck(const std::string& out);

}  // namespace baton::supervisor
