// ckvd (tests/install/c_daemon), the C daemon users copy: built out of the
// source tree by its own Makefile, which knows libbaton only through
// `pkg-config baton` (here a baton.pc that points at this build tree), then
// supervised and upgraded 20 times under baton-load: no error, no lost
// write.
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/integration_util.h"
#include "tools/harness/cluster.h"
#include "tools/harness/http.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

// Builds ckvd in `dir` (out of the source tree); its path, or "" with the
// build's output in *log.
std::string BuildCkvd(const std::string& dir, std::string* log) {
  ::mkdir((dir + "/pkgconfig").c_str(), 0755);
  std::ofstream(dir + "/pkgconfig/baton.pc")
      << "includedir=" BATON_SOURCE_DIR "/include\n"
      << "libdir=" BATON_LIB_DIR "\n"
      << "Name: baton\nDescription: baton (build tree)\nVersion: 0\n"
      << "Cflags: -I${includedir}\nLibs: -L${libdir} -Wl,-rpath,${libdir} -lbaton\n";
  RunOptions opts;
  opts.env = {"PKG_CONFIG_PATH=" + dir + "/pkgconfig"};
  opts.timeout = std::chrono::seconds(120);
  std::vector<std::string> argv = {"/usr/bin/make", "-C", dir, "-f", BATON_SOURCE_DIR "/tests/install/c_daemon/Makefile",
                                   "CC=" BATON_TEST_CC};
  // A sanitized libbaton needs its runtime in the executable too.
  if (std::string sanitize = BATON_TEST_SANITIZE; !sanitize.empty()) {
    argv.push_back("CFLAGS=-O1 -g -fno-omit-frame-pointer -fsanitize=" + sanitize);
    // libbaton is C++: its UBSan checks (vptr) need the sanitizer's C++
    // runtime, which a C link leaves out unless asked (clang).
    argv.push_back("LDFLAGS=-fsanitize=" + sanitize + " -fsanitize-link-c++-runtime");
    argv.push_back("LDLIBS=-lstdc++");
  }
  auto r = RunProgram(argv, opts);
  *log = r.out + r.err;
  return r.exited && r.exit_code == 0 ? dir + "/ckvd" : "";
}

TEST(CkvdTest, UpgradedTwentyTimesUnderLoadWithoutAnErrorOrALostWrite) {
  TempDir build("ckvd");
  std::string log;
  const std::string ckvd = BuildCkvd(build.path(), &log);
  ASSERT_FALSE(ckvd.empty()) << log;

  Cluster::Options opts;
  opts.binary = ckvd;
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  c.StartLoad(32, "600s");
  for (int i = 0; i < 20; ++i) {
    auto r = c.Upgrade();
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << "\n"
                              << c.SupervisorLog().substr(0, 8000);
  }
  ExpectCleanLoad(c.FinishLoad());
  EXPECT_TRUE(c.Healthy());
  EXPECT_EQ(ZombiesAfterSettling(c.supervisor_pid()), 0);
}

TEST(CkvdTest, ARestartRecoversEveryAcknowledgedWrite) {
  TempDir build("ckvd");
  std::string log;
  const std::string ckvd = BuildCkvd(build.path(), &log);
  ASSERT_FALSE(ckvd.empty()) << log;
  Cluster::Options opts;
  opts.binary = ckvd;
  Cluster c(opts);
  ASSERT_TRUE(c.Start()) << c.SupervisorLog();
  const int port = std::stoi(c.url().substr(c.url().rfind(':') + 1));
  ASSERT_EQ(HttpStatus(HttpRequest(port, "PUT", "/kv/a", "1")), 200);
  ASSERT_EQ(HttpStatus(HttpRequest(port, "PUT", "/kv/a", "2")), 200);
  ASSERT_EQ(HttpStatus(HttpRequest(port, "PUT", "/kv/b", "3")), 200);
  EXPECT_EQ(HttpStatus(HttpGet(port, "/kv/missing")), 404);
  ASSERT_EQ(c.Upgrade().exit_code, 0);
  EXPECT_EQ(HttpBody(HttpGet(port, "/kv/a")), "2");
  // Killed: the supervisor restarts it cold, and it replays the log.
  const pid_t pid = c.IncumbentPid();
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  pid_t next = -1;
  while (std::chrono::steady_clock::now() < end && (next <= 0 || next == pid || !c.Healthy())) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    next = c.IncumbentPid();
  }
  ASSERT_TRUE(next > 0 && next != pid) << c.SupervisorLog();
  EXPECT_EQ(HttpBody(HttpGet(port, "/kv/a")), "2");
  EXPECT_EQ(HttpBody(HttpGet(port, "/kv/b")), "3");
}

}  // namespace
}  // namespace baton::harness
