// Descriptor handover (docs/protocol.md, "Descriptor handover"): what a
// Handover frame's descriptors must be, how a set of them is cut into
// frames, and the sealed memfd that carries a state blob.
//
// Kinds: "connection" (a connected SOCK_STREAM socket), "state" (a memfd
// sealed with F_SEAL_SHRINK|GROW|WRITE|SEAL), "file" (any descriptor).
// Threading: plain functions and values; the owner's thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "base/errors.h"
#include "base/owned_fd.h"
#include "protocol/control.pb.h"

namespace baton::protocol {

inline constexpr std::string_view kKindConnection = "connection";
inline constexpr std::string_view kKindState = "state";
inline constexpr std::string_view kKindFile = "file";
// The name the state blob travels under.
inline constexpr std::string_view kStateName = "baton.state";
inline constexpr size_t kMaxHandoverMetadata = 256 * 1024;
// A Handover frame's entries stay below this many metadata bytes, so the
// frame stays far under the 1 MiB cap.
inline constexpr size_t kMaxHandoverFrameMetadata = 512 * 1024;
inline constexpr size_t kDefaultMaxHandoverFds = 1024;
// The Hello capability of a successor that takes handed-over descriptors.
// Without it nothing is handed over to it: the supervisor tells the
// incumbent so in Prepare, and passes none on even if some arrive.
inline constexpr std::string_view kCapabilityHandover = "handover";

// One handed-over descriptor and its manifest entry.
struct HandedFd {
  v1::HandoverEntry entry;
  OwnedFd fd;
};

// Checks `fd` is what `kind` promises (an unknown kind is an error).
Status CheckHandedFd(std::string_view kind, int fd);

// Receives one Handover frame: its entries must match the descriptors that
// came with it one for one and pass CheckHandedFd, names must be new to
// `held`, and `held` may not grow beyond `max`. On success the pairs are
// appended to `held`; on error every descriptor of the frame is closed
// (and `held` is unchanged).
Status AcceptHandover(const v1::Handover& frame, std::vector<OwnedFd> fds, size_t max, std::vector<HandedFd>& held);

// A Handover frame and the descriptors to attach to it (borrowed from the set).
struct HandoverBatch {
  v1::Envelope env;
  std::vector<int> fds;
};
// Cuts `held` into frames of at most 253 descriptors and
// kMaxHandoverFrameMetadata metadata bytes, in order.
std::vector<HandoverBatch> MakeHandoverBatches(const std::string& handoff_id, const std::vector<HandedFd>& held);

// A memfd holding `bytes`, sealed against any change (O_CLOEXEC).
Result<OwnedFd> MakeSealedMemfd(std::string_view bytes);
// The content of a sealed memfd (CheckHandedFd(kKindState) first).
Result<std::string> ReadSealedMemfd(int fd);

}  // namespace baton::protocol
