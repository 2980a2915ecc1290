// The channel over a real socketpair and a real io_context. Timing here is
// only ever an upper bound; the exact heartbeat/liveness arithmetic is tested
// with a fake clock in liveness_test.cc.
#include "protocol/channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <gtest/gtest.h>

namespace baton::protocol {
namespace {

namespace asio = boost::asio;
using asio::local::stream_protocol;

struct Pair {
  asio::io_context io;
  std::shared_ptr<Channel> a, b;
  std::vector<v1::Envelope> got_a, got_b;
  std::optional<Error> closed_a, closed_b;

  explicit Pair(LivenessOptions oa, LivenessOptions ob) {
    UnixSocket sa(io), sb(io);
    asio::local::connect_pair(sa, sb);
    a = Channel::Create(std::move(sa), oa, RealClock(),
                        {[this](v1::Envelope e) { got_a.push_back(std::move(e)); },
                         [this](const Error& e) { closed_a = e; }, {}});
    b = Channel::Create(std::move(sb), ob, RealClock(),
                        {[this](v1::Envelope e) { got_b.push_back(std::move(e)); },
                         [this](const Error& e) { closed_b = e; }, {}});
  }
  template <class Pred>
  bool RunUntil(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < end) {
      io.run_for(std::chrono::milliseconds(10));
    }
    return pred();
  }
};

// Reads the one frame the channel sent on `raw` and returns its Error code.
v1::Error::Code ReadErrorCode(int raw) {
  char buf[512];
  ssize_t n = ::read(raw, buf, sizeof(buf));
  if (n <= 4) return v1::Error::UNSPECIFIED;
  FrameDecoder dec;
  dec.Feed(std::string_view(buf, static_cast<size_t>(n)));
  auto r = dec.Next();
  if (!std::holds_alternative<v1::Envelope>(r)) return v1::Error::UNSPECIFIED;
  return std::get<v1::Envelope>(r).error().code();
}

LivenessOptions Fast() {
  return {.heartbeat_interval = milliseconds(20), .liveness_timeout = milliseconds(300),
          .send_timeout = milliseconds(300)};
}

// For tests of ordering and flushing, not of liveness: a loaded machine (or
// a sanitizer) can stall the reader of megabytes for longer than Fast()'s
// 300 ms, which would close the channel and test the wrong thing.
LivenessOptions Patient() {
  return {.heartbeat_interval = milliseconds(20), .liveness_timeout = milliseconds(30000),
          .send_timeout = milliseconds(30000)};
}

TEST(ChannelTest, MessagesFlowBothWaysInOrder) {
  Pair p(Patient(), Patient());
  p.a->Start();
  p.b->Start();
  for (int i = 0; i < 100; ++i) {
    v1::Envelope env;
    env.mutable_prepare()->set_handoff_id("h" + std::to_string(i));
    p.a->Send(env);
  }
  v1::Envelope reply;
  reply.mutable_drained()->set_handoff_id("h99");
  p.b->Send(reply);
  ASSERT_TRUE(p.RunUntil([&] { return p.got_b.size() == 100 && p.got_a.size() == 1; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(p.got_b[i].prepare().handoff_id(), "h" + std::to_string(i));
  EXPECT_EQ(p.got_a[0].drained().handoff_id(), "h99");
  EXPECT_FALSE(p.closed_a);
  EXPECT_FALSE(p.closed_b);
}

TEST(ChannelTest, WhenFlushedRunsOnceEverythingQueuedIsWritten) {
  Pair p(Patient(), Patient());
  p.a->Start();
  p.b->Start();
  int immediate = 0;
  p.a->WhenFlushed([&] { ++immediate; });  // nothing pending: runs at once
  EXPECT_EQ(immediate, 1);

  // Large frames, so the writes cannot all complete inside Send().
  const std::string big(200 * 1024, 'x');
  size_t written = 0;
  size_t written_at_flush = 0;
  int flushed = 0;
  for (int i = 0; i < 20; ++i) {
    v1::Envelope env;
    env.mutable_prepare()->set_handoff_id(big);
    p.a->Send(env, [&] { ++written; });
  }
  ASSERT_GT(p.a->pending_writes(), 0u);
  p.a->WhenFlushed([&] {
    ++flushed;
    written_at_flush = written;
  });
  EXPECT_EQ(flushed, 0);
  ASSERT_TRUE(p.RunUntil([&] { return flushed == 1 && p.got_b.size() == 20; }, std::chrono::milliseconds(60000)))
      << "flushed " << flushed << ", received " << p.got_b.size() << ", closed "
      << (p.closed_a ? p.closed_a->message : "-");
  EXPECT_EQ(written_at_flush, 20u);  // not before the last frame was written
  EXPECT_EQ(p.a->pending_writes(), 0u);
}

TEST(ChannelTest, WhenFlushedRunsWhenTheChannelCloses) {
  Pair p(Fast(), Fast());
  p.a->Start();  // b never reads: the frames stay queued
  const std::string big(200 * 1024, 'x');
  for (int i = 0; i < 40; ++i) {
    v1::Envelope env;
    env.mutable_prepare()->set_handoff_id(big);
    p.a->Send(env);
  }
  ASSERT_GT(p.a->pending_writes(), 0u);
  int flushed = 0;
  p.a->WhenFlushed([&] { ++flushed; });
  p.a->Close();
  EXPECT_EQ(flushed, 0);  // from the executor, not inside Close()
  ASSERT_TRUE(p.RunUntil([&] { return flushed == 1; }));
}

TEST(ChannelTest, HeartbeatsKeepAnIdleChannelAliveAndAreNotDelivered) {
  // A 600 ms liveness timeout (not Fast()'s 300 ms): this test runs
  // alongside the whole suite, and a busy 2-CPU machine can stall a thread
  // for 300 ms (it failed that way once in several full runs).
  const LivenessOptions opts{.heartbeat_interval = milliseconds(20), .liveness_timeout = milliseconds(600),
                             .send_timeout = milliseconds(600)};
  Pair p(opts, opts);
  p.a->Start();
  p.b->Start();
  // Idle for five liveness timeouts: heartbeats must carry it.
  ASSERT_TRUE(p.RunUntil([&] { return p.a->heartbeats_received() >= 150 && p.b->heartbeats_received() >= 150; },
                         std::chrono::milliseconds(20000)));
  EXPECT_FALSE(p.closed_a) << p.closed_a->message;
  EXPECT_FALSE(p.closed_b);
  EXPECT_TRUE(p.got_a.empty());
  EXPECT_TRUE(p.got_b.empty());
}

TEST(ChannelTest, SilentPeerIsReported) {
  Pair p(Fast(), Fast());
  p.a->Start();  // b never starts: it neither reads nor heartbeats
  ASSERT_TRUE(p.RunUntil([&] { return p.closed_a.has_value(); }));
  EXPECT_TRUE(p.closed_a->Is(Errc::kDeadlineExceeded));
  EXPECT_NE(p.closed_a->message.find("silent"), std::string::npos);
}

TEST(ChannelTest, PeerCloseIsReported) {
  Pair p(Fast(), Fast());
  p.a->Start();
  p.b->Start();
  p.b->Close();
  ASSERT_TRUE(p.RunUntil([&] { return p.closed_a.has_value(); }));
  EXPECT_TRUE(p.closed_a->Is(Errc::kUnavailable));
  EXPECT_FALSE(p.closed_b);  // a local Close() does not call back
}

// A dead peer's last words: DeliverBuffered hands over, at once and in
// order, every frame still in the receive buffer (the io_context never runs),
// and the end of stream behind them is left to the caller.
TEST(ChannelTest, DeliverBufferedHandsOverWhatADeadPeerWroteWithoutReportingItsEnd) {
  asio::io_context io;
  UnixSocket sa(io), sb(io);
  asio::local::connect_pair(sa, sb);
  std::vector<v1::Envelope> got;
  std::optional<Error> closed;
  int raw = sb.release();
  auto a = Channel::Create(std::move(sa), Patient(), RealClock(),
                           {[&](v1::Envelope e) { got.push_back(std::move(e)); }, [&](const Error& e) { closed = e; }, {}});
  a->Start();
  std::string bytes;
  for (int i = 0; i < 3; ++i) {
    v1::Envelope env;
    env.mutable_seal_complete()->set_handoff_id("h" + std::to_string(i));
    auto frame = EncodeFrame(env);
    ASSERT_TRUE(frame);
    bytes += *frame;
  }
  // A partial fourth frame: the peer died mid-write.
  bytes += std::string("\x00\x00\x00\x40", 4);
  ASSERT_EQ(::write(raw, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(raw);
  a->DeliverBuffered();
  ASSERT_EQ(got.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i].seal_complete().handoff_id(), "h" + std::to_string(i));
  EXPECT_FALSE(closed);
  EXPECT_FALSE(a->closed());
  a->DeliverBuffered();  // nothing more, and still no report
  EXPECT_EQ(got.size(), 3u);
  EXPECT_FALSE(closed);
  a->Close();
  io.run_for(std::chrono::milliseconds(10));  // the pending read is cancelled, not reported
  EXPECT_FALSE(closed);
}

TEST(ChannelTest, DeliverBufferedOnAnEmptyLiveChannelReturnsAtOnce) {
  Pair p(Patient(), Patient());
  p.a->Start();
  p.b->Start();
  p.a->DeliverBuffered();
  EXPECT_TRUE(p.got_a.empty());
  EXPECT_FALSE(p.closed_a);
  v1::Envelope env;
  env.mutable_drained()->set_handoff_id("d");
  p.b->Send(env);
  ASSERT_TRUE(p.RunUntil([&] { return !p.got_a.empty(); }));
  EXPECT_EQ(p.got_a[0].drained().handoff_id(), "d");
}

TEST(ChannelTest, GarbageGetsAnErrorFrameAndCloses) {
  asio::io_context io;
  UnixSocket sa(io), sb(io);
  asio::local::connect_pair(sa, sb);
  std::optional<Error> closed;
  int raw = sb.release();
  auto a = Channel::Create(std::move(sa), Fast(), RealClock(), {[](v1::Envelope) {}, [&](const Error& e) { closed = e; }, {}});
  a->Start();
  const char garbage[] = "\x00\x00\x00\x03\xff\xff\xff";
  ASSERT_EQ(::write(raw, garbage, 7), 7);
  for (int i = 0; i < 200 && !closed; ++i) io.run_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(closed);
  EXPECT_TRUE(closed->Is(Errc::kProtocolError));
  // The peer got one Error frame explaining why.
  EXPECT_EQ(ReadErrorCode(raw), v1::Error::BAD_FRAME);
  ::close(raw);
}

TEST(ChannelTest, StuckSendIsReported) {
  // The peer never reads: fill its buffer until our write is pending, while
  // its heartbeats (sent by a raw writer) keep the liveness timer happy.
  asio::io_context io;
  UnixSocket sa(io), sb(io);
  asio::local::connect_pair(sa, sb);
  int raw = sb.release();
  int small = 4096;
  ::setsockopt(raw, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  std::optional<Error> closed;
  LivenessOptions o = Fast();
  o.liveness_timeout = std::chrono::seconds(60);  // only the send timeout can fire
  auto a = Channel::Create(std::move(sa), o, RealClock(), {[](v1::Envelope) {}, [&](const Error& e) { closed = e; }, {}});
  a->Start();
  v1::Envelope big;
  big.mutable_error()->set_message(std::string(512 * 1024, 'x'));
  for (int i = 0; i < 8; ++i) a->Send(big);
  for (int i = 0; i < 500 && !closed; ++i) io.run_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(closed);
  EXPECT_NE(closed->message.find("send timeout"), std::string::npos);
  ::close(raw);
}

TEST(ChannelTest, UnrecognisedMessageIsAnsweredWithError) {
  asio::io_context io;
  UnixSocket sa(io), sb(io);
  asio::local::connect_pair(sa, sb);
  int raw = sb.release();
  std::optional<Error> closed;
  auto a = Channel::Create(std::move(sa), Fast(), RealClock(), {[](v1::Envelope) {}, [&](const Error& e) { closed = e; }, {}});
  a->Start();
  ASSERT_EQ(::write(raw, "\x00\x00\x00\x03\x9a\x06\x00", 7), 7);
  for (int i = 0; i < 200 && !closed; ++i) io.run_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(closed);
  EXPECT_EQ(ReadErrorCode(raw), v1::Error::UNRECOGNISED);
  ::close(raw);
}

TEST(ChannelTest, PeerCredentialsAreOurs) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  auto cred = GetPeerCredentials(fds[0]);
  ASSERT_TRUE(cred);
  EXPECT_EQ(cred->pid, ::getpid());
  EXPECT_EQ(cred->uid, ::getuid());
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_FALSE(GetPeerCredentials(-1));
}

}  // namespace
}  // namespace baton::protocol
