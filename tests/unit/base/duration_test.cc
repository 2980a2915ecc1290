#include "base/duration.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(DurationTest, ParsesEveryUnit) {
  EXPECT_EQ(*ParseDuration("1500us"), std::chrono::microseconds(1500));
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("5s"), seconds(5));
  EXPECT_EQ(*ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("2m"), seconds(120));
  EXPECT_EQ(*ParseDuration("1h"), seconds(3600));
}

TEST(DurationTest, RejectsMissingOrUnknownUnitsWithAClearMessage) {
  auto bare = ParseDuration("10");
  ASSERT_FALSE(bare);
  EXPECT_NE(bare.error().message.find("missing unit"), std::string::npos) << bare.error().message;
  auto weird = ParseDuration("10parsecs");
  ASSERT_FALSE(weird);
  EXPECT_NE(weird.error().message.find("'parsecs'"), std::string::npos);
  EXPECT_FALSE(ParseDuration(""));
  EXPECT_FALSE(ParseDuration("s"));
  EXPECT_FALSE(ParseDuration("-5s"));
}

TEST(DurationTest, FormatsForHumans) {
  EXPECT_EQ(FormatDuration(std::chrono::microseconds(80)), "80 us");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250.0 ms");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.50 s");
}

}  // namespace
}  // namespace baton
