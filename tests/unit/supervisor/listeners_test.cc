#include "supervisor/listeners.h"

#include <sys/socket.h>

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
                          "http=tcp://h:port", "http=udp://h:1", "http=unix:"}) {
    auto r = ParseListener(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
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
