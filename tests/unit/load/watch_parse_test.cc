// The watch stream parser and the continuity check: pure, bytes in any split.
#include "tools/load/watch_parse.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace baton::load {
namespace {

constexpr std::string_view kHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n";

std::string Event(uint64_t rev) { return fmt::format("{{\"rev\":{},\"key\":\"k{}\",\"value\":\"v\"}}\n", rev, rev); }

std::string Chunk(std::string_view data) { return fmt::format("{:x}\r\n{}\r\n", data.size(), data); }

constexpr std::string_view kLastChunk = "0\r\n\r\n";

std::vector<uint64_t> Revs(const std::vector<WatchLine>& lines) {
  std::vector<uint64_t> out;
  for (const auto& l : lines) {
    EXPECT_EQ(l.kind, WatchLine::Kind::kEvent);
    out.push_back(l.rev);
  }
  return out;
}

// Feeds `bytes` in pieces of `step` (the last one shorter).
std::vector<WatchLine> FeedInPieces(WatchResponseParser& p, std::string_view bytes, std::size_t step) {
  std::vector<WatchLine> out;
  for (std::size_t i = 0; i < bytes.size(); i += step) {
    auto st = p.Feed(bytes.substr(i, step), out);
    EXPECT_TRUE(st) << st.error().message << " at byte " << i;
    if (!st) break;
  }
  return out;
}

TEST(WatchLine, ParsesEventsAndCompactedErrors) {
  auto e = ParseWatchLine(R"({"rev":42,"key":"a","value":"b"})");
  EXPECT_EQ(e.kind, WatchLine::Kind::kEvent);
  EXPECT_EQ(e.rev, 42u);
  EXPECT_EQ(ParseWatchLine(R"({"rev":7})").rev, 7u);
  auto c = ParseWatchLine(R"({"error":"compacted","oldest":1000})");
  EXPECT_EQ(c.kind, WatchLine::Kind::kCompacted);
  EXPECT_EQ(c.oldest, 1000u);
  for (std::string_view bad : {"", "{}", R"({"rev":})", R"({"rev":x})", R"({"rev":12x})", R"({"rev":12,"key")",
                               R"({"error":"other","oldest":3})", R"({"error":"compacted"})", "garbage"}) {
    EXPECT_EQ(ParseWatchLine(bad).kind, WatchLine::Kind::kBad) << bad;
  }
}

TEST(WatchResponseParser, WholeResponseAtOnce) {
  WatchResponseParser p;
  std::vector<WatchLine> out;
  const std::string bytes = std::string(kHead) + Chunk(Event(5) + Event(6)) + Chunk(Event(7));
  ASSERT_TRUE(p.Feed(bytes, out));
  EXPECT_TRUE(p.HeadersDone());
  EXPECT_EQ(p.status(), 200u);
  EXPECT_EQ(Revs(out), (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_FALSE(p.Done()) << "a watch goes on until the terminating chunk";
  out.clear();
  ASSERT_TRUE(p.Feed(kLastChunk, out));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(p.Done());
  EXPECT_EQ(p.Pending(), 0u);
}

// Every split of the bytes, down to one byte at a time: headers, chunk
// sizes, chunk data and the CRLFs between them may each span reads.
TEST(WatchResponseParser, AnySplitOfTheBytes) {
  const std::string bytes = std::string(kHead) + Chunk(Event(1) + Event(2)) + Chunk(Event(3)) +
                            Chunk(Event(4) + Event(5) + Event(6)) + std::string(kLastChunk);
  for (std::size_t step = 1; step <= bytes.size(); ++step) {
    WatchResponseParser p;
    auto out = FeedInPieces(p, bytes, step);
    EXPECT_EQ(Revs(out), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6})) << "step " << step;
    EXPECT_TRUE(p.Done()) << "step " << step;
  }
}

// A line may be split across chunks (the server chunks bytes, not lines).
TEST(WatchResponseParser, LineSplitAcrossChunks) {
  const std::string e1 = Event(10);
  const std::string e2 = Event(11);
  const std::string bytes = std::string(kHead) + Chunk(e1.substr(0, 5)) + Chunk(e1.substr(5) + e2.substr(0, 9)) +
                            Chunk(e2.substr(9, 3)) + Chunk(e2.substr(12));
  WatchResponseParser p;
  std::vector<WatchLine> out;
  ASSERT_TRUE(p.Feed(bytes.substr(0, bytes.size() - Chunk(e2.substr(12)).size()), out));
  EXPECT_EQ(Revs(out), (std::vector<uint64_t>{10}));
  EXPECT_GT(p.Pending(), 0u) << "half of rev 11 held back";
  out.clear();
  ASSERT_TRUE(p.Feed(Chunk(e2.substr(12)), out));
  EXPECT_EQ(Revs(out), (std::vector<uint64_t>{11}));
  EXPECT_EQ(p.Pending(), 0u);
}

TEST(WatchResponseParser, ChunkExtensionsAndTrailers) {
  const std::string bytes = std::string(kHead) + "a;foo=bar\r\n" + R"({"rev":9}
)" + "\r\n0\r\nX-Trailer: 1\r\n\r\n";
  WatchResponseParser p;
  std::vector<WatchLine> out;
  ASSERT_TRUE(p.Feed(bytes, out));
  EXPECT_EQ(Revs(out), (std::vector<uint64_t>{9}));
  EXPECT_TRUE(p.Done());
}

TEST(WatchResponseParser, CompactedLineEndsTheStream) {
  const std::string bytes = std::string(kHead) + Chunk(Event(3)) + Chunk("{\"error\":\"compacted\",\"oldest\":50}\n") +
                            std::string(kLastChunk);
  WatchResponseParser p;
  std::vector<WatchLine> out;
  ASSERT_TRUE(p.Feed(bytes, out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, WatchLine::Kind::kEvent);
  EXPECT_EQ(out[1].kind, WatchLine::Kind::kCompacted);
  EXPECT_EQ(out[1].oldest, 50u);
  EXPECT_TRUE(p.Done());
}

TEST(WatchResponseParser, GoneWithContentLength) {
  const std::string body = R"({"error":"compacted","oldest":77})";
  const std::string bytes = fmt::format(
      "HTTP/1.1 410 Gone\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}", body.size(), body);
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, bytes.size()}) {
    WatchResponseParser p;
    auto out = FeedInPieces(p, bytes, step);
    EXPECT_EQ(p.status(), 410u);
    EXPECT_TRUE(p.Done());
    ASSERT_EQ(out.size(), 1u) << "step " << step;
    EXPECT_EQ(out[0].kind, WatchLine::Kind::kCompacted);
    EXPECT_EQ(out[0].oldest, 77u);
    EXPECT_EQ(p.ErrorBody(), body);
  }
}

TEST(WatchResponseParser, ErrorBodyUntilEof) {
  WatchResponseParser p;
  std::vector<WatchLine> out;
  ASSERT_TRUE(p.Feed("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\ndraining\n", out));
  EXPECT_FALSE(p.Done());
  EXPECT_TRUE(p.FinishAtEof(out));
  EXPECT_TRUE(p.Done());
  EXPECT_EQ(p.status(), 503u);
  EXPECT_EQ(p.ErrorBody(), "draining");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, WatchLine::Kind::kBad);
}

TEST(WatchResponseParser, EofMidStreamIsNotAnEnd) {
  WatchResponseParser p;
  std::vector<WatchLine> out;
  ASSERT_TRUE(p.Feed(std::string(kHead) + Chunk(Event(1)), out));
  EXPECT_FALSE(p.FinishAtEof(out)) << "only the terminating chunk ends a 200";
  EXPECT_FALSE(p.Done());
}

TEST(WatchResponseParser, MalformedHttpFails) {
  const std::string chunked200 = std::string(kHead);
  for (const std::string& bad :
       {std::string("SMTP 220 hello\r\n\r\n"), std::string("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"),
        chunked200 + "zz\r\n", chunked200 + "3\r\nabcXY", chunked200 + "3\nabc\r\n",
        chunked200 + Chunk("x") + std::string(kLastChunk) + "more"}) {
    WatchResponseParser p;
    std::vector<WatchLine> out;
    auto st = p.Feed(bad, out);
    EXPECT_FALSE(st) << bad;
    EXPECT_TRUE(p.Failed()) << bad;
  }
}

TEST(WatchChecker, ConsecutiveRevisionsAreContinuous) {
  WatchChecker c(5);
  WatchCounts n;
  for (uint64_t r = 5; r < 10; ++r) c.OnEvent(r, n);
  EXPECT_EQ(n.events, 5u);
  EXPECT_EQ(c.Last(), 9u);
  EXPECT_EQ(c.Next(), 10u);
  EXPECT_TRUE(n.Continuous());
}

TEST(WatchChecker, GapIsCountedOnceWithItsFirstRevision) {
  WatchChecker c(1);
  WatchCounts n;
  for (uint64_t r : {1, 2, 5, 6, 9}) c.OnEvent(r, n);
  EXPECT_EQ(n.gaps, 2u);
  EXPECT_EQ(n.first_gap_rev, 5u);
  EXPECT_EQ(n.duplicates, 0u);
  EXPECT_EQ(c.Next(), 10u) << "from=last+1 on reconnect";
  EXPECT_FALSE(n.Continuous());
}

TEST(WatchChecker, GapAtTheStart) {
  WatchChecker c(100);
  WatchCounts n;
  c.OnEvent(101, n);
  EXPECT_EQ(n.gaps, 1u);
  EXPECT_EQ(n.first_gap_rev, 101u);
}

TEST(WatchChecker, DuplicateIsCountedAndDoesNotMoveBack) {
  WatchChecker c(1);
  WatchCounts n;
  for (uint64_t r : {1, 2, 3, 2, 3, 4}) c.OnEvent(r, n);
  EXPECT_EQ(n.duplicates, 2u);
  EXPECT_EQ(n.first_duplicate_rev, 2u);
  EXPECT_EQ(n.gaps, 0u);
  EXPECT_EQ(c.Last(), 4u);
  EXPECT_FALSE(n.Continuous());
}

TEST(WatchCounts, AnyResetCompactedReconnectOrErrorBreaksContinuity) {
  EXPECT_TRUE(WatchCounts{}.Continuous());
  WatchCounts ends;
  ends.server_ends = 1;  // a server end alone is only visible through the reconnect after it
  EXPECT_TRUE(ends.Continuous());
  for (uint64_t WatchCounts::*field : {&WatchCounts::resets, &WatchCounts::compacted, &WatchCounts::reconnects,
                                       &WatchCounts::errors, &WatchCounts::gaps, &WatchCounts::duplicates}) {
    WatchCounts n;
    n.*field = 1;
    EXPECT_FALSE(n.Continuous());
  }
  WatchCounts a;
  a.first_gap_rev = 0;
  WatchCounts b;
  b.gaps = 1;
  b.first_gap_rev = 12;
  b.events = 3;
  a.Add(b);
  a.Add(b);
  EXPECT_EQ(a.gaps, 2u);
  EXPECT_EQ(a.events, 6u);
  EXPECT_EQ(a.first_gap_rev, 12u);
}

}  // namespace
}  // namespace baton::load
