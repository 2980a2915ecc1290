// The probation keys of the config file (docs/operations.md §3, §4a).
#include <gtest/gtest.h>

#include "supervisor/ops/config.h"

namespace baton::supervisor {
namespace {

TEST(ProbationConfigTest, AWindowAloneOrAFullTable) {
  auto short_form = ParseConfig("probation = \"30s\"\n", "p.toml");
  ASSERT_TRUE(short_form) << short_form.error().message;
  EXPECT_EQ(short_form->probation.window, seconds(30));
  EXPECT_FALSE(short_form->probation.probe_enabled);
  EXPECT_EQ(short_form->probation.keep_binaries, 2u);

  auto table = ParseConfig(
      "[probation]\nwindow = \"1m\"\nprobe = \"http\"\nprobe_address = \"127.0.0.1:9000\"\nprobe_path = \"/ok\"\n"
      "probe_interval = \"250ms\"\nprobe_failures = 4\nkeep_binaries = 3\ncrash_loop_limit = 7\n"
      "crash_loop_window = \"2m\"\ncrash_loop_revert = false\n",
      "p.toml");
  ASSERT_TRUE(table) << table.error().message;
  const ProbationOptions& p = table->probation;
  EXPECT_EQ(p.window, seconds(60));
  EXPECT_TRUE(p.probe_enabled);
  EXPECT_EQ(p.probe.kind, ProbeSpec::Kind::kHttp);
  EXPECT_EQ(p.probe.host, "127.0.0.1");
  EXPECT_EQ(p.probe.port, 9000);
  EXPECT_EQ(p.probe.path, "/ok");
  EXPECT_EQ(p.probe_interval, milliseconds(250));
  EXPECT_EQ(p.probe_failures, 4u);
  EXPECT_EQ(p.keep_binaries, 3u);
  EXPECT_EQ(p.crash_loop_limit, 7u);
  EXPECT_EQ(p.crash_loop_window, seconds(120));
  EXPECT_FALSE(p.crash_loop_revert);

  auto off = ParseConfig("probation = \"0\"\n", "p.toml");
  ASSERT_TRUE(off) << off.error().message;
  EXPECT_EQ(off->probation.window, Duration::zero());
}

TEST(ProbationConfigTest, BadValuesNameTheLineAndKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"probation = \"soon\"\n", "p.toml:1: probation: "},
      {"[probation]\nprobe = \"ping\"\n", "p.toml:2: probation.probe: 'ping': expected \"http\", \"tcp\" or \"exec\""},
      {"[probation]\nprobe_failures = 0\n", "p.toml:2: probation.probe_failures: 0 is out of range (1 .. 1000)"},
      {"[probation]\nkeep_binaries = 40\n", "p.toml:2: probation.keep_binaries: 40 is out of range (1 .. 16)"},
      {"[probation]\nprobe_address = \"localhost\"\n", "p.toml:2: probation.probe_address: 'localhost': expected"},
      {"[probation]\nwindw = \"1s\"\n", "p.toml:2: probation.windw: unknown key"},
  };
  for (const auto& [text, want] : cases) {
    auto c = ParseConfig(text, "p.toml");
    ASSERT_FALSE(c) << text;
    EXPECT_EQ(c.error().message.rfind(want, 0), 0u) << "got: " << c.error().message << "\nwant: " << want;
  }
}

TEST(ProbationConfigTest, AProbeNeedsItsTarget) {
  auto c = ParseConfig("binary = \"/bin/true\"\ndata_dir = \"/tmp\"\n[listeners]\nhttp = \"tcp://127.0.0.1:8080\"\n"
                       "[probation]\nprobe = \"exec\"\n",
                       "p.toml");
  ASSERT_TRUE(c) << c.error().message;
  auto st = ValidateConfig(*c);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("probation.probe_command"), std::string::npos) << st.error().message;
  c->probation.probe.kind = ProbeSpec::Kind::kTcp;
  c->probation.probe.host = "127.0.0.1";
  c->probation.probe.port = 8080;  // the supervisor's own listener: always connects
  st = ValidateConfig(*c);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("always succeeds"), std::string::npos) << st.error().message;
}

}  // namespace
}  // namespace baton::supervisor
