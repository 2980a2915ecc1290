// kvd's watch history and stream (examples/kvd/watch_history.h,
// watch_stream.h): the ring keeps consecutive revisions within its byte
// bound, renders NDJSON lines, wakes waiting streams once, and a stream
// that falls behind it ends with the compacted error.
#include "examples/kvd/watch_history.h"

#include <gtest/gtest.h>

#include "examples/kvd/watch_stream.h"

namespace kvd {
namespace {

TEST(WatchHistoryTest, RendersConsecutiveLinesWithEscapedStrings) {
  WatchHistory h(1 << 20);
  h.Append(1, "a", "x");
  h.Append(2, "q\"k", "v\\\n");
  EXPECT_EQ(h.oldest(), 1u);
  EXPECT_EQ(h.next(), 3u);
  std::string out;
  EXPECT_EQ(h.Render(1, 1 << 20, out), 3u);
  EXPECT_EQ(out, "{\"rev\":1,\"key\":\"a\",\"value\":\"x\"}\n"
                 "{\"rev\":2,\"key\":\"q\\\"k\",\"value\":\"v\\\\\\u000a\"}\n");
  out.clear();
  EXPECT_EQ(h.Render(2, 1, out), 3u);  // at least one line, even over the bound
  EXPECT_EQ(out.find("{\"rev\":2,"), 0u);
  out.clear();
  EXPECT_EQ(h.Render(3, 1 << 20, out), 3u);  // caught up: nothing
  EXPECT_EQ(out, "");
}

TEST(WatchHistoryTest, StaysWithinItsBytesAndDropsTheOldest) {
  WatchHistory h(1000);
  const std::string value(100, 'v');
  for (uint64_t r = 1; r <= 100; ++r) h.Append(r, "k", value);
  EXPECT_LE(h.bytes(), 1000u);
  EXPECT_GT(h.oldest(), 90u);
  EXPECT_EQ(h.next(), 101u);
  std::string out;
  EXPECT_EQ(h.Render(h.oldest(), 1 << 20, out), 101u);
  // A record larger than the whole bound empties it: no hole, ever.
  h.Append(101, "k", std::string(2000, 'x'));
  EXPECT_EQ(h.oldest(), 102u);
  EXPECT_EQ(h.bytes(), 0u);
}

TEST(WatchHistoryTest, ResetAndAGapStartItAgain) {
  WatchHistory h(1 << 20);
  h.Append(1, "a", "1");
  h.Reset(51);  // a snapshot at 50 was loaded
  EXPECT_EQ(h.oldest(), 51u);
  EXPECT_EQ(h.next(), 51u);
  h.Append(51, "a", "2");
  h.Append(60, "a", "3");  // not next(): the history starts again there
  EXPECT_EQ(h.oldest(), 60u);
  EXPECT_EQ(h.next(), 61u);
}

TEST(WatchHistoryTest, WakesEachWaiterOnceAndNotACancelledOne) {
  WatchHistory h(1 << 20);
  int a = 0, b = 0;
  h.Wait([&] { ++a; });
  const uint64_t id = h.Wait([&] { ++b; });
  h.Cancel(id);
  h.Append(1, "k", "v");
  h.Append(2, "k", "v");
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
}

TEST(WatchStreamTest, FollowsTheHistoryAndSaysWhereItIs) {
  WatchHistory h(1 << 20);
  h.Append(1, "a", "1");
  WatchStream s(h, 1);
  std::string out;
  EXPECT_FALSE(s.Next(out));
  EXPECT_EQ(s.next(), 2u);
  EXPECT_EQ(s.HandoverState(), "kvd-watch/1 next=2");
  EXPECT_EQ(WatchStream::ParseHandoverState(s.HandoverState()), 2u);
  out.clear();
  EXPECT_FALSE(s.Next(out));
  EXPECT_EQ(out, "");
  bool woken = false;
  s.Wait([&] { woken = true; });
  h.Append(2, "b", "2");
  EXPECT_TRUE(woken);
  EXPECT_FALSE(s.Next(out));
  EXPECT_EQ(out, "{\"rev\":2,\"key\":\"b\",\"value\":\"2\"}\n");
}

TEST(WatchStreamTest, ASlowWatcherBehindTheRingGetsTheCompactedError) {
  WatchHistory h(500);
  WatchStream s(h, 1);
  for (uint64_t r = 1; r <= 50; ++r) h.Append(r, "k", std::string(50, 'v'));
  std::string out;
  EXPECT_TRUE(s.Next(out));
  EXPECT_EQ(out, "{\"error\":\"compacted\",\"oldest\":" + std::to_string(h.oldest()) + "}\n");
}

TEST(WatchStreamTest, ParsesOnlyWellFormedRevisionsAndStates) {
  EXPECT_EQ(WatchStream::ParseRevision("17"), 17u);
  for (const char* bad : {"", "0", "-1", "+1", " 1", "1 ", "1x", "x", "99999999999999999999"}) {
    EXPECT_FALSE(WatchStream::ParseRevision(bad).has_value()) << bad;
  }
  EXPECT_FALSE(WatchStream::ParseHandoverState("GET / HTTP/1.1\r\n").has_value());
  EXPECT_FALSE(WatchStream::ParseHandoverState("kvd-watch/2 next=5").has_value());
}

}  // namespace
}  // namespace kvd
