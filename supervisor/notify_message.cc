#include "supervisor/notify_message.h"

#include <charconv>

#include <fmt/format.h>

#include "base/utf8.h"

namespace baton::supervisor {
namespace {

NotifyVerdict Refuse(NotifyReject kind, std::string reason) {
  NotifyVerdict v;
  v.refusals.push_back({kind, std::move(reason)});
  return v;
}

bool ValidKey(std::string_view k) {
  if (k.empty() || k.size() > 64) return false;
  for (char c : k) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

std::optional<uint64_t> ParseU64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// A printable rendering of a value for a refusal message (bounded).
std::string Shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 40) out += "...";
  return out;
}

// Microseconds as a Duration, bounded to a day: a larger value is as good
// as "forever" and must not overflow the clock arithmetic.
Duration Micros(uint64_t us) {
  constexpr uint64_t kDay = 86'400'000'000ULL;
  return std::chrono::microseconds(static_cast<int64_t>(us > kDay ? kDay : us));
}

}  // namespace

std::string_view NotifyRejectName(NotifyReject k) {
  switch (k) {
    case NotifyReject::kMalformed: return "malformed";
    case NotifyReject::kOversized: return "oversized";
    case NotifyReject::kForged: return "forged";
    case NotifyReject::kUnannouncedFd: return "unannounced_fd";
    case NotifyReject::kMainPid: return "mainpid";
    case NotifyReject::kFdStoreFull: return "fdstore_full";
  }
  return "unknown";
}

bool ValidFdName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c < 0x21 || c > 0x7e || c == ':') return false;
  }
  return true;
}

NotifyVerdict JudgeNotify(const NotifyDatagram& d, pid_t child_pid) {
  // Who sent it comes first: nothing a stranger says is read further.
  if (!d.sender_pid) return Refuse(NotifyReject::kForged, "no sender credentials (SO_PASSCRED)");
  if (*d.sender_pid != child_pid) {
    return Refuse(NotifyReject::kForged,
                  fmt::format("sent by pid {}, not by the child (pid {})", *d.sender_pid, child_pid));
  }
  if (d.length > kNotifyMaxBytes || d.payload.size() > kNotifyMaxBytes) {
    return Refuse(NotifyReject::kOversized,
                  fmt::format("{} bytes, more than the {} a notify datagram may have", d.length, kNotifyMaxBytes));
  }
  if (d.control_truncated || d.fds > kNotifyMaxFds) {
    return Refuse(NotifyReject::kOversized, fmt::format("more than {} descriptors in one datagram", kNotifyMaxFds));
  }
  if (d.payload.find('\0') != std::string_view::npos) return Refuse(NotifyReject::kMalformed, "a NUL byte");

  NotifyVerdict v;
  NotifyMessage m;
  m.fds = d.fds;
  bool any = false;
  std::string_view rest = d.payload;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || !ValidKey(line.substr(0, eq))) {
      return Refuse(NotifyReject::kMalformed, fmt::format("'{}' is not a KEY=VALUE assignment", Shown(line)));
    }
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    any = true;
    auto flag = [&](bool& out) -> bool {
      if (value != "1") return false;
      out = true;
      return true;
    };
    bool ok = true;
    if (key == "READY") {
      ok = flag(m.ready);
    } else if (key == "STOPPING") {
      ok = flag(m.stopping);
    } else if (key == "RELOADING") {
      ok = flag(m.reloading);
    } else if (key == "WATCHDOG") {
      // WATCHDOG=trigger asks for the watchdog action at once: a hang.
      if (value == "trigger") {
        m.watchdog_usec = Duration::zero();
      } else {
        ok = flag(m.watchdog);
      }
    } else if (key == "FDSTORE") {
      ok = flag(m.fdstore);
    } else if (key == "FDSTOREREMOVE") {
      ok = flag(m.fdstore_remove);
    } else if (key == "STATUS") {
      // As systemd does: a STATUS= that is not UTF-8 is dropped, the rest
      // of the datagram applies (it is shown and written into JSON).
      if (IsUtf8(value)) {
        m.status = std::string(value);
      } else {
        v.refusals.push_back({NotifyReject::kMalformed,
                              fmt::format("STATUS='{}' ignored: not UTF-8", Shown(value))});
      }
    } else if (key == "ERRNO") {
      auto n = ParseU64(value);
      ok = n && *n < 4096;
      if (ok) m.errno_value = static_cast<int>(*n);
    } else if (key == "EXTEND_TIMEOUT_USEC") {
      auto n = ParseU64(value);
      ok = n.has_value();
      if (ok) m.extend_timeout = Micros(*n);
    } else if (key == "WATCHDOG_USEC") {
      auto n = ParseU64(value);
      ok = n && *n > 0;
      if (ok) m.watchdog_usec = Micros(*n);
    } else if (key == "FDNAME") {
      ok = ValidFdName(value);
      if (ok) m.fdname = std::string(value);
    } else if (key == "MAINPID") {
      v.refusals.push_back({NotifyReject::kMainPid,
                            fmt::format("MAINPID={} ignored: only the process the supervisor started is watched",
                                        Shown(value))});
    }
    // Any other well-formed key is ignored, as systemd does.
    if (!ok) {
      return Refuse(NotifyReject::kMalformed, fmt::format("{}: bad value '{}'", key, Shown(value)));
    }
  }
  if (!any) return Refuse(NotifyReject::kMalformed, "an empty datagram");
  if (d.fds > 0 && !m.fdstore) {
    return Refuse(NotifyReject::kUnannouncedFd, fmt::format("{} descriptor(s) without FDSTORE=1", d.fds));
  }
  if (m.fdstore && d.fds == 0) return Refuse(NotifyReject::kMalformed, "FDSTORE=1 without a descriptor");
  if (m.fdstore && m.fdstore_remove) return Refuse(NotifyReject::kMalformed, "FDSTORE=1 and FDSTOREREMOVE=1 together");
  if (m.fdstore_remove && !m.fdname) return Refuse(NotifyReject::kMalformed, "FDSTOREREMOVE=1 without FDNAME=");
  v.message = std::move(m);
  return v;
}

}  // namespace baton::supervisor
