// The child environment contract, with real forked children launched the
// way the supervisor launches them (supervisor/launch.h).
#include "protocol/child_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "supervisor/launch.h"
#include "tools/harness/subprocess.h"

namespace baton::protocol {
namespace {

using supervisor::Launch;
using supervisor::MakeControlSocketPair;

constexpr int kPipeFd = 60;

int TcpListener(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(fd, 16) != 0) return -1;
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// Forks; the child runs `body` with its stdout redirected into a pipe and
// exits with body's return value. Returns (exit code, output).
std::pair<int, std::string> InFork(const std::function<int()>& body) {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], kPipeFd);  // far from 3.., where the test places FDs
    ::dup2(p[1], 1);
    ::close(p[0]);
    ::close(p[1]);
    std::fflush(stdout);
    int rc = body();
    std::fflush(stdout);
    ::_exit(rc);
  }
  ::close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

// In a fork: listeners "a" and "b" and a control socketpair, placed at
// chosen source FDs, launched through ChildLaunch into `program`.
// collide: a's source sits on b's target and vice versa.
std::pair<int, std::string> LaunchProbe(const std::string& program, bool collide, int* port_a, int* port_b) {
  int pa = 0, pb = 0;
  int la = TcpListener(&pa), lb = TcpListener(&pb);
  *port_a = pa;
  *port_b = pb;
  auto result = InFork([&]() -> int {
    int src_a = la, src_b = lb;
    auto pair = MakeControlSocketPair();
    if (!pair) return 90;
    int parent_end = pair->first, child_end = pair->second;
    if (collide) {
      // Move every source into the target range, swapped: a → 4, b → 3,
      // control → 5, its own target. A naive dup2 loop would clobber.
      int ta = ::fcntl(la, F_DUPFD_CLOEXEC, 20), tb = ::fcntl(lb, F_DUPFD_CLOEXEC, 20);
      int tc = ::fcntl(child_end, F_DUPFD_CLOEXEC, 20), tp = ::fcntl(parent_end, F_DUPFD_CLOEXEC, 20);
      for (int fd = 3; fd < 20; ++fd) ::close(fd);
      ::dup3(ta, 4, O_CLOEXEC);
      ::dup3(tb, 3, O_CLOEXEC);
      ::dup3(tc, 5, O_CLOEXEC);
      ::dup3(tp, 6, O_CLOEXEC);
      for (int fd : {ta, tb, tc, tp}) ::close(fd);
      src_a = 4;
      src_b = 3;
      child_end = 5;
      parent_end = 6;
    }
    auto launch = ChildLaunch::Create({{"a", src_a}, {"b", src_b}}, child_end, LaunchRole::kCold,
                                      {"PATH=/usr/bin:/bin", "KEEP=1", "LISTEN_FDS=99"});
    if (!launch) return 91;
    boost::asio::io_context io;
    auto proc = Launch(io.get_executor(), program, {}, *launch);
    if (!proc) {
      std::printf("launch error %s\n", proc.error().message.c_str());
      return 92;
    }
    ::close(child_end);
    char c = 'A';
    // sd_listen_probe never reads and may already be gone: no SIGPIPE.
    (void)::send(parent_end, &c, 1, MSG_NOSIGNAL);
    char back = 0;
    (void)::read(parent_end, &back, 1);
    std::printf("echo %c\n", back);
    std::fflush(stdout);
    return proc->wait();
  });
  ::close(la);
  ::close(lb);
  return result;
}

bool Has(const std::string& out, const std::string& line) { return out.find(line + "\n") != std::string::npos; }

TEST(ChildEnvTest, ParentPlacesListenersAndControlInOrder) {
  int pa, pb;
  auto [rc, out] = LaunchProbe(baton::harness::HelperPath("child_env_probe"), false, &pa, &pb);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(Has(out, "role cold")) << out;
  EXPECT_TRUE(Has(out, "listener a 3 " + std::to_string(pa))) << out;
  EXPECT_TRUE(Has(out, "listener b 4 " + std::to_string(pb))) << out;
  EXPECT_TRUE(Has(out, "control 5")) << out;
  EXPECT_TRUE(Has(out, "echo B")) << out;  // the control FD is really our socketpair
  EXPECT_TRUE(Has(out, "cloexec 3 1")) << out;
  EXPECT_TRUE(Has(out, "cloexec 5 1")) << out;
  for (auto v : kContractVariables) EXPECT_TRUE(Has(out, "env " + std::string(v) + " unset")) << out;
}

TEST(ChildEnvTest, CollidingSourcesAreNotClobbered) {
  int pa, pb;
  auto [rc, out] = LaunchProbe(baton::harness::HelperPath("child_env_probe"), true, &pa, &pb);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(Has(out, "listener a 3 " + std::to_string(pa))) << out;
  EXPECT_TRUE(Has(out, "listener b 4 " + std::to_string(pb))) << out;
  EXPECT_TRUE(Has(out, "control 5")) << out;
  EXPECT_TRUE(Has(out, "echo B")) << out;
}

TEST(ChildEnvTest, UnmodifiedSystemdDaemonSeesTheListeners) {
  int pa, pb;
  auto [rc, out] = LaunchProbe(baton::harness::HelperPath("sd_listen_probe"), true, &pa, &pb);
  // sd_listen_probe never touches the control channel; the echo reads EOF.
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(Has(out, "n 2")) << out;
  EXPECT_TRUE(Has(out, "fd 3 a 1")) << out;
  EXPECT_TRUE(Has(out, "fd 4 b 1")) << out;
}

TEST(ChildEnvTest, LaunchOfMissingOrNonExecutableBinaryIsAClearError) {
  auto launch = ChildLaunch::Create({}, 0, LaunchRole::kCold, {});
  ASSERT_TRUE(launch);
  boost::asio::io_context io;
  auto r = Launch(io.get_executor(), "/nonexistent/daemon", {}, *launch);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kNotFound));
  EXPECT_NE(r.error().message.find("/nonexistent/daemon"), std::string::npos);
  const baton::harness::TempDir tmp("exe");
  const std::string& dir = tmp.path();
  const std::string file = dir + "/not-exec";
  ::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0644));
  r = Launch(io.get_executor(), file, {}, *launch);
  ASSERT_FALSE(r);
  if (::geteuid() != 0) {
    EXPECT_TRUE(r.error().Is(Errc::kPermissionDenied)) << r.error().message;
  }
  EXPECT_NE(r.error().message.find("not-exec"), std::string::npos);
}

TEST(ChildEnvTest, CreateRejectsBadNames) {
  EXPECT_FALSE(ChildLaunch::Create({{"a", 3}, {"a", 4}}, 5, LaunchRole::kCold, {}));
  EXPECT_FALSE(ChildLaunch::Create({{"a:b", 3}}, 5, LaunchRole::kCold, {}));
  EXPECT_FALSE(ChildLaunch::Create({{"", 3}}, 5, LaunchRole::kCold, {}));
  EXPECT_FALSE(ChildLaunch::Create({{"a", 3}}, 5, LaunchRole::kNone, {}));
  auto ok = ChildLaunch::Create({{"a", 7}}, 8, LaunchRole::kSuccessor, {"LISTEN_PID=1", "X=1"});
  ASSERT_TRUE(ok);
  auto env = ok->Environment();
  EXPECT_EQ(std::count(env.begin(), env.end(), "X=1"), 1);
  EXPECT_EQ(std::count(env.begin(), env.end(), "LISTEN_PID=1"), 0);  // inherited contract vars dropped
  EXPECT_EQ(std::count(env.begin(), env.end(), "BATON_CONTROL_FD=4"), 1);
  EXPECT_EQ(std::count(env.begin(), env.end(), "BATON_ROLE=successor"), 1);
}

// ---- child side validation, in a forked child with a crafted environment.

struct ChildSetup {
  int listeners = 1;          // TCP listeners placed at 3..
  bool non_socket_at_3 = false;
  bool non_listening_at_3 = false;
  std::string udp_at_3;       // "bound", "unbound" or "connected": a UDP socket at 3
  bool listening_control = false;  // a TCP listener where the control socket goes
  std::string pid = "self";   // "self" = our pid
  std::string names = "http";
  std::string control = "auto";
  std::string role = "cold";
};

std::string ValidateInChild(const ChildSetup& s) {
  auto [rc, out] = InFork([&]() -> int {
    int fds[2];
    ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
    int ctl = ::fcntl(fds[0], F_DUPFD, 30);
    if (s.listening_control) {
      int port;
      ctl = ::fcntl(TcpListener(&port), F_DUPFD, 30);
    }
    for (int i = 0; i < s.listeners; ++i) {
      int port;
      int l = TcpListener(&port);
      if (i == 0 && s.non_socket_at_3) {
        int p[2];
        (void)::pipe(p);
        l = p[0];
      } else if (i == 0 && s.non_listening_at_3) {
        l = ::socket(AF_INET, SOCK_STREAM, 0);
      } else if (i == 0 && !s.udp_at_3.empty()) {
        l = ::socket(AF_INET, SOCK_DGRAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s.udp_at_3 != "unbound") (void)::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        if (s.udp_at_3 == "connected") {
          a.sin_port = htons(9);
          (void)::connect(l, reinterpret_cast<sockaddr*>(&a), sizeof(a));
        }
      }
      ::dup2(l, 3 + i);
    }
    ::dup2(ctl, 3 + s.listeners);
    ::clearenv();
    ::setenv("LISTEN_FDS", std::to_string(s.listeners).c_str(), 1);
    if (!s.names.empty()) ::setenv("LISTEN_FDNAMES", s.names.c_str(), 1);
    ::setenv("LISTEN_PID", s.pid == "self" ? std::to_string(::getpid()).c_str() : s.pid.c_str(), 1);
    if (!s.role.empty()) ::setenv("BATON_ROLE", s.role.c_str(), 1);
    if (s.control != "none") {
      ::setenv("BATON_CONTROL_FD",
               s.control == "auto" ? std::to_string(3 + s.listeners).c_str() : s.control.c_str(), 1);
    }
    auto env = TakeChildEnvironment();
    if (!env) {
      std::printf("error %s\n", env.error().message.c_str());
      return 1;
    }
    std::printf("ok %s %zu %d\n", std::string(LaunchRoleName(env->role)).c_str(), env->listeners.size(),
                env->control_fd);
    return 0;
  });
  (void)rc;
  return out;
}

TEST(ChildEnvTest, ValidEnvironmentIsAccepted) {
  EXPECT_EQ(ValidateInChild({}), "ok cold 1 4\n");
  ChildSetup two;
  two.listeners = 2;
  two.names = "http:admin";
  two.role = "successor";
  EXPECT_EQ(ValidateInChild(two), "ok successor 2 5\n");
}

TEST(ChildEnvTest, WrongPidIsRefused) {
  ChildSetup s;
  s.pid = "1";
  EXPECT_NE(ValidateInChild(s).find("error LISTEN_PID=1 but this process is pid"), std::string::npos);
}

TEST(ChildEnvTest, NonSocketFdIsRefused) {
  ChildSetup s;
  s.non_socket_at_3 = true;
  EXPECT_EQ(ValidateInChild(s), "error fd 3 (listener 'http') is not a socket\n");
}

TEST(ChildEnvTest, NonListeningSocketIsRefused) {
  ChildSetup s;
  s.non_listening_at_3 = true;
  EXPECT_EQ(ValidateInChild(s), "error fd 3 (listener 'http') is not a listening socket\n");
}

// A udp:// listener: a bound, unconnected datagram socket.
TEST(ChildEnvTest, BoundUdpSocketIsAListener) {
  ChildSetup s;
  s.listeners = 2;
  s.names = "dns:http";
  s.udp_at_3 = "bound";
  EXPECT_EQ(ValidateInChild(s), "ok cold 2 5\n");
  ChildSetup unbound;
  unbound.udp_at_3 = "unbound";
  EXPECT_EQ(ValidateInChild(unbound), "error fd 3 (listener 'http') is a datagram socket bound to no port\n");
  ChildSetup connected;
  connected.udp_at_3 = "connected";
  EXPECT_EQ(ValidateInChild(connected), "error fd 3 (listener 'http') is a connected datagram socket\n");
}

TEST(ChildEnvTest, DuplicateNamesAreRefused) {
  ChildSetup s;
  s.listeners = 2;
  s.names = "http:http";
  EXPECT_EQ(ValidateInChild(s), "error LISTEN_FDNAMES names 'http' twice\n");
}

TEST(ChildEnvTest, NameCountMismatchIsRefused) {
  ChildSetup s;
  s.listeners = 2;
  s.names = "http";
  EXPECT_EQ(ValidateInChild(s), "error LISTEN_FDNAMES has 1 names for LISTEN_FDS=2\n");
}

TEST(ChildEnvTest, ControlFdMustFollowTheListeners) {
  ChildSetup s;
  s.control = "9";
  EXPECT_NE(ValidateInChild(s).find("BATON_CONTROL_FD=9 but the contract places it at 4"), std::string::npos);
  ChildSetup missing;
  missing.control = "none";
  EXPECT_EQ(ValidateInChild(missing), "error BATON_ROLE is set but BATON_CONTROL_FD is not\n");
}

TEST(ChildEnvTest, ControlFdMustBeAUnixStreamSocket) {
  ChildSetup s;
  s.listening_control = true;
  s.listeners = 0;
  s.names = "";
  EXPECT_NE(ValidateInChild(s).find("error fd 3 (control channel) is a listening socket"), std::string::npos)
      << ValidateInChild(s);
}

TEST(ChildEnvTest, UnknownRoleIsRefused) {
  ChildSetup s;
  s.role = "leader";
  EXPECT_EQ(ValidateInChild(s), "error BATON_ROLE='leader': expected cold or successor\n");
}

TEST(ChildEnvTest, NoSupervisorMeansStandalone) {
  auto [rc, out] = InFork([]() -> int {
    ::clearenv();
    auto env = TakeChildEnvironment();
    if (!env) return 1;
    std::printf("%s %zu %d\n", std::string(LaunchRoleName(env->role)).c_str(), env->listeners.size(), env->control_fd);
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "none 0 -1\n");
}

TEST(ChildEnvTest, PlainSocketActivationStillYieldsListeners) {
  ChildSetup s;
  s.role = "";
  s.control = "none";
  EXPECT_EQ(ValidateInChild(s), "ok none 1 -1\n");
  s.pid = "1";  // meant for another process: ignored, not an error
  EXPECT_EQ(ValidateInChild(s), "ok none 0 -1\n");
}

}  // namespace
}  // namespace baton::protocol
