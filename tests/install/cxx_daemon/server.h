// The daemon's HTTP server: GET/PUT /kv/<key> and GET /healthz over a Store,
// on one loop thread (poll(2)), with group commit: the PUTs read in one loop
// round are appended and fdatasynced together, and only then acknowledged.
//
//   GET /kv/<key>  200 + value, 404 if absent
//   PUT /kv/<key>  body = value; 200 "<revision>" once fsynced, 503 when this
//                  process is not (or no longer) the writer
//   GET /healthz   200 JSON: status, pid, role, revision, writable
//
// Drain (a handoff's, or a graceful stop):
//  1. Stop accepting. The listening fd stays open (the supervisor and the
//     next generation share it); new connections wait in the kernel's queue.
//  2. Every response carries `Connection: close`; after it is written the
//     send side is shut down and unread input discarded until the client
//     closes (a close with unread input would reset the connection under
//     the response).
//  3. An idle keep-alive connection gets `idle_wait` to send its next
//     request (answered with close): closing it at once could cut a request
//     already on the wire. Then connections with no byte received are closed
//     (the keep-alive race every HTTP client retries).
//  4. At the deadline whatever is left is closed.
//  `done` runs once no connection is reading, processing or writing.
//
// Threading: Start, Stop and Call from any one thread (main, the hooks);
// the functions marked "loop thread" only inside a Call.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <baton/errors.h>

#include "http.h"
#include "store.h"

namespace cxxd {

using Clock = std::chrono::steady_clock;

class KvServer {
 public:
  struct Options {
    std::string role;
    std::chrono::milliseconds linger{2000};
  };
  // Takes ownership of `listen_fd` (a listening stream socket).
  KvServer(Store& store, int listen_fd, Options options);
  ~KvServer();
  KvServer(const KvServer&) = delete;
  KvServer& operator=(const KvServer&) = delete;

  // Starts the loop thread; it accepts nothing until Accept(true).
  baton::Status Start();
  // Ends the loop and joins it; closes every connection and the listener.
  void Stop();

  using Done = std::function<void(baton::Status)>;
  // Runs `f` on the loop thread and blocks until `f` (or a callback it left
  // behind, e.g. a drain's) has called its Done exactly once.
  baton::Status Call(std::function<void(Done)> f);

  // Loop thread: start or stop accepting; starting also ends a drain.
  void Accept(bool on);
  // Loop thread: see the file comment. A second drain replaces the first.
  void Drain(Clock::time_point deadline, std::chrono::milliseconds idle_wait, std::function<void()> done);

 private:
  struct Conn;
  void Loop();
  void AcceptAll();
  void ReadIn(Conn& c);
  void Flush(Conn& c);
  void Serve();
  void Handle(Conn& c, Request req, std::vector<Record>& batch, std::vector<Conn*>& writers);
  void Respond(Conn& c, int status, std::string_view body, bool keep_alive,
               std::string_view content_type = "text/plain");
  void Timers(Clock::time_point now);
  int NextTimeoutMs(Clock::time_point now) const;
  void CheckDrained();

  Store& store_;
  int listen_fd_;
  Options opts_;
  int wake_[2] = {-1, -1};
  std::thread thread_;

  std::mutex mu_;
  std::vector<std::function<void()>> posted_;  // guarded by mu_
  bool stop_ = false;                          // guarded by mu_

  // Loop thread only.
  std::vector<std::unique_ptr<Conn>> conns_;
  bool accepting_ = false;
  bool draining_ = false;
  Clock::time_point idle_deadline_{};
  Clock::time_point hard_deadline_{};
  std::function<void()> drain_done_;
};

}  // namespace cxxd
