#include "protocol/version.h"

#include <gtest/gtest.h>

namespace baton::protocol {
namespace {

TEST(VersionTest, OverlapPicksHighestCommon) {
  EXPECT_EQ(*Negotiate({1, 3}, {2, 5}), 3u);
  EXPECT_EQ(*Negotiate({2, 5}, {1, 3}), 3u);
  EXPECT_EQ(*Negotiate({1, 9}, {4, 4}), 4u);
}

TEST(VersionTest, EdgesTouching) {
  EXPECT_EQ(*Negotiate({1, 2}, {2, 3}), 2u);
  EXPECT_EQ(*Negotiate({5, 5}, {5, 5}), 5u);
  EXPECT_EQ(*Negotiate({0, 0}, {0, 7}), 0u);
  EXPECT_EQ(*Negotiate({1, UINT32_MAX}, {UINT32_MAX, UINT32_MAX}), UINT32_MAX);
}

TEST(VersionTest, DisjointIsRefusedNamingBothRanges) {
  auto r = Negotiate({1, 2}, {3, 4}, "protocol", "supervisor", "successor");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kIncompatible));
  EXPECT_EQ(r.error().message, "no common protocol version: supervisor speaks [1,2], successor speaks [3,4]");
  auto s = Negotiate({3, 4}, {1, 2}, "state schema");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("state schema"), std::string::npos);
}

TEST(VersionTest, InvalidRangeIsRejected) {
  auto r = Negotiate({1, 2}, {4, 3}, "protocol", "supervisor", "successor");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument));
  EXPECT_NE(r.error().message.find("[4,3]"), std::string::npos);
  EXPECT_FALSE(Negotiate({2, 1}, {1, 2}));
}

TEST(VersionTest, ThisBuildSpeaksItsOwnRange) {
  EXPECT_EQ(*Negotiate({kProtocolMin, kProtocolMax}, {kProtocolMin, kProtocolMax}), kProtocolMax);
}

}  // namespace
}  // namespace baton::protocol
