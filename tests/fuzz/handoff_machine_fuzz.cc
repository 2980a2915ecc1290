// Random event sequences against the supervisor's handoff machine. Whatever
// happens, the machine must never break docs/design.md §2-4:
//   * Commit goes to the incumbent only after the successor said Ready;
//   * Begin goes to the successor only after SealComplete, or after the
//     incumbent died (then unsealed);
//   * Resume goes to the incumbent only once the successor is reaped (its
//     flock is free);
//   * exactly one outcome, then silence; a deadline always exists until then.
#include <signal.h>

#include <cstdlib>

#include "supervisor/handoff_machine.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/fake_clock.h"

namespace {

using namespace baton;
using namespace baton::supervisor;


struct Model {
  bool ready = false;
  bool sealed = false;
  bool incumbent_dead = false;
  bool successor_reaped = false;
  bool spawned = false;
  int finished = 0;
};

void Check(const Actions& acts, Model& m, const HandoffMachine& hm) {
  for (const auto& a : acts) {
    FUZZ_CHECK(m.finished == 0);  // nothing after the outcome
    if (auto* s = std::get_if<SendToIncumbent>(&a)) {
      if (s->env.has_commit()) FUZZ_CHECK(m.ready);
      if (s->env.has_resume()) FUZZ_CHECK(m.successor_reaped);
      FUZZ_CHECK(!m.incumbent_dead || !s->env.has_seal());
    }
    if (auto* s = std::get_if<SendToSuccessor>(&a)) {
      if (s->env.has_begin()) {
        FUZZ_CHECK(m.sealed || m.incumbent_dead);
        FUZZ_CHECK(s->env.begin().sealed() == m.sealed);
      }
    }
    if (std::holds_alternative<PromoteSuccessor>(a)) FUZZ_CHECK(m.ready);
    if (std::holds_alternative<Finished>(a)) ++m.finished;
  }
  FUZZ_CHECK(m.finished <= 1);
  if (!hm.done()) FUZZ_CHECK(hm.NextDeadline().has_value());
}

v1::Envelope FromSuccessor(fuzz::Input& in, const std::string& id) {
  v1::Envelope e;
  switch (in.Below(6)) {
    case 0: {
      auto* h = e.mutable_hello();
      h->mutable_protocol()->set_min(in.Below(3));
      h->mutable_protocol()->set_max(in.Below(3));
      h->mutable_state_schema()->set_min(in.Below(3));
      h->mutable_state_schema()->set_max(in.Below(3));
      break;
    }
    case 1: e.mutable_warmed()->set_handoff_id(in.Id(id)); break;
    case 2: e.mutable_ready()->set_handoff_id(in.Id(id)); break;
    case 3: e.mutable_abort()->set_handoff_id(in.Id(id)); break;
    case 4: e.mutable_error()->set_message("x"); break;
    default: e.mutable_drained()->set_handoff_id(in.Id(id)); break;  // wrong sender
  }
  return e;
}

v1::Envelope FromIncumbent(fuzz::Input& in, const std::string& id) {
  v1::Envelope e;
  switch (in.Below(6)) {
    case 0: e.mutable_drained()->set_handoff_id(in.Id(id)); break;
    case 1: e.mutable_seal_complete()->set_handoff_id(in.Id(id)); break;
    case 2: e.mutable_seal_failed()->set_handoff_id(in.Id(id)); break;
    case 3: e.mutable_commit_ack()->set_handoff_id(in.Id(id)); break;
    case 4: e.mutable_resumed()->set_handoff_id(in.Id(id)); break;
    default: e.mutable_ready()->set_handoff_id(in.Id(id)); break;  // wrong sender
  }
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  FakeClock clock;
  HandoffParams p;
  p.handoff_id = "h";
  if (in.Bool()) p.incumbent_schema = protocol::VersionRange{1, 1};
  HandoffMachine hm(p);
  Model m;
  m.incumbent_dead = !p.incumbent_schema.has_value();
  Check(hm.Start(clock.Now()), m, hm);
  // The driver reports the spawn before anything else can happen.
  if (in.Below(16) == 0) {
    Check(hm.OnSpawnFailed(Error(Errc::kNotFound, "no binary"), clock.Now()), m, hm);
    FUZZ_CHECK(hm.done());
    return 0;
  }
  m.spawned = true;
  Check(hm.OnSpawned(42, clock.Now()), m, hm);
  for (int steps = 0; steps < 200 && !in.empty() && !hm.done(); ++steps) {
    Actions acts;
    switch (in.Below(10)) {
      case 0:
        clock.Advance(milliseconds(in.Byte()));
        acts = hm.OnTimer(clock.Now());
        break;
      case 1: {
        v1::Envelope e = FromSuccessor(in, "h");
        // What the model knows when the machine accepts it: only the right id counts.
        const bool right = e.has_ready() && e.ready().handoff_id() == "h";
        const auto before = hm.state();
        acts = hm.OnSuccessorMessage(e, clock.Now());
        if (right && before == HandoffMachine::State::kBeginning) m.ready = true;
        break;
      }
      case 2: {
        v1::Envelope e = FromIncumbent(in, "h");
        const auto before = hm.state();
        if (e.has_seal_complete() && e.seal_complete().handoff_id() == "h" &&
            before == HandoffMachine::State::kSealing) {
          m.sealed = true;
        }
        acts = hm.OnIncumbentMessage(e, clock.Now());
        break;
      }
      case 3: acts = hm.OnSuccessorChannelClosed(Error(Errc::kUnavailable, "closed"), clock.Now()); break;
      case 4: acts = hm.OnIncumbentChannelClosed(Error(Errc::kUnavailable, "closed"), clock.Now()); break;
      case 5:
        if (!m.successor_reaped) {
          m.successor_reaped = true;
          acts = hm.OnSuccessorExited(ChildExit::Exited(0), clock.Now());
        }
        break;
      case 6:
        if (!m.incumbent_dead) {
          m.incumbent_dead = true;
          acts = hm.OnIncumbentExited(ChildExit::Exited(0), clock.Now());
        }
        break;
      case 7: acts = hm.OnAbort("fuzz", clock.Now()); break;
      case 8:
        clock.Advance(milliseconds(in.Byte()) * 1000);
        acts = hm.OnTimer(clock.Now());
        break;
      default:
        if (hm.NextDeadline()) {
          clock.Set(*hm.NextDeadline());
          acts = hm.OnTimer(clock.Now());
        }
        break;
    }
    Check(acts, m, hm);
  }
  return 0;
}
