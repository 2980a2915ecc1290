// The supervisor's events as the admin socket serves them (`baton events
// [--follow]`): the most recent ones for a newcomer, then every new one for
// the connections that follow.
//
// Threading: the supervisor's executor only.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "supervisor/admin_server.h"

namespace baton::supervisor {

class EventFanOut {
 public:
  // How many recent events a newcomer gets.
  static constexpr size_t kRecentEvents = 1000;

  // One event as its JSON line: kept, and sent to every follower.
  void Publish(const std::string& json);
  // Sends the recent events to `conn`; then every new one if `follow`, else
  // closes it once they are written.
  void Serve(const std::shared_ptr<AdminConnection>& conn, bool follow);
  // The recent events, oldest first: carried across a self-upgrade's exec
  // and put back, before any new one, with Restore().
  const std::deque<std::string>& recent() const { return recent_; }
  void Restore(std::deque<std::string> recent) { recent_ = std::move(recent); }

 private:
  std::deque<std::string> recent_;
  std::vector<std::shared_ptr<AdminConnection>> followers_;
};

}  // namespace baton::supervisor
