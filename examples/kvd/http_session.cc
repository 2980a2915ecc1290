#include "http_session.h"

#include <sys/socket.h>

#include <cerrno>
#include <string_view>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/string.hpp>
#include <fmt/format.h>

namespace kvd {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Protocol = asio::generic::stream_protocol;
using boost::system::error_code;

// Beast's default header limit.
constexpr size_t kMaxHeaderBytes = 8192;

HandedConnection HttpSession::Release() {
  HandedConnection c;
  if (stream_) {
    // Between two chunks: the source is exactly at what was written. The
    // connection is not reused after a stream, so nothing read counts.
    c.stream = stream_->HandoverState();
    stream_->CancelWait();
  } else {
    c.unread = boost::beast::buffers_to_string(buffer_.data());
  }
  state_ = State::kClosed;  // the cancelled handlers see this and return
  error_code ec;
  timer_.cancel();
  c.fd = socket_.release(ec);
  if (ec) c.fd = -1;
  server_.Forget(id_);
  return c;
}

void HttpSession::Prefill(const std::string& bytes) {
  auto b = buffer_.prepare(bytes.size());
  asio::buffer_copy(b, asio::buffer(bytes));
  buffer_.commit(bytes.size());
}

void HttpSession::CloseIfIdle() {
  if (state_ == State::kIdle && !RequestBytesWaiting()) CloseNow();
}

void HttpSession::CloseUnlessProcessing() {
  if (state_ != State::kProcessing && state_ != State::kLingering) CloseNow();
}

void HttpSession::CloseNow() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (stream_) stream_->CancelWait();
  error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
  server_.Forget(id_);  // may drop the map's reference; callers hold their own
  server_.CheckDrained();
}

bool HttpSession::RequestBytesWaiting() {
  error_code ec;
  return buffer_.size() > 0 || socket_.available(ec) > 0;
}

void HttpSession::WaitForRequest() {
  if (server_.idle_expired_ && !RequestBytesWaiting()) {
    CloseNow();
    return;
  }
  if (buffer_.size() > 0) {  // a pipelined request is already here
    ReadRequest();
    return;
  }
  state_ = State::kIdle;
  socket_.async_wait(Protocol::socket::wait_read, [self = shared_from_this()](error_code ec) {
    if (self->state_ != State::kIdle) return;
    if (ec) {
      self->CloseNow();
      return;
    }
    self->ReadRequest();
  });
}

void HttpSession::ReadRequest() {
  state_ = State::kReading;
  // Until a request's header is complete its bytes stay raw in buffer_
  // (Beast's parser would consume the request line early), so the
  // connection can still be handed over with everything unprocessed.
  header_pending_ = !HeaderBuffered();
  if (header_pending_) {
    ReadMoreHeader();
    return;
  }
  parser_.emplace();
  parser_->body_limit(server_.opts_.body_limit);
  http::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, size_t) {
    if (self->state_ != State::kReading) return;
    if (ec || !IsExpectContinue(self->parser_->get())) {
      self->ReadBody(ec);
      return;
    }
    // curl and others wait for this before sending a larger body.
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    asio::async_write(self->socket_, asio::buffer(kContinue),
                      [self](error_code write_ec, size_t) { self->ReadBody(write_ec); });
  });
}

bool HttpSession::HeaderBuffered() const {
  const auto d = buffer_.data();
  const std::string_view v(static_cast<const char*>(d.data()), d.size());
  // Past the parser's header limit the parser reports the error.
  return v.find("\r\n\r\n") != std::string_view::npos || v.size() >= kMaxHeaderBytes;
}

// Readiness, then a non-blocking recv committed at once: a read that
// completed but whose handler had not run yet would lose its bytes if
// the connection were released for a handover meanwhile.
void HttpSession::ReadMoreHeader() {
  socket_.async_wait(Protocol::socket::wait_read, [self = shared_from_this()](error_code ec) {
    if (self->state_ != State::kReading) return;
    if (ec) {
      self->CloseNow();
      return;
    }
    auto space = self->buffer_.prepare(4096);
    const ssize_t n = ::recv(self->socket_.native_handle(), space.data(), space.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      self->ReadMoreHeader();
      return;
    }
    if (n <= 0) {  // the client went away, between requests or in the middle of one
      self->CloseNow();
      return;
    }
    self->buffer_.commit(static_cast<size_t>(n));
    self->ReadRequest();
  });
}

bool HttpSession::IsExpectContinue(const Request& req) {
  auto it = req.find(http::field::expect);
  return it != req.end() && boost::beast::iequals(it->value(), "100-continue");
}

void HttpSession::ReadBody(error_code ec) {
  if (state_ != State::kReading) return;
  if (ec || parser_->is_done()) {
    OnRequest(ec);
    return;
  }
  http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](error_code read_ec, size_t) {
    self->OnRequest(read_ec);
  });
}

void HttpSession::OnRequest(error_code ec) {
  if (state_ != State::kReading) return;
  if (ec) {
    const bool malformed = ec.category() == http::make_error_code(http::error::bad_target).category() &&
                           ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (!malformed) {  // the client went away (cleanly between requests, or mid-request)
      CloseNow();
      return;
    }
    // Answer a malformed request, then close: the next one cannot be found.
    state_ = State::kProcessing;
    keep_alive_ = false;
    version_ = 11;
    Response res{ec == http::error::body_limit ? http::status::payload_too_large : http::status::bad_request, 11};
    res.body() = ec.message() + "\n";
    OnResponse(std::move(res));
    return;
  }
  state_ = State::kProcessing;
  Request req = parser_->release();
  keep_alive_ = req.keep_alive();
  version_ = req.version();
  std::weak_ptr<HttpSession> weak = shared_from_this();
  server_.handler_(std::move(req), Respond(
                                       [weak](Response res) {
                                         if (auto self = weak.lock()) self->OnResponse(std::move(res));
                                       },
                                       [weak](Response head, std::shared_ptr<ChunkSource> source) {
                                         if (auto self = weak.lock()) self->OnStream(std::move(head), std::move(source));
                                       }));
}

void HttpSession::OnResponse(Response res) {
  if (state_ != State::kProcessing) return;  // closed meanwhile
  // Decided now, not when the request arrived: a drain that started while
  // the handler ran still turns this into the connection's last response.
  close_after_ = !keep_alive_ || (server_.draining_ && !server_.handover_);
  res.version(version_);
  res.keep_alive(!close_after_);
  res.prepare_payload();
  res_.emplace(std::move(res));
  state_ = State::kWriting;
  if (server_.past_deadline_) {
    timer_.expires_after(server_.opts_.write_guard);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec && self->state_ == State::kWriting) self->CloseNow();
    });
  }
  http::async_write(socket_, *res_, [self = shared_from_this()](error_code ec, size_t) { self->OnWritten(ec); });
}

void HttpSession::OnWritten(error_code ec) {
  if (state_ != State::kWriting) return;
  timer_.cancel();
  res_.reset();
  if (ec) {
    CloseNow();
    return;
  }
  ++server_.responses_;
  if (close_after_) {
    Linger();
  } else {
    WaitForRequest();
  }
  server_.CheckDrained();
}

// Lingering close: FIN first, then read and drop whatever the client still
// sends until it closes too. Closing with unread input would send a reset,
// and a reset can make the client discard the response it has not read yet.
void HttpSession::Linger() {
  state_ = State::kLingering;
  error_code ignored;
  socket_.shutdown(Protocol::socket::shutdown_send, ignored);
  timer_.expires_after(server_.opts_.linger);
  timer_.async_wait([self = shared_from_this()](error_code ec) {
    if (!ec) self->CloseNow();
  });
  Discard();
}

void HttpSession::Discard() {
  socket_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](error_code ec, size_t) {
    if (self->state_ != State::kLingering) return;
    if (ec) {
      self->CloseNow();
    } else {
      self->Discard();
    }
  });
}

// ---- streaming responses ----

namespace {
constexpr std::string_view kLastChunk = "0\r\n\r\n";

void AppendChunk(std::string& out, std::string_view payload) {
  fmt::format_to(std::back_inserter(out), "{:x}\r\n", payload.size());
  out.append(payload);
  out += "\r\n";
}
}  // namespace

void HttpSession::OnStream(Response head, std::shared_ptr<ChunkSource> source) {
  if (state_ != State::kProcessing) return;  // closed meanwhile
  if (version_ < 11) {  // no chunked encoding: the handler should not have streamed
    Response res{http::status::http_version_not_supported, version_};
    res.body() = "streaming needs HTTP/1.1\n";
    keep_alive_ = false;
    OnResponse(std::move(res));
    return;
  }
  // The head, written by hand: Beast's serializer would own the body too.
  std::string out = fmt::format("HTTP/1.1 {} {}\r\n", head.result_int(), std::string_view(head.reason()));
  head.erase(http::field::content_length);
  head.erase(http::field::transfer_encoding);
  for (const auto& f : head) {
    fmt::format_to(std::back_inserter(out), "{}: {}\r\n", std::string_view(f.name_string()),
                   std::string_view(f.value()));
  }
  out += "Transfer-Encoding: chunked\r\n\r\n";
  stream_out_ = std::move(out);
  StartStream(std::move(source));
}

void HttpSession::ContinueStream(std::shared_ptr<ChunkSource> source) {
  stream_out_.clear();
  StartStream(std::move(source));
}

void HttpSession::StartStream(std::shared_ptr<ChunkSource> source) {
  state_ = State::kStreaming;
  stream_ = std::move(source);
  WatchForClose();
  Pump();
}

void HttpSession::OnDrain() {
  if (state_ == State::kStreaming && !stream_writing_) Pump();
}

// Writes whatever the source has, one write at a time; with nothing to
// write, waits for the source (a chunk boundary: CheckDrained may hand the
// connection over now).
void HttpSession::Pump() {
  if (state_ != State::kStreaming || stream_writing_) return;
  std::string payload;
  bool end = stream_->Next(payload);
  if (server_.draining_ && !server_.handover_) end = true;  // a drain without handover ends streams
  if (!payload.empty()) AppendChunk(stream_out_, payload);
  if (end) stream_out_ += kLastChunk;
  if (stream_out_.empty()) {
    std::weak_ptr<HttpSession> weak = shared_from_this();
    stream_->Wait([weak, ex = socket_.get_executor()] {
      asio::post(ex, [weak] {
        if (auto self = weak.lock()) self->Pump();
      });
    });
    server_.CheckDrained();
    return;
  }
  stream_writing_ = true;
  stream_ending_ = end;
  asio::async_write(socket_, asio::buffer(stream_out_),
                    [self = shared_from_this()](error_code ec, size_t) { self->OnStreamWritten(ec); });
}

void HttpSession::OnStreamWritten(error_code ec) {
  stream_writing_ = false;
  stream_out_.clear();
  if (state_ != State::kStreaming) return;
  if (ec) {
    CloseNow();
    return;
  }
  if (stream_ending_) {
    ++server_.responses_;
    stream_->CancelWait();
    Linger();
    server_.CheckDrained();
    return;
  }
  Pump();
}

// A watcher sends nothing; readable means it closed (or sent bytes, which
// stay in the socket: peeked, never read, so nothing is lost for a handover).
void HttpSession::WatchForClose() {
  socket_.async_wait(Protocol::socket::wait_read, [self = shared_from_this()](error_code ec) {
    if (self->state_ != State::kStreaming || ec) return;
    char c;
    const ssize_t n = ::recv(self->socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      self->CloseNow();
    } else if (n < 0) {
      self->WatchForClose();
    }
  });
}

}  // namespace kvd
