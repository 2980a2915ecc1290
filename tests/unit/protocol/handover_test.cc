// Handover frames: the type checks per kind, the manifest rules, batching,
// and the sealed memfd of a state blob.
#include "protocol/handover.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace baton::protocol {
namespace {

struct SocketPair {
  OwnedFd a, b;
  SocketPair(int type = SOCK_STREAM) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds), 0);
    a = OwnedFd(fds[0]);
    b = OwnedFd(fds[1]);
  }
};

OwnedFd Dup(int fd) { return OwnedFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

v1::Handover Frame(std::vector<std::pair<std::string, std::string>> entries) {
  v1::Handover h;
  h.set_handoff_id("h1");
  for (auto& [name, kind] : entries) {
    auto* e = h.add_entries();
    e->set_name(name);
    e->set_kind(kind);
    e->set_metadata("meta-" + name);
  }
  return h;
}

TEST(HandoverTest, ConnectionMustBeAConnectedStreamSocket) {
  SocketPair stream;
  EXPECT_TRUE(CheckHandedFd(kKindConnection, stream.a.get()));
  SocketPair dgram(SOCK_DGRAM);
  EXPECT_FALSE(CheckHandedFd(kKindConnection, dgram.a.get()));
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  OwnedFd r(pipe_fds[0]), w(pipe_fds[1]);
  auto st = CheckHandedFd(kKindConnection, r.get());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("socket"), std::string::npos);
  OwnedFd unconnected(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  st = CheckHandedFd(kKindConnection, unconnected.get());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("connected"), std::string::npos);
  EXPECT_TRUE(CheckHandedFd(kKindFile, r.get()));
  EXPECT_FALSE(CheckHandedFd("socketish", r.get()));
}

TEST(HandoverTest, StateMustBeASealedMemfd) {
  auto sealed = MakeSealedMemfd("hello state");
  ASSERT_TRUE(sealed);
  EXPECT_TRUE(CheckHandedFd(kKindState, sealed->get()));
  auto text = ReadSealedMemfd(sealed->get());
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "hello state");
  // Nobody can change it any more.
  EXPECT_LT(::write(sealed->get(), "x", 1), 0);
  EXPECT_NE(::ftruncate(sealed->get(), 0), 0);
  OwnedFd unsealed(::memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  auto st = CheckHandedFd(kKindState, unsealed.get());
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("not sealed"), std::string::npos);
  SocketPair s;
  EXPECT_FALSE(CheckHandedFd(kKindState, s.a.get()));
}

TEST(HandoverTest, AStateOfManyMegabytesRoundTrips) {
  std::string big(5 * 1024 * 1024 + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131);
  auto fd = MakeSealedMemfd(big);
  ASSERT_TRUE(fd);
  auto back = ReadSealedMemfd(fd->get());
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, big);
}

TEST(HandoverTest, AcceptMatchesEntriesToDescriptors) {
  SocketPair s1, s2;
  std::vector<HandedFd> held;
  std::vector<OwnedFd> fds;
  fds.push_back(Dup(s1.a.get()));
  fds.push_back(Dup(s2.a.get()));
  ASSERT_TRUE(AcceptHandover(Frame({{"c1", "connection"}, {"c2", "connection"}}), std::move(fds), 10, held));
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[1].entry.name(), "c2");
  EXPECT_EQ(held[1].entry.metadata(), "meta-c2");

  // Surplus, missing, duplicate name, wrong type, over the maximum: refused, nothing kept.
  auto refuse = [&](v1::Handover frame, size_t nfds, size_t max, const char* what) {
    std::vector<OwnedFd> f;
    for (size_t i = 0; i < nfds; ++i) f.push_back(Dup(s1.b.get()));
    auto st = AcceptHandover(frame, std::move(f), max, held);
    ASSERT_FALSE(st) << what;
    EXPECT_TRUE(st.error().Is(Errc::kProtocolError)) << what;
    EXPECT_NE(st.error().message.find(what), std::string::npos) << st.error().message;
    EXPECT_EQ(held.size(), 2u);
  };
  refuse(Frame({{"c3", "connection"}}), 2, 10, "1 entries but 2 descriptors");
  refuse(Frame({{"c3", "connection"}, {"c4", "connection"}}), 1, 10, "2 entries but 1 descriptors");
  refuse(Frame({{"c1", "connection"}}), 1, 10, "named twice");
  refuse(Frame({{"c3", "state"}}), 1, 10, "must be a memfd");
  refuse(Frame({{"c3", "connection"}}), 1, 2, "more than 2 descriptors");
  refuse(Frame({{"", "file"}}), 1, 10, "without a name");
}

TEST(HandoverTest, BatchesStayWithinTheKernelLimitAndKeepOrder) {
  std::vector<HandedFd> held;
  for (int i = 0; i < 600; ++i) {
    HandedFd h;
    h.entry.set_name("f" + std::to_string(i));
    h.entry.set_kind("file");
    h.fd = Dup(0);
    held.push_back(std::move(h));
  }
  auto batches = MakeHandoverBatches("h9", held);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].fds.size(), 253u);
  EXPECT_EQ(batches[1].fds.size(), 253u);
  EXPECT_EQ(batches[2].fds.size(), 94u);
  EXPECT_EQ(batches[2].env.handover().handoff_id(), "h9");
  EXPECT_EQ(batches[2].env.handover().entries(93).name(), "f599");
  // Big metadata cuts frames earlier, so each stays far below the frame cap.
  held.resize(4);
  for (auto& h : held) h.entry.set_metadata(std::string(200 * 1024, 'm'));
  batches = MakeHandoverBatches("h9", held);
  ASSERT_EQ(batches.size(), 2u);
  for (const auto& b : batches) EXPECT_LT(b.env.ByteSizeLong(), 1024u * 1024u);
}

}  // namespace
}  // namespace baton::protocol
