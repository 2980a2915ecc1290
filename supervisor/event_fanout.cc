#include "supervisor/event_fanout.h"

namespace baton::supervisor {
namespace {

v1::Envelope Record(const std::string& json) {
  v1::Envelope e;
  e.mutable_event_record()->set_json(json);
  return e;
}

}  // namespace

void EventFanOut::Publish(const std::string& json) {
  recent_.push_back(json);
  if (recent_.size() > kRecentEvents) recent_.pop_front();
  for (auto it = followers_.begin(); it != followers_.end();) {
    if ((*it)->closed()) {
      it = followers_.erase(it);
      continue;
    }
    (*it)->Send(Record(json));
    ++it;
  }
}

void EventFanOut::Serve(const std::shared_ptr<AdminConnection>& conn, bool follow) {
  for (const auto& line : recent_) conn->Send(Record(line));
  if (follow) {
    followers_.push_back(conn);
  } else {
    conn->CloseAfterWrites();
  }
}

}  // namespace baton::supervisor
