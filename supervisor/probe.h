// Readiness probes for daemons without sd_notify (docs/design.md §14): one
// attempt at a time, each bounded by `timeout`, its answer a bool and why.
//   tcp   connect to HOST:PORT
//   http  GET PATH on HOST:PORT (HTTP/1.0), ready on a 2xx status line
//   exec  `/bin/sh -c COMMAND` with BATON_PROBE_PID=<the generation's pid>,
//         ready when it exits 0 (killed at the timeout)
//
// Threading: the supervisor's executor; the callback runs there, exactly
// once, and keeps what it needs alive itself.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "base/clock.h"

namespace baton::supervisor {

struct ProbeSpec {
  enum class Kind { kTcp, kHttp, kExec } kind = Kind::kTcp;
  std::string host;  // tcp, http
  int port = 0;
  std::string path = "/";  // http
  std::string command;     // exec
};

using ProbeDone = std::function<void(bool ok, const std::string& why)>;

void RunProbe(boost::asio::io_context& io, const ProbeSpec& spec, pid_t pid, Duration timeout, ProbeDone done);

}  // namespace baton::supervisor
