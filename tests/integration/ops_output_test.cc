// What `baton upgrade` prints: live lines on a terminal, plain lines
// otherwise, one JSON object with --json; `baton abort` rolls back.
#include "tests/integration/ops_util.h"

namespace baton::harness {
namespace {

constexpr const char* kPhases[] = {"spawn", "hello", "warm", "drain", "seal", "begin", "commit"};

TEST(OpsOutputTest, OnATerminalEveryPhaseGetsALiveLineThenTheVerdict) {
  Cluster c({{"--warm-delay-ms", "400"}, {}, {}});  // long enough for the clock to tick
  ASSERT_TRUE(c.Start());
  auto r = RunOnPty({BinPath("baton"), "upgrade", "--runtime-dir", c.dir() + "/run"}, std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  for (const char* p : kPhases) {
    EXPECT_NE(r.out.find(std::string("  ") + p), std::string::npos) << p << "\n" << r.out;
  }
  EXPECT_NE(r.out.find(" s   ..."), std::string::npos) << r.out;  // the ticking clock
  EXPECT_NE(r.out.find("\r\x1b[K"), std::string::npos) << r.out;        // redrawn in place
  EXPECT_NE(r.out.find("done"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\x1b[32mcommitted: pid "), std::string::npos) << r.out;
}

TEST(OpsOutputTest, NotATerminalPlainLinesOnly) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  auto r = Baton({"upgrade", "--runtime-dir", c.dir() + "/run"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  const auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 8u) << r.out;
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(lines[i].rfind(kPhases[i], 0), 0u) << lines[i];
    EXPECT_NE(lines[i].find(" ms"), std::string::npos) << lines[i];
  }
  EXPECT_EQ(lines[7].rfind("committed: pid ", 0), 0u) << lines[7];
  // --quiet: nothing at all.
  auto q = Baton({"upgrade", "--runtime-dir", c.dir() + "/run", "--quiet"});
  EXPECT_EQ(q.exit_code, 0);
  EXPECT_EQ(q.out, "");
}

TEST(OpsOutputTest, JsonCarriesOutcomeExitCodeAndEveryPhaseTiming) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  auto r = c.Upgrade();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(r.json.is_object()) << r.out;
  EXPECT_EQ(Outcome(r), "committed");
  EXPECT_EQ(JInt(r.json, {"exit_code"}), 0);
  const auto& phases = r.json.at("phases").as_array();
  ASSERT_EQ(phases.size(), 7u);
  double sum = 0;
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(phases[i].at("phase").as_string(), kPhases[i]);
    const double ms = phases[i].at("ms").to_number<double>();
    EXPECT_GE(ms, 0.0);
    EXPECT_EQ(r.json.at("phases_ms").at(kPhases[i]).to_number<double>(), ms);
    sum += ms;
  }
  EXPECT_LE(sum, r.json.at("total_ms").to_number<double>() + 1.0);
  // A refusal is JSON too, with exit code 4.
  auto bad = c.Upgrade(c.dir() + "/no-such-binary");
  EXPECT_EQ(bad.exit_code, 4);
  EXPECT_EQ(Outcome(bad), "refused");
  EXPECT_EQ(JInt(bad.json, {"exit_code"}), 4);
}

TEST(OpsOutputTest, AbortRollsBackTheRunningHandoff) {
  Cluster c({{"--warm-delay-ms", "20000"}, {}, {}});
  ASSERT_TRUE(c.Start());
  const pid_t old_pid = c.IncumbentPid();
  pid_t up = SpawnBackground({BinPath("baton"), "upgrade", "--runtime-dir", c.dir() + "/run", "--json"}, {},
                             c.dir() + "/up.out", c.dir() + "/up.err");
  bool running = false;
  for (int i = 0; i < 500 && !running; ++i) {
    auto s = c.Status();
    running = s.json.is_object() && !s.json.at("handoff_in_progress").as_string().empty();
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(running);
  const auto t0 = std::chrono::steady_clock::now();
  auto a = Baton({"abort", "--runtime-dir", c.dir() + "/run"});
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_NE(a.out.find("abort requested for handoff"), std::string::npos) << a.out;
  const int status = WaitFor(up, std::chrono::seconds(30));
  ASSERT_GE(status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));  // not the 20 s warm
  EXPECT_EQ(WEXITSTATUS(status), 3) << ReadAll(c.dir() + "/up.out");
  EXPECT_NE(ReadAll(c.dir() + "/up.out").find("baton abort"), std::string::npos) << ReadAll(c.dir() + "/up.out");
  EXPECT_EQ(c.IncumbentPid(), old_pid);
  EXPECT_TRUE(c.Healthy());
  auto none = Baton({"abort", "--runtime-dir", c.dir() + "/run"});
  EXPECT_EQ(none.exit_code, 0);
  EXPECT_NE(none.out.find("no handoff in progress"), std::string::npos);
}

}  // namespace
}  // namespace baton::harness
