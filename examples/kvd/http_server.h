// kvd's HTTP/1.1 transport (Boost.Beast): one acceptor on a listening socket
// that may be shared with other processes (the supervisor and the next
// generation hold the same socket), keep-alive sessions, and the drain that a
// handoff needs.
//
// Drain, in order:
//  1. Stop accepting: cancel async_accept. The listening fd stays open and is
//     never shut down (that would break it for every process sharing it);
//     connections arriving now wait in the kernel's accept queue for whoever
//     accepts next.
//  2. From now on every response carries `Connection: close` and the session
//     is closed after it is fully written (send side shut down first, then
//     unread input discarded until the client closes or `linger` passes, so
//     the client never sees a reset that could destroy the response).
//  3. Idle keep-alive sessions (no byte of a next request read) are not
//     closed at once: a client may be writing a request that is still on the
//     wire, and closing then resets the connection with the client unsure
//     whether the request ran. Such a session waits for its next request and
//     answers it with `Connection: close`. At the idle deadline (`idle_wait`,
//     capped just before the drain deadline) sessions with no bytes
//     received are closed; that is the normal keep-alive race every HTTP
//     client retries.
//  4. At the drain deadline everything still reading or writing is closed;
//     requests already handed to the handler (a PUT waiting for its fsync)
//     still get their response, written under a short guard timer.
//  `done` runs once no session is reading, processing or writing.
//
// Streaming responses (ChunkSource, e.g. kvd's /watch) end at the start of
// a drain: what the source has ready, then the terminating chunk, then a
// lingering close.
//
// DrainForHandover (docs/integrate.md): the same, except that responses keep
// their connections open and idle ones are not closed, and streams go on;
// once no session is past a request's header, processing or writing (a
// stream: between two chunks, no write in flight), every open connection is
// released (its fd, not closed, and the bytes read but not parsed, or the
// stream's HandoverState) for the next generation, which serves it with
// Adopt (AdoptStream).
//
// Threading: everything runs on the io_context's single thread; every public
// method must be called there. The handler's Respond may be called later, also
// on that thread, exactly once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include "baton/errors.h"

namespace baton {
class LogSink;
}

namespace kvd {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// The body of a streaming response (HTTP/1.1, Transfer-Encoding: chunked),
// produced as it goes (kvd: GET /watch). The session asks for the next
// chunk only when no write of the stream is in flight (one outstanding
// write per stream), so the source's position is exactly what was written
// whenever the session is between writes: that is when it can be handed
// over (HandoverState). io thread only.
class ChunkSource {
 public:
  virtual ~ChunkSource() = default;
  // Appends the next chunk's payload to `out` (nothing appended: nothing
  // ready yet) and advances past it. true: the stream ends with it (the
  // session then sends the terminating chunk and closes).
  virtual bool Next(std::string& out) = 0;
  // Runs `wake` once, when Next may have something; replaces a previous
  // wait. `wake` may run inside another call to the source's owner: it
  // only posts.
  virtual void Wait(std::function<void()> wake) = 0;
  virtual void CancelWait() = 0;
  // Where the stream stands, for the next generation to continue it.
  virtual std::string HandoverState() const = 0;
};

// How a handler answers a request, exactly once: with a whole response, or
// with the head (status and fields, no body) of a streaming one.
class Respond {
 public:
  using Whole = std::function<void(Response)>;
  using Streaming = std::function<void(Response, std::shared_ptr<ChunkSource>)>;
  explicit Respond(Whole whole, Streaming streaming = nullptr)
      : whole_(std::move(whole)), streaming_(std::move(streaming)) {}
  void operator()(Response res) const { whole_(std::move(res)); }
  // Only for an HTTP/1.1 request (chunked encoding).
  void Stream(Response head, std::shared_ptr<ChunkSource> source) const {
    if (streaming_) streaming_(std::move(head), std::move(source));
  }

 private:
  Whole whole_;
  Streaming streaming_;
};
using Handler = std::function<void(Request&&, Respond)>;

struct HttpOptions {
  uint64_t body_limit = 1u << 20;
  std::chrono::milliseconds linger{2000};     // lingering close after the last response
  std::chrono::milliseconds idle_wait{0};     // drain: cap on waiting for idle sessions (0 = the deadline)
  std::chrono::milliseconds write_guard{1000};  // drain: responses written past the deadline
};

class HttpSession;

// A connection for the next generation: the fd (owned by whoever took it)
// and what was read from it but not processed yet; or, for a streaming
// response released between two chunks, its source's HandoverState.
struct HandedConnection {
  int fd = -1;
  std::string unread;
  std::optional<std::string> stream;
};

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, Handler handler, baton::LogSink& log, HttpOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Takes ownership of a listening stream socket (TCP over IPv4 or IPv6, or
  // Unix). Does not accept yet.
  baton::Status Listen(int fd);
  // Opens, binds and listens on host:port (port 0 = any).
  baton::Status Bind(const std::string& host, uint16_t port);
  void StartAccepting();  // also ends a drain (Resume)
  void StopAccepting();
  // See the file comment. A second Drain replaces the first's callback.
  void Drain(std::chrono::milliseconds deadline, std::function<void()> done);
  // See the file comment. The connections released go to `done`.
  void DrainForHandover(std::chrono::milliseconds deadline, std::function<void(std::vector<HandedConnection>)> done);
  // Serves a handed-over connection (the fd is ours from here, closed on
  // error); `unread` is parsed before anything read from the socket.
  baton::Status Adopt(int fd, const std::string& unread);
  // Continues a streaming response handed over between two chunks (its
  // head and earlier chunks already sent): the next chunk comes from `source`.
  baton::Status AdoptStream(int fd, std::shared_ptr<ChunkSource> source);
  // For stopping for good (SIGTERM, Retire): a drain with `grace` that closes
  // idle sessions at once (nobody would answer a retry on a new connection
  // anyway), then waits (at most `linger` more) for lingering sessions to
  // finish, then Shutdown; `done` runs after that.
  void Stop(std::chrono::milliseconds grace, std::function<void()> done);
  // Closes every session now and stops accepting; the listener is closed too.
  // Call it, and let the io_context run out, before destroying the server.
  void Shutdown();

  uint16_t port() const;  // of a TCP listener, 0 otherwise
  bool accepting() const { return accepting_; }
  bool draining() const { return draining_; }
  size_t sessions() const { return sessions_.size(); }
  uint64_t responses() const { return responses_; }

 private:
  friend class HttpSession;
  // How long a drain with `deadline` waits for idle keep-alive connections.
  std::chrono::milliseconds IdleWait(std::chrono::milliseconds deadline) const;
  void StartDrain(std::chrono::milliseconds deadline, std::chrono::milliseconds idle, std::function<void()> done);
  void DoAccept();
  void CheckDrained();
  void OnIdleDeadline();
  void OnHardDeadline();
  void Forget(uint64_t id);
  void CheckStopped();
  void FinishHandover();
  // The session of an adopted fd (closed on error), not started yet.
  baton::Result<std::shared_ptr<HttpSession>> AdoptSession(int fd);

  Handler handler_;
  baton::LogSink& log_;
  HttpOptions opts_;
  // generic: TCP (v4, v6) and Unix stream listeners alike.
  boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol> acceptor_;
  boost::asio::steady_timer accept_retry_;
  boost::asio::steady_timer idle_deadline_;
  boost::asio::steady_timer hard_deadline_;
  bool accepting_ = false;
  bool accept_pending_ = false;
  bool draining_ = false;
  bool idle_expired_ = false;  // drain: idle sessions are closed from now on
  bool past_deadline_ = false;
  std::function<void()> drain_done_;
  bool handover_ = false;  // DrainForHandover: connections stay open and are released
  std::function<void(std::vector<HandedConnection>)> handover_done_;
  boost::asio::steady_timer stop_timer_;
  std::function<void()> stop_done_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::shared_ptr<HttpSession>> sessions_;
  uint64_t responses_ = 0;
};

}  // namespace kvd
