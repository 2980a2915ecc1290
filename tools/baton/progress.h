// What `baton upgrade` prints while a handoff runs. Pure: frames in, text
// out; the caller writes it and decides when to Tick().
//
// On a terminal: one live line per phase (the running phase's clock ticks in
// place, a finished phase keeps its duration), then the verdict. Not on a
// terminal: one plain line per finished phase ("warm       12.345 ms"), then
// the verdict line. --json is handled by the caller (one object at the end).
#pragma once

#include <chrono>
#include <string>

#include "protocol/control.pb.h"

namespace baton::cli {

// The phases of a handoff in the order the supervisor reports them.
inline constexpr const char* kPhaseOrder[] = {"spawn", "hello", "warm", "drain", "seal", "begin", "commit"};

class ProgressView {
 public:
  explicit ProgressView(bool tty) : tty_(tty) {}
  // Before the request is sent.
  std::string Begin(const std::string& target);
  // A phase finished.
  std::string OnPhase(const v1::PhaseTiming& p);
  // Redraws the running phase's line with its elapsed time (tty only).
  std::string Tick(std::chrono::milliseconds since_last_phase);
  // The verdict: "committed: ..." / "rolled back: <reason>" ...
  std::string Finish(const v1::UpgradeResult& r);

 private:
  std::string NextPhase() const;
  bool tty_;
  int done_ = 0;          // phases reported so far
  std::string last_;      // the last finished phase
  bool live_line_ = false;  // a ticking line is on screen (tty)
};

std::string_view OutcomeText(v1::Outcome o);
int ExitCodeFor(v1::Outcome o);
// One JSON object: outcome, exit_code, reason, handoff_id, pids, total_ms,
// phases_ms {phase: ms} and phases [{phase, ms}] in order.
std::string ResultJson(const v1::UpgradeResult& r);

}  // namespace baton::cli
