#include "base/log.h"

#include <cstdio>

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(LogTest, JsonRendersTypedFields) {
  Event e = MakeEvent(Level::kWarn, "handoff.phase", "phase {} took {} ms", "seal", 3);
  e.With("phase", std::string("seal")).With("ms", int64_t{3}).With("ok", true).With("ratio", 0.5);
  EXPECT_EQ(ToJson(e),
            R"({"level":"warn","event":"handoff.phase","msg":"phase seal took 3 ms","phase":"seal","ms":3,"ok":true,"ratio":0.5})");
}

TEST(LogTest, JsonEscapesControlCharactersAndQuotes) {
  EXPECT_EQ(JsonQuote("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
}

TEST(LogTest, JsonKeepsUtf8AndReplacesWhatIsNot) {
  // Text from outside (a daemon's STATUS=, a path) may be any bytes; the
  // JSON written must still parse.
  EXPECT_EQ(JsonQuote("caf\xc3\xa9 \xe2\x9c\x93"), "\"caf\xc3\xa9 \xe2\x9c\x93\"");
  EXPECT_EQ(JsonQuote("a\xff" "b\xc3"), R"("a\ufffdb\ufffd")");
  EXPECT_EQ(JsonQuote("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");
  EXPECT_EQ(JsonQuote("\x7f"), R"("\u007f")");
}

TEST(LogTest, JsonLinesSinkWritesOneLinePerEventAboveLevel) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  JsonLinesSink sink(f, Level::kInfo);
  sink.Emit(MakeEvent(Level::kDebug, "hidden", "no"));
  sink.Emit(MakeEvent(Level::kInfo, "shown", "yes"));
  std::rewind(f);
  char buf[512] = {0};
  size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  std::string out(buf, n);
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("\"event\":\"shown\""), std::string::npos);
  EXPECT_NE(out.find("\"ts_ms\":"), std::string::npos);
  EXPECT_EQ(out.back(), '\n');
}

TEST(LogTest, RecordingSinkKeepsEvents) {
  RecordingSink sink;
  sink.Emit(MakeEvent(Level::kInfo, "child.exit", "pid {}", 42).With("pid", int64_t{42}));
  ASSERT_TRUE(sink.Has("child.exit"));
  auto events = sink.Events();
  ASSERT_EQ(events.size(), 1u);
  ASSERT_NE(events[0].Get("pid"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*events[0].Get("pid")), 42);
  EXPECT_EQ(events[0].Get("missing"), nullptr);
}

}  // namespace
}  // namespace baton
