// Random event sequences against the unmodified daemon's handoff machine
// (supervisor/notify_handoff.h). Whatever happens:
//   * overlap: the old generation gets no signal before the new one was
//     promoted (a failing successor leaves it untouched);
//   * sequential: the successor is spawned only once the old one exited,
//     and the previous binary is restored only once the successor is gone;
//   * committed if and only if the successor was promoted;
//   * exactly one outcome, then silence; a deadline always exists until then.
#include <signal.h>

#include "supervisor/notify_handoff.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/support/fake_clock.h"

namespace {

using namespace baton;
using namespace baton::supervisor;

struct Model {
  bool sequential = false;
  bool promoted = false;
  bool old_exited = false;
  bool new_spawned = false;
  bool new_exited = false;
  int finished = 0;
};

void Check(const Actions& acts, Model& m) {
  for (const auto& a : acts) {
    FUZZ_CHECK(m.finished == 0);
    if (std::holds_alternative<PromoteSuccessor>(a)) {
      FUZZ_CHECK(!m.promoted);
      m.promoted = true;
    }
    if (std::holds_alternative<SignalIncumbent>(a) && !m.sequential) FUZZ_CHECK(m.promoted);
    if (std::holds_alternative<SpawnSuccessor>(a)) {
      if (m.sequential) FUZZ_CHECK(m.old_exited);
      FUZZ_CHECK(!m.new_spawned);
    }
    if (std::holds_alternative<SpawnRestore>(a)) {
      FUZZ_CHECK(m.sequential && m.old_exited);
      FUZZ_CHECK(!m.new_spawned || m.new_exited);
    }
    if (auto* f = std::get_if<Finished>(&a)) {
      ++m.finished;
      FUZZ_CHECK((f->outcome == Outcome::kCommitted) == m.promoted);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  FakeClock clock;
  Model m;
  m.sequential = in.Bool();
  NotifyHandoffParams p;
  p.strategy = m.sequential ? NotifyStrategy::kSequential : NotifyStrategy::kOverlap;
  p.ready = seconds(10);
  p.drain = seconds(5);
  p.term_grace = seconds(2);
  p.handoff = seconds(60);
  NotifyHandoffMachine hm(p);
  Check(hm.Start(clock.Now()), m);
  bool spawn_pending = !m.sequential;
  for (int step = 0; step < 64 && !in.empty(); ++step) {
    if (hm.done()) {
      FUZZ_CHECK(!hm.NextDeadline());
    } else {
      FUZZ_CHECK(hm.NextDeadline().has_value());
    }
    clock.Advance(milliseconds(in.Below(4) == 0 ? in.Below(20000) : in.Below(50)));
    const TimePoint now = clock.Now();
    Actions out;
    switch (in.Below(12)) {
      case 0:
        if (spawn_pending || (m.sequential && m.old_exited && !m.new_spawned)) {
          m.new_spawned = true;
          spawn_pending = false;
          out = hm.OnSpawned(now);
        }
        break;
      case 1: out = hm.OnSuccessorReady(now); break;
      case 2: out = hm.OnSuccessorFailed("errno", now); break;
      case 3:
        if (m.new_spawned && !m.new_exited) {
          m.new_exited = true;
          out = hm.OnSuccessorExited(ChildExit::Exited(1), now);
        }
        break;
      case 4:
        if (!m.old_exited) {
          m.old_exited = true;
          out = hm.OnIncumbentExited(ChildExit::Signalled(SIGTERM), now);
        }
        break;
      case 5: out = hm.OnRestoreSpawned(now); break;
      case 6: out = hm.OnRestoreReady(now); break;
      case 7: out = hm.OnRestoreFailed("exited", now); break;
      case 8: out = hm.OnAbort("fuzz", now); break;
      case 9: out = hm.OnExtend(milliseconds(in.Below(30000)), now); break;
      case 10: out = hm.OnSpawnFailed("enoent", now); break;
      default: out = hm.OnTimer(now); break;
    }
    Check(out, m);
  }
  return 0;
}
