#include "successor/successor_session.h"

#include <gtest/gtest.h>

#include "tests/support/fake_ownership.h"
#include "tests/support/session_actions.h"

namespace baton::successor {
namespace {

using protocol::ExitAction;
using protocol::HookDone;
using protocol::HookKind;
using protocol::RunHookAction;
using protocol::SendAction;
using protocol::ServingAction;
using protocol::SessionActions;
using State = SuccessorSession::State;

using testsupport::Find;
using testsupport::Sent;

v1::Envelope Ack(bool accepted, std::string id = "h1") {
  v1::Envelope e;
  e.mutable_hello_ack()->set_accepted(accepted);
  e.mutable_hello_ack()->set_handoff_id(id);
  e.mutable_hello_ack()->set_refusal(accepted ? "" : "no common protocol version");
  return e;
}
v1::Envelope Warm(std::string id = "h1") {
  v1::Envelope e;
  e.mutable_warm()->set_handoff_id(id);
  return e;
}
v1::Envelope Begin(std::string id = "h1") {
  v1::Envelope e;
  e.mutable_begin()->set_handoff_id(id);
  e.mutable_begin()->set_revision(42);
  e.mutable_begin()->set_sealed(true);
  return e;
}

struct SuccessorSessionTest : ::testing::Test {
  testsupport::FakeOwnership own;
  HelloInfo hello{{1, 1}, {2, 3}, "kvd test", 1234, ""};
};

TEST_F(SuccessorSessionTest, StartSendsHelloWithOurRanges) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  auto acts = s.Start();
  ASSERT_NE(Sent(acts), nullptr);
  const auto& h = Sent(acts)->hello();
  EXPECT_EQ(h.protocol().max(), 1u);
  EXPECT_EQ(h.state_schema().min(), 2u);
  EXPECT_EQ(h.state_schema().max(), 3u);
  EXPECT_EQ(h.pid(), 1234u);
  EXPECT_EQ(h.role(), "successor");
  EXPECT_EQ(h.capabilities_size(), 0);  // no lease, no handover accepted
  EXPECT_EQ(s.state(), State::kAwaitHelloAck);
}

TEST_F(SuccessorSessionTest, HelloSaysItAcceptsHandoverWhenTheDaemonDoes) {
  HelloInfo accepting = hello;
  accepting.accepts_handover = true;
  SuccessorSession s(protocol::LaunchRole::kSuccessor, accepting, own);
  auto acts = s.Start();
  ASSERT_NE(Sent(acts), nullptr);
  const auto& h = Sent(acts)->hello();
  ASSERT_EQ(h.capabilities_size(), 1);
  EXPECT_EQ(h.capabilities(0), "handover");
}

TEST_F(SuccessorSessionTest, ColdStartTakesTheLockAndServes) {
  SuccessorSession s(protocol::LaunchRole::kCold, hello, own);
  s.Start();
  auto acts = s.OnMessage(Ack(true, ""));
  EXPECT_NE(Find<ServingAction>(acts), nullptr);
  EXPECT_EQ(s.state(), State::kServing);
  EXPECT_TRUE(own.held);
  EXPECT_EQ(s.data_generation(), 1u);
  EXPECT_EQ(own.calls, (std::vector<std::string>{"acquire", "bump"}));
}

TEST_F(SuccessorSessionTest, ColdStartWithTheLockHeldElsewhereExits) {
  own.held_elsewhere = true;
  SuccessorSession s(protocol::LaunchRole::kCold, hello, own);
  s.Start();
  auto acts = s.OnMessage(Ack(true, ""));
  ASSERT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_EQ(Find<ExitAction>(acts)->code, 1);
  EXPECT_EQ(Find<ServingAction>(acts), nullptr);
}

TEST_F(SuccessorSessionTest, RefusalExitsWithoutSideEffects) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  auto acts = s.OnMessage(Ack(false));
  ASSERT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_NE(Find<ExitAction>(acts)->reason.find("no common protocol version"), std::string::npos);
  EXPECT_TRUE(own.calls.empty());
  EXPECT_EQ(s.state(), State::kExited);
}

TEST_F(SuccessorSessionTest, FullSuccessorPath) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  EXPECT_TRUE(s.OnMessage(Ack(true)).empty());
  EXPECT_EQ(s.state(), State::kAwaitWarm);
  EXPECT_EQ(s.handoff_id(), "h1");

  auto acts = s.OnMessage(Warm());
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kWarm);
  EXPECT_EQ(s.state(), State::kWarming);
  EXPECT_FALSE(own.held);  // warm needs no ownership

  acts = s.OnHookDone({HookKind::kWarm, {}, 41, ""});
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->warmed().revision(), 41u);
  EXPECT_EQ(s.state(), State::kAwaitBegin);

  acts = s.OnMessage(Begin());
  EXPECT_TRUE(own.held);
  ASSERT_NE(Find<RunHookAction>(acts), nullptr);
  EXPECT_EQ(Find<RunHookAction>(acts)->hook, HookKind::kBegin);
  EXPECT_EQ(Find<RunHookAction>(acts)->sealed.revision(), 42u);
  EXPECT_EQ(s.state(), State::kBeginning);

  acts = s.OnHookDone({HookKind::kBegin, {}, 42, ""});
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_EQ(Sent(acts)->ready().handoff_id(), "h1");
  EXPECT_EQ(Sent(acts)->ready().data_generation(), 1u);
  EXPECT_NE(Find<ServingAction>(acts), nullptr);
  EXPECT_EQ(s.state(), State::kServing);
  EXPECT_EQ(own.calls, (std::vector<std::string>{"acquire", "bump"}));
}

TEST_F(SuccessorSessionTest, WarmFailureTellsTheSupervisorAndExits) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  s.OnMessage(Ack(true));
  s.OnMessage(Warm());
  auto acts = s.OnHookDone({HookKind::kWarm, Error(Errc::kInternal, "cache corrupt"), 0, ""});
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_NE(Sent(acts)->abort().reason().find("warm: cache corrupt"), std::string::npos);
  EXPECT_NE(Find<ExitAction>(acts), nullptr);
}

TEST_F(SuccessorSessionTest, BeginFailureReleasesTheLockAndExits) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  s.OnMessage(Ack(true));
  s.OnMessage(Warm());
  s.OnHookDone({HookKind::kWarm, {}, 0, ""});
  s.OnMessage(Begin());
  auto acts = s.OnHookDone({HookKind::kBegin, Error(Errc::kFailedPrecondition, "fingerprint mismatch"), 0, ""});
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_NE(Sent(acts)->abort().reason().find("fingerprint mismatch"), std::string::npos);
  EXPECT_FALSE(own.held);
  EXPECT_NE(Find<ExitAction>(acts), nullptr);
}

TEST_F(SuccessorSessionTest, BeginWithTheLockStillHeldFails) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  s.OnMessage(Ack(true));
  s.OnMessage(Warm());
  s.OnHookDone({HookKind::kWarm, {}, 0, ""});
  own.held_elsewhere = true;
  auto acts = s.OnMessage(Begin());
  EXPECT_EQ(Find<RunHookAction>(acts), nullptr);
  ASSERT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_NE(Find<ExitAction>(acts)->reason.find("data-dir lock"), std::string::npos);
}

TEST_F(SuccessorSessionTest, AbortAtAnyPointBeforeReadyExits) {
  for (int stop = 0; stop < 4; ++stop) {
    testsupport::FakeOwnership o;
    SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, o);
    s.Start();
    if (stop > 0) s.OnMessage(Ack(true));
    if (stop > 1) s.OnMessage(Warm());
    if (stop > 2) s.OnHookDone({HookKind::kWarm, {}, 0, ""});
    v1::Envelope abort;
    abort.mutable_abort()->set_reason("operator");
    auto acts = s.OnMessage(abort);
    ASSERT_NE(Find<ExitAction>(acts), nullptr) << stop;
    EXPECT_EQ(Sent(acts), nullptr) << stop;  // nothing to tell: S asked
    EXPECT_EQ(s.state(), State::kExited);
  }
}

TEST_F(SuccessorSessionTest, SupervisorGoneBeforeReadyExitsAfterReadyKeepsServing) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  s.OnMessage(Ack(true));
  auto acts = s.OnChannelClosed(Error(Errc::kUnavailable, "peer closed"));
  ASSERT_NE(Find<ExitAction>(acts), nullptr);

  testsupport::FakeOwnership o2;
  SuccessorSession t(protocol::LaunchRole::kSuccessor, hello, o2);
  t.Start();
  t.OnMessage(Ack(true));
  t.OnMessage(Warm());
  t.OnHookDone({HookKind::kWarm, {}, 0, ""});
  t.OnMessage(Begin());
  t.OnHookDone({HookKind::kBegin, {}, 0, ""});
  EXPECT_TRUE(t.OnChannelClosed(Error(Errc::kUnavailable, "peer closed")).empty());
  EXPECT_EQ(t.state(), State::kServing);
  EXPECT_TRUE(o2.held);
}

TEST_F(SuccessorSessionTest, UnexpectedOrWrongHandoffMessagesAbort) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  s.OnMessage(Ack(true));
  auto acts = s.OnMessage(Begin());  // Begin before Warm
  ASSERT_NE(Sent(acts), nullptr);
  EXPECT_TRUE(Sent(acts)->has_abort());
  EXPECT_NE(Find<ExitAction>(acts), nullptr);
  EXPECT_FALSE(own.held);

  testsupport::FakeOwnership o2;
  SuccessorSession t(protocol::LaunchRole::kSuccessor, hello, o2);
  t.Start();
  t.OnMessage(Ack(true));
  acts = t.OnMessage(Warm("other"));
  EXPECT_NE(Find<ExitAction>(acts), nullptr);
}

TEST_F(SuccessorSessionTest, LateHookAfterExitIsIgnored) {
  SuccessorSession s(protocol::LaunchRole::kSuccessor, hello, own);
  s.Start();
  s.OnMessage(Ack(true));
  s.OnMessage(Warm());
  s.OnChannelClosed(Error(Errc::kUnavailable, "gone"));
  EXPECT_TRUE(s.OnHookDone({HookKind::kWarm, {}, 0, ""}).empty());
}

}  // namespace
}  // namespace baton::successor
