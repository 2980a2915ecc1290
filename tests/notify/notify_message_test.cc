// The notify protocol's parser and judge (supervisor/notify_message.h): what
// is understood, and that every bad datagram is refused as a whole under
// the right kind.
#include "supervisor/notify_message.h"

#include <gtest/gtest.h>

#include <string>

namespace baton::supervisor {
namespace {

constexpr pid_t kChild = 4242;

NotifyVerdict Judge(std::string_view text, size_t fds = 0, std::optional<pid_t> pid = kChild) {
  NotifyDatagram d;
  d.payload = text;
  d.length = text.size();
  d.sender_pid = pid;
  d.fds = fds;
  return JudgeNotify(d, kChild);
}

NotifyReject KindOf(const NotifyVerdict& v) {
  EXPECT_FALSE(v.message.has_value());
  EXPECT_EQ(v.refusals.size(), 1u);
  return v.refusals.empty() ? NotifyReject::kMainPid : v.refusals.front().kind;
}

TEST(NotifyMessageTest, EveryUnderstoodKey) {
  auto v = Judge(
      "READY=1\nSTATUS=serving 3 clients\nSTOPPING=1\nRELOADING=1\nERRNO=5\nEXTEND_TIMEOUT_USEC=2500000\n"
      "WATCHDOG=1\nWATCHDOG_USEC=3000000\nMONOTONIC_USEC=123\nX_CUSTOM=whatever\n");
  ASSERT_TRUE(v.message);
  EXPECT_TRUE(v.refusals.empty());
  const NotifyMessage& m = *v.message;
  EXPECT_TRUE(m.ready);
  EXPECT_TRUE(m.stopping);
  EXPECT_TRUE(m.reloading);
  EXPECT_TRUE(m.watchdog);
  EXPECT_EQ(m.status, "serving 3 clients");
  EXPECT_EQ(m.errno_value, 5);
  EXPECT_EQ(m.extend_timeout, std::chrono::microseconds(2500000));
  EXPECT_EQ(m.watchdog_usec, std::chrono::microseconds(3000000));
  EXPECT_FALSE(m.fdstore);
}

TEST(NotifyMessageTest, StatusAloneAndBlankLines) {
  auto v = Judge("\n\nSTATUS=\n");
  ASSERT_TRUE(v.message);
  EXPECT_EQ(v.message->status, "");
  EXPECT_FALSE(v.message->ready);
}

TEST(NotifyMessageTest, FdStoreWithNameAndDescriptors) {
  auto v = Judge("FDSTORE=1\nFDNAME=conn-7", 2);
  ASSERT_TRUE(v.message);
  EXPECT_TRUE(v.message->fdstore);
  EXPECT_EQ(v.message->fdname, "conn-7");
  EXPECT_EQ(v.message->fds, 2u);
  auto r = Judge("FDSTOREREMOVE=1\nFDNAME=conn-7");
  ASSERT_TRUE(r.message);
  EXPECT_TRUE(r.message->fdstore_remove);
}

TEST(NotifyMessageTest, MainPidIsRefusedButTheRestApplies) {
  auto v = Judge("MAINPID=99\nREADY=1");
  ASSERT_TRUE(v.message);
  EXPECT_TRUE(v.message->ready);
  ASSERT_EQ(v.refusals.size(), 1u);
  EXPECT_EQ(v.refusals[0].kind, NotifyReject::kMainPid);
  EXPECT_NE(v.refusals[0].reason.find("MAINPID=99"), std::string::npos);
}

TEST(NotifyMessageTest, AStatusThatIsNotUtf8IsDroppedButTheRestApplies) {
  auto v = Judge("READY=1\nSTATUS=caf\xc3\xa9 \xff\xfe");
  ASSERT_TRUE(v.message);
  EXPECT_TRUE(v.message->ready);
  EXPECT_FALSE(v.message->status);
  ASSERT_EQ(v.refusals.size(), 1u);
  EXPECT_EQ(v.refusals[0].kind, NotifyReject::kMalformed);
  EXPECT_NE(v.refusals[0].reason.find("not UTF-8"), std::string::npos) << v.refusals[0].reason;
  auto ok = Judge("STATUS=caf\xc3\xa9 \xe2\x9c\x93");
  ASSERT_TRUE(ok.message);
  EXPECT_EQ(ok.message->status, "caf\xc3\xa9 \xe2\x9c\x93");
  EXPECT_TRUE(ok.refusals.empty());
}

TEST(NotifyMessageTest, ForgedSenderIsRefusedBeforeAnythingIsRead) {
  EXPECT_EQ(KindOf(Judge("READY=1", 0, 1)), NotifyReject::kForged);
  EXPECT_EQ(KindOf(Judge("READY=1", 0, std::nullopt)), NotifyReject::kForged);
  // Even garbage from a stranger counts as forged, not malformed.
  EXPECT_EQ(KindOf(Judge("\x01\x02", 0, 77)), NotifyReject::kForged);
}

TEST(NotifyMessageTest, Malformed) {
  for (std::string_view bad : {"READY", "ready=1", "READY=2", "READY=1\nSTOPPING=yes", "ERRNO=x", "ERRNO=-1",
                               "EXTEND_TIMEOUT_USEC=1.5", "WATCHDOG_USEC=0", "FDNAME=a:b\nFDSTORE=1", "=1", "",
                               "\n\n", "FDSTOREREMOVE=1", "FDSTORE=1"}) {
    SCOPED_TRACE(std::string(bad));
    EXPECT_EQ(KindOf(Judge(bad, bad == "FDNAME=a:b\nFDSTORE=1" ? 1 : 0)), NotifyReject::kMalformed);
  }
  const std::string nul("READY=1\0X", 9);
  EXPECT_EQ(KindOf(Judge(nul)), NotifyReject::kMalformed);
}

TEST(NotifyMessageTest, OversizedJunk) {
  const std::string junk(64 * 1024, 'x');
  NotifyDatagram d;
  d.payload = std::string_view(junk).substr(0, kNotifyMaxBytes + 1);  // what the buffer holds
  d.length = junk.size();                                             // MSG_TRUNC's answer
  d.sender_pid = kChild;
  EXPECT_EQ(KindOf(JudgeNotify(d, kChild)), NotifyReject::kOversized);
  d.payload = "READY=1";
  d.length = 7;
  d.control_truncated = true;
  EXPECT_EQ(KindOf(JudgeNotify(d, kChild)), NotifyReject::kOversized);
}

TEST(NotifyMessageTest, DescriptorWithoutFdStore) {
  EXPECT_EQ(KindOf(Judge("READY=1", 1)), NotifyReject::kUnannouncedFd);
}

TEST(NotifyMessageTest, FdNames) {
  EXPECT_TRUE(ValidFdName("a"));
  EXPECT_TRUE(ValidFdName(std::string(255, 'n')));
  EXPECT_FALSE(ValidFdName(std::string(256, 'n')));
  EXPECT_FALSE(ValidFdName(""));
  EXPECT_FALSE(ValidFdName("a b"));
  EXPECT_FALSE(ValidFdName("a:b"));
}

TEST(NotifyMessageTest, KindNames) {
  std::set<std::string_view> names;
  for (auto k : kAllNotifyRejects) names.insert(NotifyRejectName(k));
  EXPECT_EQ(names.size(), std::size(kAllNotifyRejects));
  EXPECT_TRUE(names.count("unannounced_fd"));
}

}  // namespace
}  // namespace baton::supervisor
