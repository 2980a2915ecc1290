#include "http_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <optional>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <fmt/format.h>

#include "log.h"

namespace kvd {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;
using Protocol = asio::generic::stream_protocol;
using baton::Errc;
using baton::Error;
using boost::system::error_code;

// Beast's default header limit.
constexpr size_t kMaxHeaderBytes = 8192;

// One connection. Owned by the server's map and by every pending handler.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  enum class State { kIdle, kReading, kProcessing, kWriting, kLingering, kClosed };

  HttpSession(HttpServer& server, uint64_t id, Protocol::socket socket)
      : server_(server), id_(id), socket_(std::move(socket)), timer_(socket_.get_executor()) {}

  State state() const { return state_; }
  void Start() { WaitForRequest(); }

  // Handover: between requests, or before a request's header is complete
  // (every byte of it is still raw in buffer_, see ReadRequest).
  bool HandOverable() const {
    return state_ == State::kIdle || (state_ == State::kReading && header_pending_);
  }
  // Gives up the connection without closing it: its fd and unread bytes.
  HandedConnection Release() {
    HandedConnection c;
    c.unread = boost::beast::buffers_to_string(buffer_.data());
    state_ = State::kClosed;  // the cancelled handlers see this and return
    error_code ec;
    timer_.cancel();
    c.fd = socket_.release(ec);
    if (ec) c.fd = -1;
    server_.Forget(id_);
    return c;
  }
  // Handed over to us: what the previous generation read but did not process.
  void Prefill(const std::string& bytes) {
    auto b = buffer_.prepare(bytes.size());
    asio::buffer_copy(b, asio::buffer(bytes));
    buffer_.commit(bytes.size());
  }

  // Drain, idle deadline: close unless a request has begun to arrive.
  void CloseIfIdle() {
    if (state_ == State::kIdle && !RequestBytesWaiting()) CloseNow();
  }
  // Drain, hard deadline.
  void CloseUnlessProcessing() {
    if (state_ != State::kProcessing && state_ != State::kLingering) CloseNow();
  }

  void CloseNow() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    error_code ignored;
    timer_.cancel();
    socket_.close(ignored);
    server_.Forget(id_);  // may drop the map's reference; callers hold their own
    server_.CheckDrained();
  }

 private:
  bool RequestBytesWaiting() {
    error_code ec;
    return buffer_.size() > 0 || socket_.available(ec) > 0;
  }

  void WaitForRequest() {
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

  void ReadRequest() {
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

  bool HeaderBuffered() const {
    const auto d = buffer_.data();
    const std::string_view v(static_cast<const char*>(d.data()), d.size());
    // Past the parser's header limit the parser reports the error.
    return v.find("\r\n\r\n") != std::string_view::npos || v.size() >= kMaxHeaderBytes;
  }

  // Readiness, then a non-blocking recv committed at once: a read that
  // completed but whose handler had not run yet would lose its bytes if
  // the connection were released for a handover meanwhile.
  void ReadMoreHeader() {
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

  static bool IsExpectContinue(const Request& req) {
    auto it = req.find(http::field::expect);
    return it != req.end() && boost::beast::iequals(it->value(), "100-continue");
  }

  void ReadBody(error_code ec) {
    if (state_ != State::kReading) return;
    if (ec || parser_->is_done()) {
      OnRequest(ec);
      return;
    }
    http::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](error_code read_ec, size_t) {
      self->OnRequest(read_ec);
    });
  }

  void OnRequest(error_code ec) {
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
    server_.handler_(std::move(req), [weak](Response res) {
      if (auto self = weak.lock()) self->OnResponse(std::move(res));
    });
  }

  void OnResponse(Response res) {
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

  void OnWritten(error_code ec) {
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
  void Linger() {
    state_ = State::kLingering;
    error_code ignored;
    socket_.shutdown(Protocol::socket::shutdown_send, ignored);
    timer_.expires_after(server_.opts_.linger);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->CloseNow();
    });
    Discard();
  }

  void Discard() {
    socket_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](error_code ec, size_t) {
      if (self->state_ != State::kLingering) return;
      if (ec) {
        self->CloseNow();
      } else {
        self->Discard();
      }
    });
  }

  HttpServer& server_;
  const uint64_t id_;
  Protocol::socket socket_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<Response> res_;
  std::array<char, 1024> discard_{};
  State state_ = State::kIdle;
  bool keep_alive_ = true;
  bool close_after_ = false;
  bool header_pending_ = false;  // reading: the header is not complete yet
  unsigned version_ = 11;
};

HttpServer::HttpServer(asio::io_context& io, Handler handler, baton::LogSink& log, HttpOptions options)
    : handler_(std::move(handler)),
      log_(log),
      opts_(options),
      acceptor_(io),
      accept_retry_(io),
      idle_deadline_(io),
      hard_deadline_(io),
      stop_timer_(io) {}

HttpServer::~HttpServer() = default;

void HttpServer::StartAccepting() {
  draining_ = false;
  handover_ = false;
  handover_done_ = nullptr;
  idle_expired_ = false;
  past_deadline_ = false;
  drain_done_ = nullptr;
  idle_deadline_.cancel();
  hard_deadline_.cancel();
  accepting_ = true;
  if (!accept_pending_) DoAccept();
}

void HttpServer::StopAccepting() {
  accepting_ = false;
  accept_retry_.cancel();
  error_code ignored;
  // cancel(), never close() or shutdown(): the listening socket is shared.
  if (accept_pending_) acceptor_.cancel(ignored);
}

void HttpServer::DoAccept() {
  accept_pending_ = true;
  acceptor_.async_accept([this](error_code ec, Protocol::socket socket) {
    accept_pending_ = false;
    if (!ec) {
      // Served even if we stopped accepting meanwhile: the client is already
      // connected, and closing it would be a reset.
      const uint64_t id = next_id_++;
      auto session = std::make_shared<HttpSession>(*this, id, std::move(socket));
      sessions_.emplace(id, session);
      session->Start();
    }
    if (!accepting_) return;
    if (!ec || ec == asio::error::operation_aborted) {
      DoAccept();
      return;
    }
    // EMFILE and friends: back off instead of spinning.
    log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.http.accept_failed", "accept: {}", ec.message()));
    accept_retry_.expires_after(std::chrono::milliseconds(100));
    accept_retry_.async_wait([this](error_code timer_ec) {
      if (!timer_ec && accepting_ && !accept_pending_) DoAccept();
    });
  });
}

std::chrono::milliseconds HttpServer::IdleWait(std::chrono::milliseconds deadline) const {
  // Leave a little of the deadline for requests that start arriving late.
  const auto margin = std::min(std::chrono::milliseconds(1000), deadline / 10);
  auto idle = deadline - margin;
  if (opts_.idle_wait.count() > 0) idle = std::min(idle, opts_.idle_wait);
  return idle;
}

void HttpServer::Drain(std::chrono::milliseconds deadline, std::function<void()> done) {
  StartDrain(deadline, IdleWait(deadline), std::move(done));
}

void HttpServer::StartDrain(std::chrono::milliseconds deadline, std::chrono::milliseconds idle,
                            std::function<void()> done) {
  StopAccepting();
  draining_ = true;
  drain_done_ = std::move(done);
  idle_deadline_.expires_after(idle);
  idle_deadline_.async_wait([this](error_code ec) {
    if (!ec) OnIdleDeadline();
  });
  hard_deadline_.expires_after(deadline);
  hard_deadline_.async_wait([this](error_code ec) {
    if (!ec) OnHardDeadline();
  });
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.http.drain", "draining {} sessions, deadline {} ms",
                             sessions_.size(), deadline.count())
                .With("sessions", uint64_t{sessions_.size()}));
  CheckDrained();
}

void HttpServer::DrainForHandover(std::chrono::milliseconds deadline,
                                  std::function<void(std::vector<HandedConnection>)> done) {
  handover_ = true;
  handover_done_ = std::move(done);
  // Idle connections wait for the hard deadline: they are handed over long before.
  StartDrain(deadline, deadline, [this] { FinishHandover(); });
}

void HttpServer::FinishHandover() {
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  std::vector<HandedConnection> out;
  uint64_t unread = 0;
  for (auto& s : all) {
    if (!s->HandOverable()) continue;
    HandedConnection c = s->Release();
    unread += c.unread.size();
    if (c.fd >= 0) out.push_back(std::move(c));
  }
  handover_ = false;
  auto done = std::move(handover_done_);
  handover_done_ = nullptr;
  log_.Emit(kvd::MakeEvent(baton::Level::kInfo, "kvd.http.handover",
                           "{} connections released for handover, {} bytes read but not processed", out.size(), unread)
                .With("connections", uint64_t{out.size()})
                .With("unread_bytes", unread));
  done(std::move(out));
}

baton::Status HttpServer::Adopt(int fd, const std::string& unread) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int err = errno;
    ::close(fd);
    return baton::ErrnoError("adopt: getsockname", err);
  }
  Protocol::socket socket(acceptor_.get_executor());
  error_code ec;
  socket.assign(Protocol(addr.ss_family, addr.ss_family == AF_UNIX ? 0 : IPPROTO_TCP), fd, ec);
  if (ec) {
    ::close(fd);
    return baton::ErrnoError("adopt", ec.value());
  }
  const uint64_t id = next_id_++;
  auto session = std::make_shared<HttpSession>(*this, id, std::move(socket));
  session->Prefill(unread);
  sessions_.emplace(id, session);
  session->Start();
  return {};
}

void HttpServer::OnIdleDeadline() {
  idle_expired_ = true;
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (auto& s : all) s->CloseIfIdle();
}

void HttpServer::OnHardDeadline() {
  idle_expired_ = true;
  past_deadline_ = true;
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  size_t closed = 0;
  for (auto& s : all) {
    if (s->state() != HttpSession::State::kProcessing && s->state() != HttpSession::State::kLingering) ++closed;
    s->CloseUnlessProcessing();
  }
  if (closed > 0) {
    log_.Emit(kvd::MakeEvent(baton::Level::kWarn, "kvd.http.drain_deadline",
                               "drain deadline: closed {} sessions still reading or writing", closed)
                  .With("closed", uint64_t{closed}));
  }
}

void HttpServer::CheckDrained() {
  if (!draining_ || !drain_done_) return;
  for (auto& [id, s] : sessions_) {
    if (handover_ && s->HandOverable()) continue;
    if (s->state() != HttpSession::State::kLingering && s->state() != HttpSession::State::kClosed) return;
  }
  idle_deadline_.cancel();
  hard_deadline_.cancel();
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  done();
}

void HttpServer::Forget(uint64_t id) {
  sessions_.erase(id);
  CheckStopped();
}

void HttpServer::Stop(std::chrono::milliseconds grace, std::function<void()> done) {
  stop_done_ = std::move(done);
  stop_timer_.expires_after(grace + opts_.linger);
  stop_timer_.async_wait([this](error_code ec) {
    if (ec || !stop_done_) return;
    auto d = std::move(stop_done_);
    stop_done_ = nullptr;
    Shutdown();
    d();
  });
  // As gentle as a handoff's drain: an idle keep-alive connection gets the
  // idle wait to send its next request (answered with Connection: close)
  // rather than being closed under a request already on its way, which the
  // client would see as a reset.
  StartDrain(grace, IdleWait(grace), [this] { CheckStopped(); });
}

void HttpServer::CheckStopped() {
  if (!stop_done_ || drain_done_ || !sessions_.empty()) return;
  auto d = std::move(stop_done_);  // first: Shutdown comes back here through Forget
  stop_done_ = nullptr;
  stop_timer_.cancel();
  Shutdown();
  d();
}

void HttpServer::Shutdown() {
  StopAccepting();
  idle_deadline_.cancel();
  hard_deadline_.cancel();
  drain_done_ = nullptr;
  std::vector<std::shared_ptr<HttpSession>> all;
  for (auto& [id, s] : sessions_) all.push_back(s);
  for (auto& s : all) s->CloseNow();
  sessions_.clear();
  error_code ignored;
  acceptor_.close(ignored);
}

}  // namespace kvd
