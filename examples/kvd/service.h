// kvd's request handling and state life cycle: the Store, its WAL position
// and the group committer, plus the HTTP routes.
//
//   GET /kv/<key>   200 + value, 404 if absent
//   PUT /kv/<key>   body = value; 200 "<revision>" once the record is fsynced,
//                   503 when this process is not (or no longer) the writer
//   GET /healthz    200 JSON: status, pid, role, phase, build id, revision,
//                   writable, lease_epoch (0: no lease or not the leader)
//   GET /stats      200 JSON: revision, fingerprint, keys, WAL position, batches,
//                   checkpoints written and the last snapshot's revision
//   GET /watch?from=REV
//                   REV: decimal >= 1; absent = the current revision + 1.
//                   200, Content-Type: application/x-ndjson,
//                   Transfer-Encoding: chunked; every chunk holds one or more
//                   complete lines, one per committed (fsynced, acknowledged)
//                   write with revision >= REV, in revision order, each
//                   revision exactly once (revisions are consecutive):
//                     {"rev":N,"key":"...","value":"..."}\n
//                   (key and value JSON-string-escaped). 410 Gone with body
//                   {"error":"compacted","oldest":N} when REV is older than
//                   the history kept (WatchHistory); 400 for a bad REV or
//                   one in the future (> current + 1), or HTTP/1.0. A stream
//                   that cannot continue (it fell behind the history, or a
//                   next generation lacks it) ends with the line
//                   {"error":"compacted","oldest":N} and the terminating
//                   chunk. A drain without handover ends a stream after a
//                   complete line with the terminating chunk (the client
//                   reconnects with from=last+1); with handover the
//                   connection moves between two chunks and the next
//                   generation continues the same response.
//
// Threading: io thread only, like the server it serves.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "baton/errors.h"
#include "checkpointer.h"
#include "committer.h"
#include "http_server.h"
#include "store.h"
#include "watch_history.h"
#include "wal.h"

namespace baton {
class LogSink;
}

namespace kvd {

struct ServiceOptions {
  std::string data_dir{};
  std::string role = "standalone";  // shown by /healthz
  std::string build_id{};
  bool fail_healthz = false;  // test knob: /healthz answers 503 (an external probe fails)
  uint64_t rotate_bytes = 64u << 20;
  // Checkpoint once the WAL grew by max(this, the last snapshot's size)
  // since the last snapshot (checkpointer.h); 0: never.
  uint64_t checkpoint_bytes = 1u << 20;
  std::chrono::microseconds group_commit{0};  // extra wait for a batch to fill
  size_t max_key_bytes = 1024;
  uint64_t watch_history_bytes = 64u << 20;  // WatchHistory's bound
  // With a leader lease: the epoch writes may happen under now (0 = refuse
  // writes with 503). Each WAL record is stamped with it. Unset: no lease.
  std::function<uint64_t()> lease_epoch{};
};

class KvService {
 public:
  KvService(boost::asio::io_context& io, baton::LogSink& log, ServiceOptions options);

  // Applies every record after position() (kReadOnly: Warm; kRepair: the lock
  // holder, truncating a torn tail). With nothing loaded yet, starts from the
  // latest snapshot. Read-only, when the writer removed the segment we were
  // at (it checkpointed twice meanwhile), starts again from the latest
  // snapshot.
  Result<ReplayResult> CatchUp(ReplayMode mode);
  // Forgets memory and loads the latest snapshot plus the WAL after it (kRepair).
  Status Reload();
  // Starts writing after position(); needs the data-dir lock.
  Status OpenWriter();
  // Idle only: fsync + close the writer; position() becomes its end.
  Status CloseWriter();
  void WhenIdle(std::function<void()> done) { committer_.WhenIdle(std::move(done)); }

  void Handle(Request&& req, Respond respond);
  // A GET /watch stream handed over (its HandoverState as `state`), to be
  // continued with HttpServer::AdoptStream.
  Result<std::shared_ptr<ChunkSource>> ResumeWatch(std::string_view state);

  const Store& store() const { return store_; }
  const WatchHistory& history() const { return history_; }
  const WalPosition& position() const { return pos_; }
  bool writable() const { return committer_.writable(); }
  void set_phase(std::string phase) { phase_ = std::move(phase); }
  const std::string& phase() const { return phase_; }

 private:
  Response Text(const Request& req, unsigned status, std::string body) const;
  Status LoadSnapshot();
  Result<ReplayResult> Replay(ReplayMode mode);
  void HandleKv(Request&& req, std::string key, Respond respond);
  void HandleWatch(const Request& req, std::string_view query, Respond respond);

  baton::LogSink& log_;
  ServiceOptions opts_;
  Store store_;
  WatchHistory history_;
  WalPosition pos_;
  Committer committer_;
  Checkpointer checkpointer_;
  std::string phase_ = "starting";
};

}  // namespace kvd
