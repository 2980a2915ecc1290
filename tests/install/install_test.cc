// baton as a user of its Debian packages gets it. Once per run, tools/package
// packages this build (--prebuilt: no second compile) and the .debs are
// unpacked with dpkg -x into a scratch root; then everything is used from
// that root: the file layout and package metadata, `baton --version` and the
// man page, pkg-config, and an out-of-tree C++ daemon (cxx_daemon/, built
// with find_package(baton)) and an out-of-tree C daemon (c_daemon/, built by
// its Makefile with pkg-config's flags), each of which the installed baton
// supervises and upgrades 20 times under baton-load with no error and no
// lost write.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/integration_util.h"
#include "tools/harness/cluster.h"
#include "tools/harness/http.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kSourceDir = BATON_SOURCE_DIR;
const std::string kBuildDir = BATON_BUILD_DIR;
const std::string kVersion = BATON_VERSION_STRING;
const std::string kLibDir = "usr/" BATON_LIBDIR;  // the multiarch libdir, relative to the root

// The packages, built and unpacked once for every test here.
struct Installed {
  TempDir dir{"inst"};
  std::string root = dir.path() + "/root";
  std::vector<std::string> debs;
  std::string log;  // what went wrong, when !ok
  bool ok = false;

  std::string Path(const std::string& rel) const { return root + "/" + rel; }
  std::string Deb(const std::string& package) const {
    for (const auto& d : debs) {
      if (fs::path(d).filename().string().rfind(package + "_", 0) == 0) return d;
    }
    return "";
  }
};
Installed* installed = nullptr;

class PackageEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    installed = new Installed;
    Installed& in = *installed;
    const auto start = std::chrono::steady_clock::now();
    // noddebs: the debug symbol packages are not what is tested here.
    auto r = RunCommand({kSourceDir + "/tools/package", "--prebuilt", kBuildDir, "--out", in.dir.path() + "/debs"},
                        seconds(900), {"DEB_BUILD_OPTIONS=noddebs"});
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "install_test: tools/package --prebuilt took %.1f s\n", took);
    if (r.exit_code != 0) {
      in.log = "tools/package failed (" + std::to_string(r.exit_code) + "):\n" + r.out + r.err;
      return;
    }
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (line.size() > 4 && line.compare(line.size() - 4, 4, ".deb") == 0) in.debs.push_back(line);
    }
    for (const auto& deb : in.debs) {
      auto x = RunCommand({"dpkg", "-x", deb, in.root}, seconds(120));
      if (x.exit_code != 0) {
        in.log = "dpkg -x " + deb + " (exit " + std::to_string(x.exit_code) + "): " + x.out + x.err;
        return;
      }
    }
    in.ok = in.debs.size() == 3;
    if (!in.ok) in.log = "expected 3 .debs, tools/package printed:\n" + r.out;
  }
  void TearDown() override {
    delete installed;
    installed = nullptr;
  }
};

#define ASSERT_INSTALLED() ASSERT_TRUE(installed != nullptr && installed->ok) << installed->log

bool IsFile(const std::string& p) { return fs::is_regular_file(fs::symlink_status(p)); }

std::string Field(const std::string& deb, const std::string& field) {
  auto r = RunCommand({"dpkg-deb", "--field", deb, field}, seconds(30));
  std::string v = r.out;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

TEST(InstallTest, PackagesSplitTheDebianWay) {
  ASSERT_INSTALLED();
  const Installed& in = *installed;
  for (const char* p : {"baton", "libbaton0", "libbaton-dev"}) {
    const std::string deb = in.Deb(p);
    ASSERT_FALSE(deb.empty()) << p;
    EXPECT_EQ(Field(deb, "Version"), kVersion) << p << ": the version comes from CMakeLists.txt";
    EXPECT_TRUE(IsFile(in.Path(std::string("usr/share/doc/") + p + "/copyright"))) << p;
  }
  // Runtime dependencies computed from the binaries (dpkg-shlibdeps).
  EXPECT_NE(Field(in.Deb("baton"), "Depends").find("libc6"), std::string::npos);
  EXPECT_NE(Field(in.Deb("libbaton0"), "Depends").find("libc6"), std::string::npos);
  EXPECT_NE(Field(in.Deb("libbaton-dev"), "Depends").find("libbaton0 (= " + kVersion + ")"), std::string::npos);
  EXPECT_EQ(Field(in.Deb("libbaton0"), "Multi-Arch"), "same");
}

TEST(InstallTest, LayoutIsWhatADebianUserExpects) {
  ASSERT_INSTALLED();
  const Installed& in = *installed;
  EXPECT_EQ(::access(in.Path("usr/bin/baton").c_str(), X_OK), 0);
  // The shared library under its SONAME, the dev symlink, the archive.
  const std::string lib = in.Path(kLibDir + "/libbaton.so." + kVersion);
  ASSERT_TRUE(IsFile(lib));
  EXPECT_EQ(fs::read_symlink(in.Path(kLibDir + "/libbaton.so.0")).string(), "libbaton.so." + kVersion);
  EXPECT_EQ(fs::read_symlink(in.Path(kLibDir + "/libbaton.so")).string(), "libbaton.so.0");
  EXPECT_TRUE(IsFile(in.Path(kLibDir + "/libbaton.a")));
  auto dyn = RunCommand({"readelf", "-d", lib}, seconds(30));
  EXPECT_NE(dyn.out.find("Library soname: [libbaton.so.0]"), std::string::npos) << dyn.out;
  // Public headers only: include/baton/*.h, nothing of the implementation.
  EXPECT_TRUE(IsFile(in.Path("usr/include/baton/daemon.h")));
  EXPECT_TRUE(IsFile(in.Path("usr/include/baton/errors.h")));
  for (const auto& e : fs::directory_iterator(in.Path("usr/include"))) {
    EXPECT_EQ(e.path().filename(), "baton") << "only include/baton/ is public: " << e.path();
  }
  for (const auto& e : fs::directory_iterator(in.Path("usr/include/baton"))) {
    EXPECT_EQ(e.path().extension(), ".h") << e.path();
  }
  EXPECT_TRUE(IsFile(in.Path(kLibDir + "/pkgconfig/baton.pc")));
  for (const char* f : {"batonConfig.cmake", "batonConfigVersion.cmake", "batonTargets.cmake"}) {
    EXPECT_TRUE(IsFile(in.Path(kLibDir + "/cmake/baton/" + f))) << f;
  }
  EXPECT_TRUE(IsFile(in.Path("usr/share/man/man1/baton.1.gz")));
  // Docs and the systemd unit examples, which call the installed baton.
  EXPECT_TRUE(fs::exists(in.Path("usr/share/doc/baton/docs/operations.md")) ||
              fs::exists(in.Path("usr/share/doc/baton/docs/operations.md.gz")));
  const std::string unit = in.Path("usr/share/doc/baton/examples/systemd/kvd.service");
  ASSERT_TRUE(IsFile(unit));
  const std::string text = ReadAll(unit);
  EXPECT_NE(text.find("ExecStart=/usr/bin/baton supervise"), std::string::npos) << text;
  EXPECT_EQ(text.find("/usr/local/bin/baton"), std::string::npos) << text;
}

TEST(InstallTest, CliReportsItsVersionAndHasAManPage) {
  ASSERT_INSTALLED();
  const Installed& in = *installed;
  auto v = RunCommand({in.Path("usr/bin/baton"), "--version"}, seconds(20));
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find(kVersion), std::string::npos) << v.out;
  auto vv = RunCommand({in.Path("usr/bin/baton"), "version"}, seconds(20));
  EXPECT_NE(vv.out.find("baton " + kVersion), std::string::npos) << vv.out;
  // man renders the page; it names the version and every subcommand's help.
  auto man = RunCommand({"man", "--local-file", in.Path("usr/share/man/man1/baton.1.gz")}, seconds(60),
                        {"MANPAGER=cat", "PAGER=cat", "MANWIDTH=100"});
  ASSERT_EQ(man.exit_code, 0) << man.err;
  EXPECT_NE(man.out.find("baton " + kVersion), std::string::npos) << man.out.substr(0, 2000);
  for (const char* cmd : {"supervise", "upgrade", "status", "abort", "events", "metrics", "check-config"}) {
    EXPECT_NE(man.out.find(std::string("baton ") + cmd), std::string::npos) << cmd;
  }
  EXPECT_NE(man.out.find("rolled back"), std::string::npos) << "the exit codes";
}

TEST(InstallTest, PkgConfigBuildsAndLinksAProgram) {
  ASSERT_INSTALLED();
  const Installed& in = *installed;
  // The unpacked root stands in for /: pkg-config prefixes its paths.
  const std::vector<std::string> env = {"PKG_CONFIG_SYSROOT_DIR=" + in.root,
                                        "PKG_CONFIG_LIBDIR=" + in.Path(kLibDir + "/pkgconfig")};
  auto mv = RunCommand({"pkg-config", "--modversion", "baton"}, seconds(20), env);
  EXPECT_EQ(mv.out, kVersion + "\n") << mv.err;
  auto flags = RunCommand({"pkg-config", "--cflags", "--libs", "baton"}, seconds(20), env);
  ASSERT_EQ(flags.exit_code, 0) << flags.err;
  EXPECT_NE(flags.out.find("-I" + in.Path("usr/include")), std::string::npos) << flags.out;
  EXPECT_NE(flags.out.find("-L" + in.Path(kLibDir)), std::string::npos) << flags.out;
  EXPECT_NE(flags.out.find("-lbaton"), std::string::npos) << flags.out;

  const std::string dir = in.dir.path() + "/pc";
  fs::create_directories(dir + "/data");
  std::ofstream(dir + "/prog.cc") << "#include <baton/daemon.h>\n"
                                     "#include <cstdio>\n"
                                     "int main(int, char** argv) {\n"
                                     "  baton::DaemonOptions o;\n"
                                     "  o.data_dir = argv[1];\n"
                                     "  auto d = baton::Daemon::Create(o);\n"
                                     "  if (!d) { std::puts(d.error().message.c_str()); return 1; }\n"
                                     "  std::puts((*d)->role() == baton::Role::kStandalone ? \"standalone\" : \"?\");\n"
                                     "}\n";
  std::istringstream words(flags.out);
  std::vector<std::string> cc = {"g++", "-std=c++20", "-o", dir + "/prog", dir + "/prog.cc"};
  for (std::string w; words >> w;) cc.push_back(w);
  auto built = RunCommand(cc, seconds(300));
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;
  auto ran = RunCommand({dir + "/prog", dir + "/data"}, seconds(20), {"LD_LIBRARY_PATH=" + in.Path(kLibDir)});
  EXPECT_EQ(ran.exit_code, 0) << ran.out << ran.err;
  EXPECT_EQ(ran.out, "standalone\n");
}

// A process group of ours, killed when the test ends whatever happened.
struct Group {
  pid_t pid = -1;
  ~Group() {
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      WaitFor(pid, seconds(10));
    }
  }
};

// `daemon` (built in `dir` against the unpacked packages), supervised by the
// installed baton, upgraded 20 times under baton-load: no error, no lost
// write, and a SIGTERM ends the supervisor cleanly.
void ExpectTwentyUpgradesUnderLoad(const Installed& in, const std::string& daemon, const std::string& dir) {
  fs::create_directories(dir + "/data");
  const int port = FreePort();
  const std::string run = dir + "/run";
  Group sup;
  sup.pid = SpawnBackground({in.Path("usr/bin/baton"), "supervise", "--listen",
                             "http=tcp://127.0.0.1:" + std::to_string(port), "--data-dir", dir + "/data",
                             "--runtime-dir", run, "--", daemon},
                            {}, dir + "/supervise.out", dir + "/supervise.err");
  ASSERT_GT(sup.pid, 0);
  auto supervisor_log = [&] { return ReadAll(dir + "/supervise.err").substr(0, 6000); };
  auto wait_until = [](auto cond, milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
      if (std::chrono::steady_clock::now() >= end) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
  };
  ASSERT_TRUE(wait_until([&] { return HttpStatus(HttpGet(port, "/healthz")) == 200; }, seconds(30)))
      << supervisor_log();
  // It is kvd's interface: PUT acknowledged, GET reads back, 404 when absent.
  EXPECT_EQ(HttpStatus(HttpRequest(port, "PUT", "/kv/hello", "world")), 200);
  EXPECT_EQ(HttpBody(HttpGet(port, "/kv/hello")), "world");
  EXPECT_EQ(HttpStatus(HttpGet(port, "/kv/absent")), 404);

  Group load;
  load.pid = SpawnBackground({BinPath("baton-load"), "--target", "http://127.0.0.1:" + std::to_string(port),
                              "--connections", "16", "--duration", "600s", "--json"},
                             {}, dir + "/load.json", dir + "/load.err");
  ASSERT_GT(load.pid, 0);
  // Load flows before the first upgrade: acknowledged writes show in the revision.
  auto revision = [&] {
    const std::string body = HttpBody(HttpGet(port, "/healthz"));
    const auto at = body.find("\"revision\":");
    return at == std::string::npos ? 0L : std::atol(body.c_str() + at + 11);
  };
  ASSERT_TRUE(wait_until([&] { return revision() > 200; }, seconds(30))) << ReadAll(dir + "/load.err");

  pid_t last_new = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = RunCommand({in.Path("usr/bin/baton"), "upgrade", "--runtime-dir", run, "--json"}, seconds(120));
    ASSERT_EQ(r.exit_code, 0) << "upgrade " << i << ": " << r.out << r.err << "\n" << supervisor_log();
    EXPECT_EQ(Outcome(r), "committed");
    const pid_t old_pid = static_cast<pid_t>(JInt(r.json, {"old_pid"}));
    if (last_new != 0) {
      EXPECT_EQ(old_pid, last_new) << "each upgrade replaces the previous new generation";
    }
    last_new = static_cast<pid_t>(JInt(r.json, {"new_pid"}));
  }

  // Stop the load; baton-load reads back every acknowledged write.
  ::kill(load.pid, SIGINT);
  const int load_status = WaitFor(load.pid, seconds(180));
  load.pid = -1;
  CommandResult result;
  result.exit_code = load_status >= 0 && WIFEXITED(load_status) ? WEXITSTATUS(load_status) : -1;
  result.out = ReadAll(dir + "/load.json");
  result.err = ReadAll(dir + "/load.err");
  boost::system::error_code ec;
  result.json = boost::json::parse(result.out, ec);
  ExpectCleanLoad(result);
  EXPECT_EQ(HttpBody(HttpGet(port, "/kv/hello")), "world") << "the first write survived 20 handoffs";
  EXPECT_GE(revision(), JInt(result.json, {"writes_acked"}));

  // SIGTERM: the supervisor drains the daemon and exits 0.
  ::kill(sup.pid, SIGTERM);
  const int status = WaitFor(sup.pid, seconds(60));
  EXPECT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << supervisor_log();
  if (status >= 0) sup.pid = -1;
}

TEST(InstallTest, OutOfTreeCxxDaemonIsUpgradedTwentyTimesUnderLoad) {
  ASSERT_INSTALLED();
  const Installed& in = *installed;
  const std::string dir = in.dir.path() + "/cxxd";
  // Configure and build against the unpacked packages only.
  auto conf = RunCommand({"cmake", "-S", kSourceDir + "/tests/install/cxx_daemon", "-B", dir + "/build", "-G",
                          "Ninja", "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DCMAKE_PREFIX_PATH=" + in.Path("usr")},
                         seconds(300));
  ASSERT_EQ(conf.exit_code, 0) << conf.out << conf.err;
  const std::string cache = ReadAll(dir + "/build/CMakeCache.txt");
  EXPECT_NE(cache.find("baton_DIR:PATH=" + in.Path(kLibDir + "/cmake/baton")), std::string::npos)
      << "find_package(baton) must find the unpacked package";
  auto build = RunCommand({"cmake", "--build", dir + "/build"}, seconds(600));
  ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
  const std::string daemon = dir + "/build/cxx_daemon";
  auto ldd = RunCommand({"ldd", daemon}, seconds(30));
  EXPECT_NE(ldd.out.find(in.Path(kLibDir + "/libbaton.so.0")), std::string::npos) << ldd.out;

  ExpectTwentyUpgradesUnderLoad(in, daemon, dir);
}

// ckvd (c_daemon/), baton.h only, built by its own Makefile with the flags
// `pkg-config --cflags --libs baton` gives for the unpacked packages. The
// root is not on the loader's path, so the link records it (as a user of a
// non-standard prefix would) and ldd shows the packaged library is the one used.
TEST(InstallTest, OutOfTreeCDaemonIsUpgradedTwentyTimesUnderLoad) {
  ASSERT_INSTALLED();
  const Installed& in = *installed;
  const std::string dir = in.dir.path() + "/cd";
  fs::create_directories(dir);
  auto build = RunCommand({"make", "-C", dir, "-f", kSourceDir + "/tests/install/c_daemon/Makefile",
                           "LDFLAGS=-Wl,-rpath," + in.Path(kLibDir)},
                          seconds(300),
                          {"PKG_CONFIG_SYSROOT_DIR=" + in.root, "PKG_CONFIG_LIBDIR=" + in.Path(kLibDir + "/pkgconfig")});
  ASSERT_EQ(build.exit_code, 0) << build.out << build.err;
  EXPECT_NE(build.out.find("-I" + in.Path("usr/include")), std::string::npos) << "pkg-config's flags: " << build.out;
  const std::string daemon = dir + "/ckvd";
  auto ldd = RunCommand({"ldd", daemon}, seconds(30));
  EXPECT_NE(ldd.out.find(in.Path(kLibDir + "/libbaton.so.0")), std::string::npos) << ldd.out;
  ExpectTwentyUpgradesUnderLoad(in, daemon, dir);
}

}  // namespace
}  // namespace baton::harness

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new baton::harness::PackageEnvironment);
  return RUN_ALL_TESTS();
}
