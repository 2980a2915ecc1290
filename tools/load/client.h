// One HTTP/1.1 client connection to the target (TCP or unix socket), driven
// by C++20 coroutines on the caller's executor. Not thread-safe: one
// coroutine uses a connection at a time. Owns its socket (closed on
// destruction; Asio opens sockets O_CLOEXEC).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "base/clock.h"
#include "tools/load/options.h"
#include "tools/load/outcome.h"

namespace baton::load {

class HttpConnection {
 public:
  virtual ~HttpConnection() = default;

  // Sends one request and reads its response; `deadline` bounds connect,
  // send and receive together. Connects when needed. Keep-alive connections
  // are reused; before reuse an idle connection the server closed is
  // replaced, and a request that failed on a reused connection before any of
  // its bytes were written is retried once on a new one (neither is an
  // error). A response with "Connection: close", a close-mode request or any
  // failure closes the connection.
  virtual boost::asio::awaitable<Exchange> RoundTrip(boost::beast::http::verb verb, std::string target,
                                                     std::string body, TimePoint deadline) = 0;

  // Connects only (used to probe the target before a run).
  virtual boost::asio::awaitable<boost::system::error_code> Connect(TimePoint deadline) = 0;

  virtual void Close() = 0;

  // Keep-alive mode, since creation: connections opened after the first
  // (for whatever reason: the server closed the last one, or it failed).
  virtual uint64_t Reconnects() const = 0;
  // Keep-alive mode, since creation: connections the server ended without
  // an error being counted: a response with "Connection: close", an idle
  // connection found closed before reuse, a reused one closed before the
  // request's first byte went out (see RoundTrip). A close that cost a
  // request is an error (reset), not counted here.
  virtual uint64_t ServerCloses() const = 0;
};

// `target` must come from ParseTarget. `keep_alive` false: send "Connection: close" and use one connection per request.
std::unique_ptr<HttpConnection> MakeHttpConnection(boost::asio::any_io_executor ex, const Target& target,
                                                   bool keep_alive);

}  // namespace baton::load
