#include "supervisor/ops/notify.h"

#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "supervisor/ops/libsystemd.h"

namespace baton::supervisor {
namespace {

// STATUS= is one line.
std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

int64_t IntField(const Event& e, std::string_view key) {
  const FieldValue* v = e.Get(key);
  if (v == nullptr) return 0;
  if (const auto* i = std::get_if<int64_t>(v)) return *i;
  return 0;
}

// "kvd serving (generation pid 42); last handoff committed", or with the
// reason of any other outcome. The pid is the one serving now: the new
// generation after a commit, the old one after a rollback.
std::string HandoffEndStatus(const std::string& who, const Event& e) {
  const std::string outcome = e.GetString("outcome");
  std::string reason = e.GetString("reason");
  if (outcome.empty()) return fmt::format("{} serving; last handoff {}", who, e.message);
  const int64_t pid = IntField(e, outcome == "committed" ? "new_pid" : "old_pid");
  std::string out = outcome == "failed" ? fmt::format("{}", who)
                    : pid > 0           ? fmt::format("{} serving (generation pid {})", who, pid)
                                        : fmt::format("{} serving", who);
  std::string said = outcome;
  for (char& c : said) {
    if (c == '_') c = ' ';
  }
  out += fmt::format("{} last handoff {}", outcome == "failed" ? ":" : ";", said);
  if (!reason.empty() && reason != outcome) out += ": " + reason;
  return out;
}

}  // namespace

std::string NotifyPolicy::OnEvent(const Event& e, uint64_t monotonic_us) {
  const uint64_t extend_us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(extend_).count());
  const std::string who = service_.empty() ? "daemon" : service_;
  if (e.name == "child.hello" && !ready_) {
    ready_ = true;
    return "READY=1\nSTATUS=" + OneLine(fmt::format("{} serving ({})", who, e.message));
  }
  if (e.name == "handoff.start") {
    return fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nEXTEND_TIMEOUT_USEC={}\nSTATUS=upgrading {}: handoff {}",
                       monotonic_us, extend_us, who, e.GetString("handoff_id"));
  }
  if (e.name == "handoff.phase") {
    return fmt::format("EXTEND_TIMEOUT_USEC={}\nSTATUS=upgrading {}: {} done", extend_us, who, e.GetString("phase"));
  }
  if (e.name == "handoff.end") {
    ready_ = true;
    return "READY=1\nSTATUS=" + OneLine(HandoffEndStatus(who, e));
  }
  if (e.name == "child.restart") return "STATUS=" + OneLine(fmt::format("{} died; {}", who, e.message));
  if (e.name == "supervisor.stop") return "STOPPING=1\nSTATUS=stopping " + who;
  return "";
}

bool SdNotifier::Enabled() {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s != nullptr && *s != '\0';
}

Status SdNotifier::Notify(const std::string& msg) {
  auto sd = Libsystemd::Load();
  if (!sd) return sd.error();
  const int rc = (*sd)->notify(0, msg.c_str());
  if (rc < 0) return ErrnoError("sd_notify", -rc);
  return {};
}

Status SdNotifier::StoreFd(const std::string& name, int fd) {
  auto sd = Libsystemd::Load();
  if (!sd) return sd.error();
  const std::string msg = fmt::format("FDSTORE=1\nFDNAME={}", name);
  const int rc = (*sd)->pid_notify_with_fds(0, 0, msg.c_str(), &fd, 1);
  if (rc < 0) return ErrnoError(fmt::format("sd_notify FDSTORE {}", name), -rc);
  return {};
}

}  // namespace baton::supervisor
