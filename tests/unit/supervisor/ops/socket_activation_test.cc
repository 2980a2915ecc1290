#include "supervisor/ops/socket_activation.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "supervisor/ops/libsystemd.h"
#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

// A real listening socket to stand in for one systemd passed.
int ListeningFd(const std::string& spec_text) {
  auto l = Listener::Bind(*ParseListener(spec_text));
  if (!l) return -1;
  return ::dup(l->fd());  // the Listener closes its own copy
}

TEST(SocketActivationTest, MatchesConfiguredNamesAndAdoptsTheSockets) {
  const harness::TempDir tmp("sa");
  const std::string& dir = tmp.path();
  const int tcp = ListeningFd("x=tcp://127.0.0.1:0");
  const int ux = ListeningFd("y=unix:" + dir + "/s.sock");
  ASSERT_GE(tcp, 0);
  ASSERT_GE(ux, 0);
  std::vector<ListenerSpec> configured = {*ParseListener("http=tcp://127.0.0.1:1"), *ParseListener("admin=unix:/x")};
  auto r = MatchActivated(configured, {{"admin", ux}, {"http", tcp}});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].inherited_fd, tcp);
  EXPECT_EQ((*r)[1].inherited_fd, ux);
  EXPECT_EQ((*r)[1].path, dir + "/s.sock");  // described as it really is
  auto adopted = Listener::Bind((*r)[1]);
  ASSERT_TRUE(adopted) << adopted.error().message;
  EXPECT_EQ(adopted->fd(), ux);
  EXPECT_EQ(adopted->Address(), "unix:" + dir + "/s.sock");
  auto tcp_adopted = Listener::Bind((*r)[0]);
  ASSERT_TRUE(tcp_adopted);
  EXPECT_EQ(tcp_adopted->Address().rfind("tcp://127.0.0.1:", 0), 0u);
}

TEST(SocketActivationTest, WithoutConfiguredListenersAdoptsAllByName) {
  const int tcp = ListeningFd("x=tcp://127.0.0.1:0");
  auto r = MatchActivated({}, {{"web", tcp}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "web");
  auto l = Listener::Bind((*r)[0]);
  ASSERT_TRUE(l);
}

TEST(SocketActivationTest, UnknownOrDuplicateNamesAreErrors) {
  const int tcp = ListeningFd("x=tcp://127.0.0.1:0");
  auto unknown = MatchActivated({*ParseListener("http=tcp://127.0.0.1:1")}, {{"htpp", tcp}});
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("socket named 'htpp'"), std::string::npos) << unknown.error().message;
  const int other = ListeningFd("x=tcp://127.0.0.1:0");
  auto twice = MatchActivated({*ParseListener("http=tcp://127.0.0.1:1")}, {{"http", tcp}, {"http", other}});
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("two different sockets named 'http'"), std::string::npos);
  ::close(other);
  // The same socket twice (a .socket unit's fd that was also parked in the
  // FD store) is kept once and the duplicate closed.
  const int dup = ::dup(tcp);
  auto same = MatchActivated({*ParseListener("http=tcp://127.0.0.1:1")}, {{"http", tcp}, {"http", dup}});
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_EQ((*same)[0].inherited_fd, tcp);
  EXPECT_EQ(::fcntl(dup, F_GETFD), -1);  // closed
  ::close(tcp);
}

// ListenDatagram= sockets: a udp:// listener takes a datagram socket, and
// a stream socket for it (or a datagram one for tcp://) is a clear error.
TEST(SocketActivationTest, UdpListenersTakeDatagramSocketsOnly) {
  const int dgram = ListeningFd("x=udp://127.0.0.1:0");
  ASSERT_GE(dgram, 0);
  auto r = MatchActivated({*ParseListener("dns=udp://127.0.0.1:1")}, {{"dns", dgram}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ((*r)[0].kind, ListenerSpec::Kind::kUdp);
  EXPECT_EQ((*r)[0].inherited_fd, dgram);
  auto adopted = Listener::Bind((*r)[0]);
  ASSERT_TRUE(adopted) << adopted.error().message;
  EXPECT_EQ(adopted->fd(), dgram);
  EXPECT_EQ(adopted->Address().rfind("udp://127.0.0.1:", 0), 0u) << adopted->Address();

  const int stream = ListeningFd("x=tcp://127.0.0.1:0");
  auto wrong = MatchActivated({*ParseListener("dns=udp://127.0.0.1:1")}, {{"dns", stream}});
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("stream socket named 'dns'"), std::string::npos) << wrong.error().message;
  EXPECT_NE(wrong.error().message.find("ListenDatagram="), std::string::npos) << wrong.error().message;
  const int dgram2 = ListeningFd("x=udp://127.0.0.1:0");
  auto wrong2 = MatchActivated({*ParseListener("http=tcp://127.0.0.1:1")}, {{"http", dgram2}});
  ASSERT_FALSE(wrong2);
  EXPECT_NE(wrong2.error().message.find("datagram socket named 'http'"), std::string::npos) << wrong2.error().message;
  ::close(stream);
  ::close(dgram2);

  // Not configured, or configured as "systemd": described as it is.
  const int dgram3 = ListeningFd("x=udp://127.0.0.1:0");
  auto all = MatchActivated({}, {{"dns", dgram3}});
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ((*all)[0].kind, ListenerSpec::Kind::kUdp);
  auto l = Listener::Bind((*all)[0]);
  ASSERT_TRUE(l) << l.error().message;
}

TEST(SocketActivationTest, NotAListeningSocketOrMissingActivationIsRefused) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ListenerSpec spec = *ParseListener("http=tcp://127.0.0.1:1");
  spec.inherited_fd = fds[0];
  auto l = Listener::Bind(spec);
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message.find("not a listening socket"), std::string::npos);
  ::close(fds[0]);
  ::close(fds[1]);
  ListenerSpec must = *ParseListener("api=tcp://127.0.0.1:1");
  must.require_inherited = true;
  auto m = Listener::Bind(must);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("configured as \"systemd\""), std::string::npos) << m.error().message;
}

}  // namespace
}  // namespace baton::supervisor

namespace baton::supervisor {
namespace {

TEST(LibsystemdTest, LoadsOnFirstUseWithEveryFunction) {
  auto sd = Libsystemd::Load();
  ASSERT_TRUE(sd) << sd.error().message;
  EXPECT_NE((*sd)->notify, nullptr);
  EXPECT_NE((*sd)->pid_notify_with_fds, nullptr);
  EXPECT_NE((*sd)->listen_fds_with_names, nullptr);
  auto again = Libsystemd::Load();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *sd);  // loaded once
}

TEST(LibsystemdTest, AMissingLibraryIsAClearError) {
  auto sd = Libsystemd::LoadFrom("libbaton-no-such-systemd.so.0");
  ASSERT_FALSE(sd);
  EXPECT_TRUE(sd.error().Is(Errc::kUnavailable));
  EXPECT_NE(sd.error().message.find("libbaton-no-such-systemd.so.0 (Debian package libsystemd0)"), std::string::npos)
      << sd.error().message;
}

TEST(LibsystemdTest, NotSocketActivatedTakesNothing) {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  auto r = TakeActivatedSockets();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->empty());
}

}  // namespace
}  // namespace baton::supervisor
