// A tiny in-process HTTP/1.1 KV server with injectable faults, for the
// baton-load end-to-end tests. Like kvd, every stored PUT gets the next
// revision (answered as "REV\n"), /healthz reports the current one and
// /watch streams them. Runs its own io_context on its own thread;
// the accessors are thread-safe (atomics).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace baton::load::test {

struct KvFaults {
  // Every Nth response (1-based, across connections) carries
  // "Connection: close" and the server closes after sending it.
  uint64_t close_every = 0;
  // The Nth request is read and then its connection is closed with no response.
  uint64_t drop_request = 0;
  // The Nth PUT is answered 200 but not stored.
  uint64_t forget_put = 0;
  // Close keep-alive connections idle this long, without any header (0 = never).
  int idle_close_ms = 0;
  // GET /watch?from=REV (kvd's stream of committed writes, one NDJSON line
  // per revision, each line split over two chunks):
  // end every stream with the terminating chunk after this many events (0 = never),
  uint64_t watch_end_after = 0;
  // never send this revision (a gap),
  uint64_t watch_skip_rev = 0;
  // answer 410 {"error":"compacted","oldest":N} to a from below this.
  uint64_t watch_oldest = 0;
};

class KvTestServer {
 public:
  // Listens on 127.0.0.1:0, or on `unix_path` if not empty. nullptr on failure.
  static std::unique_ptr<KvTestServer> Start(KvFaults faults = {}, std::string unix_path = {});
  ~KvTestServer();

  // "http://127.0.0.1:<port>" or "unix:<path>".
  std::string Url() const { return url_; }

  uint64_t Requests() const { return requests_.load(); }
  uint64_t ClosesSent() const { return closes_sent_.load(); }
  uint64_t IdleCloses() const { return idle_closes_.load(); }
  uint64_t Dropped() const { return dropped_.load(); }
  uint64_t Forgotten() const { return forgotten_.load(); }
  uint64_t Watches() const { return watches_.load(); }  // /watch requests answered

  struct Impl;

 private:
  KvTestServer() = default;

  std::string url_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> puts_{0};
  std::atomic<uint64_t> responses_{0};
  std::atomic<uint64_t> closes_sent_{0};
  std::atomic<uint64_t> idle_closes_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> forgotten_{0};
  std::atomic<uint64_t> watches_{0};
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  friend struct Impl;
};

}  // namespace baton::load::test
