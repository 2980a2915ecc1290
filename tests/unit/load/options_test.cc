#include "tools/load/options.h"

#include <gtest/gtest.h>

namespace baton::load {
namespace {

using std::chrono::microseconds;
using std::chrono::minutes;

TEST(LoadParseDuration, AcceptsUnits) {
  EXPECT_EQ(*ParseDuration("10s"), seconds(10));
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("2m"), minutes(2));
  EXPECT_EQ(*ParseDuration("1h"), std::chrono::hours(1));
  EXPECT_EQ(*ParseDuration("250us"), microseconds(250));
  EXPECT_EQ(*ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("0s"), Duration::zero());
}

TEST(LoadParseDuration, RejectsMalformed) {
  for (const char* bad : {"", "10", "s", "10x", "-1s", "1.2.3s", "ten s", "10 s", "ms10", "99999999999999h"}) {
    auto d = ParseDuration(bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_TRUE(d.error().Is(Errc::kInvalidArgument)) << bad;
    EXPECT_NE(d.error().message.find("duration"), std::string::npos) << d.error().message;
  }
  EXPECT_NE(ParseDuration("10").error().message.find("missing unit"), std::string::npos);
}

TEST(LoadParseTarget, Http) {
  auto t = ParseTarget("http://127.0.0.1:8080");
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->kind, Target::Kind::kTcp);
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->ToString(), "http://127.0.0.1:8080");
  EXPECT_EQ(t->HostHeader(), "127.0.0.1:8080");

  EXPECT_EQ(ParseTarget("http://127.0.0.1:8080/")->port, 8080);
  EXPECT_EQ(ParseTarget("http://127.0.0.1")->port, 80);
  EXPECT_EQ(ParseTarget("http://localhost:9")->host, "127.0.0.1");
  EXPECT_EQ(ParseTarget("http://127.1.2.3:9")->host, "127.1.2.3");
  auto v6 = ParseTarget("http://[::1]:8080");
  ASSERT_TRUE(v6) << v6.error().message;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "http://[::1]:8080");
}

TEST(LoadParseTarget, Unix) {
  auto t = ParseTarget("unix:/run/kvd.sock");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind, Target::Kind::kUnix);
  EXPECT_EQ(t->path, "/run/kvd.sock");
  EXPECT_EQ(t->ToString(), "unix:/run/kvd.sock");
  EXPECT_FALSE(ParseTarget("unix:"));
  EXPECT_FALSE(ParseTarget("unix:/" + std::string(200, 'x')));
}

TEST(LoadParseTarget, RejectsBadOrRemote) {
  for (const char* bad : {"", "127.0.0.1:8080", "https://127.0.0.1:8443", "ftp://127.0.0.1", "http://", "http://:8080",
                          "http://127.0.0.1:", "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://127.0.0.1:80x",
                          "http://127.0.0.1:8080/kv", "http://example.com:80", "http://10.1.2.3:80",
                          "http://192.168.0.1:80", "http://[::1", "http://[2001:db8::1]:80"}) {
    auto t = ParseTarget(bad);
    ASSERT_FALSE(t) << bad;
    EXPECT_TRUE(t.error().Is(Errc::kInvalidArgument));
    EXPECT_FALSE(t.error().message.empty());
  }
  EXPECT_NE(ParseTarget("http://10.1.2.3:80").error().message.find("loopback"), std::string::npos);
}

TEST(LoadValidate, Ranges) {
  LoadOptions o;
  EXPECT_TRUE(Validate(o));
  auto bad = [](auto mutate) {
    LoadOptions x;
    mutate(x);
    return !Validate(x);
  };
  EXPECT_TRUE(bad([](LoadOptions& x) { x.connections = 0; }));
  EXPECT_TRUE(bad([](LoadOptions& x) { x.duration = Duration::zero(); }));
  EXPECT_TRUE(bad([](LoadOptions& x) { x.write_ratio = 1.5; }));
  EXPECT_TRUE(bad([](LoadOptions& x) { x.write_ratio = -0.1; }));
  EXPECT_TRUE(bad([](LoadOptions& x) { x.value_size = 0; }));
  EXPECT_TRUE(bad([](LoadOptions& x) { x.request_timeout = Duration::zero(); }));
  EXPECT_TRUE(bad([](LoadOptions& x) { x.verify_timeout = Duration::zero(); }));
  EXPECT_TRUE(bad([](LoadOptions& x) { x.rate_limit = -1; }));
  EXPECT_FALSE(bad([](LoadOptions& x) { x.write_ratio = 0; }));
  EXPECT_FALSE(bad([](LoadOptions& x) { x.write_ratio = 1; }));
}

}  // namespace
}  // namespace baton::load
