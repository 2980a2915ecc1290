#include "tests/unit/load/kv_test_server.h"

#include <fmt/format.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

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
  std::vector<std::string> writes;          // key of revision i + 1; server thread only
  std::set<asio::steady_timer*> watchers;   // waiting for the next write; cancelled on each

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
      res.body() = fmt::format("{{\"status\":\"ok\",\"revision\":{}}}\n", writes.size());
    } else if (target.rfind("/kv/", 0) == 0) {
      const std::string key = target.substr(4);
      if (req.method() == http::verb::put) {
        const uint64_t n = ++owner.puts_;
        if (faults.forget_put != 0 && n == faults.forget_put) {
          ++owner.forgotten_;
        } else {
          data[key] = req.body();
          writes.push_back(key);
          res.body() = fmt::format("{}\n", writes.size());
          for (auto* w : watchers) w->cancel();
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

  // The rest of the connection is one watch response.
  template <class Stream>
  asio::awaitable<void> Watch(Stream& stream, uint64_t from) {
    ++owner.watches_;
    if (from < faults.watch_oldest) {
      const std::string body = fmt::format("{{\"error\":\"compacted\",\"oldest\":{}}}", faults.watch_oldest);
      const std::string gone = fmt::format(
          "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}", body.size(), body);
      auto [ec, n] = co_await asio::async_write(stream, asio::buffer(gone), kTuple);
      (void)ec;
      (void)n;
      co_return;
    }
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";
    asio::steady_timer wake(stream.get_executor());
    watchers.insert(&wake);
    uint64_t next = from;
    uint64_t sent = 0;
    for (;;) {
      for (; next <= writes.size(); ++next) {
        if (next == faults.watch_skip_rev) continue;
        const std::string line = fmt::format("{{\"rev\":{},\"key\":\"{}\",\"value\":\"{}\"}}\n", next, writes[next - 1],
                                             data[writes[next - 1]]);
        // Two chunks per line: the client must join lines across chunks.
        const std::string_view l(line);
        const std::size_t half = l.size() / 2;
        out += fmt::format("{:x}\r\n{}\r\n{:x}\r\n{}\r\n", half, l.substr(0, half), l.size() - half, l.substr(half));
        if (faults.watch_end_after != 0 && ++sent == faults.watch_end_after) {
          out += "0\r\n\r\n";
          break;
        }
      }
      const bool ended = faults.watch_end_after != 0 && sent == faults.watch_end_after;
      if (!out.empty()) {
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(out), kTuple);
        (void)n;
        out.clear();
        if (ec) break;
      }
      if (ended) break;
      wake.expires_at(asio::steady_timer::time_point::max());
      co_await wake.async_wait(kTuple);  // cancelled by the next write
    }
    watchers.erase(&wake);
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
      if (const std::string target(req.target()); target.starts_with("/watch?from=")) {
        const uint64_t from = std::stoull(target.substr(12));
        co_await Watch(stream, from);
        co_return;
      }
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
