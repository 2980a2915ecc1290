#include "supervisor/ops/metrics_http.h"

#include <sys/socket.h>

#include <charconv>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace baton::supervisor {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::function<std::string()> render)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), render_(std::move(render)) {}

  void Start() {
    timer_.expires_after(std::chrono::seconds(10));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);
      }
    });
    http::async_read(socket_, buf_, req_, [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
      if (ec) {
        self->timer_.cancel();
        return;
      }
      self->Respond();
    });
  }

 private:
  void Respond() {
    res_.version(req_.version());
    res_.keep_alive(false);
    const std::string target(req_.target());
    if (req_.method() == http::verb::get && (target == "/metrics" || target.rfind("/metrics?", 0) == 0)) {
      res_.result(http::status::ok);
      res_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res_.body() = render_();
    } else {
      res_.result(http::status::not_found);
      res_.set(http::field::content_type, "text/plain");
      res_.body() = "only GET /metrics is served here\n";
    }
    res_.prepare_payload();
    http::async_write(socket_, res_, [self = shared_from_this()](const boost::system::error_code&, size_t) {
      boost::system::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
      self->socket_.close(ignored);
      self->timer_.cancel();
    });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::function<std::string()> render_;
  boost::beast::flat_buffer buf_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

class Server final : public MetricsHttpServer {
 public:
  Server(asio::io_context& io, std::function<std::string()> render) : acceptor_(io), render_(std::move(render)) {}

  Status Listen(const tcp::endpoint& ep) {
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error(Errc::kInvalidArgument, fmt::format("--metrics-listen {}: {}", Describe(ep), ec.message()));
    Accept();
    return {};
  }
  Status Assign(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
      return Error(Errc::kFailedPrecondition, fmt::format("metrics listener fd {}: not a TCP socket", fd));
    }
    boost::system::error_code ec;
    acceptor_.assign(ss.ss_family == AF_INET ? tcp::v4() : tcp::v6(), fd, ec);
    if (ec) return Error(Errc::kFailedPrecondition, fmt::format("metrics listener fd {}: {}", fd, ec.message()));
    Accept();
    return {};
  }
  int native_handle() override { return acceptor_.native_handle(); }
  std::string Address() const override {
    boost::system::error_code ec;
    return Describe(acceptor_.local_endpoint(ec));
  }

 private:
  static std::string Describe(const tcp::endpoint& ep) {
    return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                                : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  }
  void Accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Session>(std::move(socket), render_)->Start();
      Accept();
    });
  }

  tcp::acceptor acceptor_;
  std::function<std::string()> render_;
};

}  // namespace

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Adopt(asio::io_context& io, int fd,
                                                                    std::function<std::string()> render) {
  auto server = std::make_unique<Server>(io, std::move(render));
  if (auto st = server->Assign(fd); !st) return st.error();
  return std::unique_ptr<MetricsHttpServer>(std::move(server));
}

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(asio::io_context& io, const std::string& listen,
                                                                    std::function<std::string()> render) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Error(Errc::kInvalidArgument, fmt::format("--metrics-listen '{}': expected HOST:PORT", listen));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = listen.substr(colon + 1);
  int port = -1;
  auto [ptr, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (err != std::errc() || ptr != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    return Error(Errc::kInvalidArgument, fmt::format("--metrics-listen '{}': bad port '{}'", listen, port_text));
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("--metrics-listen '{}': '{}' is not an IP address", listen, host));
  }
  auto server = std::make_unique<Server>(io, std::move(render));
  if (auto st = server->Listen(tcp::endpoint(addr, static_cast<unsigned short>(port))); !st) return st.error();
  return std::unique_ptr<MetricsHttpServer>(std::move(server));
}

}  // namespace baton::supervisor
