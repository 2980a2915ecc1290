// The one TU of load_test that compiles Boost.JSON (header-only mode).
#include "tools/load/report.h"

#include <gtest/gtest.h>

#include <boost/json/src.hpp>
#include <limits>

namespace baton::load {
namespace {

namespace json = boost::json;

LoadReport Sample() {
  LoadReport r;
  r.target = "http://127.0.0.1:8080";
  r.mode = "keepalive";
  r.connections = 8;
  r.duration_s = 10.0;
  r.requests = 123456;
  r.writes_acked = 61000;
  r.reads = 62456;
  r.p50_us = 210;
  r.p99_us = 1300;
  r.max_us = 12000;
  r.write_gap_max_ms = 4.2;
  r.write_gaps = {{1000.5, 4.2}, {2000, 3.1}};
  r.timeline = {{12000, 0, 900}, {12500, 2, 1100}};
  r.verified = 61000;
  return r;
}

TEST(LoadFormatHuman, SummaryLine) {
  EXPECT_EQ(FormatHuman(Sample()),
            "requests 123456 (writes 61000, reads 62456) in 10.0 s = 12346 req/s; "
            "errors: refused 0, reset 0, timeout 0, non2xx 0, other 0; lost writes 0 of 61000; "
            "latency p50 0.21 ms p99 1.3 ms max 12 ms; longest write gap 4.2 ms; "
            "connections closed by the server 0, reconnects 0");
  LoadReport r = Sample();
  r.mode = "close";
  EXPECT_EQ(FormatHuman(r).find("closed by the server"), std::string::npos) << "close mode: the client closes";
  r = Sample();
  r.verify_errors = 3;
  EXPECT_NE(FormatHuman(r).find("(3 could not be read back)"), std::string::npos);
}

TEST(LoadFormatJson, ParsesAndHasEveryField) {
  LoadReport r = Sample();
  r.errors.reset = 2;
  r.reconnects = 5;
  r.server_closed = 4;
  r.target = "unix:/tmp/we\"ird\\path";
  const std::string text = FormatJson(r);
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  ASSERT_FALSE(ec) << text;
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("target").as_string(), "unix:/tmp/we\"ird\\path");
  EXPECT_EQ(o.at("mode").as_string(), "keepalive");
  EXPECT_EQ(o.at("connections").as_int64(), 8);
  EXPECT_DOUBLE_EQ(o.at("duration_s").to_number<double>(), 10.0);
  EXPECT_EQ(o.at("requests").to_number<uint64_t>(), 123456u);
  EXPECT_EQ(o.at("writes_acked").to_number<uint64_t>(), 61000u);
  EXPECT_EQ(o.at("reads").to_number<uint64_t>(), 62456u);
  EXPECT_EQ(o.at("reconnects").to_number<uint64_t>(), 5u);
  EXPECT_EQ(o.at("server_closed").to_number<uint64_t>(), 4u);
  const auto& errors = o.at("errors").as_object();
  for (const char* k : {"refused", "reset", "timeout", "non2xx", "other"}) {
    EXPECT_TRUE(errors.contains(k)) << k;
  }
  EXPECT_EQ(errors.at("reset").to_number<uint64_t>(), 2u);
  EXPECT_EQ(o.at("errors_total").to_number<uint64_t>(), 2u);
  EXPECT_EQ(o.at("lost_writes").to_number<uint64_t>(), 0u);
  EXPECT_EQ(o.at("verify_errors").to_number<uint64_t>(), 0u);
  const auto& lat = o.at("latency_us").as_object();
  EXPECT_EQ(lat.at("p50").to_number<uint64_t>(), 210u);
  EXPECT_EQ(lat.at("p99").to_number<uint64_t>(), 1300u);
  EXPECT_EQ(lat.at("max").to_number<uint64_t>(), 12000u);
  const auto& gap = o.at("write_gap_ms").as_object();
  EXPECT_DOUBLE_EQ(gap.at("max").to_number<double>(), 4.2);
  const auto& top = gap.at("top").as_array();
  ASSERT_EQ(top.size(), 2u);
  EXPECT_DOUBLE_EQ(top[0].at("at_ms").to_number<double>(), 1000.5);
  EXPECT_DOUBLE_EQ(top[0].at("gap_ms").to_number<double>(), 4.2);
  const auto& tl = o.at("timeline").as_array();
  ASSERT_EQ(tl.size(), 2u);
  EXPECT_EQ(tl[1].at("t").to_number<int>(), 1);
  EXPECT_EQ(tl[1].at("requests").to_number<uint64_t>(), 12500u);
  EXPECT_EQ(tl[1].at("errors").to_number<uint64_t>(), 2u);
  EXPECT_EQ(tl[1].at("p99_us").to_number<uint64_t>(), 1100u);
  EXPECT_FALSE(o.at("ok").as_bool());
}

TEST(LoadFormatJson, EmptyRunIsValid) {
  LoadReport r;
  r.mode = "close";
  r.duration_s = std::numeric_limits<double>::quiet_NaN();
  boost::system::error_code ec;
  const json::value v = json::parse(FormatJson(r), ec);
  ASSERT_FALSE(ec);
  EXPECT_TRUE(v.at("timeline").as_array().empty());
  EXPECT_TRUE(v.at("write_gap_ms").at("top").as_array().empty());
  EXPECT_TRUE(v.at("ok").as_bool());
}

TEST(LoadFormatJson, GapsOnlyWhenLogged) {
  LoadReport r = Sample();
  boost::system::error_code ec;
  json::value v = json::parse(FormatJson(r), ec);
  ASSERT_FALSE(ec);
  EXPECT_FALSE(v.as_object().contains("gaps"));
  EXPECT_FALSE(v.as_object().contains("gaps_over_ms"));

  r.gaps_logged = true;
  r.gaps_over_ms = 0.5;
  r.gaps_dropped = 4;
  r.gaps = {{123456789.25, 0.75}, {123456800.5, 12.125}};
  const std::string text = FormatJson(r);
  v = json::parse(text, ec);
  ASSERT_FALSE(ec) << text;
  const auto& o = v.as_object();
  EXPECT_DOUBLE_EQ(o.at("gaps_over_ms").to_number<double>(), 0.5);
  EXPECT_EQ(o.at("gaps_dropped").to_number<uint64_t>(), 4u);
  const auto& gaps = o.at("gaps").as_array();
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_DOUBLE_EQ(gaps[0].at("start_mono_ms").to_number<double>(), 123456789.25);
  EXPECT_DOUBLE_EQ(gaps[0].at("gap_ms").to_number<double>(), 0.75);
  EXPECT_DOUBLE_EQ(gaps[1].at("gap_ms").to_number<double>(), 12.125);
  EXPECT_TRUE(o.at("ok").is_bool());

  r.gaps.clear();
  v = json::parse(FormatJson(r), ec);
  ASSERT_FALSE(ec);
  EXPECT_TRUE(v.at("gaps").as_array().empty());
}

TEST(LoadExitCode, CleanOnlyWithoutErrorsOrLoss) {
  LoadReport r = Sample();
  EXPECT_EQ(ExitCodeFor(r), kExitOk);
  r.lost_writes = 1;
  EXPECT_EQ(ExitCodeFor(r), kExitFailures);
  r = Sample();
  r.errors.timeout = 1;
  EXPECT_EQ(ExitCodeFor(r), kExitFailures);
  r = Sample();
  r.verify_errors = 1;
  EXPECT_EQ(ExitCodeFor(r), kExitFailures);
}

}  // namespace
}  // namespace baton::load
