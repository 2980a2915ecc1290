#include "supervisor/hello.h"

#include <gtest/gtest.h>

namespace baton::supervisor {
namespace {

v1::Hello Hello(uint32_t pmin, uint32_t pmax, uint32_t smin = 1, uint32_t smax = 1) {
  v1::Hello h;
  h.mutable_protocol()->set_min(pmin);
  h.mutable_protocol()->set_max(pmax);
  h.mutable_state_schema()->set_min(smin);
  h.mutable_state_schema()->set_max(smax);
  return h;
}

HelloPolicy Cold() {
  HelloPolicy p;
  p.protocol = {1, 3};
  p.liveness = {milliseconds(250), seconds(2), seconds(2)};
  p.child_name = "daemon";
  return p;
}

HelloPolicy Successor() {
  HelloPolicy p = Cold();
  p.incumbent_schema = protocol::VersionRange{2, 4};
  p.handoff_id = "h1";
  p.child_name = "successor";
  return p;
}

TEST(HelloTest, ColdStartGetsTheHighestCommonVersionAndTheLivenessSettings) {
  auto answer = AnswerHello(Hello(2, 5), Cold());
  EXPECT_FALSE(answer.refusal);
  const auto& a = answer.ack.hello_ack();
  EXPECT_TRUE(a.accepted());
  EXPECT_EQ(a.protocol_version(), 3u);
  EXPECT_EQ(a.heartbeat_interval_ms(), 250u);
  EXPECT_EQ(a.liveness_timeout_ms(), 2000u);
  EXPECT_EQ(a.handoff_id(), "");
  EXPECT_EQ(a.refusal(), "");
}

TEST(HelloTest, ColdStartIgnoresTheStateSchema) {
  // Nobody's state to be compatible with.
  auto answer = AnswerHello(Hello(1, 1, 9, 9), Cold());
  EXPECT_FALSE(answer.refusal);
  EXPECT_TRUE(answer.ack.hello_ack().accepted());
}

TEST(HelloTest, NoCommonProtocolIsRefusedNamingTheChild) {
  auto answer = AnswerHello(Hello(4, 6), Cold());
  ASSERT_TRUE(answer.refusal);
  const auto& a = answer.ack.hello_ack();
  EXPECT_FALSE(a.accepted());
  EXPECT_EQ(a.protocol_version(), 0u);
  EXPECT_EQ(a.refusal(), answer.refusal->message);
  EXPECT_NE(a.refusal().find("protocol"), std::string::npos) << a.refusal();
  EXPECT_NE(a.refusal().find("daemon"), std::string::npos) << a.refusal();
  // The liveness settings go out with a refusal too.
  EXPECT_EQ(a.liveness_timeout_ms(), 2000u);
}

TEST(HelloTest, SuccessorWithACompatibleSchemaIsAccepted) {
  auto answer = AnswerHello(Hello(1, 1, 4, 7), Successor());
  EXPECT_FALSE(answer.refusal);
  EXPECT_TRUE(answer.ack.hello_ack().accepted());
  EXPECT_EQ(answer.ack.hello_ack().handoff_id(), "h1");
}

TEST(HelloTest, SuccessorWithAnIncompatibleSchemaIsRefused) {
  auto answer = AnswerHello(Hello(1, 1, 5, 7), Successor());
  ASSERT_TRUE(answer.refusal);
  EXPECT_FALSE(answer.ack.hello_ack().accepted());
  EXPECT_NE(answer.refusal->message.find("state schema"), std::string::npos) << answer.refusal->message;
  EXPECT_NE(answer.refusal->message.find("successor"), std::string::npos) << answer.refusal->message;
}

TEST(HelloTest, ProtocolIsCheckedBeforeTheSchema) {
  auto answer = AnswerHello(Hello(7, 8, 5, 7), Successor());
  ASSERT_TRUE(answer.refusal);
  EXPECT_NE(answer.refusal->message.find("protocol"), std::string::npos) << answer.refusal->message;
  EXPECT_EQ(answer.refusal->message.find("state schema"), std::string::npos) << answer.refusal->message;
}

}  // namespace
}  // namespace baton::supervisor
