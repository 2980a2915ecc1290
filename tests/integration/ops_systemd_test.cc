// systemd integration end to end: Type=notify messages to a fake
// NOTIFY_SOCKET, FD-store parking, and socket activation through Debian's
// systemd-socket-activate.
#include "tests/integration/ops_util.h"

namespace baton::harness {
namespace {

using std::chrono::seconds;

TEST(OpsSystemdTest, NotifyReadyReloadingDuringAHandoffAndStopping) {
  const std::string dir = MakeTempDir("sd");
  FakeSystemd systemd(dir);
  ASSERT_TRUE(systemd.ok());
  Cluster c({{}, {}, {"NOTIFY_SOCKET=" + systemd.path()}});
  ASSERT_TRUE(c.Start());
  EXPECT_TRUE(systemd.WaitFor("READY=1", seconds(10))) << systemd.All();
  EXPECT_NE(systemd.messages().back().find("STATUS=kvd serving"), std::string::npos) << systemd.All();
  // The daemon itself must not see systemd's socket (sanitized environment).
  EXPECT_EQ(ProcEnviron(c.IncumbentPid()).find("NOTIFY_SOCKET"), std::string::npos);
  ASSERT_EQ(c.Upgrade().exit_code, 0);
  EXPECT_TRUE(systemd.WaitFor("RELOADING=1", seconds(10))) << systemd.All();
  const std::string reloading = systemd.messages().back();
  EXPECT_NE(reloading.find("MONOTONIC_USEC="), std::string::npos) << reloading;
  EXPECT_NE(reloading.find("EXTEND_TIMEOUT_USEC="), std::string::npos) << reloading;
  EXPECT_TRUE(systemd.WaitFor("STATUS=upgrading kvd: warm done", seconds(10))) << systemd.All();
  EXPECT_TRUE(systemd.WaitFor("READY=1", seconds(10))) << systemd.All();
  EXPECT_NE(systemd.messages().back().find("last handoff committed"), std::string::npos) << systemd.All();
  const int status = c.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(systemd.WaitFor("STOPPING=1", seconds(5))) << systemd.All();
}

TEST(OpsSystemdTest, FdStoreParksEveryListener) {
  const std::string dir = MakeTempDir("sd");
  FakeSystemd systemd(dir);
  ASSERT_TRUE(systemd.ok());
  Cluster c({{}, {"--fd-store"}, {"NOTIFY_SOCKET=" + systemd.path()}});
  ASSERT_TRUE(c.Start());
  ASSERT_TRUE(systemd.WaitFor("FDSTORE=1\nFDNAME=http", seconds(10))) << systemd.All();
  ASSERT_EQ(systemd.fds().size(), 1u);
  int listening = 0;
  socklen_t len = sizeof(listening);
  ASSERT_EQ(::getsockopt(systemd.fds()[0], SOL_SOCKET, SO_ACCEPTCONN, &listening, &len), 0);
  EXPECT_EQ(listening, 1);  // the service's own listening socket
}

TEST(OpsSystemdTest, SocketActivatedListenerServesAndSurvivesAnUpgrade) {
  const std::string dir = MakeTempDir("sa");
  ::mkdir((dir + "/data").c_str(), 0755);
  const int port = FreePort();
  const std::string cfg = WriteFile(dir + "/kvd.toml", "binary = \"" + BinPath("kvd") + "\"\n"
                                                       "data_dir = \"" + dir + "/data\"\n"
                                                       "runtime_dir = \"" + dir + "/run\"\n"
                                                       "[listeners]\nhttp = \"systemd\"\n");
  pid_t pid = SpawnBackground({"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port),
                               "--fdname=http", BinPath("baton"), "supervise", "--config", cfg},
                              {}, dir + "/out", dir + "/err");
  // systemd-socket-activate starts the service on the first connection,
  // which waits in the accept queue meanwhile.
  std::string first;
  for (int i = 0; i < 50 && first.find(" 200 ") == std::string::npos; ++i) {
    first = HttpGet(port, "/healthz");
    if (first.find(" 200 ") == std::string::npos) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(first.find(" 200 "), std::string::npos) << ReadAll(dir + "/err");
  auto up = Baton({"upgrade", "--runtime-dir", dir + "/run", "--json"});
  EXPECT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_NE(HttpGet(port, "/healthz").find(" 200 "), std::string::npos);
  auto st = Baton({"status", "--runtime-dir", dir + "/run", "--json"});
  EXPECT_EQ(JInt(st.json, {"supervisor_pid"}), pid);  // systemd-socket-activate exec'd the supervisor
  ::kill(pid, SIGTERM);
  EXPECT_GE(WaitFor(pid, seconds(30)), 0);
  ::kill(-pid, SIGKILL);
}

TEST(OpsSystemdTest, AnActivatedSocketTheConfigDoesNotNameIsRefused) {
  const std::string dir = MakeTempDir("sa");
  const int port = FreePort();
  const std::string cfg = WriteFile(dir + "/kvd.toml", "binary = \"" + BinPath("kvd") + "\"\n"
                                                       "data_dir = \"" + dir + "\"\n"
                                                       "runtime_dir = \"" + dir + "/run\"\n"
                                                       "[listeners]\nhttp = \"systemd\"\n");
  pid_t pid = SpawnBackground({"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port),
                               "--fdname=htpp", BinPath("baton"), "supervise", "--config", cfg},
                              {}, dir + "/out", dir + "/err");
  // Any connection triggers the start (retried until systemd-socket-activate listens).
  int status = -1;
  for (int i = 0; i < 100 && status == -1; ++i) {
    HttpGet(port, "/healthz");
    status = WaitFor(pid, std::chrono::milliseconds(200));
  }
  if (status == -1) ::kill(pid, SIGKILL);
  ASSERT_GE(status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(ReadAll(dir + "/err").find("socket named 'htpp'"), std::string::npos) << ReadAll(dir + "/err");
}

}  // namespace
}  // namespace baton::harness
