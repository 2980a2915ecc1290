// Real, unmodified daemons packaged by Debian 12, upgraded 20 times each
// under baton-load (docs/unmodified.md):
//   gunicorn (python3-gunicorn), overlap: it takes LISTEN_FDS and its master
//     says READY=1; SIGTERM is its graceful stop. Zero errors in keep-alive
//     and new-connection modes.
//   lighttpd (+ mod_webdav for PUT), sequential: socket activation
//     (server.systemd-socket-activation), no sd_notify, so readiness is an
//     HTTP probe; SIGINT is its graceful stop. Zero refused connections, the
//     window reported. The load creates a bounded number of files: lighttpd
//     keeps every file it served in the last 3-4 s open (its stat cache), and
//     a read-back of more files than RLIMIT_NOFILE in that time is answered
//     403 (open: EMFILE), which is lighttpd's limit, not the upgrade's.
// Skipped (with the reason) where the package is not installed.
#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>

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

CommandResult UpgradeUnderLoad(NotifyCluster& nc, bool close_mode, std::vector<std::string>* reasons = nullptr,
                               std::vector<std::string> load_flags = {}) {
  nc->StartLoad(8, "300s", close_mode, 0.5, std::move(load_flags));
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
  ASSERT_TRUE(Exists("/usr/lib/python3/dist-packages/gunicorn")) << "python3-gunicorn is not installed (tools/setup)";
  auto nc = Gunicorn();
  ASSERT_TRUE((*nc)->Start()) << (*nc)->SupervisorLog();
  ExpectCleanLoad(UpgradeUnderLoad(*nc, GetParam()));
  EXPECT_EQ(ZombiesAfterSettling((*nc)->supervisor_pid()), 0);
}

INSTANTIATE_TEST_SUITE_P(Modes, GunicornTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "NewConnections" : "KeepAlive"; });

// This process's open-file limit; the supervisor and lighttpd inherit it.
rlim_t OpenFileLimit() {
  rlimit r{};
  return ::getrlimit(RLIMIT_NOFILE, &r) == 0 ? r.rlim_cur : 1024;
}

// What to look at when lighttpd answered the load or its read-back with an
// error: the keys baton-load names (each file's mode, owner and size, or why
// stat failed), lighttpd's open descriptors against its limit, its error log.
std::string LighttpdDiagnostics(NotifyCluster& nc, const CommandResult& load) {
  std::string out = "\n--- baton-load's warnings:\n" + load.err;
  std::vector<std::string> keys;
  size_t begin = 0;
  for (size_t end = load.err.find('\n'); begin < load.err.size();
       begin = end + 1, end = load.err.find('\n', begin)) {
    if (end == std::string::npos) end = load.err.size();
    boost::system::error_code ec;
    const auto line = boost::json::parse(load.err.substr(begin, end - begin), ec);
    if (ec || !line.is_object() || !line.as_object().contains("key")) continue;
    const auto& key = line.at("key");
    if (key.is_string() && std::find(keys.begin(), keys.end(), key.as_string()) == keys.end()) {
      keys.emplace_back(key.as_string());
    }
  }
  out += "--- the files of the keys named above:\n";
  for (const auto& key : keys) {
    const std::string path = nc->dir() + "/data/kv/" + key;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      out += path + ": stat: " + std::strerror(errno) + "\n";
    } else {
      char mode[16];
      std::snprintf(mode, sizeof(mode), "%o", static_cast<unsigned>(st.st_mode & 07777));
      out += path + ": mode " + mode + ", uid " + std::to_string(st.st_uid) + ", " + std::to_string(st.st_size) +
             " bytes\n";
    }
  }
  const pid_t pid = nc->IncumbentPid();
  if (pid > 0) {
    size_t fds = 0;
    const std::string proc = "/proc/" + std::to_string(pid);
    if (DIR* d = ::opendir((proc + "/fd").c_str())) {
      while (::readdir(d) != nullptr) ++fds;
      ::closedir(d);
    }
    const std::string limits = ReadAll(proc + "/limits");
    const auto at = limits.find("Max open files");
    out += "--- lighttpd " + std::to_string(pid) + ": " + std::to_string(fds > 2 ? fds - 2 : 0) +
           " open descriptors; " +
           (at == std::string::npos ? "limit unknown\n" : limits.substr(at, limits.find('\n', at) - at + 1));
  }
  return out + "--- lighttpd's error log:\n" + ReadAll(nc.conf.path() + "/lighttpd.err");
}

TEST(LighttpdTest, SequentialUpgradesUnderLoadRefuseNothing) {
  ASSERT_TRUE(Exists("/usr/sbin/lighttpd") && Exists("/usr/lib/lighttpd/mod_webdav.so"))
      << "lighttpd and lighttpd-mod-webdav are not installed (tools/setup)";
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
  // lighttpd holds one descriptor per file it served in the last 3-4 s, so
  // the read-back of every acknowledged write (unthrottled) must not meet
  // more files than lighttpd may open: a quarter of the limit at most.
  const rlim_t max_files = std::min<rlim_t>(5000, OpenFileLimit() / 4);
  std::vector<std::string> reasons;
  const auto load = UpgradeUnderLoad(nc, true, &reasons, {"--max-writes", std::to_string(max_files)});
  ExpectCleanLoad(load);
  for (const auto& r : reasons) EXPECT_NE(r.find("not ready for"), std::string::npos) << r;
  if (HasFailure()) ADD_FAILURE() << LighttpdDiagnostics(nc, load);
  std::cout << "lighttpd sequential: " << (reasons.empty() ? "" : reasons.back()) << "\n";
}

}  // namespace
}  // namespace baton::harness
