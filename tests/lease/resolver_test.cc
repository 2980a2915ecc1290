// Host names of the lease's connection are resolved off the io thread
// (ownership/pg_resolver.h): the rewriting of host lists into addresses,
// and a lease pointed at a name whose resolver never answers, in a private
// mount and network namespace, while the io thread keeps ticking and Stop
// returns in time (#19 defect 2).
#include "ownership/pg_resolver.h"

#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <gtest/gtest.h>

#include "base/log.h"
#include "ownership/lease_client.h"

namespace baton::testing {
namespace {

namespace asio = boost::asio;
using ownership::pg::Addresses;
using ownership::pg::ConnInfo;
using ownership::pg::NamesToResolve;
using ownership::pg::WithHostAddrs;

std::string Value(const ConnInfo& info, const std::string& key) {
  for (const auto& [k, v] : info) {
    if (k == key) return v;
  }
  return "<unset>";
}

TEST(LeaseResolverTest, OnlyHostNamesNeedALookup) {
  EXPECT_EQ(NamesToResolve({{"host", "/run/postgresql,10.0.0.1,::1,db.example,db.example,@abstract"}}),
            std::vector<std::string>{"db.example"});
  EXPECT_TRUE(NamesToResolve({{"host", "db.example"}, {"hostaddr", "10.0.0.1"}}).empty());
}

TEST(LeaseResolverTest, EachAddressBecomesAHostaddrEntryBesideItsName) {
  Addresses a;
  a.of["db.example"] = {"10.0.0.7", "fd00::7"};
  auto r = WithHostAddrs({{"host", "/run/pg,db.example,10.0.0.9"}, {"port", "5432,5433,5434"}, {"dbname", "x"}}, a);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(Value(*r, "host"), "/run/pg,db.example,db.example,10.0.0.9");
  EXPECT_EQ(Value(*r, "hostaddr"), ",10.0.0.7,fd00::7,10.0.0.9");
  EXPECT_EQ(Value(*r, "port"), "5432,5433,5433,5434");
  EXPECT_EQ(Value(*r, "dbname"), "x");
  // One port applies to every entry; no port stays unset.
  r = WithHostAddrs({{"host", "db.example"}, {"port", "6000"}}, a);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(Value(*r, "port"), "6000,6000");
  r = WithHostAddrs({{"host", "db.example"}}, a);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(Value(*r, "port"), "<unset>");
}

TEST(LeaseResolverTest, ANameThatDidNotResolveIsDroppedAndNoneLeftIsAnError) {
  Addresses a;
  a.of["gone.example"] = {};
  a.of["db.example"] = {"10.0.0.7"};
  a.error = "resolve host 'gone.example': Name or service not known";
  auto r = WithHostAddrs({{"host", "gone.example,db.example"}}, a);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(Value(*r, "host"), "db.example");
  r = WithHostAddrs({{"host", "gone.example"}}, a);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(Errc::kUnavailable));
  EXPECT_NE(r.error().message.find("gone.example"), std::string::npos) << r.error().message;
}

// ---- a resolver that never answers ------------------------------------------

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

// In a forked child: a private mount and network namespace whose DNS
// server (127.0.0.1:53) never answers, and whose nsswitch asks only DNS.
std::string EnterHangingResolver(const std::string& dir) {
  int flags = CLONE_NEWNS | CLONE_NEWNET;
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (uid != 0) flags |= CLONE_NEWUSER;
  if (::unshare(flags) != 0) return std::string("unshare: ") + std::strerror(errno);
  if (uid != 0) {
    WriteFile("/proc/self/setgroups", "deny");
    if (!WriteFile("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
        !WriteFile("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) {
      return "uid_map/gid_map";
    }
  }
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return "make / private";
  const std::string resolv = dir + "/resolv.conf";
  const std::string nss = dir + "/nsswitch.conf";
  if (!WriteFile(resolv, "nameserver 127.0.0.1\noptions timeout:30 attempts:2\n") ||
      !WriteFile(nss, "hosts: dns\n")) {
    return "write " + dir;
  }
  if (::mount(resolv.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0) {
    return std::string("bind /etc/resolv.conf: ") + std::strerror(errno);
  }
  if (::mount(nss.c_str(), "/etc/nsswitch.conf", nullptr, MS_BIND, nullptr) != 0) {
    return std::string("bind /etc/nsswitch.conf: ") + std::strerror(errno);
  }
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return "SIOCGIFFLAGS lo";
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) return "SIOCSIFFLAGS lo";
  // The "DNS server": a bound socket that never reads, so queries get no
  // answer and no ICMP error either.
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(53);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return std::string("bind 127.0.0.1:53: ") + std::strerror(errno);
  }
  return "";  // `s` stays open for the life of the child
}

// The child's scenario; returns "" when everything held.
std::string HangingResolverScenario() {
  char tmpl[] = "/tmp/bt-resolver-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return "mkdtemp";
  if (auto e = EnterHangingResolver(tmpl); !e.empty()) return "set-up: " + e;

  auto cfg = ownership::MakeLeaseConfig({.name = "x",
                                         .dsn = "host=db.lease-test.example port=5432 dbname=postgres user=postgres",
                                         .ttl = std::chrono::milliseconds(3000),
                                         .op_timeout = std::chrono::milliseconds(500)});
  if (!cfg) return "config: " + cfg.error().message;
  RecordingSink sink;
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  // A heartbeat on the lease's thread: the largest gap between ticks.
  asio::steady_timer tick(io);
  std::atomic<int64_t> worst_gap_ms{0};
  auto last = std::chrono::steady_clock::now();
  std::function<void()> arm = [&] {
    tick.expires_after(milliseconds(10));
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const auto now = std::chrono::steady_clock::now();
      const int64_t gap = ToMillis(now - last);
      if (gap > worst_gap_ms) worst_gap_ms = gap;
      last = now;
      arm();
    });
  };
  arm();
  ownership::LeaseClient lease(io.get_executor(), *cfg, RealClock(), sink);
  std::thread t([&] { io.run(); });
  asio::post(io, [&] {
    lease.Start();
    lease.Campaign();
  });
  // Wait (bounded) until a connect attempt gave up on the resolver.
  auto gave_up = [&] {
    for (const auto& e : sink.Events()) {
      if (e.name == "lease.error" && e.message.find("resolve") != std::string::npos) return true;
    }
    return false;
  };
  const auto limit = std::chrono::steady_clock::now() + seconds(15);
  while (!gave_up() && std::chrono::steady_clock::now() < limit) std::this_thread::sleep_for(milliseconds(20));
  std::string failure;
  if (!gave_up()) failure += "no lease.error naming the resolver within 15 s; ";
  std::promise<void> stopped;
  const auto t0 = std::chrono::steady_clock::now();
  asio::post(io, [&] { lease.Stop(RealClock().Now() + milliseconds(500), [&] { stopped.set_value(); }); });
  if (stopped.get_future().wait_for(seconds(5)) != std::future_status::ready) {
    failure += "Stop did not return within 5 s; ";
  } else if (const auto took = std::chrono::steady_clock::now() - t0; took > seconds(3)) {
    failure += "Stop took " + std::to_string(ToMillis(took)) + " ms; ";
  }
  asio::post(io, [&] { tick.cancel(); });
  if (worst_gap_ms > 300) failure += "the io thread stalled for " + std::to_string(worst_gap_ms) + " ms; ";
  if (!failure.empty()) return failure;  // the io thread may be stuck: no join
  work.reset();
  io.stop();
  t.join();
  return "";
}

TEST(LeaseResolverTest, AResolverThatNeverAnswersStallsNeitherTheIoThreadNorStop) {
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    const std::string out = HangingResolverScenario();
    (void)!::write(pipefd[1], out.data(), out.size());
    ::_exit(out.empty() ? 0 : 1);
  }
  ::close(pipefd[1]);
  const auto deadline = std::chrono::steady_clock::now() + seconds(40);
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;) msg.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  ASSERT_NE(done, 0) << "the child hung for 40 s: " << msg;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << msg;
}

}  // namespace
}  // namespace baton::testing
