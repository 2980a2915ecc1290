#include "ownership/lease_config.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string_view>

#include <fmt/format.h>

#include "ownership/lease_store.h"

namespace baton::ownership {

std::string GenerateHolderId() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::random_device rd;
  const uint64_t r = (uint64_t{rd()} << 32) | rd();
  // The host name is cut to 64 bytes (HOST_NAME_MAX on Linux) so the id,
  // and the NOTIFY payloads that carry it, stay bounded.
  return fmt::format("{}/{}/{:016x}", std::string_view(host).substr(0, 64), ::getpid(), r);
}

Result<LeaseConfig> MakeLeaseConfig(const LeaseOptions& o) {
  auto bad = [](std::string m) { return Error(Errc::kInvalidArgument, "lease: " + std::move(m)); };
  if (o.name.empty()) return bad("a lease name is required");
  if (o.name.size() > 200) return bad("the lease name is longer than 200 bytes");
  if (o.holder_id.size() > kMaxHolderLabel) {
    return bad(fmt::format("the holder id label is longer than {} bytes", kMaxHolderLabel));
  }
  for (const char ch : o.name + o.holder_id) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      return bad("the lease name and holder id label may not contain control characters");
    }
  }
  if (o.ttl <= Duration::zero()) return bad("the TTL must be positive");
  if (o.op_timeout <= Duration::zero()) return bad("the operation timeout must be positive");
  LeaseConfig c;
  c.name = o.name;
  // Unique per process whatever the user set: two processes configured
  // with the same id would otherwise both pass the acquire's "already ours"
  // match and both lead. A user's id is a label in front of the unique part.
  c.holder_id = o.holder_id.empty() ? GenerateHolderId() : o.holder_id + "/" + GenerateHolderId();
  c.ttl = o.ttl;
  c.renew_interval = o.renew_interval.count() > 0 ? Duration(o.renew_interval) : Duration(o.ttl / 3);
  c.op_timeout = o.op_timeout;
  c.poll_interval = o.poll_interval.count() > 0 ? Duration(o.poll_interval) : Duration(o.ttl / 4);
  if (c.renew_interval >= c.ttl) {
    return bad(fmt::format("the renew interval ({} ms) must be below the TTL ({} ms)", ToMillis(c.renew_interval),
                           ToMillis(c.ttl)));
  }
  if (c.op_timeout >= c.ttl) {
    return bad(fmt::format("the operation timeout ({} ms) must be below the TTL ({} ms)", ToMillis(c.op_timeout),
                           ToMillis(c.ttl)));
  }
  StoreSettings s;
  s.dsn = ResolveLeaseDsn(o.dsn);
  s.application_name = ("baton-lease " + c.holder_id).substr(0, 63);
  s.statement_timeout = c.op_timeout;
  s.lock_timeout = c.op_timeout / 2;
  s.idle_in_transaction_timeout = c.op_timeout * 2;
  auto info = BuildConnInfo(s);
  if (!info) return info.error();
  c.conninfo = std::move(*info);
  return c;
}

}  // namespace baton::ownership

namespace baton {

std::string ResolveLeaseDsn(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("BATON_LEASE_DSN"); env != nullptr) return env;
  return "";
}

namespace {

// A whole number of milliseconds in 1 .. 24 h, or a clear error naming `var`.
Result<std::chrono::milliseconds> MillisFromEnvironment(const char* var, std::chrono::milliseconds fallback) {
  const char* v = std::getenv(var);
  if (v == nullptr || *v == '\0') return fallback;
  int64_t ms = 0;
  const char* end = v + std::strlen(v);
  auto [p, ec] = std::from_chars(v, end, ms);
  if (ec != std::errc() || p != end || ms < 1 || ms > 24 * 3600 * 1000) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("{}='{}': expected a whole number of milliseconds from 1 to 86400000", var, v));
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace

Result<std::optional<LeaseOptions>> LeaseOptionsFromEnvironment() {
  const char* name = std::getenv("BATON_LEASE_NAME");
  if (name == nullptr || *name == '\0') return std::optional<LeaseOptions>();
  LeaseOptions o;
  o.name = name;
  o.dsn = ResolveLeaseDsn("");
  auto ttl = MillisFromEnvironment("BATON_LEASE_TTL_MS", o.ttl);
  if (!ttl) return ttl.error();
  auto op = MillisFromEnvironment("BATON_LEASE_OP_TIMEOUT_MS", o.op_timeout);
  if (!op) return op.error();
  o.ttl = *ttl;
  o.op_timeout = *op;
  return std::optional<LeaseOptions>(std::move(o));
}

}  // namespace baton
