// `baton check-config` and `baton supervise --config`: errors name the line
// and key, flags override the file, a config alone runs the service.
#include "tests/integration/ops_util.h"

namespace baton::harness {
namespace {

std::string GoodConfig(const std::string& dir, int port) {
  return "name = \"kvd\"\n"
         "binary = \"" + BinPath("kvd") + "\"\n"
         "data_dir = \"" + dir + "/data\"\n"
         "runtime_dir = \"" + dir + "/run\"\n"
         "[listeners]\n"
         "http = \"tcp://127.0.0.1:" + std::to_string(port) + "\"\n"
         "[timeouts]\n"
         "warm = \"30s\"\n"
         "drain = \"5s\"\n";
}

TEST(OpsConfigTest, CheckConfigAcceptsAGoodFile) {
  const TempDir tmp("cfg");
  const std::string& dir = tmp.path();
  auto r = Baton({"check-config", WriteFile(dir + "/kvd.toml", GoodConfig(dir, 8080))});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("kvd.toml: ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("listener     http = tcp://127.0.0.1:8080"), std::string::npos) << r.out;
}

TEST(OpsConfigTest, CheckConfigNamesTheLineAndKeyOfEveryMistake) {
  const TempDir tmp("cfg");
  const std::string& dir = tmp.path();
  const std::string good = GoodConfig(dir, 8080);
  struct Case {
    std::string text, expect;
  } cases[] = {
      {good + "drian = \"5s\"\n", ":10: timeouts.drian: unknown key"},
      {good + "hello = \"fast\"\n", ":10: timeouts.hello: "},
      {"nmae = \"kvd\"\n", ":1: nmae: unknown key"},
      {"binary = \"" + dir + "/missing\"\ndata_dir = \"/x\"\n[listeners]\nh = \"tcp://127.0.0.1:1\"\n",
       "binary " + dir + "/missing: No such file"},
      {"binary = \"" + BinPath("kvd") + "\"\ndata_dir = \"/x\"\n", "no listener"},
  };
  for (const auto& c : cases) {
    const std::string path = WriteFile(dir + "/bad.toml", c.text);
    auto r = Baton({"check-config", path});
    EXPECT_EQ(r.exit_code, 2) << c.text;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << "want: " << c.expect << "\ngot: " << r.err;
    EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
  }
  EXPECT_EQ(Baton({"check-config", dir + "/nope.toml"}).exit_code, 2);
}

TEST(OpsConfigTest, SuperviseWithABadConfigExitsTwoBeforeStartingAnything) {
  const TempDir tmp("cfg");
  const std::string& dir = tmp.path();
  auto r = Baton({"supervise", "--config", WriteFile(dir + "/bad.toml", "[timeouts]\nwarm = 3\n")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("bad.toml:2: timeouts.warm"), std::string::npos) << r.err;
  // A listener that must come from systemd, without socket activation.
  const std::string cfg = "binary = \"" + BinPath("kvd") + "\"\ndata_dir = \"" + dir + "\"\nruntime_dir = \"" + dir +
                          "/run\"\n[listeners]\nhttp = \"systemd\"\n";
  auto s = Baton({"supervise", "--config", WriteFile(dir + "/sd.toml", cfg)});
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_NE(s.err.find("configured as \"systemd\""), std::string::npos) << s.err;
}

TEST(OpsConfigTest, AConfigFileAloneRunsTheServiceAndFlagsOverrideIt) {
  const TempDir tmp("cfg");
  const std::string& dir = tmp.path();
  ::mkdir((dir + "/data").c_str(), 0755);
  const int file_port = FreePort();
  const std::string cfg = WriteFile(dir + "/kvd.toml", GoodConfig(dir, file_port));
  pid_t sup = SpawnBackground({BinPath("baton"), "supervise", "--config", cfg}, {}, dir + "/out", dir + "/err");
  bool up = false;
  for (int i = 0; i < 500 && !up; ++i) {
    up = HttpGet(file_port, "/healthz").find(" 200 ") != std::string::npos;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(up) << ReadAll(dir + "/err");
  auto st = Baton({"status", "--runtime-dir", dir + "/run", "--json"});
  EXPECT_EQ(st.exit_code, 0);
  ::kill(sup, SIGTERM);
  EXPECT_GE(WaitFor(sup, std::chrono::seconds(30)), 0);

  // The same file with --listen and --runtime-dir on the command line: the
  // flags win.
  Cluster c({{}, {"--config", cfg}, {}});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  EXPECT_EQ(HttpGet(file_port, "/healthz"), "");  // the file's port is not bound
  EXPECT_EQ(c.Upgrade().exit_code, 0);
}

}  // namespace
}  // namespace baton::harness
