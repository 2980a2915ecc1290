// Random supervisor messages and hook results against the successor session:
// Ready is sent only while holding the lock, after Begin and a successful
// begin hook; nothing a peer sends crashes it.
#include <cstdlib>

#include "successor/successor_session.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/fake_ownership.h"

namespace {

using namespace baton;
using baton::protocol::HookKind;


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  testsupport::FakeOwnership own;
  own.held_elsewhere = in.Below(8) == 0;
  successor::SuccessorSession s(in.Bool() ? protocol::LaunchRole::kCold : protocol::LaunchRole::kSuccessor,
                                {{1, 1}, {1, 1}, "fuzz", 1, ""}, own);
  bool hook_running = false;
  HookKind running{};
  bool begin_ok = false;
  bool exited = false;
  auto check = [&](const protocol::SessionActions& acts) {
    for (const auto& a : acts) {
      FUZZ_CHECK(!exited);
      if (auto* h = std::get_if<protocol::RunHookAction>(&a)) {
        FUZZ_CHECK(!hook_running);
        hook_running = true;
        running = h->hook;
        if (h->hook == HookKind::kBegin) FUZZ_CHECK(own.held);
        if (h->hook == HookKind::kWarm) FUZZ_CHECK(!own.held);  // warm needs no ownership
      }
      if (auto* send = std::get_if<protocol::SendAction>(&a)) {
        if (send->env.has_ready()) FUZZ_CHECK(own.held && begin_ok);
      }
      if (std::holds_alternative<protocol::ServingAction>(a)) FUZZ_CHECK(own.held);
      if (std::holds_alternative<protocol::ExitAction>(a)) exited = true;
    }
  };
  check(s.Start());
  for (int steps = 0; steps < 100 && !in.empty() && !exited; ++steps) {
    switch (in.Below(4)) {
      case 0: {
        v1::Envelope e;
        const std::string id = in.Id("h");
        switch (in.Below(7)) {
          case 0: {
            auto* a = e.mutable_hello_ack();
            a->set_accepted(in.Below(4) != 0);
            a->set_handoff_id("h");
            break;
          }
          case 1: e.mutable_warm()->set_handoff_id(id); break;
          case 2:
            e.mutable_begin()->set_handoff_id(id);
            e.mutable_begin()->set_handover_count(in.Byte());
            break;
          case 5: e.mutable_handover()->set_handoff_id(id); break;
          case 3: e.mutable_abort()->set_handoff_id(id); break;
          case 4: e.mutable_error()->set_message("x"); break;
          default: e.mutable_commit()->set_handoff_id(id); break;
        }
        check(s.OnMessage(e));
        break;
      }
      case 1:
        if (hook_running) {
          hook_running = false;
          protocol::HookDone done{running, {}, 1, ""};
          if (in.Below(4) == 0) done.status = Error(Errc::kInternal, "hook failed");
          if (running == HookKind::kBegin && done.status) begin_ok = true;
          check(s.OnHookDone(done));
        }
        break;
      case 2: check(s.OnChannelClosed(Error(Errc::kUnavailable, "gone"))); break;
      default: own.held_elsewhere = in.Bool(); break;
    }
  }
  return 0;
}
