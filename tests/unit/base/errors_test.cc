#include "base/errors.h"

#include <cerrno>
#include <memory>

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
}

TEST(ErrorsDeathTest, ValueOfAnErrorIsABugThatAbortsWithTheMessage) {
  auto bad = Half(3);
  EXPECT_DEATH((void)bad.value(), "half: odd input");
  auto good = Half(2);
  EXPECT_DEATH((void)good.error(), "holding a value");
}

TEST(ErrorsTest, EveryCodeHasAName) {
  for (int c = 0; c <= static_cast<int>(Errc::kIoError); ++c) {
    EXPECT_NE(ErrcName(static_cast<Errc>(c)), "unknown error") << c;
  }
  EXPECT_EQ(ErrcName(static_cast<Errc>(999)), "unknown error");
  EXPECT_EQ(Error(Errc::kBusy, "one at a time").ToString(), "one at a time (baton:busy)");
}

TEST(ErrorsTest, ErrnoMapsToWhatTheCallerShouldDo) {
  EXPECT_EQ(ErrnoError("x", ENOENT).code, Errc::kNotFound);
  EXPECT_EQ(ErrnoError("x", EACCES).code, Errc::kPermissionDenied);
  EXPECT_EQ(ErrnoError("x", EAGAIN).code, Errc::kUnavailable);
  EXPECT_EQ(ErrnoError("x", ENOSPC).code, Errc::kIoError);
  EXPECT_EQ(ErrnoError("x", EIO).code, Errc::kIoError);
}

TEST(ErrorsTest, SystemErrorKeepsTheMessage) {
  const Error e = SystemError(boost::system::error_code(ECONNREFUSED, boost::system::system_category()), "connect");
  EXPECT_EQ(e.code, Errc::kIoError);
  EXPECT_EQ(e.message, "connect");
  EXPECT_EQ(SystemError(boost::system::error_code(ETIMEDOUT, boost::system::system_category()), "t").code,
            Errc::kDeadlineExceeded);
}

TEST(ErrorsTest, ResultHoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r);
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(ErrorsTest, ErrnoErrorNamesTheOperation) {
  Error e = ErrnoError("open /nope", ENOENT);
  EXPECT_EQ(e.message, "open /nope: No such file or directory");
  EXPECT_EQ(e.code, Errc::kNotFound);
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
