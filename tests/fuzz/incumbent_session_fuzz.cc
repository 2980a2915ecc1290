// Random supervisor messages, hook results, channel loss, successor exits and
// timers against the incumbent session. Whatever happens:
//   * the lock is released only after a successful seal hook, and SealComplete
//     is sent only with the lock released;
//   * the daemon is told to resume (serve again) only while it holds the lock;
//   * nothing a peer sends crashes it, and it never asks for two hooks at once.
#include <cstdlib>

#include "incumbent/incumbent_session.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/fake_clock.h"
#include "tests/support/fake_ownership.h"

namespace {

using namespace baton;
using baton::protocol::HookKind;


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  FakeClock clock;
  testsupport::FakeOwnership own;
  own.held = true;
  incumbent::IncumbentSession s({seconds(30), seconds(10)}, own, 1);
  bool hook_running = false;
  HookKind running{};
  bool seal_ok_pending_release = false;
  bool exited = false;
  auto check = [&](const protocol::SessionActions& acts) {
    for (const auto& a : acts) {
      FUZZ_CHECK(!exited);
      if (auto* h = std::get_if<protocol::RunHookAction>(&a)) {
        FUZZ_CHECK(!hook_running);
        hook_running = true;
        running = h->hook;
        if (h->hook == HookKind::kResume) FUZZ_CHECK(own.held);
      }
      if (auto* send = std::get_if<protocol::SendAction>(&a)) {
        if (send->env.has_seal_complete()) {
          FUZZ_CHECK(!own.held);
          FUZZ_CHECK(seal_ok_pending_release);
          seal_ok_pending_release = false;
        }
      }
      if (std::holds_alternative<protocol::ExitAction>(a)) exited = true;
    }
  };
  std::string id = "h";
  for (int steps = 0; steps < 300 && !in.empty() && !exited; ++steps) {
    const bool held_before = own.held;
    switch (in.Below(9)) {
      case 0: {
        v1::Envelope e;
        e.mutable_prepare()->set_handoff_id(id);
        e.mutable_prepare()->set_successor_pid(in.Below(3));
        e.mutable_prepare()->set_handoff_deadline_ms(in.Byte() * 10);
        check(s.OnMessage(e, clock.Now()));
        break;
      }
      case 1: {
        v1::Envelope e;
        switch (in.Below(5)) {
          case 0: e.mutable_seal()->set_handoff_id(in.Id(id)); break;
          case 1: e.mutable_commit()->set_handoff_id(in.Id(id)); break;
          case 2:
            e.mutable_resume()->set_handoff_id(in.Id(id));
            e.mutable_resume()->set_handover_count(in.Byte());
            break;
          case 3: {
            // The runtime takes Handover frames (and their descriptors)
            // before the session; one that reaches it is just unexpected.
            auto* h = e.mutable_handover();
            h->set_handoff_id(in.Id(id));
            h->add_entries()->set_name("conn-1");
            break;
          }
          default: e.mutable_begin()->set_handoff_id(in.Id(id)); break;
        }
        check(s.OnMessage(e, clock.Now()));
        break;
      }
      case 2:
        if (hook_running) {
          hook_running = false;
          protocol::HookDone done{running, {}, in.Byte(), "fp"};
          if (in.Below(4) == 0) done.status = Error(Errc::kInternal, "hook failed");
          if (running == HookKind::kSeal && done.status) seal_ok_pending_release = true;
          check(s.OnHookDone(done, clock.Now()));
          // A released lock always follows a successful seal hook.
          if (held_before && !own.held) FUZZ_CHECK(running == HookKind::kSeal && done.status);
        }
        break;
      case 3: check(s.OnChannelClosed(Error(Errc::kUnavailable, "gone"), clock.Now())); break;
      case 4: check(s.OnSuccessorExited(clock.Now())); break;
      case 5: own.held_elsewhere = in.Bool(); break;
      case 6:
        clock.Advance(milliseconds(in.Byte()) * 100);
        check(s.OnTimer(clock.Now()));
        break;
      case 7:
        if (s.NextDeadline()) {
          clock.Set(*s.NextDeadline());
          check(s.OnTimer(clock.Now()));
        }
        break;
      default: {
        protocol::HookDone stray{static_cast<HookKind>(in.Below(6)), {}, 0, ""};
        if (!hook_running) check(s.OnHookDone(stray, clock.Now()));  // late/unknown completions are ignored
        break;
      }
    }
  }
  return 0;
}
