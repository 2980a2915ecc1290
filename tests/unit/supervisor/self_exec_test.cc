#include "supervisor/self_exec.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "protocol/frame.h"

namespace baton::supervisor {
namespace {

TEST(ResumeArgvTest, FlagsGoRightAfterSupervise) {
  auto a = ResumeArgv({"/usr/bin/baton", "supervise", "--listen", "http=tcp://[::]:80", "--", "/bin/kvd", "supervise"},
                      7, 9);
  ASSERT_TRUE(a) << a.error().message;
  const std::vector<std::string> want = {"/usr/bin/baton", "supervise", kResumeStateFlag, "7", kResumePreviousFlag,
                                         "9", "--listen", "http=tcp://[::]:80", "--", "/bin/kvd", "supervise"};
  EXPECT_EQ(*a, want);
}

TEST(ResumeArgvTest, NotASupervisorIsAnError) {
  EXPECT_FALSE(ResumeArgv({"/usr/bin/baton", "status"}, 7, 9));
  // "supervise" after -- is the daemon's argument, not ours.
  EXPECT_FALSE(ResumeArgv({"/usr/bin/baton", "run", "--", "supervise"}, 7, 9));
}

TEST(OwnArgvTest, IsThisProcesssCommandLine) {
  auto a = OwnArgv();
  ASSERT_TRUE(a) << a.error().message;
  ASSERT_FALSE(a->empty());
  EXPECT_NE(a->front().find("self_exec_test"), std::string::npos) << a->front();
}

TEST(SealedMemfdTest, RoundTripsAndCannotChange) {
  const std::string bytes("state\0with a nul", 16);
  auto fd = SealedMemfd(bytes);
  ASSERT_TRUE(fd) << fd.error().message;
  EXPECT_EQ(::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC, 0) << "must survive execve";
  auto back = ReadSealedMemfd(fd->get());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, bytes);
  EXPECT_LT(::pwrite(fd->get(), "x", 1, 0), 0);
  EXPECT_LT(::ftruncate(fd->get(), 0), 0);
}

TEST(SealedMemfdTest, AnythingElseIsRefused) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_FALSE(ReadSealedMemfd(p[0]));
  ::close(p[0]);
  ::close(p[1]);
  EXPECT_FALSE(ReadSealedMemfd(-1));
}

TEST(SelfCheckTest, FormatsAndParses) {
  SelfCheck c{3, 2, 1, 2, "1.4.0"};
  auto back = ParseSelfCheck("some noise\n" + FormatSelfCheck(c));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->state_version, 3u);
  EXPECT_EQ(back->state_min, 2u);
  EXPECT_EQ(back->protocol_min, 1u);
  EXPECT_EQ(back->protocol_max, 2u);
  EXPECT_EQ(back->version, "1.4.0");
  EXPECT_FALSE(ParseSelfCheck("usage: baton ..."));
  EXPECT_FALSE(ParseSelfCheck("baton-self-check version=1"));
  // A build that reads one format prints no state_min: it reads just that.
  auto one = ParseSelfCheck("baton-self-check state_version=1 protocol=1-2 version=0.9.0");
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one->state_min, 1u);
  EXPECT_EQ(one->state_version, 1u);
  EXPECT_FALSE(ParseSelfCheck("baton-self-check state_version=1 state_min=2 protocol=1-2 version=x"));
}

TEST(SelfCheckTest, TheTestVariableStandsInForAnotherFormat) {
  ::unsetenv("BATON_TEST_SELF_STATE_VERSION");
  EXPECT_EQ(SelfStateVersionsRead().max, kSelfStateVersion);
  EXPECT_EQ(SelfStateVersionsRead().min, kSelfStateVersionMin);
  ::setenv("BATON_TEST_SELF_STATE_VERSION", "99", 1);
  EXPECT_EQ(SelfStateVersionsRead().min, 99u);
  EXPECT_EQ(SelfStateVersionsRead().max, 99u);
  ::unsetenv("BATON_TEST_SELF_STATE_VERSION");
}

TEST(CleanEnvironmentTest, DropsWhatMustNotOutliveOneImage) {
  ::setenv("BATON_CRASH_AT", "supervisor.self_after_exec", 1);
  ::setenv(kFallbackEnv, "old reason", 1);
  ::setenv("KEEP_ME", "1", 1);
  auto env = CleanEnvironment({std::string(kFallbackEnv) + "=new"});
  int fallback = 0;
  bool keep = false;
  for (const auto& e : env) {
    EXPECT_NE(e.rfind("BATON_CRASH_AT=", 0), 0u) << e;
    fallback += e.rfind(std::string(kFallbackEnv) + "=", 0) == 0 ? 1 : 0;
    keep = keep || e == "KEEP_ME=1";
  }
  EXPECT_EQ(fallback, 1);
  EXPECT_TRUE(keep);
  ::unsetenv("BATON_CRASH_AT");
  ::unsetenv(kFallbackEnv);
}

// What a channel read but did not decode (a partial frame) goes into the
// new image's decoder first: the frame completes with the next bytes.
TEST(UnconsumedTest, APartialFrameCompletesInTheNextDecoder) {
  v1::Envelope env;
  env.mutable_heartbeat()->set_seq(42);
  auto frame = protocol::EncodeFrame(env);
  ASSERT_TRUE(frame);
  protocol::FrameDecoder before;
  before.Feed(std::string_view(*frame).substr(0, 5));
  EXPECT_TRUE(std::holds_alternative<protocol::NeedMore>(before.Next()));
  protocol::FrameDecoder after;
  after.Feed(before.unconsumed());
  after.Feed(std::string_view(*frame).substr(5));
  auto r = after.Next();
  ASSERT_TRUE(std::holds_alternative<v1::Envelope>(r));
  EXPECT_EQ(std::get<v1::Envelope>(r).heartbeat().seq(), 42u);
}

}  // namespace
}  // namespace baton::supervisor
