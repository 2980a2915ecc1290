#include "supervisor/hello.h"

namespace baton::supervisor {

HelloAnswer AnswerHello(const v1::Hello& hello, const HelloPolicy& policy) {
  HelloAnswer answer;
  auto* a = answer.ack.mutable_hello_ack();
  a->set_handoff_id(policy.handoff_id);
  a->set_heartbeat_interval_ms(static_cast<uint32_t>(ToMillis(policy.liveness.heartbeat_interval)));
  a->set_liveness_timeout_ms(static_cast<uint32_t>(ToMillis(policy.liveness.liveness_timeout)));
  a->add_capabilities("health");  // HealthReport is understood (docs/design.md §16)
  auto version = protocol::Negotiate(policy.protocol, {hello.protocol().min(), hello.protocol().max()}, "protocol",
                                     "supervisor", policy.child_name);
  if (!version) {
    answer.refusal = version.error();
  } else if (policy.incumbent_schema) {
    auto schema = protocol::Negotiate(*policy.incumbent_schema,
                                      {hello.state_schema().min(), hello.state_schema().max()}, "state schema",
                                      "incumbent", policy.child_name);
    if (!schema) answer.refusal = schema.error();
  }
  a->set_accepted(!answer.refusal);
  if (answer.refusal) {
    a->set_refusal(answer.refusal->message);
  } else {
    a->set_protocol_version(*version);
  }
  return answer;
}

}  // namespace baton::supervisor
