// kvd over HTTP in-process: the routes, group commit, and a drain + handoff
// to a successor on the same listening socket while clients keep talking.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <future>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/kvd/kvd_test_util.h"

namespace kvd {
namespace {

namespace http = boost::beast::http;
using testing::Client;
using testing::Eventually;
using testing::Instance;
using testing::TempDir;

// What the supervisor holds: a listening socket on 127.0.0.1, any port.
int ListeningSocket(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 128) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("listening socket");
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

class KvdHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kvd_.Bind());
    ASSERT_TRUE(kvd_.hooks().StartServing());
  }
  TempDir dir_;
  Instance kvd_{dir_.path()};
};

TEST_F(KvdHttpTest, PutGetAnd404OnOneKeepAliveConnection) {
  Client c(kvd_.port());
  auto put = c.Put("greeting", "hello world");
  EXPECT_EQ(put.result_int(), 200);
  EXPECT_TRUE(put.keep_alive());
  EXPECT_EQ(put.body(), "1\n");
  auto get = c.Get("greeting");
  EXPECT_EQ(get.result_int(), 200);
  EXPECT_EQ(get.body(), "hello world");
  EXPECT_EQ(c.Get("absent").result_int(), 404);
  EXPECT_EQ(c.Put("greeting", "bye").body(), "2\n");
  EXPECT_EQ(c.Get("greeting").body(), "bye");
}

TEST_F(KvdHttpTest, HealthzAndStats) {
  Client c(kvd_.port());
  auto h = c.Call(http::verb::get, "/healthz");
  EXPECT_EQ(h.result_int(), 200);
  EXPECT_THAT(h.body(), ::testing::HasSubstr(fmt::format("\"pid\":{}", ::getpid())));
  EXPECT_THAT(h.body(), ::testing::HasSubstr("\"role\":\"standalone\""));
  ASSERT_EQ(c.Put("a", "b").result_int(), 200);
  EXPECT_THAT(c.Call(http::verb::get, "/stats").body(), ::testing::HasSubstr("\"revision\":1"));
  EXPECT_EQ(c.Call(http::verb::get, "/nope").result_int(), 404);
  EXPECT_EQ(c.Call(http::verb::delete_, "/kv/a").result_int(), 405);
}

TEST_F(KvdHttpTest, BadRequestsAreAnsweredAndClosed) {
  Client c(kvd_.port());
  EXPECT_EQ(c.Put(std::string(2000, 'k'), "v").result_int(), 400);
  Client big(kvd_.port());
  auto res = big.Put("big", std::string((1u << 20) + 1, 'x'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(KvdHttpTest, ExpectContinueGetsAnInterimResponse) {
  Client c(kvd_.port());
  c.SendRaw("PUT /kv/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(c.Read().result_int(), 100);
  c.SendRaw("abc");
  EXPECT_EQ(c.Read().result_int(), 200);
  EXPECT_EQ(c.Get("big").body(), "abc");
}

TEST_F(KvdHttpTest, ConcurrentPutsAreAllDurableAndShareFsyncs) {
  constexpr int kClients = 8, kPuts = 40;
  std::vector<std::future<int>> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.push_back(std::async(std::launch::async, [this, t] {
      Client c(kvd_.port());
      int ok = 0;
      for (int i = 0; i < kPuts; ++i) ok += c.Put(fmt::format("c{}-{}", t, i), fmt::format("{}", i)).result_int() == 200;
      return ok;
    }));
  }
  for (auto& f : clients) EXPECT_EQ(f.get(), kPuts);
  ASSERT_TRUE(kvd_.hooks().Drain(kvd::testing::InMs(10000)));
  auto sealed = kvd_.hooks().Seal();
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->revision, uint64_t{kClients * kPuts});
  const auto stats = kvd_.OnIo([this] { return kvd_.service().store().size(); });
  EXPECT_EQ(stats, size_t{kClients * kPuts});

  Instance fresh(dir_.path());
  ASSERT_TRUE(fresh.Bind());
  ASSERT_TRUE(fresh.hooks().StartServing());
  EXPECT_EQ(fresh.fingerprint(), sealed->fingerprint);
  Client c(fresh.port());
  for (int t = 0; t < kClients; ++t) EXPECT_EQ(c.Get(fmt::format("c{}-{}", t, kPuts - 1)).body(), fmt::format("{}", kPuts - 1));
}

// The handoff at the HTTP level: the incumbent drains while a keep-alive
// client is in the middle of a request, another is idle between requests
// and a third connects during the drain; the successor accepts on the same
// listening socket and sees every acknowledged write.
TEST(KvdHandoffTest, DrainAnswersInFlightRequestsWithCloseAndTheSuccessorTakesOver) {
  TempDir dir;
  uint16_t port = 0;
  const int listener = ListeningSocket(&port);  // the supervisor's copy
  Instance incumbent(dir.path());
  ASSERT_TRUE(incumbent.Adopt(::dup(listener)));
  ASSERT_TRUE(incumbent.hooks().StartServing());

  Client mid(port), idle(port);
  ASSERT_EQ(mid.Put("a", "1").result_int(), 200);
  ASSERT_EQ(idle.Get("a").body(), "1");

  Instance successor(dir.path());
  ASSERT_TRUE(successor.Adopt(::dup(listener)));
  ASSERT_TRUE(successor.hooks().Warm());

  // `mid` has sent half a PUT when the drain starts.
  mid.SendRaw("PUT /kv/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab");
  auto drained = std::async(std::launch::async, [&] { return incumbent.hooks().Drain(kvd::testing::InMs(20000)); });
  ASSERT_TRUE(Eventually([&] { return incumbent.draining(); }));
  Client late(port);  // waits in the kernel's accept queue
  late.SendRaw("GET /kv/b HTTP/1.1\r\nHost: x\r\n\r\n");

  mid.SendRaw("cde");
  auto res = mid.Read();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_FALSE(res.keep_alive()) << "the last response on a draining connection says Connection: close";
  EXPECT_EQ(mid.ReadUntilError(), boost::asio::error::eof) << "closed cleanly, not reset";

  auto next = idle.Get("b");
  EXPECT_EQ(next.body(), "abcde");
  EXPECT_FALSE(next.keep_alive());
  EXPECT_EQ(idle.ReadUntilError(), boost::asio::error::eof);

  ASSERT_EQ(drained.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  ASSERT_TRUE(drained.get());

  auto sealed = incumbent.hooks().Seal();
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(sealed->revision, 2u);
  ASSERT_TRUE(successor.hooks().Begin({.revision = sealed->revision, .fingerprint = sealed->fingerprint}));
  incumbent.hooks().Retire();

  auto served = late.Read();  // accepted by the successor on the same socket
  EXPECT_EQ(served.result_int(), 200);
  EXPECT_EQ(served.body(), "abcde");
  Client after(port);
  EXPECT_EQ(after.Get("a").body(), "1");
  EXPECT_EQ(after.Put("c", "3").body(), "3\n");
  ::close(listener);
}

TEST(KvdHandoffTest, ServesAnInheritedUnixListenerToo) {
  TempDir dir;
  const std::string path = dir.file("kvd.sock");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  Instance kvd(dir.path());
  ASSERT_TRUE(kvd.Adopt(fd));
  ASSERT_TRUE(kvd.hooks().StartServing());
  Client c(path);
  EXPECT_EQ(c.Put("k", "v").result_int(), 200);
  EXPECT_EQ(c.Get("k").body(), "v");
}

TEST(KvdHandoffTest, ConnectionsStillIdleAtTheIdleDeadlineAreClosed) {
  TempDir dir;
  Instance kvd(dir.path(), {.idle_wait = std::chrono::milliseconds(100)});
  ASSERT_TRUE(kvd.Bind());
  ASSERT_TRUE(kvd.hooks().StartServing());
  Client used(kvd.port()), silent(kvd.port());
  ASSERT_EQ(used.Put("k", "v").result_int(), 200);
  ASSERT_TRUE(kvd.hooks().Drain(kvd::testing::InMs(60000)));  // returns long before the deadline
  EXPECT_EQ(used.ReadUntilError(), boost::asio::error::eof);
  EXPECT_EQ(silent.ReadUntilError(), boost::asio::error::eof);
}

TEST(KvdHandoffTest, DrainWithNoConnectionsReturnsAtOnceAndSealFsyncs) {
  TempDir dir;
  Instance kvd(dir.path());
  ASSERT_TRUE(kvd.Bind());
  ASSERT_TRUE(kvd.hooks().StartServing());
  {
    Client c(kvd.port());
    ASSERT_EQ(c.Put("k", "v").result_int(), 200);
  }
  ASSERT_TRUE(kvd.hooks().Drain(kvd::testing::InMs(60000)));
  auto sealed = kvd.hooks().Seal();
  ASSERT_TRUE(sealed);
  EXPECT_EQ(sealed->revision, 1u);
  EXPECT_FALSE(kvd.OnIo([&] { return kvd.service().writable(); }));
}

}  // namespace
}  // namespace kvd
