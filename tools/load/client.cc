#include "tools/load/client.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <optional>
#include <type_traits>
#include <utility>

#include "base/check.h"

namespace baton::load {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// kvd values are small; anything this large is a broken server.
constexpr std::uint64_t kBodyLimit = 64u << 20;

Exchange Failure(const error_code& ec, Stage stage) {
  Exchange ex;
  ex.error = ClassifyTransport(ec, stage);
  ex.stage = stage;
  ex.detail = ec.message();
  return ex;
}

template <class Protocol>
class BasicConnection final : public HttpConnection {
 public:
  using Stream = beast::basic_stream<Protocol, asio::any_io_executor, beast::unlimited_rate_policy>;
  using Endpoint = typename Protocol::endpoint;

  BasicConnection(asio::any_io_executor ex, Endpoint ep, std::string host, bool keep_alive)
      : ex_(std::move(ex)), ep_(std::move(ep)), host_(std::move(host)), keep_alive_(keep_alive) {}

  ~BasicConnection() override { Close(); }

  asio::awaitable<error_code> Connect(TimePoint deadline) override {
    Close();
    stream_.emplace(ex_);
    stream_->expires_at(deadline);
    auto [ec] = co_await stream_->async_connect(ep_, kTuple);
    if (ec) {
      Close();
      co_return ec;
    }
    if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
      error_code ignored;
      stream_->socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    co_return error_code{};
  }

  asio::awaitable<Exchange> RoundTrip(http::verb verb, std::string target, std::string body,
                                      TimePoint deadline) override {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "baton-load");
    if (verb == http::verb::put || verb == http::verb::post || !body.empty()) {
      req.body() = std::move(body);
      req.prepare_payload();
    }
    req.keep_alive(keep_alive_);

    for (int attempt = 0;; ++attempt) {
      // Reusing a connection the server already closed would turn its idle
      // close into a "reset" that no real client would see; check first.
      if (stream_ && !IdleAndOpen()) {
        Close();
        ++server_closed_;
      }
      bool fresh = false;
      if (!stream_) {
        const error_code ec = co_await Connect(deadline);
        if (ec) co_return Failure(ec, Stage::kConnect);
        fresh = true;
        if (keep_alive_ && connected_before_) ++reconnects_;
        connected_before_ = true;
      }
      stream_->expires_at(deadline);
      auto [wec, written] = co_await http::async_write(*stream_, req, kTuple);
      if (wec) {
        Close();
        // The server closed a reused connection before any byte of this
        // request went out: the request never existed for it, retry once.
        if (!fresh && attempt == 0 && written == 0 && IsPeerClosed(wec)) {
          ++server_closed_;
          continue;
        }
        co_return Failure(wec, Stage::kSend);
      }
      http::response_parser<http::string_body> parser;
      parser.body_limit(kBodyLimit);
      auto [rec, read] = co_await http::async_read(*stream_, buffer_, parser, kTuple);
      (void)read;
      if (rec) {
        Close();
        co_return Failure(rec, Stage::kReceive);
      }
      auto res = parser.release();
      Exchange ex;
      ex.status = res.result_int();
      ex.body = std::move(res.body());
      ex.server_closed = !res.keep_alive();
      if (!keep_alive_ || ex.server_closed) {
        // Graceful drain: the server ends the connection at a response
        // boundary; the next request reconnects.
        if (keep_alive_) ++server_closed_;
        Close();
      }
      co_return ex;
    }
  }

  void Close() override {
    if (stream_) {
      error_code ignored;
      stream_->socket().close(ignored);
      stream_.reset();
    }
    buffer_.clear();
  }

  uint64_t Reconnects() const override { return reconnects_; }
  uint64_t ServerCloses() const override { return server_closed_; }

 private:
  // True if the connection is idle and the server has neither closed it nor
  // sent anything unsolicited (both make it unusable for the next request).
  bool IdleAndOpen() {
    if (buffer_.size() != 0) return false;
    auto& sock = stream_->socket();
    if (!sock.is_open()) return false;
    char c;
    const ssize_t n = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    return false;  // 0: orderly close; > 0: unsolicited bytes; < 0: reset
  }

  asio::any_io_executor ex_;
  Endpoint ep_;
  std::string host_;
  bool keep_alive_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
  bool connected_before_ = false;
  uint64_t reconnects_ = 0;
  uint64_t server_closed_ = 0;
};

}  // namespace

std::unique_ptr<HttpConnection> MakeHttpConnection(asio::any_io_executor ex, const Target& target, bool keep_alive) {
  if (target.kind == Target::Kind::kUnix) {
    using Proto = asio::local::stream_protocol;
    return std::make_unique<BasicConnection<Proto>>(std::move(ex), Proto::endpoint(target.path), target.HostHeader(),
                                                    keep_alive);
  }
  error_code ec;
  const auto addr = asio::ip::make_address(target.host, ec);
  BATON_CHECK_MSG(!ec, "Target.host must come from ParseTarget");
  const asio::ip::tcp::endpoint ep(addr, target.port);
  return std::make_unique<BasicConnection<asio::ip::tcp>>(std::move(ex), ep, target.HostHeader(), keep_alive);
}

}  // namespace baton::load
