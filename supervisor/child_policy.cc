#include "supervisor/child_policy.h"

#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdlib>

#include <fmt/format.h>

namespace baton::supervisor {

Result<std::string> CheckAllowedBinary(const std::vector<std::string>& allowed, const std::string& binary) {
  if (allowed.empty()) return binary;
  char buf[PATH_MAX];
  if (::realpath(binary.c_str(), buf) == nullptr) {
    return ErrnoError(fmt::format("binary {}", binary), errno);
  }
  const std::string canonical = buf;
  for (const auto& pattern : allowed) {
    if (::fnmatch(pattern.c_str(), canonical.c_str(), FNM_PATHNAME) == 0) return canonical;
  }
  return Error(Errc::kPermissionDenied,
               fmt::format("binary {} (canonical path {}) is not in allowed_binaries; add it to the config",
                           binary, canonical));
}

bool KeptByDefault(const std::string& name) {
  static const char* const kExact[] = {"PATH",         "HOME",          "USER",        "LOGNAME",
                                       "LANG",         "LANGUAGE",      "TZ",          "TMPDIR",
                                       "JOURNAL_STREAM", "INVOCATION_ID", "BATON_CRASH_AT", "BATON_CRASH_ACTION",
                                       "BATON_CRASH_MARKER"};
  for (const char* k : kExact) {
    if (name == k) return true;
  }
  if (name.rfind("LC_", 0) == 0) return true;
  // ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS, LSAN_OPTIONS, ...
  const std::string suffix = "SAN_OPTIONS";
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> SanitizedEnvironment(const std::vector<std::string>& ours,
                                              const std::vector<std::string>& pass,
                                              const std::map<std::string, std::string>& extra,
                                              const std::optional<LeaseConfig>& lease) {
  std::map<std::string, std::string> env;
  for (const auto& kv : ours) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = kv.substr(0, eq);
    bool keep = KeptByDefault(name);
    for (const auto& p : pass) keep = keep || p == name;
    if (keep) env[name] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  if (lease) {
    env["BATON_LEASE_DSN"] = lease->dsn;
    env["BATON_LEASE_NAME"] = lease->name;
    env["BATON_LEASE_TTL_MS"] = std::to_string(ToMillis(lease->ttl));
    env["BATON_LEASE_OP_TIMEOUT_MS"] = std::to_string(ToMillis(lease->op_timeout));
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace baton::supervisor
