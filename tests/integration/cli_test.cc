// The `baton` command's own contract: exit codes and clear errors for bad
// input, before any supervisor is involved.
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

CommandResult Baton(std::vector<std::string> args) {
  args.insert(args.begin(), BinPath("baton"));
  return RunCommand(args, std::chrono::seconds(20));
}

TEST(CliTest, UpgradeWithoutASupervisorExitsOne) {
  const TempDir tmp("cli");
  const std::string& dir = tmp.path();
  auto r = Baton({"upgrade", "--runtime-dir", dir});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot reach the supervisor at " + dir + "/baton.sock"), std::string::npos) << r.err;
  EXPECT_EQ(Baton({"status", "--runtime-dir", dir}).exit_code, 1);
}

TEST(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(Baton({}).exit_code, 2);
  EXPECT_EQ(Baton({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(Baton({"upgrade", "--no-such-flag"}).exit_code, 2);
  const TempDir tmp("cli");
  const std::string& dir = tmp.path();
  auto bad_listen = Baton({"supervise", "--listen", "http=ftp://x:1", "--data-dir", dir, "--", BinPath("kvd")});
  EXPECT_EQ(bad_listen.exit_code, 2);
  EXPECT_NE(bad_listen.err.find("unknown scheme"), std::string::npos) << bad_listen.err;
  auto bad_timeout = Baton({"supervise", "--listen", "http=tcp://127.0.0.1:0", "--data-dir", dir, "--timeout",
                            "warm=soon", "--", BinPath("kvd")});
  EXPECT_EQ(bad_timeout.exit_code, 2);
  EXPECT_NE(bad_timeout.err.find("warm=soon"), std::string::npos) << bad_timeout.err;
}

TEST(CliTest, SuperviseRefusesAMissingBinaryOrDataDir) {
  const TempDir tmp("cli");
  const std::string& dir = tmp.path();
  auto no_bin = Baton({"supervise", "--listen", "http=tcp://127.0.0.1:0", "--data-dir", dir, "--runtime-dir",
                       dir + "/run", "--", dir + "/no-such-daemon"});
  EXPECT_NE(no_bin.exit_code, 0);
  EXPECT_NE(no_bin.err.find("no-such-daemon"), std::string::npos) << no_bin.err;
  auto no_data = Baton({"supervise", "--listen", "http=tcp://127.0.0.1:0", "--data-dir", dir + "/missing",
                        "--runtime-dir", dir + "/run", "--", BinPath("kvd")});
  EXPECT_EQ(no_data.exit_code, 2);
  EXPECT_NE(no_data.err.find("not an existing directory"), std::string::npos) << no_data.err;
}

TEST(CliTest, UpgradeHelpDocumentsEveryExitCode) {
  auto r = Baton({"upgrade", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* line : {"0  ok", "1  the supervisor is unreachable", "2  usage error", "3  upgrade rolled back",
                           "4  upgrade refused", "5  upgrade failed"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  }
}

TEST(CliTest, VersionAndStatusJsonParse) {
  auto v = Baton({"version", "--json"});
  ASSERT_EQ(v.exit_code, 0);
  ASSERT_TRUE(v.json.is_object()) << v.out;
  EXPECT_EQ(JInt(v.json, {"protocol_min"}), 1);
  Cluster c({});
  ASSERT_TRUE(c.Start());
  ASSERT_EQ(c.Upgrade().exit_code, 0);
  auto s = c.Status();
  ASSERT_TRUE(s.json.is_object()) << s.out;
  EXPECT_EQ(JInt(s.json, {"generation"}), 2);
  EXPECT_EQ(JInt(s.json, {"incumbent_pid"}), JInt(s.json, {"last_handoff", "new_pid"}));
  EXPECT_EQ(std::string(s.json.at("last_handoff").at("outcome").as_string()), "committed");
  EXPECT_EQ(s.json.at("last_handoff").at("phases_ms").as_object().size(), 7u);
}

}  // namespace
}  // namespace baton::harness
