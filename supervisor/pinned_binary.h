// A pinned binary: the exact executable a generation was started from, held
// open so the same bytes can be started again after a deploy replaced or
// deleted the file (docs/design.md §16). The supervisor keeps the serving
// generation's pin and the ones before it (PinHistory), and a revert or
// `baton rollback` starts the previous one through its descriptor.
//
// Threading: immutable after creation except `schema` (set on the
// supervisor's executor when the generation's Hello arrives).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/errors.h"
#include "protocol/version.h"

namespace baton::supervisor {

// Pinned descriptors are placed at or above this number so that the child
// side of a launch, which moves the listeners onto 3 .. 3+n (n <= 64, see
// protocol/child_env.cc), never overwrites one before the exec.
inline constexpr int kPinnedFdFloor = 128;

struct PinnedBinary {
  ~PinnedBinary();
  PinnedBinary(const PinnedBinary&) = delete;
  PinnedBinary& operator=(const PinnedBinary&) = delete;

  // Opens `path` read-only, O_CLOEXEC, at or above kPinnedFdFloor; checks it
  // is a regular executable file and reads its ELF build id. Errors name the
  // path (kNotFound, kPermissionDenied, kFailedPrecondition).
  static Result<std::shared_ptr<PinnedBinary>> Open(const std::string& path, std::vector<std::string> args);
  // A pin carried across the supervisor's own exec (docs/design.md §15):
  // takes `fd` (checked to be a regular file; O_CLOEXEC again).
  static Result<std::shared_ptr<PinnedBinary>> Inherit(int fd, std::string path, std::vector<std::string> args,
                                                       std::string build_id, bool script);

  int fd = -1;  // owned; O_CLOEXEC
  std::string path;
  std::vector<std::string> args;
  // Lowercase hex of the ELF .note.gnu.build-id, "" when it has none.
  std::string build_id;
  // A "#!" script: the kernel's interpreter reopens scripts by path, so a
  // script is started from its path, not the descriptor (its bytes are
  // not pinned; the ELF it execs is not either).
  bool script = false;
  // The state schema range the daemon announced in its Hello when it ran
  // from this pin (unset until then, and for daemons without Hello).
  std::optional<protocol::VersionRange> schema;

 private:
  PinnedBinary() = default;
};

// The ELF build id of the file open at `fd` (read with pread, the offset is
// untouched), "" when it is not an ELF or has no .note.gnu.build-id.
std::string ReadElfBuildId(int fd);

// The serving generation's pin first, then the ones that served before it,
// at most `depth` (>= 1). Pushing the pin already at the front changes
// nothing; a pin already further back moves to the front.
class PinHistory {
 public:
  explicit PinHistory(size_t depth) : depth_(depth < 1 ? 1 : depth) {}
  void Serving(std::shared_ptr<PinnedBinary> pin);
  // Drops `pin` (a reverted binary is not started again by itself).
  void Forget(const std::shared_ptr<PinnedBinary>& pin);
  std::shared_ptr<PinnedBinary> current() const { return pins_.empty() ? nullptr : pins_.front(); }
  std::shared_ptr<PinnedBinary> previous() const { return pins_.size() < 2 ? nullptr : pins_[1]; }
  const std::deque<std::shared_ptr<PinnedBinary>>& all() const { return pins_; }

 private:
  size_t depth_;
  std::deque<std::shared_ptr<PinnedBinary>> pins_;
};

}  // namespace baton::supervisor
