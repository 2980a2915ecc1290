#include "tools/load/outcome.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include "tools/load/recorder.h"

namespace baton::load {
namespace {

namespace aerr = boost::asio::error;
namespace http = boost::beast::http;
using boost::system::error_code;
using std::chrono::microseconds;

TEST(LoadClassifyTransport, Connect) {
  EXPECT_EQ(ClassifyTransport(aerr::connection_refused, Stage::kConnect), ErrorKind::kRefused);
  EXPECT_EQ(ClassifyTransport(make_error_code(boost::system::errc::no_such_file_or_directory), Stage::kConnect),
            ErrorKind::kRefused);
  EXPECT_EQ(ClassifyTransport(boost::beast::error::timeout, Stage::kConnect), ErrorKind::kTimeout);
  EXPECT_EQ(ClassifyTransport(aerr::connection_reset, Stage::kConnect), ErrorKind::kReset);
  EXPECT_EQ(ClassifyTransport(aerr::access_denied, Stage::kConnect), ErrorKind::kOther);
}

TEST(LoadClassifyTransport, AfterSend) {
  for (Stage s : {Stage::kSend, Stage::kReceive}) {
    EXPECT_EQ(ClassifyTransport(aerr::connection_reset, s), ErrorKind::kReset);
    EXPECT_EQ(ClassifyTransport(aerr::broken_pipe, s), ErrorKind::kReset);
    EXPECT_EQ(ClassifyTransport(aerr::eof, s), ErrorKind::kReset);
    EXPECT_EQ(ClassifyTransport(http::error::end_of_stream, s), ErrorKind::kReset);
    EXPECT_EQ(ClassifyTransport(http::error::partial_message, s), ErrorKind::kReset);
    EXPECT_EQ(ClassifyTransport(boost::beast::error::timeout, s), ErrorKind::kTimeout);
    EXPECT_EQ(ClassifyTransport(http::error::bad_version, s), ErrorKind::kOther);
    // A refused error cannot happen after connect; if it did it is not "refused".
    EXPECT_EQ(ClassifyTransport(aerr::connection_refused, s), ErrorKind::kOther);
  }
}

TEST(LoadIsPeerClosed, OnlyCloseErrors) {
  EXPECT_TRUE(IsPeerClosed(aerr::broken_pipe));
  EXPECT_TRUE(IsPeerClosed(aerr::connection_reset));
  EXPECT_TRUE(IsPeerClosed(aerr::eof));
  EXPECT_FALSE(IsPeerClosed(boost::beast::error::timeout));
  EXPECT_FALSE(IsPeerClosed(error_code{}));
}

Exchange Ok(unsigned status, std::string body = {}) {
  Exchange ex;
  ex.status = status;
  ex.body = std::move(body);
  return ex;
}

Exchange Failed(ErrorKind k, Stage s) {
  Exchange ex;
  ex.error = k;
  ex.stage = s;
  return ex;
}

TEST(LoadJudge, Writes) {
  auto o = Judge(true, Ok(204), "");
  EXPECT_FALSE(o.error);
  EXPECT_TRUE(o.write_acked);
  o = Judge(true, Ok(503), "");
  EXPECT_EQ(o.error, ErrorKind::kNon2xx);
  EXPECT_FALSE(o.write_acked);
  EXPECT_TRUE(o.write_unknown);
  o = Judge(true, Failed(ErrorKind::kReset, Stage::kReceive), "");
  EXPECT_EQ(o.error, ErrorKind::kReset);
  EXPECT_TRUE(o.write_unknown);
  o = Judge(true, Failed(ErrorKind::kRefused, Stage::kConnect), "");
  EXPECT_EQ(o.error, ErrorKind::kRefused);
  EXPECT_FALSE(o.write_unknown) << "never sent: certainly not applied";
}

TEST(LoadJudge, Reads) {
  auto o = Judge(false, Ok(200, "v"), "v");
  EXPECT_FALSE(o.error);
  EXPECT_FALSE(o.write_acked);
  o = Judge(false, Ok(404), "v");
  EXPECT_EQ(o.error, ErrorKind::kNon2xx);
  o = Judge(false, Ok(200, "w"), "v");
  EXPECT_EQ(o.error, ErrorKind::kOther);
  EXPECT_TRUE(o.read_mismatch);
  o = Judge(false, Failed(ErrorKind::kTimeout, Stage::kReceive), "v");
  EXPECT_EQ(o.error, ErrorKind::kTimeout);
  EXPECT_FALSE(o.write_unknown);
}

TEST(LoadJudgeVerify, Verdicts) {
  EXPECT_EQ(JudgeVerify(Ok(200, "v"), "v"), VerifyVerdict::kOk);
  EXPECT_EQ(JudgeVerify(Ok(200, "x"), "v"), VerifyVerdict::kLost);
  EXPECT_EQ(JudgeVerify(Ok(404), "v"), VerifyVerdict::kLost);
  EXPECT_EQ(JudgeVerify(Ok(503), "v"), VerifyVerdict::kRetry);
  EXPECT_EQ(JudgeVerify(Failed(ErrorKind::kReset, Stage::kReceive), "v"), VerifyVerdict::kRetry);
}

TEST(LoadRecorder, FillsReport) {
  const TimePoint start{seconds(100)};
  LoadRecorder rec(start);
  Outcome acked;
  acked.write_acked = true;
  rec.Record(true, acked, start, start + milliseconds(1));
  rec.Record(true, acked, start + milliseconds(10), start + milliseconds(12));
  rec.Record(false, Outcome{}, start, start + microseconds(300));
  Outcome reset;
  reset.error = ErrorKind::kReset;
  reset.write_unknown = true;
  rec.Record(true, reset, start, start + milliseconds(1500));
  rec.AddReconnects(3);

  LoadReport r;
  rec.Fill(r, start + seconds(2));
  EXPECT_DOUBLE_EQ(r.duration_s, 2.0);
  EXPECT_EQ(r.requests, 4u);
  EXPECT_EQ(r.writes_acked, 2u);
  EXPECT_EQ(r.reads, 1u);
  EXPECT_EQ(r.writes_unknown, 1u);
  EXPECT_EQ(r.reconnects, 3u);
  EXPECT_EQ(r.errors.reset, 1u);
  EXPECT_EQ(r.errors.Total(), 1u);
  EXPECT_EQ(r.max_us, 2000u);
  EXPECT_NEAR(static_cast<double>(r.p50_us), 1000.0, 10.0);
  EXPECT_DOUBLE_EQ(r.write_gap_max_ms, 11.0);
  ASSERT_EQ(r.write_gaps.size(), 1u);
  EXPECT_DOUBLE_EQ(r.write_gaps[0].at_ms, 1.0);
  ASSERT_EQ(r.timeline.size(), 2u);
  EXPECT_EQ(r.timeline[0].requests, 3u);
  EXPECT_EQ(r.timeline[1].errors, 1u);
  EXPECT_FALSE(r.Clean());
  EXPECT_FALSE(r.gaps_logged);
  EXPECT_TRUE(r.gaps.empty());
}

TEST(LoadRecorder, GapsOverFillsAbsoluteGaps) {
  const TimePoint start{seconds(100)};
  LoadRecorder rec(start, microseconds(500));
  Outcome acked;
  acked.write_acked = true;
  for (int us : {1000, 1200, 3200, 3300}) rec.Record(true, acked, start, start + microseconds(us));
  rec.Record(false, Outcome{}, start, start + milliseconds(50));  // reads make no gaps
  LoadReport r;
  rec.Fill(r, start + seconds(1));
  EXPECT_TRUE(r.gaps_logged);
  EXPECT_DOUBLE_EQ(r.gaps_over_ms, 0.5);
  EXPECT_EQ(r.gaps_dropped, 0u);
  ASSERT_EQ(r.gaps.size(), 1u);
  EXPECT_DOUBLE_EQ(r.gaps[0].start_mono_ms, 100001.2);
  EXPECT_DOUBLE_EQ(r.gaps[0].gap_ms, 2.0);
}

}  // namespace
}  // namespace baton::load
