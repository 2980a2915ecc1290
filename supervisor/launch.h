// Spawning a daemon generation with the child environment contract, through
// Boost.Process v2 (fork + exec; the process handle watches the child with a
// pidfd on Linux, so exits are observed without SIGCHLD games).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
// Boost 1.81 Process v2 uses these without including them.
#include <boost/optional.hpp>
#include <boost/system/error_code.hpp>
#include <type_traits>

#include <boost/process/v2/process.hpp>

#include "base/errors.h"
#include "protocol/child_env.h"

namespace baton::supervisor {

using Process = boost::process::v2::basic_process<boost::asio::any_io_executor>;

// Both ends O_CLOEXEC. first: the parent's end, second: the child's end
// (the launch dups it to 3+n without O_CLOEXEC; the parent closes its copy
// of the child's end after the launch).
Result<std::pair<int, int>> MakeControlSocketPair();

// Checks that `path` names an executable regular file, with a clear error
// (kNotFound / kPermissionDenied / kFailedPrecondition) before any side effect.
Status CheckExecutable(const std::string& path);

// Launches `executable` with `args`. Exec failures in the child (ENOENT,
// EACCES, ...) are reported here, not as a mysterious exit. With
// `exec_fd` >= 0 (a pinned binary, supervisor/pinned_binary.h) the child
// runs the file open at that descriptor (execveat AT_EMPTY_PATH), whatever
// `executable` names now; `executable` is then only argv[0].
Result<Process> Launch(boost::asio::any_io_executor exec, const std::string& executable,
                       const std::vector<std::string>& args, protocol::ChildLaunch& contract, int exec_fd = -1);

// The current process environment as "K=V" strings.
std::vector<std::string> CurrentEnvironment();

}  // namespace baton::supervisor
