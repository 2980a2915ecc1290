// The incumbent's seal with a Postgres lease (docs/design.md §8): quiesce → seal
// hook → transfer → release the lock → SealComplete{lease_epoch}; a failed
// transfer is a failed seal; every resume also resumes the lease.
#include <gtest/gtest.h>

#include "incumbent/incumbent_session.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_ownership.h"
#include "tests/support/session_actions.h"

namespace baton::incumbent {
namespace {

using protocol::HookKind;
using protocol::LeaseAction;
using protocol::LeaseDone;
using protocol::LeaseOp;
using protocol::RunHookAction;
using State = IncumbentSession::State;
using testsupport::Find;
using testsupport::Sent;

v1::Envelope Prepare() {
  v1::Envelope e;
  e.mutable_prepare()->set_handoff_id("h1");
  e.mutable_prepare()->set_drain_deadline_ms(30000);
  e.mutable_prepare()->set_successor_pid(777);
  return e;
}
v1::Envelope Seal(uint64_t budget_ms = 3000) {
  v1::Envelope e;
  e.mutable_seal()->set_handoff_id("h1");
  e.mutable_seal()->set_successor_lease_holder_id("n-holder");
  e.mutable_seal()->set_budget_ms(budget_ms);
  return e;
}
v1::Envelope Resume() {
  v1::Envelope e;
  e.mutable_resume()->set_handoff_id("h1");
  return e;
}

struct IncumbentLeaseTest : ::testing::Test {
  IncumbentLeaseTest() {
    own.held = true;
    own.generation = 5;
    opts.lease = true;
  }
  // Prepare, drain, Seal: returns the actions of the Seal message.
  protocol::SessionActions ToSeal(IncumbentSession& s, uint64_t budget_ms = 3000) {
    s.OnMessage(Prepare(), clock.Now());
    s.OnHookDone({HookKind::kDrain, {}, 0, ""}, clock.Now());
    return s.OnMessage(Seal(budget_ms), clock.Now());
  }
  IncumbentOptions opts;
  testsupport::FakeOwnership own;
  FakeClock clock;
};

TEST_F(IncumbentLeaseTest, SealQuiescesTheLeaseBeforeTheHookThenTransfersBeforeReleasingTheLock) {
  IncumbentSession s(opts, own, 5);
  auto acts = ToSeal(s);
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kQuiesce);
  EXPECT_EQ(Find<RunHookAction>(acts), nullptr);  // not before the renew in flight returned

  acts = s.OnLeaseDone({LeaseOp::kQuiesce, {}, 0}, clock.Now());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kSeal);

  clock.Advance(milliseconds(500));  // the hook took half a second of the 3 s budget
  acts = s.OnHookDone({HookKind::kSeal, {}, 99, "fp"}, clock.Now());
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kTransfer);
  EXPECT_EQ(Find<LeaseAction>(acts)->to, "n-holder");
  EXPECT_EQ(Find<LeaseAction>(acts)->budget, milliseconds(3000 - 500) - opts.seal_report_margin);
  EXPECT_TRUE(own.held);  // the lock stays ours until the lease is the successor's
  EXPECT_EQ(Sent(acts), nullptr);

  acts = s.OnLeaseDone({LeaseOp::kTransfer, {}, 8}, clock.Now());
  EXPECT_FALSE(own.held);
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->seal_complete().lease_epoch(), 8u);
  EXPECT_EQ(Sent(acts)->seal_complete().revision(), 99u);
  EXPECT_EQ(Sent(acts)->seal_complete().fingerprint(), "fp");
  EXPECT_EQ(s.state(), State::kSealed);
}

TEST_F(IncumbentLeaseTest, AFailedTransferIsAFailedSealThatKeepsTheLockAndResumesTheLease) {
  IncumbentSession s(opts, own, 5);
  ToSeal(s);
  s.OnLeaseDone({LeaseOp::kQuiesce, {}, 0}, clock.Now());
  s.OnHookDone({HookKind::kSeal, {}, 99, "fp"}, clock.Now());
  auto acts =
      s.OnLeaseDone({LeaseOp::kTransfer, Error(Errc::kDeadlineExceeded, "lease transfer: no answer"), 0}, clock.Now());
  EXPECT_TRUE(own.held);
  ASSERT_NE(Sent(acts), nullptr);
  ASSERT_TRUE(Sent(acts)->has_seal_failed());
  EXPECT_NE(Sent(acts)->seal_failed().reason().find("lease transfer"), std::string::npos);
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kResume);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
  EXPECT_EQ(s.state(), State::kResuming);
}

TEST_F(IncumbentLeaseTest, ATransferThatOutlivesTheBudgetStillGetsAMinimumSlice) {
  IncumbentSession s(opts, own, 5);
  ToSeal(s, 1000);
  s.OnLeaseDone({LeaseOp::kQuiesce, {}, 0}, clock.Now());
  clock.Advance(seconds(2));  // the hook alone used up the budget
  auto acts = s.OnHookDone({HookKind::kSeal, {}, 1, "fp"}, clock.Now());
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->budget, milliseconds(50));
}

TEST_F(IncumbentLeaseTest, RollbackAfterTheTransferRetakesTheLockThenReclaims) {
  IncumbentSession s(opts, own, 5);
  ToSeal(s);
  s.OnLeaseDone({LeaseOp::kQuiesce, {}, 0}, clock.Now());
  s.OnHookDone({HookKind::kSeal, {}, 99, "fp"}, clock.Now());
  s.OnLeaseDone({LeaseOp::kTransfer, {}, 8}, clock.Now());
  ASSERT_EQ(s.state(), State::kSealed);
  auto acts = s.OnMessage(Resume(), clock.Now());
  EXPECT_TRUE(own.held);
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kResume);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kResume);
}

TEST_F(IncumbentLeaseTest, SupervisorLostDuringTheTransferResumesAndReclaims) {
  IncumbentSession s(opts, own, 5);
  ToSeal(s);
  s.OnLeaseDone({LeaseOp::kQuiesce, {}, 0}, clock.Now());
  s.OnHookDone({HookKind::kSeal, {}, 99, "fp"}, clock.Now());
  s.OnChannelClosed(Error(Errc::kUnavailable, "eof"), clock.Now());
  auto acts = s.OnLeaseDone({LeaseOp::kTransfer, {}, 8}, clock.Now());
  EXPECT_TRUE(own.held);  // the successor never gets Begin: keep the data
  EXPECT_EQ(Sent(acts), nullptr);
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kResume);
  EXPECT_EQ(s.state(), State::kResuming);
}

TEST_F(IncumbentLeaseTest, WithoutALeaseTheSealIsUnchanged) {
  opts.lease = false;
  IncumbentSession s(opts, own, 5);
  auto acts = ToSeal(s);
  EXPECT_EQ(Find<LeaseAction>(acts), nullptr);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  acts = s.OnHookDone({HookKind::kSeal, {}, 99, "fp"}, clock.Now());
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->seal_complete().lease_epoch(), 0u);
  EXPECT_FALSE(own.held);
}

TEST_F(IncumbentLeaseTest, LateLeaseAnswersAreIgnored) {
  IncumbentSession s(opts, own, 5);
  EXPECT_TRUE(s.OnLeaseDone({LeaseOp::kTransfer, {}, 8}, clock.Now()).empty());
  EXPECT_TRUE(s.OnLeaseDone({LeaseOp::kQuiesce, {}, 0}, clock.Now()).empty());
  EXPECT_TRUE(own.held);
  EXPECT_EQ(s.state(), State::kServing);
}

}  // namespace
}  // namespace baton::incumbent
