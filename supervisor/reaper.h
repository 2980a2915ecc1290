// Reaping the children the supervisor did not start. When `baton supervise`
// is PID 1 of a PID namespace (a container's entrypoint) or a child
// subreaper (PR_SET_CHILD_SUBREAPER), every orphan below it (a daemon's
// double-forked helper, say) is re-parented to it and stays a zombie until
// it waits for it.
//
// The supervisor's own children (the daemon generations) are watched and
// reaped through pidfds that this process holds (protocol::ChildProcess), so
// the reaper never waits for a pid this process holds a pidfd of: that exit
// status belongs to the pidfd's owner. It looks before it reaps
// (waitid(WNOWAIT)), and reaps one pid at a time (waitpid(pid)).
//
// Threading: the io_context's thread only. Spawning a child and opening its
// pidfd happen in one handler (SpawnGeneration), so the reaper, also a
// handler, never sees a child of ours without its pidfd.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <memory>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "base/errors.h"
#include "base/log.h"

namespace baton::supervisor {

// The pids this process holds a pidfd of (from /proc/self/fdinfo).
std::set<pid_t> PidsWithPidfd();

// Reaps every zombie child of this process that is not in `keep`; returns
// how many it reaped. Never blocks.
int ReapStrayChildren(const std::set<pid_t>& keep);

class OrphanReaper {
 public:
  // Makes this process a child subreaper (unless it is PID 1, which is one
  // already) and reaps orphans on every SIGCHLD from then on.
  static Result<std::unique_ptr<OrphanReaper>> Start(boost::asio::io_context& io, LogSink& log);

  OrphanReaper(boost::asio::io_context& io, LogSink& log) : log_(log), sigchld_(io, SIGCHLD) {}
  uint64_t reaped() const { return reaped_; }

 private:
  void Wait();

  LogSink& log_;
  boost::asio::signal_set sigchld_;
  uint64_t reaped_ = 0;
};

}  // namespace baton::supervisor
