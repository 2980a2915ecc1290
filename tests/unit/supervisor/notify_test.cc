#include "supervisor/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

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
  EXPECT_EQ(p.OnEvent(Ev("handoff.end", "rolled_back: successor\nexited"), 1),
            "READY=1\nSTATUS=kvd serving; last handoff rolled_back: successor exited");
  EXPECT_EQ(p.OnEvent(Ev("child.restart", "restarting the daemon in 100 ms"), 1),
            "STATUS=kvd died; restarting the daemon in 100 ms");
  EXPECT_EQ(p.OnEvent(Ev("supervisor.stop"), 1), "STOPPING=1\nSTATUS=stopping kvd");
}

// A fake systemd: a datagram socket at $NOTIFY_SOCKET.
class FakeNotifySocket {
 public:
  FakeNotifySocket() {
    dir_ = tmp_.path();
    path_ = dir_ + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
  }
  ~FakeNotifySocket() {
    ::unsetenv("NOTIFY_SOCKET");
    ::close(fd_);
  }
  bool ok() const { return ok_; }
  // One datagram and the fds passed with it.
  std::string Receive(std::vector<int>* fds = nullptr) {
    char buf[4096];
    char ctrl[CMSG_SPACE(sizeof(int) * 8) + CMSG_SPACE(sizeof(ucred))];
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof(ctrl);
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return "<nothing>";
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && fds != nullptr) {
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          fds->push_back(fd);
        }
      }
    }
    return std::string(buf, static_cast<size_t>(n));
  }

 private:
  harness::TempDir tmp_{"ns"};
  std::string dir_, path_;
  int fd_ = -1;
  bool ok_ = false;
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
  EXPECT_EQ(sys.Receive(), "READY=1\nSTATUS=serving");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_TRUE(SdNotifier::StoreFd("http", pipe_fds[0]));
  std::vector<int> got;
  EXPECT_EQ(sys.Receive(&got), "FDSTORE=1\nFDNAME=http");
  ASSERT_EQ(got.size(), 1u);
  // The received fd is the same pipe.
  ASSERT_EQ(::write(pipe_fds[1], "z", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(got[0], &c, 1), 1);
  EXPECT_EQ(c, 'z');
  ::close(got[0]);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

}  // namespace
}  // namespace baton::supervisor
