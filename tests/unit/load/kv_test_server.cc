#include "tests/unit/load/kv_test_server.h"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <utility>

namespace baton::load::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

struct KvTestServer::Impl {
  KvTestServer& owner;
  KvFaults faults;
  std::string unix_path;
  asio::io_context ioc;
  std::optional<asio::ip::tcp::acceptor> tcp_acceptor;
  std::optional<asio::local::stream_protocol::acceptor> unix_acceptor;
  std::map<std::string, std::string> data;  // server thread only

  Impl(KvTestServer& o, KvFaults f, std::string path) : owner(o), faults(f), unix_path(std::move(path)) {}

  template <class Acceptor>
  asio::awaitable<void> AcceptLoop(Acceptor& acceptor) {
    using Protocol = typename Acceptor::protocol_type;
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(kTuple);
      if (ec) co_return;
      asio::co_spawn(ioc, Session<Protocol>(typename Protocol::socket(std::move(sock))), asio::detached);
    }
  }

  http::response<http::string_body> Handle(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    const std::string target(req.target());
    if (target == "/healthz") {
      res.body() = "ok";
    } else if (target.rfind("/kv/", 0) == 0) {
      const std::string key = target.substr(4);
      if (req.method() == http::verb::put) {
        const uint64_t n = ++owner.puts_;
        if (faults.forget_put != 0 && n == faults.forget_put) {
          ++owner.forgotten_;
        } else {
          data[key] = req.body();
        }
      } else if (req.method() == http::verb::get) {
        auto it = data.find(key);
        if (it == data.end()) {
          res.result(http::status::not_found);
        } else {
          res.body() = it->second;
        }
      } else {
        res.result(http::status::method_not_allowed);
      }
    } else {
      res.result(http::status::not_found);
    }
    return res;
  }

  template <class Protocol>
  asio::awaitable<void> Session(typename Protocol::socket sock) {
    beast::basic_stream<Protocol, asio::any_io_executor, beast::unlimited_rate_policy> stream(std::move(sock));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      if (faults.idle_close_ms > 0) {
        stream.expires_after(std::chrono::milliseconds(faults.idle_close_ms));
      } else {
        stream.expires_never();
      }
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, kTuple);
      (void)n;
      if (ec) {
        // On timeout beast closed the socket: an idle close with no header.
        if (ec == beast::error::timeout && !parser.got_some()) ++owner.idle_closes_;
        co_return;
      }
      stream.expires_never();
      const uint64_t nreq = ++owner.requests_;
      if (faults.drop_request != 0 && nreq == faults.drop_request) {
        ++owner.dropped_;
        co_return;  // the stream's destructor closes the socket, no response
      }
      const auto req = parser.release();
      auto res = Handle(req);
      const uint64_t nres = ++owner.responses_;
      const bool close_now = faults.close_every != 0 && nres % faults.close_every == 0;
      const bool close = !req.keep_alive() || close_now;
      if (close && req.keep_alive()) ++owner.closes_sent_;
      res.keep_alive(!close);
      res.prepare_payload();
      auto [wec, written] = co_await http::async_write(stream, res, kTuple);
      (void)written;
      if (wec || close) {
        boost::system::error_code ignored;
        stream.socket().shutdown(Protocol::socket::shutdown_send, ignored);
        co_return;
      }
    }
  }
};

std::unique_ptr<KvTestServer> KvTestServer::Start(KvFaults faults, std::string unix_path) {
  std::unique_ptr<KvTestServer> s(new KvTestServer());
  s->impl_ = std::make_unique<Impl>(*s, faults, unix_path);
  Impl& impl = *s->impl_;
  boost::system::error_code ec;
  if (unix_path.empty()) {
    auto& acc = impl.tcp_acceptor.emplace(impl.ioc);
    const asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return nullptr;
    s->url_ = "http://127.0.0.1:" + std::to_string(acc.local_endpoint().port());
    asio::co_spawn(impl.ioc, impl.AcceptLoop(acc), asio::detached);
  } else {
    ::unlink(unix_path.c_str());
    auto& acc = impl.unix_acceptor.emplace(impl.ioc);
    const asio::local::stream_protocol::endpoint ep(unix_path);
    acc.open(ep.protocol(), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return nullptr;
    s->url_ = "unix:" + unix_path;
    asio::co_spawn(impl.ioc, impl.AcceptLoop(acc), asio::detached);
  }
  s->thread_ = std::thread([&impl] { impl.ioc.run(); });
  return s;
}

KvTestServer::~KvTestServer() {
  if (impl_) {
    impl_->ioc.stop();
    if (thread_.joinable()) thread_.join();
    if (!impl_->unix_path.empty()) ::unlink(impl_->unix_path.c_str());
    impl_.reset();
  }
}

}  // namespace baton::load::test
