#include "base/utf8.h"

#include <string>

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(Utf8Test, WellFormedSequencesOfEveryLength) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("plain ascii\t\n"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9"));              // U+00E9
  EXPECT_TRUE(IsUtf8("\xe2\x9c\x93"));             // U+2713
  EXPECT_TRUE(IsUtf8("\xf0\x9f\x98\x80"));         // U+1F600
  EXPECT_TRUE(IsUtf8("\xed\x9f\xbf\xee\x80\x80"));  // U+D7FF, U+E000: either side of the surrogates
  EXPECT_TRUE(IsUtf8("\xf4\x8f\xbf\xbf"));         // U+10FFFF, the last code point
  EXPECT_EQ(Utf8SequenceLength("a"), 1u);
  EXPECT_EQ(Utf8SequenceLength("\xc3\xa9x"), 2u);
  EXPECT_EQ(Utf8SequenceLength("\xe2\x9c\x93"), 3u);
  EXPECT_EQ(Utf8SequenceLength("\xf0\x9f\x98\x80"), 4u);
}

TEST(Utf8Test, IllFormedSequencesAreRefused) {
  EXPECT_FALSE(IsUtf8("\x80"));              // a lone continuation byte
  EXPECT_FALSE(IsUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsUtf8("\xe2\x9c"));          // truncated
  EXPECT_FALSE(IsUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsUtf8("\xc1\xbf"));          // overlong
  EXPECT_FALSE(IsUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsUtf8("\xf0\x80\x80\xaf"));  // overlong
  EXPECT_FALSE(IsUtf8("\xed\xa0\x80"));      // U+D800, a surrogate
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(IsUtf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(IsUtf8("\xff"));
  EXPECT_FALSE(IsUtf8("ok\xc3\xa9\xc3("));   // a bad second byte after good text
  EXPECT_EQ(Utf8SequenceLength(""), 0u);
  EXPECT_EQ(Utf8SequenceLength("\xe2\x28\xa1"), 0u);
}

TEST(Utf8Test, ToUtf8ReplacesEachBadByteAndKeepsTheRest) {
  EXPECT_EQ(ToUtf8(""), "");
  EXPECT_EQ(ToUtf8("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(ToUtf8("caf\xe9"), "caf\xef\xbf\xbd");
  EXPECT_EQ(ToUtf8("\xed\xa0\x80!"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd!");
  EXPECT_TRUE(IsUtf8(ToUtf8("\xff\xfe\xc3(\xf0\x9f\x98")));
}

}  // namespace
}  // namespace baton
