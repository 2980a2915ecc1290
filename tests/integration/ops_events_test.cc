// `baton events`, <runtime-dir>/events.jsonl, `baton metrics` and
// --metrics-listen against a real supervisor.
#include <regex>

#include "tests/integration/ops_util.h"

namespace baton::harness {
namespace {

std::vector<boost::json::object> ParseLines(const std::string& text) {
  std::vector<boost::json::object> out;
  for (const auto& l : Lines(text)) {
    boost::system::error_code ec;
    auto v = boost::json::parse(l, ec);
    EXPECT_FALSE(ec) << l;
    if (!ec && v.is_object()) out.push_back(v.as_object());
  }
  return out;
}

// Every line is a comment or `name{labels} value`.
bool LooksLikePrometheus(const std::string& text, std::string* bad) {
  const std::regex comment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  const std::regex sample(R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [-+]?([0-9.eE+-]+|Inf)$)");
  for (const auto& l : Lines(text)) {
    if (!std::regex_match(l, comment) && !std::regex_match(l, sample)) {
      *bad = l;
      return false;
    }
  }
  return true;
}

TEST(OpsEventsTest, EventsCarryPhaseTimingsInJsonAndInTheJournal) {
  Cluster c({{}, {}, {}});
  ASSERT_TRUE(c.Start());
  ASSERT_EQ(c.Upgrade().exit_code, 0);
  auto r = Baton({"events", "--runtime-dir", c.dir() + "/run", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto events = ParseLines(r.out);
  std::map<std::string, int64_t> phases;
  bool end = false;
  for (const auto& e : events) {
    EXPECT_TRUE(e.contains("ts_ms") && e.contains("level") && e.contains("event"));
    if (e.at("event").as_string() == "handoff.phase") {
      phases[std::string(e.at("phase").as_string())] = e.at("duration_us").to_number<int64_t>();
    }
    if (e.at("event").as_string() == "handoff.end") {
      end = true;
      EXPECT_EQ(e.at("outcome").as_string(), "committed");
    }
  }
  EXPECT_EQ(phases.size(), 7u) << r.out;
  EXPECT_TRUE(end);
  // The journal holds the same lines.
  const std::string journal = ReadAll(c.dir() + "/run/events.jsonl");
  for (const auto& l : Lines(r.out)) EXPECT_NE(journal.find(l), std::string::npos) << l;
  // Human form: one line per event, no JSON.
  auto h = Baton({"events", "--runtime-dir", c.dir() + "/run"});
  ASSERT_EQ(h.exit_code, 0);
  // (the old generation's exit may add events between the two calls)
  EXPECT_GE(Lines(h.out).size(), events.size());
  EXPECT_NE(h.out.find("handoff.phase"), std::string::npos);
  EXPECT_EQ(h.out.find("{\""), std::string::npos) << h.out;
}

TEST(OpsEventsTest, RollbackReasonsAreFieldsAndTheJournalOutlivesTheSupervisor) {
  Cluster c({{}, {}, {}});
  ASSERT_TRUE(c.Start());
  auto r = c.Upgrade(c.Script("dies", "exit 7"));
  ASSERT_EQ(r.exit_code, 3) << r.out;
  ASSERT_EQ(WIFEXITED(c.Stop()), true);
  auto e = Baton({"events", "--runtime-dir", c.dir() + "/run", "--json"});
  EXPECT_EQ(e.exit_code, 1);  // unreachable, but the journal is shown
  EXPECT_NE(e.err.find("showing " + c.dir() + "/run/events.jsonl"), std::string::npos) << e.err;
  bool rolled_back = false, child_exit = false;
  for (const auto& ev : ParseLines(e.out)) {
    if (ev.at("event").as_string() == "handoff.end") {
      rolled_back = ev.at("outcome").as_string() == "rolled_back" && !ev.at("reason").as_string().empty();
    }
    if (ev.at("event").as_string() == "child.exit" && ev.contains("how")) child_exit = true;
  }
  EXPECT_TRUE(rolled_back) << e.out;
  EXPECT_TRUE(child_exit) << e.out;
  EXPECT_NE(e.out.find("\"supervisor.stop\""), std::string::npos);
}

TEST(OpsEventsTest, FollowStreamsNewEvents) {
  Cluster c({{}, {}, {}});
  ASSERT_TRUE(c.Start());
  pid_t f = SpawnBackground({BinPath("baton"), "events", "--runtime-dir", c.dir() + "/run", "--follow", "--json"}, {},
                            c.dir() + "/follow.out", c.dir() + "/follow.err");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(c.Upgrade().exit_code, 0);
  bool seen = false;
  for (int i = 0; i < 250 && !seen; ++i) {
    seen = ReadAll(c.dir() + "/follow.out").find("\"handoff.end\"") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(seen) << ReadAll(c.dir() + "/follow.out");
  EXPECT_EQ(WaitFor(f, std::chrono::milliseconds(0)), -1);  // still following
  ::kill(f, SIGKILL);
  WaitFor(f, std::chrono::seconds(5));
}

TEST(OpsEventsTest, MetricsOverTheAdminSocketAndHttp) {
  const int mport = FreePort();
  Cluster c({{}, {"--metrics-listen", "127.0.0.1:" + std::to_string(mport)}, {}});
  ASSERT_TRUE(c.Start());
  ASSERT_EQ(c.Upgrade().exit_code, 0);
  EXPECT_EQ(c.Upgrade(c.dir() + "/missing").exit_code, 4);
  auto m = Baton({"metrics", "--runtime-dir", c.dir() + "/run"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  std::string bad;
  EXPECT_TRUE(LooksLikePrometheus(m.out, &bad)) << bad;
  EXPECT_NE(m.out.find("baton_handoffs_total{outcome=\"committed\"} 1\n"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("baton_handoffs_total{outcome=\"refused\"} 1\n"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("baton_generation 2\n"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("baton_handoff_phase_seconds_count{phase=\"warm\"} 1\n"), std::string::npos) << m.out;
  EXPECT_NE(m.out.find("baton_restarts_total 0\n"), std::string::npos);
  EXPECT_NE(m.out.find("baton_listener_info{name=\"http\",transport=\"tcp\",address=\"tcp://127.0.0.1:" +
                       std::to_string(c.port()) + "\"} 1\n"),
            std::string::npos)
      << m.out;
  EXPECT_EQ(m.out.find("baton_last_handoff_timestamp_seconds 0.000"), std::string::npos);
  const std::string http = HttpGet(mport, "/metrics");
  EXPECT_NE(http.find("HTTP/1.1 200"), std::string::npos) << http;
  EXPECT_NE(http.find("text/plain; version=0.0.4"), std::string::npos) << http;
  const auto body = http.substr(http.find("\r\n\r\n") + 4);
  EXPECT_TRUE(LooksLikePrometheus(body, &bad)) << bad;
  EXPECT_NE(body.find("baton_handoffs_total{outcome=\"committed\"} 1\n"), std::string::npos);
  EXPECT_NE(HttpGet(mport, "/other").find("404"), std::string::npos);
}

TEST(OpsEventsTest, BadMetricsListenIsAUsageError) {
  const TempDir tmp("ev");
  const std::string& dir = tmp.path();
  auto r = Baton({"supervise", "--listen", "http=tcp://127.0.0.1:0", "--data-dir", dir, "--runtime-dir", dir + "/run",
                  "--metrics-listen", "localhost", "--", BinPath("kvd")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--metrics-listen 'localhost'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace baton::harness
