// systemd integration end to end: Type=notify messages to a fake
// NOTIFY_SOCKET, FD-store parking, and socket activation through Debian's
// systemd-socket-activate.
#include "tests/integration/ops_util.h"

namespace baton::harness {
namespace {

using std::chrono::seconds;

TEST(OpsSystemdTest, NotifyReadyReloadingDuringAHandoffAndStopping) {
  const TempDir tmp("sd");
  const std::string& dir = tmp.path();
  FakeSystemd systemd(dir + "/notify");
  ASSERT_TRUE(systemd.ok());
  Cluster c({{}, {}, {"NOTIFY_SOCKET=" + systemd.path()}});
  ASSERT_TRUE(c.Start());
  EXPECT_TRUE(systemd.WaitFor("READY=1", seconds(10))) << systemd.All();
  EXPECT_NE(systemd.messages().back().find("STATUS=kvd serving"), std::string::npos) << systemd.All();
  // The daemon itself must not see systemd's socket (sanitized environment):
  // its NOTIFY_SOCKET is its own, the supervisor's (docs/design.md §14).
  const std::string env = ProcEnviron(c.IncumbentPid());
  EXPECT_EQ(env.find(systemd.path()), std::string::npos) << env;
  EXPECT_NE(env.find("NOTIFY_SOCKET=" + c.dir() + "/run/notify."), std::string::npos) << env;
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
  const TempDir tmp("sd");
  const std::string& dir = tmp.path();
  FakeSystemd systemd(dir + "/notify");
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

// What systemd does when it restarts a service with a non-empty FD store:
// the parked sockets come back at fd 3.. with LISTEN_FDS/LISTEN_FDNAMES.
pid_t StartWithStoredFd(const std::vector<std::string>& argv, int fd, const std::string& name, const std::string& dir) {
  std::vector<std::string> a = argv;
  std::vector<char*> args;
  for (auto& x : a) args.push_back(x.data());
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open((dir + "/sup2.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::dup2(fd, 3);  // clears FD_CLOEXEC on 3
    for (int i = 4; i < 1024; ++i) ::close(i);
    ::setpgid(0, 0);
    ::setenv("LISTEN_FDS", "1", 1);
    ::setenv("LISTEN_FDNAMES", name.c_str(), 1);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

TEST(OpsSystemdTest, ListenersParkedInTheFdStoreSurviveASupervisorRestart) {
  const TempDir tmp("fs");
  const std::string& dir = tmp.path();
  FakeSystemd systemd(dir + "/notify");
  ASSERT_TRUE(systemd.ok());
  int port = 0;
  ::mkdir((dir + "/data").c_str(), 0755);
  {
    Cluster c({{}, {"--fd-store"}, {"NOTIFY_SOCKET=" + systemd.path()}});
    ASSERT_TRUE(c.Start());
    ASSERT_TRUE(systemd.WaitFor("FDNAME=http", seconds(10))) << systemd.All();
    ASSERT_EQ(systemd.fds().size(), 1u);
    port = std::stoi(c.url().substr(c.url().rfind(':') + 1));
    c.Stop();
    // The supervisor is gone; the parked socket still accepts (into its queue).
  }
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << "refused while no supervisor ran";
  const char req[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(::write(client, req, sizeof(req) - 1), static_cast<ssize_t>(sizeof(req) - 1));
  pid_t sup = StartWithStoredFd({BinPath("baton"), "supervise", "--listen", "http=tcp://127.0.0.1:1", "--data-dir",
                                 dir + "/data", "--runtime-dir", dir + "/run", "--", BinPath("kvd")},
                                systemd.fds()[0], "http", dir);
  timeval tv{10, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[512];
  const ssize_t n = ::read(client, buf, sizeof(buf));
  ::close(client);
  EXPECT_GT(n, 0) << ReadAll(dir + "/sup2.err");
  EXPECT_NE(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0).find(" 200 "), std::string::npos);
  // The flag said port 1; the stored socket won, matched by its name.
  auto st = Baton({"status", "--runtime-dir", dir + "/run", "--json"});
  EXPECT_EQ(st.exit_code, 0);
  ::kill(sup, SIGTERM);
  EXPECT_GE(WaitFor(sup, seconds(30)), 0);
  ::kill(-sup, SIGKILL);
}

TEST(OpsSystemdTest, SocketActivatedListenerServesAndSurvivesAnUpgradeAndASelfUpgrade) {
  const TempDir tmp("sa");
  const std::string& dir = tmp.path();
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
  // baton re-executed in place: the new image parses `http = "systemd"` as
  // any start does, so the activation is announced to it again.
  auto self = Baton({"upgrade", "--self", "--runtime-dir", dir + "/run", "--json"});
  EXPECT_EQ(self.exit_code, 0) << self.out << self.err << ReadAll(dir + "/err");
  EXPECT_NE(HttpGet(port, "/healthz").find(" 200 "), std::string::npos);
  auto after = Baton({"status", "--runtime-dir", dir + "/run", "--json"});
  EXPECT_EQ(JInt(after.json, {"supervisor_pid"}), pid);
  EXPECT_EQ(JInt(after.json, {"incumbent_pid"}), JInt(st.json, {"incumbent_pid"}));
  ::kill(pid, SIGTERM);
  EXPECT_GE(WaitFor(pid, seconds(30)), 0);
  ::kill(-pid, SIGKILL);
}

TEST(OpsSystemdTest, WithoutConfiguredListenersEveryActivatedSocketIsAdopted) {
  const TempDir tmp("sa");
  const std::string& dir = tmp.path();
  const int port = FreePort();
  pid_t pid = SpawnBackground({"/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port),
                               "--fdname=http", BinPath("baton"), "supervise", "--data-dir", dir, "--runtime-dir",
                               dir + "/run", "--", BinPath("kvd")},
                              {}, dir + "/out", dir + "/err");
  std::string got;
  for (int i = 0; i < 50 && got.find(" 200 ") == std::string::npos; ++i) {
    got = HttpGet(port, "/healthz");
    if (got.find(" 200 ") == std::string::npos) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(got.find(" 200 "), std::string::npos) << ReadAll(dir + "/err");
  // Re-executed in place, baton learns its listeners from the activation
  // again: the self-upgrade announces it to the new image.
  auto self = Baton({"upgrade", "--self", "--runtime-dir", dir + "/run", "--json"});
  EXPECT_EQ(self.exit_code, 0) << self.out << self.err << ReadAll(dir + "/err");
  EXPECT_EQ(JInt(self.json, {"supervisor_pid"}), pid);
  EXPECT_NE(HttpGet(port, "/healthz").find(" 200 "), std::string::npos) << ReadAll(dir + "/err");
  ::kill(pid, SIGTERM);
  EXPECT_GE(WaitFor(pid, seconds(30)), 0);
  ::kill(-pid, SIGKILL);
}

TEST(OpsSystemdTest, AnActivatedSocketTheConfigDoesNotNameIsRefused) {
  const TempDir tmp("sa");
  const std::string& dir = tmp.path();
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
