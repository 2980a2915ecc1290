// Bad input on the control channel and the admin socket: a clear error and
// nothing lost; the old generation keeps serving (docs/design.md §3 "anything
// unexpected on the wire").
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "protocol/frame.h"
#include "tests/crash/self_upgrade_util.h"
#include "tests/integration/integration_util.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

int ConnectAdmin(const std::string& runtime_dir) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string path = runtime_dir + "/baton.sock";
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    const int err = errno;
    ::close(fd);
    return -err;
  }
  return fd;
}

// Reads frames until EOF (bounded); returns the first Error code seen.
std::optional<v1::Error::Code> ReadError(int fd) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  protocol::FrameDecoder dec;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    dec.Feed(std::string_view(buf, static_cast<size_t>(n)));
    auto r = dec.Next();
    if (auto* env = std::get_if<v1::Envelope>(&r); env && env->has_error()) return env->error().code();
  }
  return std::nullopt;
}

struct BadSuccessorCase {
  const char* mode;
  int exit_code;
  const char* reason;
};

class BadSuccessorTest : public ::testing::TestWithParam<BadSuccessorCase> {};

TEST_P(BadSuccessorTest, IsRejectedAndTheIncumbentKeepsServing) {
  const auto& bc = GetParam();
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const pid_t before = c.IncumbentPid();
  c.StartLoad(8, "600s");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto r = c.Upgrade(c.Script("bad", "exec " + HelperPath("bad_successor") + " " + bc.mode));
  EXPECT_EQ(r.exit_code, bc.exit_code) << r.out << r.err;
  EXPECT_NE(r.out.find(bc.reason), std::string::npos) << r.out;
  EXPECT_EQ(c.IncumbentPid(), before);
  EXPECT_EQ(c.Upgrade().exit_code, 0);
  ExpectCleanLoad(c.FinishLoad());
}

INSTANTIATE_TEST_SUITE_P(
    Modes, BadSuccessorTest,
    ::testing::Values(BadSuccessorCase{"garbage", 3, "frame:"}, BadSuccessorCase{"oversize", 3, "exceeds the 1048576 byte cap"},
                      // Truncated exits at once: its exit may be seen before the half frame.
                      BadSuccessorCase{"truncated", 3, "successor"},
                      BadSuccessorCase{"wrong-version", 4, "no common protocol version"},
                      BadSuccessorCase{"wrong-pid", 3, "successor"},
                      BadSuccessorCase{"unknown", 3, "no message this build knows"},
                      // Descriptors come only from the incumbent, only while it seals.
                      BadSuccessorCase{"handover", 3, "carried 1 descriptors where none are allowed"},
                      BadSuccessorCase{"bare-handover", 3, "a Handover frame without descriptors"}),
    [](const auto& info) {
      std::string n = info.param.mode;
      for (auto& ch : n) ch = ch == '-' ? '_' : ch;
      return n;
    });

// A daemon's own text that is not UTF-8 (here its build id, in Latin-1)
// is not bad input: the frame carrying it must still decode (proto3
// refuses such strings), so the library sends it with U+FFFD in place of
// each bad byte and the upgrade commits.
TEST(BadSuccessorTextTest, ABuildIdThatIsNotUtf8StillUpgrades) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  auto r = c.Upgrade(c.Script("latin1", "exec " + BinPath("kvd") + " --build-id \"$(printf 'caf\\351')\" \"$@\""));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog();
  auto st = c.Status();
  ASSERT_TRUE(st.json.is_object()) << st.out << st.err;
  EXPECT_EQ(st.json.at("build_id").as_string(), "caf\xef\xbf\xbd") << st.out;
  EXPECT_TRUE(c.Healthy());
}

// A path is any bytes but NUL: a binary named in Latin-1 is upgraded to,
// pinned, and carried across a self-upgrade exactly; only what is shown
// (JSON) has U+FFFD for the bad byte.
TEST(BadSuccessorTextTest, ABinaryPathThatIsNotUtf8IsUsedExactly) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const std::string path = c.Script("caf\xe9", "exec " + BinPath("kvd") + " \"$@\"");
  auto r = c.Upgrade(path);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << c.SupervisorLog();
  const pid_t serving = c.IncumbentPid();
  auto self = SelfUpgrade(c);
  ASSERT_EQ(self.exit_code, 0) << self.out << self.err << c.SupervisorLog();
  EXPECT_EQ(c.IncumbentPid(), serving);
  auto st = c.Status();
  ASSERT_TRUE(st.json.is_object()) << st.out << st.err;
  EXPECT_EQ(st.json.at("binary").as_string(), c.dir() + "/caf\xef\xbf\xbd") << st.out;
  EXPECT_EQ(st.json.at("pinned").as_array().at(0).at("path").as_string(), c.dir() + "/caf\xef\xbf\xbd") << st.out;
  EXPECT_EQ(c.Upgrade(path).exit_code, 0) << c.SupervisorLog();
  EXPECT_TRUE(c.Healthy());
}

TEST(AdminBadInputTest, GarbageOversizeAndTruncatedFramesAreRefusedAndNothingBreaks) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const std::string run = c.dir() + "/run";
  {
    int fd = ConnectAdmin(run);
    ASSERT_GE(fd, 0);
    ASSERT_GT(::write(fd, "\x00\x00\x00\x03\xff\xff\xff", 7), 0);
    EXPECT_EQ(ReadError(fd), v1::Error::BAD_FRAME);
    ::close(fd);
  }
  {
    int fd = ConnectAdmin(run);
    ASSERT_GT(::write(fd, "\x7f\x00\x00\x00", 4), 0);
    EXPECT_EQ(ReadError(fd), v1::Error::BAD_FRAME);
    ::close(fd);
  }
  {
    int fd = ConnectAdmin(run);
    ASSERT_GT(::write(fd, "\x00\x00\x00\x10\x01", 5), 0);
    ::close(fd);  // gone mid-frame
  }
  {
    int fd = ConnectAdmin(run);
    ASSERT_GT(::write(fd, "\x00\x00\x00\x03\x9a\x06\x00", 7), 0);  // no known request
    EXPECT_EQ(ReadError(fd), v1::Error::UNRECOGNISED);
    ::close(fd);
  }
  EXPECT_EQ(c.Status().exit_code, 0);
  EXPECT_EQ(c.Upgrade().exit_code, 0);
}

TEST(AdminBadInputTest, SilentClientDoesNotBlockOthers) {
  Cluster c({});
  ASSERT_TRUE(c.Start());
  int silent = ConnectAdmin(c.dir() + "/run");
  ASSERT_GE(silent, 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.Status().exit_code, 0);
  EXPECT_EQ(c.Upgrade().exit_code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  ::close(silent);
}

TEST(AdminBadInputTest, OtherUidIsRefused) {
  if (::geteuid() != 0) GTEST_FAIL() << "this test needs root to act as another uid";
  Cluster c({});
  ASSERT_TRUE(c.Start());
  const std::string run = c.dir() + "/run";
  struct stat st {};
  ASSERT_EQ(::stat(run.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((run + "/baton.sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto as_nobody = [&]() {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(90);
      int fd = ConnectAdmin(run);
      if (fd < 0) ::_exit(fd == -EACCES ? 10 : 11);  // the filesystem said no
      v1::Envelope req;
      req.mutable_status_request();
      auto frame = protocol::EncodeFrame(req);
      // The supervisor may answer and close before reading: no SIGPIPE.
      (void)::send(fd, frame->data(), frame->size(), MSG_NOSIGNAL);
      auto code = ReadError(fd);
      ::_exit(code == v1::Error::PERMISSION_DENIED ? 20 : 21);  // the uid check said no
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  ASSERT_EQ(::chmod(c.dir().c_str(), 0755), 0);  // the test's own temp dir is not the barrier
  // Layer 1: the 0700 runtime dir and 0600 socket keep other users out.
  EXPECT_EQ(as_nobody(), 10);
  // Layer 2: even with the permissions opened up by mistake, SO_PEERCRED refuses.
  ASSERT_EQ(::chmod(run.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((run + "/baton.sock").c_str(), 0666), 0);
  EXPECT_EQ(as_nobody(), 20);
  EXPECT_EQ(c.Status().exit_code, 0);
}

}  // namespace
}  // namespace baton::harness
