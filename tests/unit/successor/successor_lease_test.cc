// The successor with a Postgres lease: its holder id goes out in Hello; at
// Begin it confirms the handed-over epoch before the begin hook (a failure
// aborts), or campaigns when there is nothing to confirm; Ready reports it.
#include <gtest/gtest.h>

#include "successor/successor_session.h"
#include "tests/support/fake_ownership.h"
#include "tests/support/session_actions.h"

namespace baton::successor {
namespace {

using protocol::HookKind;
using protocol::LeaseAction;
using protocol::LeaseOp;
using protocol::RunHookAction;
using State = SuccessorSession::State;
using testsupport::Find;
using testsupport::Sent;

v1::Envelope Ack() {
  v1::Envelope e;
  e.mutable_hello_ack()->set_accepted(true);
  e.mutable_hello_ack()->set_handoff_id("h1");
  return e;
}
v1::Envelope Warm() {
  v1::Envelope e;
  e.mutable_warm()->set_handoff_id("h1");
  return e;
}
v1::Envelope Begin(uint64_t epoch, bool sealed = true) {
  v1::Envelope e;
  e.mutable_begin()->set_handoff_id("h1");
  e.mutable_begin()->set_revision(42);
  e.mutable_begin()->set_sealed(sealed);
  e.mutable_begin()->set_lease_epoch(epoch);
  return e;
}

struct SuccessorLeaseTest : ::testing::Test {
  void ToAwaitBegin(SuccessorSession& s) {
    auto hello = s.Start();
    ASSERT_NE(Sent(hello), nullptr);
    EXPECT_EQ(Sent(hello)->hello().lease_holder_id(), "n-holder");
    ASSERT_EQ(Sent(hello)->hello().capabilities_size(), 1);
    EXPECT_EQ(Sent(hello)->hello().capabilities(0), "lease");
    s.OnMessage(Ack());
    s.OnMessage(Warm());
    s.OnHookDone({HookKind::kWarm, {}, 40, ""});
    ASSERT_EQ(s.state(), State::kAwaitBegin);
  }
  testsupport::FakeOwnership own;
  HelloInfo hello{{1, 1}, {1, 1}, "kvd test", 1234, "n-holder"};
};

TEST_F(SuccessorLeaseTest, BeginConfirmsTheEpochBeforeTheHookAndReadyReportsIt) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  ToAwaitBegin(s);
  auto acts = s.OnMessage(Begin(8));
  EXPECT_FALSE(own.held);  // the lease first (it is leaderless until then), then the lock
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kConfirm);
  EXPECT_EQ(Find<LeaseAction>(acts)->epoch, 8u);
  EXPECT_EQ(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(s.state(), State::kConfirmingLease);

  acts = s.OnLeaseDone({LeaseOp::kConfirm, {}, 0});
  EXPECT_TRUE(own.held);
  EXPECT_EQ(own.calls, (std::vector<std::string>{"acquire", "bump"}));
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kBegin);
  EXPECT_EQ(Find<RunHookAction>(acts)->sealed.lease_epoch(), 8u);
  acts = s.OnHookDone({HookKind::kBegin, {}, 42, ""});
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->ready().lease_epoch(), 8u);
}

TEST_F(SuccessorLeaseTest, AFailedConfirmAbortsTheHandoff) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  ToAwaitBegin(s);
  s.OnMessage(Begin(8));
  auto acts = s.OnLeaseDone({LeaseOp::kConfirm, Error(Errc::kFailedPrecondition, "epoch 8 is not ours"), 0});
  ASSERT_NE(Sent(acts), nullptr);
  ASSERT_TRUE(Sent(acts)->has_abort());
  EXPECT_NE(Sent(acts)->abort().reason().find("epoch 8 is not ours"), std::string::npos);
  EXPECT_FALSE(own.held);
  EXPECT_EQ(s.state(), State::kExited);
}

TEST_F(SuccessorLeaseTest, NothingToConfirmMeansCampaigning) {
  for (auto begin : {Begin(0), Begin(8, /*sealed=*/false)}) {
    testsupport::FakeOwnership o;
    SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, o);
    ToAwaitBegin(s);
    auto acts = s.OnMessage(begin);
    ASSERT_NE(Find<LeaseAction>(acts), nullptr);
    EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kCampaign);
    ASSERT_NE(Find<RunHookAction>(acts), nullptr);
    EXPECT_EQ(s.state(), State::kBeginning);
  }
}

TEST_F(SuccessorLeaseTest, AColdStartCampaigns) {
  SuccessorSession s(protocol::LaunchRole::kCold, hello, own);
  s.Start();
  auto acts = s.OnMessage(Ack());
  ASSERT_NE(Find<LeaseAction>(acts), nullptr);
  EXPECT_EQ(Find<LeaseAction>(acts)->op, LeaseOp::kCampaign);
  EXPECT_EQ(s.state(), State::kServing);
}

TEST_F(SuccessorLeaseTest, ALockHeldElsewhereAfterTheConfirmStillAborts) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  ToAwaitBegin(s);
  s.OnMessage(Begin(8));
  own.held_elsewhere = true;
  auto acts = s.OnLeaseDone({LeaseOp::kConfirm, {}, 0});
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_TRUE(Sent(acts)->has_abort());
  EXPECT_EQ(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(s.state(), State::kExited);
}

TEST_F(SuccessorLeaseTest, TheSupervisorGoneWhileConfirmingExits) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  ToAwaitBegin(s);
  s.OnMessage(Begin(8));
  s.OnChannelClosed(Error(Errc::kUnavailable, "eof"));
  EXPECT_EQ(s.state(), State::kExited);
  EXPECT_TRUE(s.OnLeaseDone({LeaseOp::kConfirm, {}, 0}).empty());  // too late: ignored
}

TEST_F(SuccessorLeaseTest, WithoutALeaseNoLeaseActions) {
  hello.lease_holder_id.clear();
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  s.OnMessage(Ack());
  s.OnMessage(Warm());
  s.OnHookDone({HookKind::kWarm, {}, 40, ""});
  auto acts = s.OnMessage(Begin(8));
  EXPECT_EQ(Find<LeaseAction>(acts), nullptr);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
}

}  // namespace
}  // namespace baton::successor
