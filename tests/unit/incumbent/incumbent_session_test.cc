#include "incumbent/incumbent_session.h"

#include <gtest/gtest.h>

#include "tests/support/fake_clock.h"
#include "tests/support/fake_ownership.h"
#include "tests/support/session_actions.h"

namespace baton::incumbent {
namespace {

using protocol::ExitAction;
using protocol::HookDone;
using protocol::HookKind;
using protocol::RunHookAction;
using protocol::SendAction;
using protocol::SessionActions;
using protocol::WatchPidAction;
using State = IncumbentSession::State;

using testsupport::Find;
using testsupport::Sent;

v1::Envelope Prepare(uint64_t handoff_deadline_ms = 0) {
  v1::Envelope e;
  e.mutable_prepare()->set_handoff_id("h1");
  e.mutable_prepare()->set_drain_deadline_ms(30000);
  e.mutable_prepare()->set_successor_pid(777);
  e.mutable_prepare()->set_handoff_deadline_ms(handoff_deadline_ms);
  return e;
}
v1::Envelope Msg(const char* which, std::string id = "h1") {
  v1::Envelope e;
  std::string w(which);
  if (w == "seal") e.mutable_seal()->set_handoff_id(id);
  if (w == "commit") e.mutable_commit()->set_handoff_id(id);
  if (w == "resume") e.mutable_resume()->set_handoff_id(id);
  return e;
}

struct IncumbentSessionTest : ::testing::Test {
  IncumbentSessionTest() {
    own.held = true;
    own.generation = 5;
  }
  IncumbentOptions opts{.default_handoff_deadline = seconds(300), .orphan_grace = seconds(10)};
  testsupport::FakeOwnership own;
  FakeClock clock;

  // Drives a session to `target`.
  void To(IncumbentSession& s, State target) {
    s.OnMessage(Prepare(), clock.Now());
    if (target == State::kDraining) return;
    s.OnHookDone({HookKind::kDrain, {}, 0, ""}, clock.Now());
    if (target == State::kDrained) return;
    s.OnMessage(Msg("seal"), clock.Now());
    if (target == State::kSealing) return;
    s.OnHookDone({HookKind::kSeal, {}, 99, "fp"}, clock.Now());
    ASSERT_EQ(s.state(), State::kSealed);
  }
};

TEST_F(IncumbentSessionTest, PrepareRunsDrainAndReportsDrained) {
  IncumbentSession s(opts, own, 5);
  auto acts = s.OnMessage(Prepare(), clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kDrain);
  EXPECT_EQ(Find<RunHookAction>(acts)->deadline_ms, 30000u);
  EXPECT_EQ(s.state(), State::kDraining);
  ASSERT_TRUE(s.NextDeadline());
  EXPECT_EQ(*s.NextDeadline(), clock.Now() + seconds(300));
  acts = s.OnHookDone({HookKind::kDrain, {}, 0, ""}, clock.Now());
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->drained().handoff_id(), "h1");
  EXPECT_EQ(s.state(), State::kDrained);
}

TEST_F(IncumbentSessionTest, SealReleasesTheLockOnlyAfterTheHookAndReports) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealing);
  EXPECT_TRUE(own.held);  // the hook has not returned yet
  auto acts = s.OnHookDone({HookKind::kSeal, {}, 99, "abc"}, clock.Now());
  EXPECT_FALSE(own.held);
  ASSERT_NE(Sent(acts), nullptr);
  const auto& sc = Sent(acts)->seal_complete();
  EXPECT_EQ(sc.revision(), 99u);
  EXPECT_EQ(sc.fingerprint(), "abc");
  EXPECT_EQ(sc.data_generation(), 5u);
  EXPECT_EQ(s.state(), State::kSealed);
}

TEST_F(IncumbentSessionTest, CommitRetiresAcksAndExitsZero) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealed);
  auto acts = s.OnMessage(Msg("commit"), clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kRetire);
  acts = s.OnHookDone({HookKind::kRetire, {}, 0, ""}, clock.Now());
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_TRUE(Sent(acts)->has_commit_ack());
  ASSERT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_EQ(Find<ExitAction>(acts)->code, 0);
}

TEST_F(IncumbentSessionTest, ResumeAfterDrainKeepsTheLockAndReplies) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kDrained);
  auto acts = s.OnMessage(Msg("resume"), clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
  EXPECT_FALSE(Find<RunHookAction>(acts)->data_changed);
  acts = s.OnHookDone({HookKind::kResume, {}, 0, ""}, clock.Now());
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_TRUE(Sent(acts)->has_resumed());
  EXPECT_EQ(s.state(), State::kServing);
  EXPECT_TRUE(own.held);
  EXPECT_FALSE(s.NextDeadline());
}

TEST_F(IncumbentSessionTest, ResumeAfterSealRetakesTheLockAndDetectsNoChange) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealed);
  auto acts = s.OnMessage(Msg("resume"), clock.Now());
  EXPECT_TRUE(own.held);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_FALSE(Find<RunHookAction>(acts)->data_changed);
  acts = s.OnHookDone({HookKind::kResume, {}, 0, ""}, clock.Now());
  EXPECT_FALSE(Sent(acts)->resumed().data_generation_changed());
}

TEST_F(IncumbentSessionTest, ResumeAfterSealDetectsAChangedGeneration) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealed);
  own.generation = 6;  // the successor took over and bumped it before failing
  auto acts = s.OnMessage(Msg("resume"), clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_TRUE(Find<RunHookAction>(acts)->data_changed);
  acts = s.OnHookDone({HookKind::kResume, {}, 0, ""}, clock.Now());
  EXPECT_TRUE(Sent(acts)->resumed().data_generation_changed());
}

TEST_F(IncumbentSessionTest, ResumeWhenTheLockCannotBeRetakenExits) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealed);
  own.held_elsewhere = true;
  auto acts = s.OnMessage(Msg("resume"), clock.Now());
  ASSERT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_EQ(Find<ExitAction>(acts)->code, 1);
}

TEST_F(IncumbentSessionTest, DrainFailureResumesAndSaysSealFailed) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kDraining);
  auto acts = s.OnHookDone({HookKind::kDrain, Error(Errc::kInternal, "fsync: EIO"), 0, ""}, clock.Now());
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_NE(Sent(acts)->seal_failed().reason().find("drain failed: fsync: EIO"), std::string::npos);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
}

TEST_F(IncumbentSessionTest, SealFailureKeepsTheLockResumesAndSaysSealFailed) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealing);
  auto acts = s.OnHookDone({HookKind::kSeal, Error(Errc::kInternal, "disk full"), 0, ""}, clock.Now());
  EXPECT_TRUE(own.held);
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_NE(Sent(acts)->seal_failed().reason().find("disk full"), std::string::npos);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  s.OnHookDone({HookKind::kResume, {}, 0, ""}, clock.Now());
  EXPECT_EQ(s.state(), State::kServing);
}

TEST_F(IncumbentSessionTest, SupervisorLostWhileDrainedResumes) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kDrained);
  auto acts = s.OnChannelClosed(Error(Errc::kDeadlineExceeded, "silent"), clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
  acts = s.OnHookDone({HookKind::kResume, {}, 0, ""}, clock.Now());
  EXPECT_EQ(Sent(acts), nullptr);  // nobody to tell
  EXPECT_EQ(s.state(), State::kServing);
}

TEST_F(IncumbentSessionTest, SupervisorLostDuringDrainResumesWhenTheHookReturns) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kDraining);
  auto acts = s.OnChannelClosed(Error(Errc::kDeadlineExceeded, "silent"), clock.Now());
  EXPECT_EQ(Find<RunHookAction>(acts), nullptr);  // the drain is still running
  acts = s.OnHookDone({HookKind::kDrain, {}, 0, ""}, clock.Now());
  EXPECT_EQ(Sent(acts), nullptr);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
}

TEST_F(IncumbentSessionTest, SupervisorLostDuringSealKeepsTheLockAndResumes) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealing);
  s.OnChannelClosed(Error(Errc::kDeadlineExceeded, "silent"), clock.Now());
  auto acts = s.OnHookDone({HookKind::kSeal, {}, 99, "fp"}, clock.Now());
  EXPECT_TRUE(own.held);  // never released: nobody would hand it on
  EXPECT_EQ(Sent(acts), nullptr);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
}

TEST_F(IncumbentSessionTest, SupervisorLostAfterSealWatchesTheSuccessorThenRetakes) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealed);
  auto acts = s.OnChannelClosed(Error(Errc::kUnavailable, "peer closed"), clock.Now());
  ASSERT_NE(Find<WatchPidAction>(acts), nullptr);
  EXPECT_EQ(Find<WatchPidAction>(acts)->pid, 777);
  EXPECT_EQ(s.state(), State::kOrphaned);
  EXPECT_FALSE(own.held);
  acts = s.OnSuccessorExited(clock.Now());
  EXPECT_TRUE(own.held);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
}

TEST_F(IncumbentSessionTest, OrphanedWhileTheSuccessorOwnsTheDataExits) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealed);
  s.OnChannelClosed(Error(Errc::kUnavailable, "peer closed"), clock.Now());
  own.held_elsewhere = true;  // the successor got Ready and holds it
  clock.Advance(seconds(9));
  EXPECT_TRUE(s.OnTimer(clock.Now()).empty());
  clock.Advance(seconds(1));
  auto acts = s.OnTimer(clock.Now());
  ASSERT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_EQ(Find<ExitAction>(acts)->code, 0);
}

TEST_F(IncumbentSessionTest, OrphanGraceWithTheLockFreeResumes) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kSealed);
  s.OnChannelClosed(Error(Errc::kUnavailable, "peer closed"), clock.Now());
  clock.Advance(seconds(10));
  auto acts = s.OnTimer(clock.Now());
  EXPECT_TRUE(own.held);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
}

TEST_F(IncumbentSessionTest, OwnHandoffDeadlineResumesWhenTheSupervisorStallsButStaysConnected) {
  IncumbentSession s(opts, own, 5);
  s.OnMessage(Prepare(2000), clock.Now());
  s.OnHookDone({HookKind::kDrain, {}, 0, ""}, clock.Now());
  ASSERT_TRUE(s.NextDeadline());
  clock.Advance(milliseconds(1999));
  EXPECT_TRUE(s.OnTimer(clock.Now()).empty());
  clock.Advance(milliseconds(1));
  auto acts = s.OnTimer(clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
}

TEST_F(IncumbentSessionTest, OwnDeadlineAfterSealWatchesTheSuccessor) {
  IncumbentSession s(opts, own, 5);
  s.OnMessage(Prepare(2000), clock.Now());
  s.OnHookDone({HookKind::kDrain, {}, 0, ""}, clock.Now());
  s.OnMessage(Msg("seal"), clock.Now());
  s.OnHookDone({HookKind::kSeal, {}, 1, "x"}, clock.Now());
  clock.Advance(seconds(2));
  auto acts = s.OnTimer(clock.Now());
  ASSERT_NE(Find<WatchPidAction>(acts), nullptr);
  EXPECT_EQ(s.state(), State::kOrphaned);
}

TEST_F(IncumbentSessionTest, UnexpectedMessagesAreAnsweredAndIgnored) {
  IncumbentSession s(opts, own, 5);
  auto acts = s.OnMessage(Msg("seal", ""), clock.Now());  // Seal while serving
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->error().code(), v1::Error::UNEXPECTED);
  // The log line says what came, like the reply.
  ASSERT_NE(Find<protocol::LogAction>(acts), nullptr);
  EXPECT_EQ(Find<protocol::LogAction>(acts)->message, Sent(acts)->error().message());
  EXPECT_NE(Find<protocol::LogAction>(acts)->message.find("unexpected"), std::string::npos);
  EXPECT_EQ(s.state(), State::kServing);
  EXPECT_TRUE(own.held);
  To(s, State::kDrained);
  acts = s.OnMessage(Msg("commit"), clock.Now());  // Commit before Seal
  EXPECT_EQ(Sent(acts)->error().code(), v1::Error::UNEXPECTED);
  EXPECT_EQ(s.state(), State::kDrained);
  EXPECT_TRUE(own.held);
}

TEST_F(IncumbentSessionTest, WrongHandoffIdIsRefused) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kDrained);
  auto acts = s.OnMessage(Msg("seal", "h2"), clock.Now());
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->error().code(), v1::Error::WRONG_HANDOFF);
  EXPECT_EQ(s.state(), State::kDrained);
}

TEST_F(IncumbentSessionTest, FailedResumeExits) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kDrained);
  s.OnMessage(Msg("resume"), clock.Now());
  auto acts = s.OnHookDone({HookKind::kResume, Error(Errc::kInternal, "reload failed"), 0, ""}, clock.Now());
  ASSERT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_EQ(Find<ExitAction>(acts)->code, 1);
}

TEST_F(IncumbentSessionTest, SecondHandoffAfterResumeWorks) {
  IncumbentSession s(opts, own, 5);
  To(s, State::kDrained);
  s.OnMessage(Msg("resume"), clock.Now());
  s.OnHookDone({HookKind::kResume, {}, 0, ""}, clock.Now());
  v1::Envelope p = Prepare();
  p.mutable_prepare()->set_handoff_id("h2");
  auto acts = s.OnMessage(p, clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  s.OnHookDone({HookKind::kDrain, {}, 0, ""}, clock.Now());
  acts = s.OnMessage(Msg("seal", "h2"), clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kSeal);
}

}  // namespace
}  // namespace baton::incumbent
