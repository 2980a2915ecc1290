// The supervisor's handoff logic (docs/design.md §2-3) as a pure state machine:
// events and a clock in, actions and one next deadline out. No I/O: the
// driver (supervisor.cc) spawns, sends, signals and arms the timer.
//
//   spawning --Hello--> warming --Warmed--> draining --Drained--> sealing
//   --SealComplete--> beginning --Ready--> committing --CommitAck--> done
//
// Before Ready every failure rolls back: stop the successor (Abort, SIGTERM,
// SIGKILL after the grace), wait until it is reaped (so its flock is free),
// then Resume the incumbent if it had been prepared. After Ready the
// successor is the owner of record. If the incumbent dies (or hangs and is
// killed) during drain or seal, the handoff proceeds to the warm successor.
//
// Threading: single-threaded, called from the supervisor's executor.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/clock.h"
#include "base/errors.h"
#include "protocol/control.pb.h"
#include "protocol/frame.h"
#include "protocol/liveness.h"
#include "protocol/version.h"
#include "supervisor/child_status.h"

namespace baton::supervisor {

struct HandoffTimeouts {
  Duration hello = seconds(5);
  Duration warm = seconds(120);
  Duration drain = seconds(30);
  Duration seal = seconds(3);
  Duration begin = seconds(30);
  Duration commit = seconds(10);
  Duration resume = seconds(30);
  Duration term_grace = seconds(5);
  Duration handoff = seconds(300);
};

enum class Outcome { kCommitted, kRolledBack, kRefused, kFailed };
std::string_view OutcomeName(Outcome o);
v1::Outcome ToProto(Outcome o);

// ---- actions
struct SpawnSuccessor {};
struct SendToSuccessor {
  v1::Envelope env;
};
struct SendToIncumbent {
  v1::Envelope env;
};
struct SignalSuccessor {
  int signal;
};
struct SignalIncumbent {
  int signal;
};
struct PhaseDone {
  std::string phase;
  Duration duration;
};
// N is now the owner of record: the driver makes it the incumbent.
struct PromoteSuccessor {};
struct Finished {
  Outcome outcome;
  std::string reason;
};
// protocol notify, sequential rollback (supervisor/notify_handoff.h): start
// the previous binary again. The native machine never asks for it.
struct SpawnRestore {};
using Action = std::variant<SpawnSuccessor, SendToSuccessor, SendToIncumbent, SignalSuccessor, SignalIncumbent,
                            PhaseDone, PromoteSuccessor, Finished, SpawnRestore>;
using Actions = std::vector<Action>;

struct HandoffParams {
  std::string handoff_id;
  HandoffTimeouts timeouts;
  protocol::VersionRange protocol{protocol::kProtocolMin, protocol::kProtocolMax};
  // The incumbent's state-schema range (from its Hello); nullopt = no incumbent.
  std::optional<protocol::VersionRange> incumbent_schema;
  // Both sides' heartbeat and liveness on the successor's channel, sent in
  // HelloAck.
  protocol::LivenessOptions liveness;
};

class HandoffMachine {
 public:
  enum class State {
    kIdle, kSpawning, kWarming, kDraining, kSealing, kBeginning, kCommitting,
    kStoppingSuccessor, kResuming, kDone
  };

  explicit HandoffMachine(HandoffParams params);

  Actions Start(TimePoint now);
  Actions OnSpawned(uint32_t pid, TimePoint now);
  Actions OnSpawnFailed(const Error& e, TimePoint now);
  Actions OnSuccessorMessage(const v1::Envelope& env, TimePoint now);
  Actions OnIncumbentMessage(const v1::Envelope& env, TimePoint now);
  // The channel closed (EOF, bad frame, silence). The process may live on.
  Actions OnSuccessorChannelClosed(const Error& why, TimePoint now);
  Actions OnIncumbentChannelClosed(const Error& why, TimePoint now);
  // The process was reaped.
  Actions OnSuccessorExited(const ChildExit& how, TimePoint now);
  Actions OnIncumbentExited(const ChildExit& how, TimePoint now);
  // `baton abort`: roll back if still possible.
  Actions OnAbort(const std::string& reason, TimePoint now);
  Actions OnTimer(TimePoint now);

  std::optional<TimePoint> NextDeadline() const;
  State state() const { return state_; }
  bool done() const { return state_ == State::kDone; }
  uint32_t successor_pid() const { return successor_pid_; }
  // The successor's Hello listed the "handover" capability: it takes
  // handed-over descriptors (false before its Hello).
  bool successor_accepts_handover() const;
  const std::string& handoff_id() const { return params_.handoff_id; }

 private:
  Actions RollBack(std::string reason, TimePoint now);
  Actions AfterSuccessorGone(TimePoint now);
  Actions SendBegin(bool sealed, TimePoint now);
  Actions Finish(Outcome o, std::string reason);
  void Phase(Actions& out, const char* name, TimePoint now);
  void Enter(State s, TimePoint now, Duration timeout);

  HandoffParams params_;
  State state_ = State::kIdle;
  TimePoint started_{};
  TimePoint phase_started_{};
  std::optional<TimePoint> state_deadline_;
  std::optional<TimePoint> handoff_deadline_;
  uint32_t successor_pid_ = 0;
  v1::Hello successor_hello_;
  v1::SealComplete sealed_;
  bool successor_alive_ = false;      // spawned and not reaped
  bool successor_warmed_ = false;
  bool incumbent_alive_ = true;
  bool incumbent_prepared_ = false;   // Prepare sent: it may need a Resume
  bool incumbent_self_resumed_ = false;  // SealFailed: it resumed by itself
  bool incumbent_killed_ = false;     // we SIGKILLed a hung incumbent
  bool refused_ = false;
  bool killed_successor_ = false;
  std::string reason_;
};

std::string_view StateName(HandoffMachine::State s);

}  // namespace baton::supervisor
