#include "ownership/lease_store.h"

#include <algorithm>
#include <charconv>
#include <regex>

#include <fmt/format.h>

#include "ownership/libpq.h"

namespace baton::ownership {
namespace {

namespace asio = boost::asio;

// Serialises concurrent schema creation (CREATE TABLE IF NOT EXISTS races
// on the catalog otherwise). An arbitrary, fixed advisory lock key. Waiting
// for it is bounded by statement_timeout and the client's deadline, not by
// lock_timeout (half the op timeout): a dozen first starts queueing behind
// each other's creation would otherwise fail.
constexpr const char* kSchemaSql = R"sql(
BEGIN;
SET LOCAL lock_timeout = 0;
SELECT pg_advisory_xact_lock(4242004201);
CREATE TABLE IF NOT EXISTS public.baton_lease (
  name       text PRIMARY KEY,
  holder     text,
  epoch      bigint NOT NULL CHECK (epoch >= 0),
  expires_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION public.baton_lease_guard() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'baton_lease rows are never deleted';
  END IF;
  IF NEW.name <> OLD.name THEN
    RAISE EXCEPTION 'baton_lease: the name of a row never changes';
  END IF;
  IF NEW.epoch < OLD.epoch THEN
    RAISE EXCEPTION 'baton_lease: epochs only grow (% -> %)', OLD.epoch, NEW.epoch;
  END IF;
  IF NEW.holder IS DISTINCT FROM OLD.holder AND NEW.epoch = OLD.epoch THEN
    RAISE EXCEPTION 'baton_lease: a new holder needs a new epoch';
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER baton_lease_guard BEFORE UPDATE OR DELETE ON public.baton_lease
  FOR EACH ROW EXECUTE FUNCTION public.baton_lease_guard();
COMMIT;
)sql";

// Whether the table exists, and whether its guard function has its
// search_path pinned (a table made before the pinning gets it re-created).
constexpr const char* kExistsSql =
    "SELECT to_regclass('public.baton_lease') IS NOT NULL, coalesce((SELECT 'search_path=pg_catalog, pg_temp' = "
    "ANY(proconfig) FROM pg_catalog.pg_proc WHERE oid = to_regprocedure('public.baton_lease_guard()')), false)";

constexpr const char* kPrivilegeSql =
    "SELECT has_table_privilege('public.baton_lease', 'SELECT'), has_table_privilege('public.baton_lease', 'INSERT'), "
    "has_table_privilege('public.baton_lease', 'UPDATE'), current_user";

constexpr const char* kListenSql = "LISTEN baton_lease";

// $1 name, $2 holder, $3 ttl ms. Free (holder NULL), expired, or already
// held under this holder id (an ambiguous earlier outcome) → ours, epoch+1.
constexpr const char* kAcquireSql = R"sql(
WITH t AS (
  INSERT INTO public.baton_lease AS l (name, holder, epoch, expires_at, updated_at)
  VALUES ($1, $2, 1, now() + $3::bigint * interval '1 millisecond', now())
  ON CONFLICT (name) DO UPDATE
    SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at, updated_at = now()
    WHERE l.holder IS NULL OR l.expires_at <= now() OR l.holder = EXCLUDED.holder
  RETURNING l.name, l.epoch, l.holder)
SELECT t.epoch, pg_notify('baton_lease', t.name || ' ' || t.epoch || ' ' || t.holder) FROM t
)sql";

// $1 name, $2 holder, $3 epoch, $4 ttl ms.
constexpr const char* kRenewSql = R"sql(
UPDATE public.baton_lease SET expires_at = now() + $4::bigint * interval '1 millisecond', updated_at = now()
WHERE name = $1 AND holder = $2 AND epoch = $3::bigint
RETURNING epoch
)sql";

// $1 name, $2 holder, $3 epoch (0: any epoch of this holder).
constexpr const char* kReleaseSql = R"sql(
WITH t AS (
  UPDATE public.baton_lease SET holder = NULL, epoch = epoch + 1, expires_at = NULL, updated_at = now()
  WHERE name = $1 AND holder = $2 AND ($3::bigint = 0 OR epoch = $3::bigint)
  RETURNING name, epoch)
SELECT t.epoch, pg_notify('baton_lease', t.name || ' ' || t.epoch || ' ') FROM t
)sql";

// $1 name, $2/$3 holding a, $4/$5 holding b (epoch 0: any epoch of that
// holder), $6 new holder, $7 ttl ms.
constexpr const char* kMoveSql = R"sql(
WITH t AS (
  UPDATE public.baton_lease
  SET holder = $6, epoch = epoch + 1, expires_at = now() + $7::bigint * interval '1 millisecond', updated_at = now()
  WHERE name = $1 AND ((holder = $2 AND ($3::bigint = 0 OR epoch = $3::bigint))
                    OR (holder = $4 AND ($5::bigint = 0 OR epoch = $5::bigint)))
  RETURNING name, epoch, holder)
SELECT t.epoch, pg_notify('baton_lease', t.name || ' ' || t.epoch || ' ' || t.holder) FROM t
)sql";

// The secret parts of a DSN as written: a URI's password (userinfo or a
// `password` query parameter) and a `password=` keyword's value, each also
// percent-decoded. libpq's parse errors quote fragments of the DSN (e.g.
// `invalid percent-encoded token: "<password>"`), so every one of these is
// masked wherever it appears, not only the DSN as a whole.
std::vector<std::string> SecretParts(const std::string& dsn) {
  std::vector<std::string> raw;
  static const std::regex kUri(R"(^postgres(ql)?://([^@/]*)@)");
  static const std::regex kQueryPassword(R"([?&]password=([^&]*))");
  static const std::regex kKeyPassword(R"(password\s*=\s*('((?:[^'\\]|\\.)*)'?|\S+))");
  std::smatch m;
  if (std::regex_search(dsn, m, kUri)) {
    const std::string userinfo = m[2].str();
    if (const auto colon = userinfo.find(':'); colon != std::string::npos) raw.push_back(userinfo.substr(colon + 1));
  }
  for (auto it = std::sregex_iterator(dsn.begin(), dsn.end(), kQueryPassword); it != std::sregex_iterator(); ++it) {
    raw.push_back((*it)[1].str());
  }
  for (auto it = std::sregex_iterator(dsn.begin(), dsn.end(), kKeyPassword); it != std::sregex_iterator(); ++it) {
    raw.push_back((*it)[2].matched ? (*it)[2].str() : (*it)[1].str());
  }
  std::vector<std::string> out;
  for (const auto& r : raw) {
    if (r.empty()) continue;
    out.push_back(r);
    std::string decoded;
    for (size_t i = 0; i < r.size(); ++i) {
      uint8_t byte = 0;
      const char* hex = r.data() + i + 1;
      if (r[i] == '%' && i + 2 < r.size() && std::from_chars(hex, hex + 2, byte, 16).ptr == hex + 2) {
        decoded.push_back(static_cast<char>(byte));
        i += 2;
      } else {
        decoded.push_back(r[i]);
      }
    }
    if (decoded != r && !decoded.empty()) out.push_back(decoded);
  }
  // Longest first, so a secret containing another is masked whole.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return out;
}

std::string RedactDsnSecrets(const std::string& dsn, std::string text) {
  const std::vector<std::string> secrets = SecretParts(dsn);
  // A quoted fragment that is a piece of a secret is a piece of the secret.
  static const std::regex kQuoted(R"re("([^"]*)")re");
  std::string quoted_masked;
  auto last = text.cbegin();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kQuoted); it != std::sregex_iterator(); ++it) {
    const std::string inner = (*it)[1].str();
    const bool piece = !inner.empty() && std::any_of(secrets.begin(), secrets.end(), [&](const std::string& sec) {
      return sec.find(inner) != std::string::npos;
    });
    quoted_masked.append(last, (*it)[0].first);
    quoted_masked += piece ? std::string("\"***\"") : (*it)[0].str();
    last = (*it)[0].second;
  }
  quoted_masked.append(last, text.cend());
  text = std::move(quoted_masked);
  for (const auto& sec : secrets) {
    for (auto at = text.find(sec); at != std::string::npos; at = text.find(sec, at + 3)) text.replace(at, sec.size(), "***");
  }
  return text;
}

std::string Millis(Duration d) { return std::to_string(std::max<int64_t>(1, ToMillis(d))); }

Result<uint64_t> ParseEpoch(const pg::Value& v) {
  uint64_t out = 0;
  if (!v) return Error(Errc::kInternal, "lease: NULL epoch");
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size()) {
    return Error(Errc::kInternal, fmt::format("lease: bad epoch '{}'", *v));
  }
  return out;
}

}  // namespace

std::vector<std::string_view> LeaseStatements() {
  return {kSchemaSql, kExistsSql, kPrivilegeSql, kListenSql, kAcquireSql, kRenewSql, kReleaseSql, kMoveSql};
}

Result<std::vector<std::pair<std::string, std::string>>> BuildConnInfo(const StoreSettings& s) {
  // The lease's first use of libpq (MakeLeaseConfig, so Daemon::Create): a
  // daemon configured with a lease fails its start here if libpq is missing.
  auto lib = LoadLibpq();
  if (!lib) return lib.error();
  const Libpq& pq = **lib;
  char* err = nullptr;
  PQconninfoOption* opts = pq.PQconninfoParse(s.dsn.c_str(), &err);
  if (opts == nullptr) {
    std::string msg = err != nullptr ? err : "out of memory";
    if (err != nullptr) pq.PQfreemem(err);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    // libpq quotes the offending text, which may be (a piece of) a password.
    return Error(Errc::kInvalidArgument, fmt::format("lease DSN: {}", RedactDsnSecrets(s.dsn, msg)));
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::string options;
  bool has_app_name = false;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string key = o->keyword;
    if (key == "options") {
      options = o->val;
      continue;
    }
    if (key == "application_name") has_app_name = true;
    out.emplace_back(key, o->val);
  }
  pq.PQconninfoFree(opts);
  // Server-side bounds, so a statement or transaction abandoned by a
  // client that gave up cannot hold the row for long; the server also
  // notices a vanished client during a long statement.
  // search_path: the statements name public.baton_lease, and nothing else
  // is searched, so objects other roles create (a baton_lease in a schema
  // named after our role, an operator in public) cannot stand in for ours.
  options += fmt::format(
      " -c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}"
      " -c client_connection_check_interval=500 -c search_path=pg_catalog,pg_temp",
      ToMillis(s.statement_timeout), ToMillis(s.lock_timeout), ToMillis(s.idle_in_transaction_timeout));
  out.emplace_back("options", options);
  if (!has_app_name && !s.application_name.empty()) out.emplace_back("application_name", s.application_name);
  // Dead peers are noticed by the kernel too, not only by our deadlines.
  out.emplace_back("keepalives_idle", "5");
  out.emplace_back("keepalives_interval", "2");
  out.emplace_back("keepalives_count", "3");
  return out;
}

LeaseStore::LeaseStore(asio::any_io_executor ex, std::vector<std::pair<std::string, std::string>> conninfo)
    : conn_(std::move(ex), std::move(conninfo)) {}

asio::awaitable<Status> LeaseStore::EnsureSchema(TimePoint deadline) {
  auto exists = co_await conn_.Query(kExistsSql, std::vector<pg::Value>(), deadline);
  if (!exists) co_return Error(exists.error().code, fmt::format("lease schema: {}", exists.error().message));
  if (exists->rows.size() != 1 || exists->rows[0].size() != 2 || exists->rows[0][0] != "t" ||
      exists->rows[0][1] != "t") {
    auto created = co_await conn_.Exec(kSchemaSql, deadline);
    if (!created) {
      // Leave no half-open transaction behind on a kept connection.
      conn_.Close();
      co_return Error(created.error().code, fmt::format("lease schema: create table baton_lease or pin its guard's search_path "
                                                        "(its owner can run: ALTER FUNCTION public.baton_lease_guard() "
                                                        "SET search_path = pg_catalog, pg_temp): {}",
                                                        created.error().message));
    }
  }
  auto priv = co_await conn_.Query(kPrivilegeSql, std::vector<pg::Value>(), deadline);
  if (!priv) co_return Error(priv.error().code, fmt::format("lease schema: {}", priv.error().message));
  if (priv->rows.size() != 1 || priv->rows[0].size() != 4) {
    co_return Error(Errc::kInternal, "lease schema: unexpected privilege check result");
  }
  const auto& r = priv->rows[0];
  std::string missing;
  const char* names[] = {"SELECT", "INSERT", "UPDATE"};
  for (int i = 0; i < 3; ++i) {
    if (r[i] != "t") missing += (missing.empty() ? "" : ", ") + std::string(names[i]);
  }
  if (!missing.empty()) {
    co_return Error(Errc::kPermissionDenied, fmt::format("lease schema: role {} lacks {} on table baton_lease",
                                                         r[3].value_or("?"), missing));
  }
  co_return Status{};
}

asio::awaitable<Status> LeaseStore::Listen(TimePoint deadline) {
  auto r = co_await conn_.Query(kListenSql, std::vector<pg::Value>(), deadline);
  if (!r) co_return Error(r.error().code, fmt::format("lease listen: {}", r.error().message));
  co_return Status{};
}

asio::awaitable<Result<std::vector<std::string>>> LeaseStore::WaitNotifications(TimePoint deadline) {
  co_return co_await conn_.WaitNotifications(deadline);
}

asio::awaitable<Result<MaybeEpoch>> LeaseStore::RunCas(std::string_view sql, std::vector<pg::Value> params,
                                                       TimePoint deadline, std::string_view what) {
  auto r = co_await conn_.Query(std::string(sql), std::move(params), deadline);
  if (!r) co_return Error(r.error().code, fmt::format("lease {}: {}", what, r.error().message));
  if (r->rows.empty()) co_return MaybeEpoch{};
  if (r->rows.size() != 1 || r->rows[0].empty()) {
    co_return Error(Errc::kInternal, fmt::format("lease {}: {} rows changed", what, r->rows.size()));
  }
  auto epoch = ParseEpoch(r->rows[0][0]);
  if (!epoch) co_return epoch.error();
  co_return MaybeEpoch{*epoch};
}

asio::awaitable<Result<MaybeEpoch>> LeaseStore::Acquire(std::string name, std::string holder, Duration ttl,
                                                        TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(holder));
  params.emplace_back(Millis(ttl));
  co_return co_await RunCas(kAcquireSql, std::move(params), deadline, std::string_view("acquire"));
}

asio::awaitable<Result<MaybeEpoch>> LeaseStore::Renew(std::string name, Holding h, Duration ttl,
                                                      TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(h.holder));
  params.emplace_back(std::to_string(h.epoch));
  params.emplace_back(Millis(ttl));
  co_return co_await RunCas(kRenewSql, std::move(params), deadline, std::string_view("renew"));
}

asio::awaitable<Result<MaybeEpoch>> LeaseStore::Release(std::string name, Holding h, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(h.holder));
  params.emplace_back(std::to_string(h.epoch));
  co_return co_await RunCas(kReleaseSql, std::move(params), deadline, std::string_view("release"));
}

asio::awaitable<Result<MaybeEpoch>> LeaseStore::Move(std::string name, Holding a, Holding b, std::string to,
                                                     Duration ttl, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(a.holder));
  params.emplace_back(std::to_string(a.epoch));
  params.emplace_back(std::move(b.holder));
  params.emplace_back(std::to_string(b.epoch));
  params.emplace_back(std::move(to));
  params.emplace_back(Millis(ttl));
  co_return co_await RunCas(kMoveSql, std::move(params), deadline, std::string_view("transfer"));
}

}  // namespace baton::ownership
