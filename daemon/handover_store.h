// The daemon's side of descriptor handover (docs/protocol.md, "Descriptor
// handover"): what the incumbent's hooks hand over, what arrives for the
// successor's begin hook, and what the incumbent gets back at resume.
//
// Incumbent: Give/SetState are accepted only while a drain or seal hook runs
// (Open/Close around them). The runtime sends `outgoing` before
// SealComplete and keeps these, its own references, until Commit: no
// generation serves them meanwhile. On any resume they become the daemon's
// again (ReturnOwn), so a rollback gives every one back even if the
// supervisor is gone; the copies the supervisor returns are checked and
// closed.
// Successor: Receive collects the Handover frames before Begin; the begin
// hook takes them (Take, TakeState).
//
// Thread-safe: hooks call from the hook thread, the runtime from the io
// thread. Owns every descriptor it holds (O_CLOEXEC) until taken.
#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "baton/daemon.h"
#include "base/errors.h"
#include "protocol/handover.h"

namespace baton::detail {

class HandoverStore {
 public:
  explicit HandoverStore(size_t max = protocol::kDefaultMaxHandoverFds) : max_(max) {}

  // ---- this generation's declaration (Daemon::AcceptHandover): as a
  // successor it takes what is handed over; otherwise what arrives anyway
  // (from an older supervisor) is closed at Begin, not left unserved.
  void SetAccepts(bool accepts);
  bool accepts() const;
  // ---- incumbent
  // Prepare said whether the successor accepts handed-over descriptors;
  // when it does not, Give and SetState refuse.
  void SetSuccessorAccepts(bool accepts);
  bool successor_accepts() const;
  void Open();   // a drain or seal hook starts
  void Close();  // it returned
  // Takes `fd` on success; on error the caller keeps it.
  Status Give(HandoverKind kind, std::string_view name, int fd, std::string_view metadata);
  Status SetState(std::string_view bytes);
  // The frames to send before SealComplete (descriptors borrowed from the
  // store, which keeps them until Drop or ReturnOwn), and their count.
  std::vector<protocol::HandoverBatch> Batches(const std::string& handoff_id, size_t& count);
  // Resume: what was given is the daemon's again.
  void ReturnOwn();
  // Commit: the successor has them; close ours.
  void Drop();

  // ---- both: descriptors from the supervisor (successor: before Begin;
  // incumbent: before Resume, its own returned). Errors are bad input.
  Status Receive(const v1::Handover& frame, std::vector<OwnedFd> fds);
  size_t received() const;
  // Closes what the supervisor returned (the incumbent keeps its own).
  void DropReceived();
  // Successor at Begin: what arrived becomes the daemon's to take.
  void AcceptReceived();

  // ---- the daemon's hooks (successor's begin, incumbent's resume)
  std::vector<HandedOverFd> Take();
  std::optional<std::string> TakeState();

 private:
  const size_t max_;
  mutable std::mutex mu_;
  bool open_ = false;                         // guarded by mu_
  bool accepts_ = false;                      // guarded by mu_
  bool successor_accepts_ = false;            // guarded by mu_
  std::vector<protocol::HandedFd> outgoing_;  // guarded by mu_
  std::vector<protocol::HandedFd> received_;  // guarded by mu_
  std::vector<protocol::HandedFd> ready_;     // guarded by mu_: for Take/TakeState
};

}  // namespace baton::detail
