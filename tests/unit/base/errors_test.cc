#include "base/errors.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace baton {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Error(Errc::kInvalidArgument, "half: odd input");
  return x / 2;
}

TEST(ErrorsTest, ResultCarriesValueOrError) {
  auto ok = Half(4);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 2);
  auto bad = Half(3);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().Is(Errc::kInvalidArgument));
  EXPECT_EQ(bad.error().message, "half: odd input");
  EXPECT_THROW(bad.value(), std::exception);
}

TEST(ErrorsTest, CategoryNamesEveryCode) {
  for (int c = 0; c <= static_cast<int>(Errc::kIncompatible); ++c) {
    const auto ec = make_error_code(static_cast<Errc>(c));
    EXPECT_STREQ(ec.category().name(), "baton");
    EXPECT_EQ(ec.message().find("unknown"), std::string::npos) << c;
  }
  EXPECT_NE(make_error_code(static_cast<Errc>(999)).message().find("unknown"), std::string::npos);
}

TEST(ErrorsTest, ErrnoErrorNamesTheOperation) {
  Error e = ErrnoError("open /nope", ENOENT);
  EXPECT_EQ(e.message, "open /nope: No such file or directory");
  EXPECT_EQ(e.code.value(), ENOENT);
  EXPECT_NE(e.ToString().find("open /nope"), std::string::npos);
}

TEST(ErrorsTest, StatusDefaultIsOk) {
  Status s;
  EXPECT_TRUE(s);
  Status f = Error(Errc::kAborted, "rolled back");
  EXPECT_FALSE(f);
  EXPECT_TRUE(f.error().Is(Errc::kAborted));
}

}  // namespace
}  // namespace baton
