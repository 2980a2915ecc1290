// One GET /watch response body (service.h): the lines of WatchHistory from
// a revision on, as chunks of at most about kChunkBytes, waiting for the
// next commit when it is caught up.
//
// Its handover state (the metadata of a connection handed over between two
// chunks, docs/integrate.md) is "kvd-watch/1 next=<REV>": the revision the
// next chunk starts with. The next generation continues from there; if
// its history no longer reaches back that far, the stream ends with
// {"error":"compacted","oldest":N}.
//
// Threading: io thread only. The history must outlive the stream's use
// (the service owns the history and outlives the server).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "http_server.h"
#include "watch_history.h"

namespace kvd {

class WatchStream final : public ChunkSource {
 public:
  static constexpr size_t kChunkBytes = 64u << 10;

  WatchStream(WatchHistory& history, uint64_t next) : history_(history), next_(next) {}

  bool Next(std::string& out) override;
  void Wait(std::function<void()> wake) override;
  void CancelWait() override;
  std::string HandoverState() const override;

  // The `next` of a HandoverState; nullopt if it is not one.
  static std::optional<uint64_t> ParseHandoverState(std::string_view state);
  // A revision as a watch request or a handover state writes it: decimal,
  // >= 1, no sign, no leading junk; nullopt otherwise.
  static std::optional<uint64_t> ParseRevision(std::string_view s);

  uint64_t next() const { return next_; }

 private:
  WatchHistory& history_;
  uint64_t next_;
  uint64_t wait_id_ = 0;  // 0: not waiting
};

}  // namespace kvd
