#include "supervisor/ops/notify.h"

#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "tools/harness/fake_systemd.h"
#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

Event Ev(const char* name, const char* msg = "") { return MakeEvent(Level::kInfo, name, "{}", msg); }

TEST(NotifyPolicyTest, MapsTheServiceLifecycle) {
  NotifyPolicy p("kvd", seconds(330));
  EXPECT_EQ(p.OnEvent(Ev("child.spawn"), 1), "");
  EXPECT_EQ(p.OnEvent(Ev("child.hello", "generation pid 42 (kvd 1.0) is up"), 1),
            "READY=1\nSTATUS=kvd serving (generation pid 42 (kvd 1.0) is up)");
  EXPECT_EQ(p.OnEvent(Ev("child.hello", "again"), 1), "");  // READY=1 only once for cold starts
  EXPECT_EQ(p.OnEvent(Ev("handoff.start").With("handoff_id", std::string("abc")), 777),
            "RELOADING=1\nMONOTONIC_USEC=777\nEXTEND_TIMEOUT_USEC=330000000\nSTATUS=upgrading kvd: handoff abc");
  EXPECT_EQ(p.OnEvent(Ev("handoff.phase").With("phase", std::string("warm")), 1),
            "EXTEND_TIMEOUT_USEC=330000000\nSTATUS=upgrading kvd: warm done");
  EXPECT_EQ(p.OnEvent(Ev("handoff.end", "rolled_back: successor\nexited")
                          .With("outcome", std::string("rolled_back"))
                          .With("reason", std::string("successor\nexited"))
                          .With("old_pid", int64_t{41})
                          .With("new_pid", int64_t{42}),
                      1),
            "READY=1\nSTATUS=kvd serving (generation pid 41); last handoff rolled back: successor exited");
  // A commit's reason is the outcome again; the pid is the new generation's.
  EXPECT_EQ(p.OnEvent(Ev("handoff.end", "committed: committed")
                          .With("outcome", std::string("committed"))
                          .With("reason", std::string("committed"))
                          .With("old_pid", int64_t{41})
                          .With("new_pid", int64_t{42}),
                      1),
            "READY=1\nSTATUS=kvd serving (generation pid 42); last handoff committed");
  EXPECT_EQ(p.OnEvent(Ev("handoff.end", "failed: both died")
                          .With("outcome", std::string("failed"))
                          .With("reason", std::string("both died")),
                      1),
            "READY=1\nSTATUS=kvd: last handoff failed: both died");
  EXPECT_EQ(p.OnEvent(Ev("child.restart", "restarting the daemon in 100 ms"), 1),
            "STATUS=kvd died; restarting the daemon in 100 ms");
  EXPECT_EQ(p.OnEvent(Ev("supervisor.stop"), 1), "STOPPING=1\nSTATUS=stopping kvd");
}

// Its directory, a base so that it exists before the socket is bound.
struct NotifyDir {
  harness::TempDir tmp{"ns"};
};

// The fake systemd, at $NOTIFY_SOCKET while it lives.
class FakeNotifySocket : private NotifyDir, public harness::FakeSystemd {
 public:
  FakeNotifySocket() : FakeSystemd(tmp.path() + "/notify") { ::setenv("NOTIFY_SOCKET", path().c_str(), 1); }
  ~FakeNotifySocket() { ::unsetenv("NOTIFY_SOCKET"); }
  std::string Next() { return Receive(std::chrono::seconds(5)).value_or("<nothing>"); }
};

TEST(SdNotifierTest, DisabledWithoutNotifySocket) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(SdNotifier::Enabled());
}

TEST(SdNotifierTest, SendsMessagesAndParksFds) {
  FakeNotifySocket sys;
  ASSERT_TRUE(sys.ok());
  EXPECT_TRUE(SdNotifier::Enabled());
  ASSERT_TRUE(SdNotifier::Notify("READY=1\nSTATUS=serving"));
  EXPECT_EQ(sys.Next(), "READY=1\nSTATUS=serving");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_TRUE(SdNotifier::StoreFd("http", pipe_fds[0]));
  EXPECT_EQ(sys.Next(), "FDSTORE=1\nFDNAME=http");
  const std::vector<int>& got = sys.fds();  // closed by sys
  ASSERT_EQ(got.size(), 1u);
  // The received fd is the same pipe.
  ASSERT_EQ(::write(pipe_fds[1], "z", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(got[0], &c, 1), 1);
  EXPECT_EQ(c, 'z');
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

}  // namespace
}  // namespace baton::supervisor
