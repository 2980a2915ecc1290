#include "supervisor/listeners.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include <gtest/gtest.h>

#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

TEST(ListenersTest, ParsesTcpAndUnix) {
  auto tcp = ParseListener("http=tcp://127.0.0.1:8080");
  ASSERT_TRUE(tcp);
  EXPECT_EQ(tcp->name, "http");
  EXPECT_EQ(tcp->kind, ListenerSpec::Kind::kTcp);
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 8080);
  auto v6 = ParseListener("api=tcp://[::1]:9000");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  auto ux = ParseListener("admin=unix:/run/kvd.sock");
  ASSERT_TRUE(ux);
  EXPECT_EQ(ux->kind, ListenerSpec::Kind::kUnix);
  EXPECT_EQ(ux->path, "/run/kvd.sock");
}

TEST(ListenersTest, BadSpecsNameTheProblem) {
  for (const char* bad : {"http", "=tcp://h:1", "a:b=tcp://h:1", "http=tcp://h", "http=tcp://h:99999",
                          "http=tcp://h:port", "http=sctp://h:1", "http=unix:", "http=tcp://:80", "http=tcp://[::1:80"}) {
    auto r = ParseListener(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
}

TEST(ListenersTest, ParsesUdp) {
  auto v4 = ParseListener("dns=udp://127.0.0.1:5353");
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_EQ(v4->name, "dns");
  EXPECT_EQ(v4->kind, ListenerSpec::Kind::kUdp);
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 5353);
  auto v6 = ParseListener("dns=udp://[::1]:53");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->kind, ListenerSpec::Kind::kUdp);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 53);
  auto any = ParseListener("dns=udp://0.0.0.0:0");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->port, 0);
  auto name = ParseListener("dns=udp://localhost:53");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->host, "localhost");
  EXPECT_STREQ(KindName(ListenerSpec::Kind::kUdp), "udp");
}

// Each bad udp:// spec fails with kInvalidArgument, quoting the spec and
// saying what is wrong.
TEST(ListenersTest, BadUdpSpecsNameTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"dns=udp://127.0.0.1", "no port"},        // missing port
      {"dns=udp://127.0.0.1:", "no port"},       // empty port
      {"dns=udp://[::1]", "no port"},
      {"dns=udp://:53", "no host"},              // missing host
      {"dns=udp://127.0.0.1:dns", "bad port"},   // junk port
      {"dns=udp://127.0.0.1:65536", "bad port"}, // out of range
      {"dns=udp://127.0.0.1:-1", "bad port"},
      {"dns=udp://127.0.0.1:53x", "bad port"},
      {"dns=udp://[::1:53", "bad host '[::1:53'"},  // unbalanced bracket
      {"dns=udp://[::1", "bad host '[::1'"},
      {"dns=udp://[nope]:53", "bad host"},       // brackets around no IPv6 address
      {"dns=udp://ho st:53", "bad host"},        // junk in the host
      {"dns=udp://a/b:53", "bad host"},
      {"dns=udp:/127.0.0.1:53", "unknown scheme"},
      {"dns=udp:127.0.0.1:53", "unknown scheme"},
  };
  for (const auto& [bad, why] : cases) {
    auto r = ParseListener(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << bad << ": " << r.error().message;
  }
}

TEST(ListenersTest, BindsUdpDatagramSocketAndReportsThePortActuallyBound) {
  auto spec = ParseListener("dns=udp://127.0.0.1:0");
  ASSERT_TRUE(spec);
  auto l = Listener::Bind(*spec);
  ASSERT_TRUE(l) << l.error().message;
  int type = 0;
  socklen_t len = sizeof(type);
  ASSERT_EQ(::getsockopt(l->fd(), SOL_SOCKET, SO_TYPE, &type, &len), 0);
  EXPECT_EQ(type, SOCK_DGRAM);
  EXPECT_NE(::fcntl(l->fd(), F_GETFD) & FD_CLOEXEC, 0);
  int reuse = 1;
  len = sizeof(reuse);
  ASSERT_EQ(::getsockopt(l->fd(), SOL_SOCKET, SO_REUSEADDR, &reuse, &len), 0);
  EXPECT_EQ(reuse, 0) << "a second socket could bind the port and take its datagrams";
  EXPECT_EQ(l->Address().rfind("udp://127.0.0.1:", 0), 0u) << l->Address();
  EXPECT_NE(l->Address(), "udp://127.0.0.1:0");
  EXPECT_TRUE(CheckListenerSocket(l->fd(), *spec)) << CheckListenerSocket(l->fd(), *spec).error().message;

  // A datagram to it arrives (nothing connects to a datagram socket).
  sockaddr_in to{};
  len = sizeof(to);
  ASSERT_EQ(::getsockname(l->fd(), reinterpret_cast<sockaddr*>(&to), &len), 0);
  const int c = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::sendto(c, "ping", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 4);
  char buf[8] = {};
  EXPECT_EQ(::recv(l->fd(), buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf), "ping");
  ::close(c);

  // The same port again is a clear error (no SO_REUSEADDR for UDP).
  auto again = ParseListener("dns=" + l->Address());
  ASSERT_TRUE(again);
  auto busy = Listener::Bind(*again);
  ASSERT_FALSE(busy);
  EXPECT_NE(busy.error().message.find("Address already in use"), std::string::npos) << busy.error().message;
  EXPECT_NE(busy.error().message.find("udp://"), std::string::npos) << busy.error().message;
}

TEST(ListenersTest, BindsUdpOnIpv6) {
  auto spec = ParseListener("dns=udp://[::1]:0");
  ASSERT_TRUE(spec);
  auto l = Listener::Bind(*spec);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->Address().rfind("udp://[::1]:", 0), 0u) << l->Address();
}

// Wherever a received or inherited listener is validated: a udp listener
// must be a bound SOCK_DGRAM socket at the configured address, a tcp one a
// listening stream socket; a mismatch names what differs.
TEST(ListenersTest, CheckListenerSocketTellsUdpFromTcpAndWrongAddresses) {
  auto udp_spec = ParseListener("dns=udp://127.0.0.1:0");
  auto tcp_spec = ParseListener("http=tcp://127.0.0.1:0");
  ASSERT_TRUE(udp_spec && tcp_spec);
  auto udp = Listener::Bind(*udp_spec);
  auto tcp = Listener::Bind(*tcp_spec);
  ASSERT_TRUE(udp && tcp);

  auto as_udp = CheckListenerSocket(tcp->fd(), *udp_spec);
  ASSERT_FALSE(as_udp);
  EXPECT_TRUE(as_udp.error().Is(Errc::kFailedPrecondition));
  EXPECT_NE(as_udp.error().message.find("listener dns (udp)"), std::string::npos) << as_udp.error().message;
  EXPECT_NE(as_udp.error().message.find("not a datagram"), std::string::npos) << as_udp.error().message;

  auto as_tcp = CheckListenerSocket(udp->fd(), *tcp_spec);
  ASSERT_FALSE(as_tcp);
  EXPECT_NE(as_tcp.error().message.find("is a datagram socket"), std::string::npos) << as_tcp.error().message;

  // The configured port, and the configured host, are checked.
  auto exact = ParseListener("dns=" + udp->Address());
  ASSERT_TRUE(exact);
  EXPECT_TRUE(CheckListenerSocket(udp->fd(), *exact));
  ListenerSpec other_port = *exact;
  other_port.port = exact->port == 65535 ? 65534 : exact->port + 1;
  auto wrong_port = CheckListenerSocket(udp->fd(), other_port);
  ASSERT_FALSE(wrong_port);
  EXPECT_NE(wrong_port.error().message.find("is bound to " + udp->Address()), std::string::npos)
      << wrong_port.error().message;
  ListenerSpec other_host = *exact;
  other_host.host = "127.0.0.2";
  EXPECT_FALSE(CheckListenerSocket(udp->fd(), other_host));
  // A socket systemd bound is taken wherever it is bound.
  other_port.inherited_fd = udp->fd();
  EXPECT_TRUE(CheckListenerSocket(udp->fd(), other_port));

  // A connected datagram socket is no listener.
  const int connected = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  socklen_t len = sizeof(to);
  ASSERT_EQ(::getsockname(udp->fd(), reinterpret_cast<sockaddr*>(&to), &len), 0);
  ASSERT_EQ(::connect(connected, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  ListenerSpec any = *udp_spec;
  auto conn = CheckListenerSocket(connected, any);
  ASSERT_FALSE(conn);
  EXPECT_NE(conn.error().message.find("connected"), std::string::npos) << conn.error().message;
  ::close(connected);
  // Nor is an unbound one.
  const int unbound = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  EXPECT_FALSE(CheckListenerSocket(unbound, any));
  ::close(unbound);
}

TEST(ListenersTest, BindsListensAndReportsThePortActuallyBound) {
  auto spec = ParseListener("http=tcp://127.0.0.1:0");
  ASSERT_TRUE(spec);
  auto l = Listener::Bind(*spec);
  ASSERT_TRUE(l) << l.error().message;
  int listening = 0;
  socklen_t len = sizeof(listening);
  ASSERT_EQ(::getsockopt(l->fd(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
  EXPECT_EQ(listening, 1);
  EXPECT_EQ(l->Address().rfind("tcp://127.0.0.1:", 0), 0u);
  EXPECT_NE(l->Address(), "tcp://127.0.0.1:0");
  // The same port again is a clear error.
  auto again = ParseListener("http=" + l->Address());
  ASSERT_TRUE(again);
  auto busy = Listener::Bind(*again);
  ASSERT_FALSE(busy);
  EXPECT_NE(busy.error().message.find("Address already in use"), std::string::npos) << busy.error().message;
}

TEST(ListenersTest, BindsUnixSockets) {
  const baton::harness::TempDir tmp("ls");
  const std::string& dir = tmp.path();
  auto spec = ParseListener("admin=unix:" + dir + "/s.sock");
  ASSERT_TRUE(spec);
  auto l = Listener::Bind(*spec);
  ASSERT_TRUE(l) << l.error().message;
  EXPECT_EQ(l->Address(), "unix:" + dir + "/s.sock");
}

}  // namespace
}  // namespace baton::supervisor
