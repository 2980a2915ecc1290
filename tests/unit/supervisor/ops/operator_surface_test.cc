#include "supervisor/ops/operator_surface.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

TEST(OperatorSurfaceTest, EveryEventReachesTheJournalMetricsAndNotify) {
  const harness::TempDir tmp("os");
  const std::string& dir = tmp.path();
  // A fake systemd.
  const std::string sock = dir + "/notify";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, sock.c_str(), sizeof(a.sun_path) - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ::setenv("NOTIFY_SOCKET", sock.c_str(), 1);

  RecordingSink log;
  OperatorSurface s({"kvd", dir, 1 << 20, seconds(300), true}, log);
  SupervisorOptions opts;
  s.Attach(opts);
  ASSERT_TRUE(opts.on_event);
  ASSERT_TRUE(opts.metrics_text);
  Event hello = MakeEvent(Level::kInfo, "child.hello", "generation pid 7 is up");
  opts.on_event(hello, ToJson(hello, 1));
  Event spawn = MakeEvent(Level::kInfo, "child.spawn", "x").With("role", std::string("cold"));
  opts.on_event(spawn, ToJson(spawn, 2));
  ::unsetenv("NOTIFY_SOCKET");

  EXPECT_EQ(harness::ReadAll(dir + "/events.jsonl"), ToJson(hello, 1) + "\n" + ToJson(spawn, 2) + "\n");
  EXPECT_NE(opts.metrics_text().find("baton_generation 1\n"), std::string::npos);
  char buf[512];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "READY=1\nSTATUS=kvd serving (generation pid 7 is up)");
  EXPECT_FALSE(log.Has("events.journal_failed"));
  ::close(fd);
}

TEST(OperatorSurfaceTest, AJournalThatCannotBeOpenedIsLoggedOnce) {
  RecordingSink log;
  OperatorSurface s({"kvd", "/nonexistent/run", 1 << 20, seconds(300), false}, log);
  for (int i = 0; i < 3; ++i) s.OnEvent(MakeEvent(Level::kInfo, "x", "y"), "{}");
  int failures = 0;
  for (const auto& e : log.Events()) failures += e.name == "events.journal_failed";
  EXPECT_EQ(failures, 1);
}

TEST(MetricsHttpServerTest, BadAddressesAreUsageErrors) {
  boost::asio::io_context io;
  for (const char* bad : {"localhost:9100", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", ":9100"}) {
    auto r = MetricsHttpServer::Start(io, bad, [] { return ""; });
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument)) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
  auto ok = MetricsHttpServer::Start(io, "127.0.0.1:0", [] { return "m 1\n"; });
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ((*ok)->Address().rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE((*ok)->Address(), "127.0.0.1:0");
}

}  // namespace
}  // namespace baton::supervisor
