// HttpServer's listening socket: taking one over (Listen), opening one
// (Bind), and its port. The rest of the server is in http_server.cc.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <fmt/format.h>

#include "http_server.h"

namespace kvd {

namespace asio = boost::asio;
using asio::ip::tcp;
using Protocol = asio::generic::stream_protocol;
using baton::Errc;
using baton::Error;
using boost::system::error_code;

baton::Status HttpServer::Listen(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return baton::ErrnoError(fmt::format("listener fd {}: getsockname", fd), errno);
  }
  int listening = 0;
  socklen_t optlen = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || listening == 0) {
    return Error(Errc::kInvalidArgument, fmt::format("listener fd {} is not a listening socket", fd));
  }
  int type = 0;
  optlen = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) != 0 || type != SOCK_STREAM ||
      (addr.ss_family != AF_INET && addr.ss_family != AF_INET6 && addr.ss_family != AF_UNIX)) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("listener fd {} is not a TCP or Unix stream socket (family {})", fd, addr.ss_family));
  }
  error_code ec;
  acceptor_.assign(Protocol(addr.ss_family, addr.ss_family == AF_UNIX ? 0 : IPPROTO_TCP), fd, ec);
  if (ec) return baton::ErrnoError(fmt::format("listener fd {}", fd), ec.value());
  return {};
}

baton::Status HttpServer::Bind(const std::string& host, uint16_t port) {
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return Error(Errc::kInvalidArgument, fmt::format("bad listen address '{}': {}", host, ec.message()));
  const Protocol::endpoint ep{tcp::endpoint(address, port)};
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return baton::ErrnoError(fmt::format("listen on {}:{}", host, port), ec.value());
  return {};
}

uint16_t HttpServer::port() const {
  error_code ec;
  const auto ep = acceptor_.local_endpoint(ec);
  if (ec) return 0;
  // sin_port and sin6_port sit at the same offset.
  if (ep.protocol().family() == AF_INET || ep.protocol().family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(ep.data())->sin_port);
  }
  return 0;
}

}  // namespace kvd
