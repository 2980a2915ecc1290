// Real, unmodified daemons packaged by Debian 12, upgraded 20 times each
// under baton-load (docs/unmodified.md):
//   gunicorn (python3-gunicorn), overlap: it takes LISTEN_FDS and its master
//     says READY=1; SIGTERM is its graceful stop. Zero errors in keep-alive
//     and new-connection modes.
//   lighttpd (+ mod_webdav for PUT), sequential: socket activation
//     (server.systemd-socket-activation), no sd_notify, so readiness is an
//     HTTP probe; SIGINT is its graceful stop. Zero refused connections, the
//     window reported.
// Skipped (with the reason) where the package is not installed.
#include <sys/stat.h>

#include "tests/notify/notify_util.h"

namespace baton::harness {
namespace {

using namespace std::chrono_literals;

int Upgrades() {
  const char* n = std::getenv("BATON_NOTIFY_UPGRADES");
  return n ? std::atoi(n) : 20;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

CommandResult UpgradeUnderLoad(NotifyCluster& nc, bool close_mode, std::vector<std::string>* reasons = nullptr) {
  nc->StartLoad(8, "300s", close_mode);
  std::this_thread::sleep_for(500ms);
  for (int i = 0; i < Upgrades(); ++i) {
    auto r = nc->Upgrade();
    EXPECT_EQ(r.exit_code, 0) << i << ": " << r.out << r.err << nc->SupervisorLog();
    if (reasons) reasons->push_back(Reason(r));
    std::this_thread::sleep_for(100ms);  // some load between two handoffs
  }
  return nc->FinishLoad();
}

std::unique_ptr<NotifyCluster> Gunicorn() {
  return std::make_unique<NotifyCluster>(
      "[notify]\nstrategy = \"overlap\"\nready_timeout = \"20s\"\n",
      std::vector<std::string>{"-m", "gunicorn", "--worker-class", "gthread", "--threads", "4", "--workers", "2",
                               "--graceful-timeout", "3", "--keep-alive", "0", "--pythonpath", KVAPP_DIR, "kvapp:app"},
      "/usr/bin/python3");
}

class GunicornTest : public ::testing::TestWithParam<bool> {};

TEST_P(GunicornTest, OverlapUpgradesUnderLoadHaveNoErrors) {
  if (!Exists("/usr/lib/python3/dist-packages/gunicorn")) GTEST_SKIP() << "python3-gunicorn is not installed (tools/setup)";
  auto nc = Gunicorn();
  ASSERT_TRUE((*nc)->Start()) << (*nc)->SupervisorLog();
  ExpectCleanLoad(UpgradeUnderLoad(*nc, GetParam()));
  EXPECT_EQ(ZombiesAfterSettling((*nc)->supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, GunicornTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "NewConnections" : "KeepAlive"; });

TEST(LighttpdTest, SequentialUpgradesUnderLoadRefuseNothing) {
  if (!Exists("/usr/sbin/lighttpd") || !Exists("/usr/lib/lighttpd/mod_webdav.so")) {
    GTEST_SKIP() << "lighttpd and lighttpd-mod-webdav are not installed (tools/setup)";
  }
  NotifyCluster nc(
      "[notify]\nstrategy = \"sequential\"\nstop_signal = \"SIGINT\"\nreadiness = \"http\"\n"
      "probe_address = \"127.0.0.1:@PORT@\"\nprobe_path = \"/healthz\"\nprobe_interval = \"50ms\"\n",
      {"-D", "-f", "@CONF@/lighttpd.conf"}, "/usr/sbin/lighttpd");
  ::mkdir((nc->dir() + "/data/kv").c_str(), 0755);
  std::ofstream(nc->dir() + "/data/healthz") << "ok\n";
  nc.Write("lighttpd.conf",
           "server.document-root = \"" + nc->dir() + "/data\"\n"
           "server.bind = \"127.0.0.1\"\nserver.port = @PORT@\n"
           "server.systemd-socket-activation = \"enable\"\n"
           "server.errorlog = \"@CONF@/lighttpd.err\"\n"
           "server.graceful-shutdown-timeout = 5\n"
           "server.modules += (\"mod_webdav\")\n"
           "$HTTP[\"url\"] =^ \"/kv/\" { webdav.activate = \"enable\" }\n");
  ASSERT_TRUE(nc->Start()) << nc->SupervisorLog() << ReadAll(nc.conf.path() + "/lighttpd.err");
  std::vector<std::string> reasons;
  ExpectCleanLoad(UpgradeUnderLoad(nc, true, &reasons));
  for (const auto& r : reasons) EXPECT_NE(r.find("not ready for"), std::string::npos) << r;
  std::cout << "lighttpd sequential: " << (reasons.empty() ? "" : reasons.back()) << "\n";
}

}  // namespace
}  // namespace baton::harness
