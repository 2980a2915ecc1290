// Security of the operator surface: the binary allow-list, the sanitized
// child environment, the admin uid allow-list from the config, and the
// signals (SIGTERM drains and exits 0, SIGHUP upgrades).
#include "tests/integration/ops_util.h"

namespace baton::harness {
namespace {

std::string Canonical(const std::string& p) {
  char buf[4096];
  return ::realpath(p.c_str(), buf) != nullptr ? buf : p;
}

TEST(OpsSecurityTest, UpgradesMayOnlyExecAllowedBinaries) {
  Cluster c({{}, {"--allow-binary", Canonical(BinPath("kvd"))}, {}});
  ASSERT_TRUE(c.Start());
  // A copy elsewhere is refused, even though it is the same program.
  const std::string copy = c.Script("kvd-copy", "exec " + BinPath("kvd") + " \"$@\"");
  auto r = c.Upgrade(copy);
  EXPECT_EQ(r.exit_code, 4) << r.out;
  EXPECT_NE(r.out.find("not in allowed_binaries"), std::string::npos) << r.out;
  // A symlink to the allowed binary is fine, and the canonical path is what runs.
  const std::string link = c.dir() + "/kvd-link";
  ASSERT_EQ(::symlink(BinPath("kvd").c_str(), link.c_str()), 0);
  auto ok = c.Upgrade(link);
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  auto s = c.Status();
  EXPECT_EQ(std::string(s.json.at("binary").as_string()), Canonical(BinPath("kvd")));
  // A symlink pointing outside is refused by its target, not its name.
  const std::string sneaky = c.dir() + "/sneaky";
  ASSERT_EQ(::symlink(copy.c_str(), sneaky.c_str()), 0);
  EXPECT_EQ(c.Upgrade(sneaky).exit_code, 4);
}

TEST(OpsSecurityTest, ChildrenGetASanitizedEnvironment) {
  const TempDir tmp("sec");
  const std::string& dir = tmp.path();
  const std::string cfg = WriteFile(dir + "/c.toml",
                                    "pass_environment = [\"KVD_PASSED\"]\n[environment]\nKVD_MODE = \"test\"\n");
  Cluster c({{}, {"--config", cfg}, {"LD_PRELOAD=", "DEPLOY_SECRET=hunter2", "KVD_PASSED=yes", "TZ=UTC"}});
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const std::string env = ProcEnviron(c.IncumbentPid());
  EXPECT_EQ(env.find("DEPLOY_SECRET"), std::string::npos) << env;
  EXPECT_EQ(env.find("LD_PRELOAD"), std::string::npos) << env;
  EXPECT_NE(env.find("KVD_PASSED=yes\n"), std::string::npos) << env;
  EXPECT_NE(env.find("KVD_MODE=test\n"), std::string::npos) << env;
  EXPECT_NE(env.find("TZ=UTC\n"), std::string::npos) << env;
  EXPECT_NE(env.find("BATON_DATA_DIR="), std::string::npos) << env;
}

TEST(OpsSecurityTest, AdminUidsFromTheConfigAreAllowed) {
  if (::geteuid() != 0) GTEST_FAIL() << "this test needs root to act as another uid";
  const TempDir tmp("sec");
  const std::string& dir = tmp.path();
  const std::string cfg = WriteFile(dir + "/c.toml", "admin_uids = [65534]\n");
  Cluster c({{}, {"--config", cfg}, {}});
  ASSERT_TRUE(c.Start());
  ASSERT_EQ(::chmod(c.dir().c_str(), 0755), 0);
  ASSERT_EQ(::chmod((c.dir() + "/run").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((c.dir() + "/run/baton.sock").c_str(), 0666), 0);
  RunOptions opts;
  opts.in_child = [] {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(90);
  };
  auto r = RunProgram({BinPath("baton"), "status", "--runtime-dir", c.dir() + "/run", "--json"}, opts);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"generation\":1"), std::string::npos) << r.out;
}

TEST(OpsSecurityTest, SigtermDrainsTheServiceAndExitsZero) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const pid_t kvd = c.IncumbentPid();
  const std::string journal = c.dir() + "/run/events.jsonl";
  const int status = c.Stop();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string events = ReadAll(journal);
  EXPECT_NE(events.find("\"supervisor.stop\""), std::string::npos) << events;
  // The daemon drained and exited by itself: status 0, not a SIGKILL.
  EXPECT_NE(events.find("\"pid\":" + std::to_string(kvd) + ",\"how\":\"exited with status 0\""), std::string::npos)
      << events;
}

TEST(OpsSecurityTest, SighupUpgradesToTheConfiguredBinary) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const pid_t old_pid = c.IncumbentPid();
  ASSERT_EQ(::kill(c.supervisor_pid(), SIGHUP), 0);
  bool committed = false;
  for (int i = 0; i < 500 && !committed; ++i) {
    auto s = c.Status();
    committed = s.json.is_object() && s.json.at("last_handoff").is_object() &&
                s.json.at("last_handoff").at("outcome").as_string() == "committed";
    if (!committed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(committed) << c.SupervisorLog();
  EXPECT_NE(c.IncumbentPid(), old_pid);
  EXPECT_TRUE(c.Healthy());
}

TEST(OpsSecurityTest, SighupRereadsTheBinaryFromTheConfigFile) {
  const TempDir tmp("hup");
  const std::string& dir = tmp.path();
  ::mkdir((dir + "/data").c_str(), 0755);
  const int port = FreePort();
  auto config = [&](const std::string& binary) {
    return "binary = \"" + binary + "\"\ndata_dir = \"" + dir + "/data\"\nruntime_dir = \"" + dir +
           "/run\"\n[listeners]\nhttp = \"tcp://127.0.0.1:" + std::to_string(port) + "\"\n";
  };
  const std::string cfg = WriteFile(dir + "/kvd.toml", config(BinPath("kvd")));
  const std::string v2 = dir + "/kvd-v2";
  ASSERT_EQ(::symlink(BinPath("kvd").c_str(), v2.c_str()), 0);
  pid_t sup = SpawnBackground({BinPath("baton"), "supervise", "--config", cfg}, {}, dir + "/out", dir + "/err");
  auto status = [&] { return Baton({"status", "--runtime-dir", dir + "/run", "--json"}); };
  auto wait_binary = [&](const std::string& want) {
    for (int i = 0; i < 500; ++i) {
      auto s = status();
      if (s.json.is_object() && s.json.at("binary").as_string() == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  ASSERT_TRUE(wait_binary(BinPath("kvd"))) << ReadAll(dir + "/err");
  // Status names the binary before the first generation serves; an upgrade
  // needs it serving.
  bool serving = false;
  for (int i = 0; i < 500 && !serving; ++i) {
    serving = HttpGet(port, "/healthz").find(" 200 ") != std::string::npos;
    if (!serving) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(serving) << ReadAll(dir + "/err");
  // A broken config: SIGHUP changes nothing and says why.
  WriteFile(cfg, "binary = 3\n");
  ASSERT_EQ(::kill(sup, SIGHUP), 0);
  bool said = false;
  for (int i = 0; i < 250 && !said; ++i) {
    said = ReadAll(dir + "/err").find("SIGHUP: no upgrade: " + cfg + ":1: binary") != std::string::npos;
    if (!said) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(said) << ReadAll(dir + "/err");
  EXPECT_EQ(JInt(status().json, {"generation"}), 1);
  // The config names a new release: SIGHUP hands over to it.
  WriteFile(cfg, config(v2));
  ASSERT_EQ(::kill(sup, SIGHUP), 0);
  EXPECT_TRUE(wait_binary(v2)) << ReadAll(dir + "/err");
  EXPECT_EQ(JInt(status().json, {"generation"}), 2);
  EXPECT_NE(HttpGet(port, "/healthz").find(" 200 "), std::string::npos);
  ::kill(sup, SIGTERM);
  EXPECT_GE(WaitFor(sup, std::chrono::seconds(30)), 0);
  ::kill(-sup, SIGKILL);
}

}  // namespace
}  // namespace baton::harness
