// Group commit for kvd's WAL.
//
// PUTs are submitted on the io thread. While no batch is being written, the
// queued records are handed to a dedicated disk thread as one batch: one
// write() and one fdatasync() for all of them. Records submitted meanwhile
// queue up and form the next batch, so concurrent writers share fsyncs
// without any fixed delay (an optional delay can make batches larger).
// Completions run on the io thread, after the batch is durable; only then is
// each record applied to the Store and acknowledged, so a reader never sees a
// write that a crash could still lose.
//
// Ownership of the WalWriter moves with the batch: the disk thread uses it only
// while a batch is in flight, the io thread only while none is (Attach, Close).
// The hand-over is an asio::post each way, which orders the memory accesses.
//
// A failed write or fsync poisons the committer: that batch, everything queued
// and every later Submit fail (kUnavailable) until a new writer is attached
// after a reload, because after a failed fsync the page cache can no longer be
// trusted to match the disk. The failed batch is cut off the log at once
// (WalWriter::Rewind), so the log ends with the last acknowledged record and
// Close still succeeds: a daemon whose disk filled up can hand over (seal at
// its last durable revision) instead of needing a restart.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "baton/errors.h"
#include "store.h"
#include "wal.h"

namespace baton {
class LogSink;
}

namespace kvd {

class Committer {
 public:
  using Done = std::function<void(Result<uint64_t>)>;  // the record's revision once durable

  // `delay`: how long the first record of a batch waits for company (0: none).
  Committer(boost::asio::io_context& io, Store& store, baton::LogSink& log, std::chrono::microseconds delay);
  // Must be idle (see WhenIdle): joins the disk thread.
  ~Committer();
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // ---- io thread only ----
  // Takes a writer whose position matches the Store's revision.
  void Attach(WalWriter writer);
  // With a leader lease: `epoch` returns the epoch this process may write
  // under now (0 = not the leader: writes are refused); each record is
  // stamped with it. Unset: no lease, records carry no epoch.
  void SetFence(std::function<uint64_t()> epoch) { fence_ = std::move(epoch); }
  // Called with every record once durable, right after the Store applied
  // it and before it is acknowledged (kvd: the watch history).
  using Applied = std::function<void(uint64_t revision, std::string_view key, std::string_view value)>;
  void SetApplied(Applied applied) { applied_ = std::move(applied); }
  // Queues key=value; `done` runs on the io thread once durable (or failed).
  void Submit(std::string key, std::string value, Done done);
  // Runs `done` on the io thread once nothing is queued or in flight.
  void WhenIdle(std::function<void()> done);
  // Idle only: fsyncs and closes the writer (a no-op without one). Returns
  // the position after the last durable record; later Submits fail. After
  // a failed batch, an error only if that batch could not be cut off.
  Result<WalPosition> Close();

  bool writable() const { return writer_.has_value() && !failed_; }
  bool idle() const { return !in_flight_ && pending_.empty(); }
  // The end of the durable log (what the last completed batch reached).
  const WalPosition& durable() const { return durable_; }
  uint64_t batches() const { return batches_; }
  uint64_t records() const { return records_; }

 private:
  struct Item {
    uint64_t revision;
    std::string key;
    std::string value;
    Done done;
  };
  struct Batch {
    std::string bytes;
    std::vector<Item> items;
    Status status;
    WalPosition end;
  };

  void StartFlush();
  void FinishFlush(std::shared_ptr<Batch> batch);
  void FailAll(std::vector<Item>& items, const baton::Error& e);
  void NotifyIfIdle();

  boost::asio::io_context& io_;
  Store& store_;
  baton::LogSink& log_;
  std::chrono::microseconds delay_;
  boost::asio::steady_timer delay_timer_;
  boost::asio::thread_pool disk_{1};

  std::function<uint64_t()> fence_;
  Applied applied_;
  std::optional<WalWriter> writer_;
  WalPosition durable_;
  bool failed_ = false;
  baton::Status rewound_;  // after a failure: whether the log was cut back to durable_
  bool in_flight_ = false;
  bool delay_armed_ = false;
  uint64_t next_revision_ = 1;
  std::string pending_bytes_;
  std::vector<Item> pending_;
  std::vector<std::function<void()>> idle_waiters_;
  uint64_t batches_ = 0;
  uint64_t records_ = 0;
};

}  // namespace kvd
