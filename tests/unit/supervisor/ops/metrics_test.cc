#include "supervisor/ops/metrics.h"

#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

namespace baton::supervisor {
namespace {

Event Ev(const char* name) { return MakeEvent(Level::kInfo, name, "x"); }

// A strict-enough reader of the Prometheus text format (0.0.4): every line is
// a comment (# HELP / # TYPE with a known type) or `name{labels} value`; every
// sample belongs to a declared family. Returns samples by full series name.
std::map<std::string, double> ParseExposition(const std::string& text, std::string* error) {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*)?\})? ([-+]?[0-9.eE+-]+|\+Inf|NaN)$)");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help)) continue;
    if (std::regex_match(line, m, type)) {
      types[m[1]] = m[2];
      continue;
    }
    if (!std::regex_match(line, m, sample)) {
      *error = "bad line: " + line;
      return {};
    }
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (!types.count(family) && family.size() > s.size() && family.compare(family.size() - s.size(), s.size(), s) == 0) {
        family = family.substr(0, family.size() - s.size());
      }
    }
    if (!types.count(family)) {
      *error = "sample without # TYPE: " + line;
      return {};
    }
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

TEST(MetricsTest, CountsHandoffsPhasesGenerationsAndRestarts) {
  Metrics m("kvd");
  m.OnEvent(Ev("child.spawn").With("role", std::string("cold")), 1000);
  m.OnEvent(Ev("handoff.start"), 2000);
  m.OnEvent(Ev("child.spawn").With("role", std::string("successor")), 2000);
  m.OnEvent(Ev("handoff.phase").With("phase", std::string("warm")).With("duration_us", int64_t{30000}), 2100);
  m.OnEvent(Ev("handoff.phase").With("phase", std::string("seal")).With("duration_us", int64_t{2000}), 2200);
  std::string err;
  auto during = ParseExposition(m.Render(), &err);
  ASSERT_TRUE(err.empty()) << err;
  EXPECT_EQ(during["baton_handoff_in_progress"], 1);
  m.OnEvent(Ev("handoff.end").With("outcome", std::string("committed")).With("total_us", int64_t{400000}), 1700000000123);
  m.OnEvent(Ev("handoff.end").With("outcome", std::string("rolled_back")).With("total_us", int64_t{7000000}), 1700000000999);
  m.OnEvent(Ev("handoff.refused").With("reason", std::string("busy")), 3000);
  m.OnEvent(Ev("child.exit"), 3000);
  m.OnEvent(Ev("child.restart"), 3000);
  m.OnEvent(Ev("child.spawn").With("role", std::string("cold")), 3000);

  const std::string text = m.Render();
  auto s = ParseExposition(text, &err);
  ASSERT_TRUE(err.empty()) << err << "\n" << text;
  EXPECT_EQ(s["baton_info{service=\"kvd\"}"], 1);
  EXPECT_EQ(s["baton_handoffs_total{outcome=\"committed\"}"], 1);
  EXPECT_EQ(s["baton_handoffs_total{outcome=\"rolled_back\"}"], 1);
  EXPECT_EQ(s["baton_handoffs_total{outcome=\"refused\"}"], 1);
  EXPECT_EQ(s["baton_handoffs_total{outcome=\"failed\"}"], 0);
  EXPECT_EQ(s["baton_generation"], 3);  // cold, committed, cold again after the restart
  EXPECT_EQ(s["baton_restarts_total"], 1);
  EXPECT_EQ(s["baton_child_exits_total"], 1);
  EXPECT_EQ(s["baton_handoff_in_progress"], 0);
  EXPECT_DOUBLE_EQ(s["baton_last_handoff_timestamp_seconds"], 1700000000.999);
  // warm took 30 ms: not in the 25 ms bucket, in the 50 ms one and above.
  EXPECT_EQ(s["baton_handoff_phase_seconds_bucket{phase=\"warm\",le=\"0.025\"}"], 0);
  EXPECT_EQ(s["baton_handoff_phase_seconds_bucket{phase=\"warm\",le=\"0.05\"}"], 1);
  EXPECT_EQ(s["baton_handoff_phase_seconds_bucket{phase=\"warm\",le=\"+Inf\"}"], 1);
  EXPECT_DOUBLE_EQ(s["baton_handoff_phase_seconds_sum{phase=\"warm\"}"], 0.03);
  EXPECT_EQ(s["baton_handoff_phase_seconds_count{phase=\"seal\"}"], 1);
  EXPECT_EQ(s["baton_handoff_seconds_count"], 2);
  EXPECT_EQ(s["baton_handoff_seconds_bucket{le=\"5\"}"], 1);
  EXPECT_EQ(s["baton_handoff_seconds_bucket{le=\"10\"}"], 2);
}

TEST(MetricsTest, EachListenerIsAnInfoSeries) {
  Metrics m("kvd");
  m.SetListeners({"http=tcp://127.0.0.1:8080", "dns=udp://[::1]:5353", "admin=unix:/run/kvd/a\"b.sock"});
  std::string err;
  auto s = ParseExposition(m.Render(), &err);
  ASSERT_TRUE(err.empty()) << err;
  EXPECT_EQ(s["baton_listener_info{name=\"http\",transport=\"tcp\",address=\"tcp://127.0.0.1:8080\"}"], 1);
  EXPECT_EQ(s["baton_listener_info{name=\"dns\",transport=\"udp\",address=\"udp://[::1]:5353\"}"], 1);
  EXPECT_EQ(s["baton_listener_info{name=\"admin\",transport=\"unix\",address=\"unix:/run/kvd/a\\\"b.sock\"}"], 1);
}

TEST(MetricsTest, EmptyMetricsStillParse) {
  std::string err;
  auto s = ParseExposition(Metrics("we\"ird\\name").Render(), &err);
  ASSERT_TRUE(err.empty()) << err;
  EXPECT_EQ(s["baton_generation"], 0);
  EXPECT_EQ(s["baton_last_handoff_timestamp_seconds"], 0);
  EXPECT_EQ(s["baton_info{service=\"we\\\"ird\\\\name\"}"], 1);
}

}  // namespace
}  // namespace baton::supervisor
