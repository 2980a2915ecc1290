// Descriptors on the control channel (SCM_RIGHTS): bound to the frame that
// carried them, batched at the kernel's limit, and refused as bad input
// wherever the receiver takes none or they sit on the wrong byte.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <gtest/gtest.h>

#include "protocol/channel.h"

namespace baton::protocol {
namespace {

namespace asio = boost::asio;

struct Received {
  v1::Envelope env;
  std::vector<OwnedFd> fds;
};

struct FdPair {
  asio::io_context io;
  std::shared_ptr<Channel> a, b;
  std::vector<Received> got_b;
  std::optional<Error> closed_b;
  int raw_a = -1;  // when `a` is a bare socket

  explicit FdPair(bool b_takes_fds, bool raw = false) {
    UnixSocket sa(io), sb(io);
    asio::local::connect_pair(sa, sb);
    ChannelCallbacks cb{[this](v1::Envelope e) { got_b.push_back({std::move(e), {}}); },
                        [this](const Error& e) { closed_b = e; },
                        {}};
    if (b_takes_fds) {
      cb.on_message_with_fds = [this](v1::Envelope e, std::vector<OwnedFd> fds) {
        got_b.push_back({std::move(e), std::move(fds)});
      };
    }
    b = Channel::Create(std::move(sb), {}, RealClock(), std::move(cb));
    if (raw) {
      raw_a = sa.release();
    } else {
      a = Channel::Create(std::move(sa), {}, RealClock(), {});
      a->Start();
    }
    b->Start();
  }
  ~FdPair() {
    if (raw_a >= 0) ::close(raw_a);
  }
  template <class Pred>
  bool RunUntil(Pred pred) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred() && std::chrono::steady_clock::now() < end) io.run_for(std::chrono::milliseconds(10));
    return pred();
  }
};

// Same open file description (inode and device match).
bool SameFile(int x, int y) {
  struct stat sx {}, sy {};
  return ::fstat(x, &sx) == 0 && ::fstat(y, &sy) == 0 && sx.st_ino == sy.st_ino && sx.st_dev == sy.st_dev;
}

int OpenFdCount() {
  int n = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) ++n;
  }
  return n;
}

v1::Envelope Named(const std::string& id) {
  v1::Envelope env;
  env.mutable_handover()->set_handoff_id(id);
  return env;
}

TEST(ChannelFdsTest, DescriptorsArriveWithTheFrameThatCarriedThem) {
  FdPair p(true);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  p.a->Send(Named("before"));
  ASSERT_TRUE(p.a->SendWithFds(Named("with"), {pipe_fds[0], pipe_fds[1]}));
  p.a->Send(Named("after"));
  ASSERT_TRUE(p.RunUntil([&] { return p.got_b.size() == 3; }));
  EXPECT_TRUE(p.got_b[0].fds.empty());
  ASSERT_EQ(p.got_b[1].env.handover().handoff_id(), "with");
  ASSERT_EQ(p.got_b[1].fds.size(), 2u);
  EXPECT_TRUE(SameFile(p.got_b[1].fds[0].get(), pipe_fds[0]));
  EXPECT_TRUE(SameFile(p.got_b[1].fds[1].get(), pipe_fds[1]));
  EXPECT_EQ(::fcntl(p.got_b[1].fds[0].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_TRUE(p.got_b[2].fds.empty());
  // The sender kept its own descriptors.
  EXPECT_GE(::fcntl(pipe_fds[0], F_GETFD), 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_FALSE(p.closed_b);
}

TEST(ChannelFdsTest, ManyBatchesBackToBackStayBound) {
  FdPair p(true);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  const int before = OpenFdCount();
  std::vector<int> full(kMaxFdsPerFrame, pipe_fds[0]);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(p.a->SendWithFds(Named(std::to_string(i)), i % 2 == 0 ? full : std::vector<int>{pipe_fds[1]}));
    p.a->Send(Named("plain"));
  }
  ASSERT_TRUE(p.RunUntil([&] { return p.got_b.size() == 12; }));
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(p.got_b[2 * i].fds.size(), i % 2 == 0 ? kMaxFdsPerFrame : 1u) << i;
    EXPECT_TRUE(p.got_b[2 * i + 1].fds.empty());
  }
  EXPECT_FALSE(p.closed_b);
  p.got_b.clear();
  // Nothing leaked in either direction: the sender's dups are closed.
  EXPECT_EQ(OpenFdCount(), before);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(ChannelFdsTest, MoreThanTheKernelLimitIsRefusedBeforeSending) {
  FdPair p(true);
  std::vector<int> too_many(kMaxFdsPerFrame + 1, 0);
  auto st = p.a->SendWithFds(Named("x"), too_many);
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().Is(Errc::kInvalidArgument));
}

TEST(ChannelFdsTest, DescriptorsWhereNoneAreTakenCloseAsBadInput) {
  FdPair p(false);
  ASSERT_TRUE(p.a->SendWithFds(Named("x"), {0}));
  ASSERT_TRUE(p.RunUntil([&] { return p.closed_b.has_value(); }));
  EXPECT_NE(p.closed_b->message.find("carried 1 descriptors where none are accepted"), std::string::npos)
      << p.closed_b->message;
  EXPECT_TRUE(p.got_b.empty());
}

// A peer that attaches descriptors to a byte inside a frame.
TEST(ChannelFdsTest, DescriptorsInsideAFrameCloseAsBadInput) {
  FdPair p(true, /*raw=*/true);
  auto frame = EncodeFrame(Named("inside"));
  ASSERT_TRUE(frame);
  ASSERT_EQ(::send(p.raw_a, frame->data(), 2, 0), 2);
  char control[CMSG_SPACE(sizeof(int))] = {};
  struct iovec iov {frame->data() + 2, 1};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  const int fd = 0;
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  ASSERT_EQ(::sendmsg(p.raw_a, &msg, 0), 1);
  ASSERT_EQ(::send(p.raw_a, frame->data() + 3, frame->size() - 3, 0), static_cast<ssize_t>(frame->size() - 3));
  ASSERT_TRUE(p.RunUntil([&] { return p.closed_b.has_value(); }));
  EXPECT_NE(p.closed_b->message.find("does not start a frame"), std::string::npos) << p.closed_b->message;
  EXPECT_TRUE(p.got_b.empty());
}

}  // namespace
}  // namespace baton::protocol
