#include "tools/baton/progress.h"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace baton::cli {
namespace {

v1::PhaseTiming Phase(const char* name, uint64_t us) {
  v1::PhaseTiming p;
  p.set_phase(name);
  p.set_duration_us(us);
  return p;
}

v1::UpgradeResult Result(v1::Outcome o, const char* reason) {
  v1::UpgradeResult r;
  r.set_outcome(o);
  r.set_reason(reason);
  r.set_handoff_id("h1");
  r.set_old_pid(10);
  r.set_new_pid(20);
  r.set_total_us(123456);
  *r.add_phases() = Phase("spawn", 1500);
  *r.add_phases() = Phase("warm", 20000);
  return r;
}

TEST(ProgressViewTest, PlainLinesWithoutATerminal) {
  ProgressView v(false);
  EXPECT_EQ(v.Begin("to /x"), "");
  EXPECT_EQ(v.Tick(std::chrono::milliseconds(500)), "");
  EXPECT_EQ(v.OnPhase(Phase("spawn", 1500)), "spawn         1.500 ms\n");
  EXPECT_EQ(v.Finish(Result(v1::ROLLED_BACK, "successor died")),
            "rolled back: successor died (pid 10 still serves), 123.5 ms\n");
  EXPECT_EQ(v.Finish(Result(v1::COMMITTED, "")), "committed: pid 20 serves (was pid 10), 123.5 ms\n");
  EXPECT_EQ(v.Finish(Result(v1::REFUSED, "busy")), "refused, nothing changed: busy\n");
  EXPECT_NE(v.Finish(Result(v1::FAILED, "x")).find("FAILED, state uncertain"), std::string::npos);
}

TEST(ProgressViewTest, LiveLinesOnATerminal) {
  ProgressView v(true);
  EXPECT_EQ(v.Begin("to /x"), "upgrading to /x\n");
  // Before any phase: the spawn clock ticks in place.
  EXPECT_EQ(v.Tick(std::chrono::milliseconds(200)), "\r\x1b[K  spawn           0.2 s   ...");
  // The finished phase replaces the ticking line.
  EXPECT_EQ(v.OnPhase(Phase("spawn", 1500)), "\r\x1b[K  spawn         1.500 ms  done\n");
  EXPECT_EQ(v.Tick(std::chrono::milliseconds(1300)), "\r\x1b[K  hello           1.3 s   ...");
  EXPECT_EQ(v.OnPhase(Phase("hello", 2000)), "\r\x1b[K  hello         2.000 ms  done\n");
  const std::string end = v.Finish(Result(v1::COMMITTED, ""));
  EXPECT_EQ(end, "\x1b[32mcommitted: pid 20 serves (was pid 10), 123.5 ms\x1b[0m\n");
  EXPECT_EQ(ProgressView(true).Finish(Result(v1::ROLLED_BACK, "r")).find("\x1b[31m"), 0u);
}

TEST(ResultJsonTest, ParsesAndCarriesThePhaseTimings) {
  auto v = boost::json::parse(ResultJson(Result(v1::ROLLED_BACK, "quote \" and \n newline")));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("outcome").as_string(), "rolled_back");
  EXPECT_EQ(o.at("exit_code").as_int64(), 3);
  EXPECT_EQ(o.at("reason").as_string(), "quote \" and \n newline");
  EXPECT_EQ(o.at("old_pid").as_int64(), 10);
  EXPECT_DOUBLE_EQ(o.at("phases_ms").at("warm").as_double(), 20.0);
  ASSERT_EQ(o.at("phases").as_array().size(), 2u);
  EXPECT_EQ(o.at("phases").as_array()[0].at("phase").as_string(), "spawn");
  EXPECT_DOUBLE_EQ(o.at("total_ms").as_double(), 123.456);
}

TEST(ExitCodeTest, OneCodePerOutcome) {
  EXPECT_EQ(ExitCodeFor(v1::COMMITTED), 0);
  EXPECT_EQ(ExitCodeFor(v1::ROLLED_BACK), 3);
  EXPECT_EQ(ExitCodeFor(v1::REFUSED), 4);
  EXPECT_EQ(ExitCodeFor(v1::FAILED), 5);
  EXPECT_EQ(ExitCodeFor(v1::OUTCOME_UNSPECIFIED), 5);
}

}  // namespace
}  // namespace baton::cli
