// The daemon's baton::Hooks, each done for real on the Store and the server.
// Every hook runs its work on the server's loop thread (KvServer::Call) and
// blocks until it is done, so the Store is only ever touched by that thread.
#pragma once

#include <chrono>
#include <cstdint>

#include <baton/daemon.h>

#include "server.h"
#include "store.h"

namespace cxxd {

class KvHooks final : public baton::Hooks {
 public:
  KvHooks(Store& store, KvServer& server) : store_(store), server_(server) {}

  // Successor: read-only replay of the log as it is now (the incumbent may
  // still be appending); remembers where it stopped.
  baton::Status Warm() override;
  // Incumbent: stop accepting, close keep-alive connections at response
  // boundaries; returns once nothing is in flight (every ack is fsynced).
  baton::Status Drain(Deadline deadline) override;
  // Incumbent: fsync and close the writer; the last revision and its fingerprint.
  baton::Result<baton::SealReport> Seal() override;
  // Successor: replay the tail after Warm, check it against the seal, open
  // the writer, accept.
  baton::Status Begin(const baton::SealedState& sealed) override;
  // Incumbent after a rollback: reload if another process owned the data,
  // reopen the writer, accept again.
  baton::Status Resume(bool data_changed) override;
  // Incumbent after Commit: close what is left; the process exits after.
  void Retire() override;

  // Cold start / standalone, after Daemon::Start took the lock: recover the
  // log (truncating a torn tail), open the writer, accept.
  baton::Status StartServing();
  // Graceful stop (SIGTERM): drain for at most `grace`, close the writer.
  baton::Status Shutdown(std::chrono::milliseconds grace);

 private:
  baton::Status Serve();

  Store& store_;
  KvServer& server_;
};

}  // namespace cxxd
