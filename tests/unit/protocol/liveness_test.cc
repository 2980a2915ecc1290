#include "protocol/liveness.h"

#include <gtest/gtest.h>

#include "tests/support/fake_clock.h"

namespace baton::protocol {
namespace {

LivenessOptions Opts() {
  return {.heartbeat_interval = seconds(1), .liveness_timeout = seconds(5), .send_timeout = seconds(3)};
}

TEST(LivenessTest, HeartbeatDueEveryInterval) {
  FakeClock clock;
  Liveness l(Opts(), clock.Now());
  auto t = l.Poll(clock.Now());
  EXPECT_FALSE(t.send_heartbeat);
  EXPECT_EQ(t.peer, PeerState::kAlive);
  EXPECT_EQ(t.next_deadline, clock.Now() + seconds(1));
  clock.Advance(milliseconds(999));
  EXPECT_FALSE(l.Poll(clock.Now()).send_heartbeat);
  clock.Advance(milliseconds(1));
  t = l.Poll(clock.Now());
  EXPECT_TRUE(t.send_heartbeat);
  l.OnFrameReceived(clock.Now());
  l.OnWriteStarted(clock.Now());
  l.OnWriteCompleted(clock.Now());
  t = l.Poll(clock.Now());
  EXPECT_FALSE(t.send_heartbeat);
  EXPECT_EQ(t.next_deadline, clock.Now() + seconds(1));
}

TEST(LivenessTest, AnySentFramePostponesTheHeartbeat) {
  FakeClock clock;
  Liveness l(Opts(), clock.Now());
  clock.Advance(milliseconds(800));
  l.OnFrameSent(clock.Now());
  clock.Advance(milliseconds(800));
  EXPECT_FALSE(l.Poll(clock.Now()).send_heartbeat);
  clock.Advance(milliseconds(200));
  EXPECT_TRUE(l.Poll(clock.Now()).send_heartbeat);
}

TEST(LivenessTest, SilentPeerIsReportedAtTheTimeout) {
  FakeClock clock;
  Liveness l(Opts(), clock.Now());
  for (int i = 0; i < 4; ++i) {
    clock.Advance(seconds(1));
    l.OnFrameSent(clock.Now());  // we keep talking; the peer does not
    EXPECT_EQ(l.Poll(clock.Now()).peer, PeerState::kAlive) << i;
  }
  clock.Advance(milliseconds(999));
  EXPECT_EQ(l.Poll(clock.Now()).peer, PeerState::kAlive);
  clock.Advance(milliseconds(1));
  EXPECT_EQ(l.Poll(clock.Now()).peer, PeerState::kSilent);
}

TEST(LivenessTest, ReceivedFramesKeepThePeerAlive) {
  FakeClock clock;
  Liveness l(Opts(), clock.Now());
  for (int i = 0; i < 100; ++i) {
    clock.Advance(seconds(4));
    l.OnFrameReceived(clock.Now());
    EXPECT_EQ(l.Poll(clock.Now()).peer, PeerState::kAlive);
  }
}

TEST(LivenessTest, StuckWriteIsReportedAtTheSendTimeout) {
  FakeClock clock;
  Liveness l(Opts(), clock.Now());
  l.OnWriteStarted(clock.Now());
  auto t = l.Poll(clock.Now());
  EXPECT_EQ(t.next_deadline, clock.Now() + seconds(3));
  clock.Advance(milliseconds(2500));
  l.OnFrameReceived(clock.Now());
  t = l.Poll(clock.Now());
  EXPECT_EQ(t.peer, PeerState::kAlive);
  EXPECT_FALSE(t.send_heartbeat);  // a heartbeat would only queue behind the stuck write
  EXPECT_EQ(t.next_deadline, clock.Now() + milliseconds(500));
  clock.Advance(milliseconds(500));
  EXPECT_EQ(l.Poll(clock.Now()).peer, PeerState::kSendStuck);
}

TEST(LivenessTest, CompletedWriteClearsTheSendTimer) {
  FakeClock clock;
  Liveness l(Opts(), clock.Now());
  l.OnWriteStarted(clock.Now());
  clock.Advance(seconds(2));
  l.OnWriteCompleted(clock.Now());
  l.OnFrameReceived(clock.Now());
  clock.Advance(seconds(2));
  EXPECT_EQ(l.Poll(clock.Now()).peer, PeerState::kAlive);
}

TEST(LivenessTest, NextDeadlineIsTheEarliestDue) {
  FakeClock clock;
  LivenessOptions o = Opts();
  o.heartbeat_interval = seconds(10);
  o.liveness_timeout = seconds(2);
  Liveness l(o, clock.Now());
  EXPECT_EQ(l.Poll(clock.Now()).next_deadline, clock.Now() + seconds(2));
}

}  // namespace
}  // namespace baton::protocol
