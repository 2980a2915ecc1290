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
    return "READY=1\nSTATUS=" + OneLine(fmt::format("{} serving; last handoff {}", who, e.message));
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
