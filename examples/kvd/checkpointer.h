// When and how kvd writes checkpoints (snapshot.h), without stopping the
// io thread for longer than a fork.
//
// While this process is the writer, a timer compares the WAL written since
// the last snapshot with the snapshot's own size: once the log has grown by
// max(`min_bytes`, that size), replaying it would cost more than loading a
// fresh snapshot, so one is taken. The io thread forks (the child gets a
// copy-on-write image of the Store at a batch boundary, so exactly the
// durable records) and the child writes the snapshot while the parent keeps
// serving, like Redis's BGSAVE. When the child succeeded and this process
// still holds the data dir, obsolete snapshots and WAL segments are removed.
//
// The child closes every inherited descriptor first (so it never keeps the
// data-dir flock's open file alive past its owner) and dies with its parent
// (PR_SET_PDEATHSIG). One checkpoint at a time; the same timer reaps the
// child. A failed checkpoint (full disk...) is logged and retried with a
// backoff of 1 s doubling to 1 min; nothing else depends on it.
//
// Threading: io thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <chrono>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "committer.h"
#include "store.h"
#include "wal.h"

namespace baton {
class LogSink;
}

namespace kvd {

struct CheckpointOptions {
  std::string data_dir;
  uint64_t min_bytes = 1u << 20;  // 0: never checkpoint
  uint64_t rotate_bytes = 64u << 20;
  std::chrono::milliseconds check_every{200};
};

class Checkpointer {
 public:
  Checkpointer(boost::asio::io_context& io, baton::LogSink& log, const Store& store, const Committer& committer,
               CheckpointOptions options);
  ~Checkpointer();  // kills a child still writing
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // The state came from this snapshot (or from none: position {}).
  void Loaded(const WalPosition& pos, uint64_t bytes);
  // Starts the periodic check (idempotent).
  void Start();
  // Takes a checkpoint now if this process is the writer and none is being
  // written; returns whether one was started.
  bool TryNow();

  uint64_t written() const { return written_; }
  uint64_t failed() const { return failed_; }
  bool running() const { return pid_ > 0; }
  const WalPosition& snapshot_position() const { return snap_pos_; }

 private:
  uint64_t BytesSinceSnapshot(const WalPosition& now) const;
  void Arm();
  void Reap(int status);

  baton::LogSink& log_;
  const Store& store_;
  const Committer& committer_;
  CheckpointOptions opts_;
  boost::asio::steady_timer timer_;
  bool started_ = false;
  pid_t pid_ = -1;
  WalPosition pending_{};  // what the running child writes
  std::chrono::steady_clock::time_point began_{};
  std::chrono::steady_clock::time_point retry_at_{};  // after a failure
  std::chrono::milliseconds backoff_{0};
  WalPosition snap_pos_{};
  uint64_t snap_bytes_ = 0;
  uint64_t written_ = 0;
  uint64_t failed_ = 0;
};

}  // namespace kvd
