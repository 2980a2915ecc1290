#include "ownership/lease_store.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

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
CREATE TABLE IF NOT EXISTS public.baton_lease_candidate (
  name         text NOT NULL,
  holder       text NOT NULL,
  expires_at   timestamptz NOT NULL,
  requested_at timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, holder)
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

// Whether both tables exist, and whether its guard function has its
// search_path pinned (a table made before the pinning gets it re-created).
constexpr const char* kExistsSql =
    "SELECT to_regclass('public.baton_lease') IS NOT NULL AND to_regclass('public.baton_lease_candidate') IS NOT NULL, "
    "coalesce((SELECT 'search_path=pg_catalog, pg_temp' = "
    "ANY(proconfig) FROM pg_catalog.pg_proc WHERE oid = to_regprocedure('public.baton_lease_guard()')), false)";

constexpr const char* kPrivilegeSql =
    "SELECT has_table_privilege('public.baton_lease', 'SELECT'), has_table_privilege('public.baton_lease', 'INSERT'), "
    "has_table_privilege('public.baton_lease', 'UPDATE'), current_user, "
    "has_table_privilege('public.baton_lease_candidate', 'SELECT'), "
    "has_table_privilege('public.baton_lease_candidate', 'INSERT'), "
    "has_table_privilege('public.baton_lease_candidate', 'UPDATE')";

constexpr const char* kListenSql = "LISTEN baton_lease";

// $1 name, $2 holder, $3 ttl ms. Free (no expiry: a holder's own release),
// expired, or already held under this holder id (an ambiguous earlier
// outcome) → ours, epoch+1. A row an operator released keeps its holder's
// expiry (that holder may act until then), so it is taken only once expired.
constexpr const char* kAcquireSql = R"sql(
WITH t AS (
  INSERT INTO public.baton_lease AS l (name, holder, epoch, expires_at, updated_at)
  VALUES ($1, $2, 1, now() + $3::bigint * interval '1 millisecond', now())
  ON CONFLICT (name) DO UPDATE
    SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at, updated_at = now()
    WHERE l.expires_at IS NULL OR l.expires_at <= now() OR l.holder = EXCLUDED.holder
  RETURNING l.name, l.epoch, l.holder)
SELECT t.epoch, pg_notify('baton_lease', t.name || ' ' || t.epoch || ' ' || t.holder) FROM t
)sql";

// $1 name, $2 holder, $3 epoch, $4 ttl ms. Also answers the live candidate
// an operator asked the holder to hand over to, if any (`baton lease transfer`).
constexpr const char* kRenewSql = R"sql(
UPDATE public.baton_lease SET expires_at = now() + $4::bigint * interval '1 millisecond', updated_at = now()
WHERE name = $1 AND holder = $2 AND epoch = $3::bigint
RETURNING epoch,
  (SELECT c.holder FROM public.baton_lease_candidate c WHERE c.name = $1 AND c.holder <> $2
     AND c.requested_at IS NOT NULL AND c.expires_at > now() ORDER BY c.requested_at DESC LIMIT 1)
)sql";

// $1 name, $2 holder, $3 ttl ms. A standby's candidacy for a handover:
// refreshed by each of its polls, so live for one TTL after the last. A row
// whose process is long gone (expired over a minute ago: holder ids are
// unique per process, so it never comes back) is reused: the table stays
// as large as the most candidates ever live at once, without a DELETE.
constexpr const char* kRegisterSql = R"sql(
WITH mine AS (
  UPDATE public.baton_lease_candidate
  SET expires_at = now() + $3::bigint * interval '1 millisecond', updated_at = now()
  WHERE name = $1 AND holder = $2
  RETURNING 1),
dead AS (
  SELECT holder FROM public.baton_lease_candidate
  WHERE name = $1 AND expires_at < now() - interval '1 minute' AND NOT EXISTS (SELECT 1 FROM mine)
  LIMIT 1 FOR UPDATE SKIP LOCKED),
reused AS (
  UPDATE public.baton_lease_candidate c
  SET holder = $2, expires_at = now() + $3::bigint * interval '1 millisecond', requested_at = NULL, updated_at = now()
  FROM dead WHERE c.name = $1 AND c.holder = dead.holder
  RETURNING 1)
INSERT INTO public.baton_lease_candidate (name, holder, expires_at, updated_at)
SELECT $1, $2, now() + $3::bigint * interval '1 millisecond', now()
WHERE NOT EXISTS (SELECT 1 FROM mine) AND NOT EXISTS (SELECT 1 FROM reused)
ON CONFLICT (name, holder) DO UPDATE SET expires_at = EXCLUDED.expires_at, updated_at = now()
)sql";

// $1 name, $2 holder. Withdraws a candidacy (a standby that stops).
constexpr const char* kUnregisterSql = R"sql(
UPDATE public.baton_lease_candidate SET expires_at = now() - interval '1 minute', requested_at = NULL,
  updated_at = now()
WHERE name = $1 AND holder = $2
)sql";

// $1 name, $2/$3 our holding (epoch 0: any epoch of ours), $4 target holder
// ('' = any), $5 ttl ms, $6 release when no candidate is live. The holder,
// which stopped acting as leader before, hands the lease to a live
// candidate (the one an operator asked for, else the one refreshed last) in
// one fenced UPDATE, epoch+1; with none it releases it (if $6). Clears
// the operator's requests once the lease moved.
constexpr const char* kHandoverSql = R"sql(
WITH c AS (
  SELECT holder FROM public.baton_lease_candidate
  WHERE name = $1 AND holder <> $2 AND expires_at > now() AND ($4 = '' OR holder = $4)
  ORDER BY requested_at DESC NULLS LAST, expires_at DESC, holder LIMIT 1),
t AS (
  UPDATE public.baton_lease l
  SET holder = (SELECT holder FROM c), epoch = l.epoch + 1,
      expires_at = CASE WHEN EXISTS (SELECT 1 FROM c) THEN now() + $5::bigint * interval '1 millisecond' END,
      updated_at = now()
  WHERE l.name = $1 AND l.holder = $2 AND ($3::bigint = 0 OR l.epoch = $3::bigint)
    AND (EXISTS (SELECT 1 FROM c) OR $6::boolean)
  RETURNING l.name, l.epoch, l.holder),
r AS (
  UPDATE public.baton_lease_candidate SET requested_at = NULL
  WHERE name = $1 AND requested_at IS NOT NULL AND EXISTS (SELECT 1 FROM t))
SELECT t.epoch, coalesce(t.holder, ''), pg_notify('baton_lease', t.name || ' ' || t.epoch || ' ' || coalesce(t.holder, ''))
FROM t
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

// Operator commands (`baton lease release|transfer|status`).
// $1 name, $2/$3 the holding the operator saw. Free, epoch+1, but the
// expiry stays: the holder it took the lease from may act until then (it
// learns at its next renew), so nobody acquires before.
constexpr const char* kOperatorReleaseSql = R"sql(
WITH t AS (
  UPDATE public.baton_lease SET holder = NULL, epoch = epoch + 1, updated_at = now()
  WHERE name = $1 AND holder = $2 AND epoch = $3::bigint
  RETURNING name, epoch)
SELECT t.epoch, pg_notify('baton_lease', t.name || ' ' || t.epoch || ' ') FROM t
)sql";

// $1 name, $2 candidate. Asks the holder (at its next renew) to hand over
// to this live candidate.
constexpr const char* kRequestSql = R"sql(
UPDATE public.baton_lease_candidate SET requested_at = now(), updated_at = now()
WHERE name = $1 AND holder = $2 AND expires_at > now()
RETURNING 1
)sql";

// $1 name, $2 candidate: withdraws a request not honored in time.
constexpr const char* kCancelRequestSql = R"sql(
UPDATE public.baton_lease_candidate SET requested_at = NULL WHERE name = $1 AND holder = $2
)sql";

// $1 name.
constexpr const char* kRowSql = R"sql(
SELECT holder, epoch, to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  CASE WHEN expires_at IS NULL THEN NULL ELSE floor(extract(epoch FROM expires_at - now()) * 1000)::bigint END
FROM public.baton_lease WHERE name = $1
)sql";

// $1 name: the live candidates (a holder's candidacy from before it led
// lapses by itself; it is never handed its own lease).
constexpr const char* kCandidatesSql = R"sql(
SELECT holder, floor(extract(epoch FROM expires_at - now()) * 1000)::bigint, requested_at IS NOT NULL
FROM public.baton_lease_candidate c WHERE name = $1 AND expires_at > now()
  AND holder IS DISTINCT FROM (SELECT l.holder FROM public.baton_lease l WHERE l.name = $1)
ORDER BY expires_at DESC, holder
)sql";

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
  return {kSchemaSql,  kExistsSql,   kPrivilegeSql,  kListenSql,   kAcquireSql, kRenewSql,
          kReleaseSql, kMoveSql,     kRegisterSql,   kUnregisterSql, kHandoverSql, kOperatorReleaseSql,
          kRequestSql, kCancelRequestSql, kRowSql,      kCandidatesSql};
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
  if (priv->rows.size() != 1 || priv->rows[0].size() != 7) {
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
  for (int i = 0; i < 3; ++i) {
    if (r[4 + i] != "t") missing += (missing.empty() ? "" : ", ") + std::string(names[i]);
  }
  if (!missing.empty()) {
    co_return Error(Errc::kPermissionDenied,
                    fmt::format("lease schema: role {} lacks {} on table baton_lease_candidate (standbys register "
                                "there for a handover)",
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
                                                       TimePoint deadline, std::string_view what,
                                                       std::string* second) {
  auto r = co_await conn_.Query(std::string(sql), std::move(params), deadline);
  if (!r) co_return Error(r.error().code, fmt::format("lease {}: {}", what, r.error().message));
  if (r->rows.empty()) co_return MaybeEpoch{};
  if (r->rows.size() != 1 || r->rows[0].empty()) {
    co_return Error(Errc::kInternal, fmt::format("lease {}: {} rows changed", what, r->rows.size()));
  }
  auto epoch = ParseEpoch(r->rows[0][0]);
  if (!epoch) co_return epoch.error();
  if (second != nullptr) *second = r->rows[0].size() > 1 ? r->rows[0][1].value_or("") : "";
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
                                                      TimePoint deadline, std::string* requested) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(h.holder));
  params.emplace_back(std::to_string(h.epoch));
  params.emplace_back(Millis(ttl));
  co_return co_await RunCas(kRenewSql, std::move(params), deadline, std::string_view("renew"), requested);
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

asio::awaitable<Result<std::optional<Handed>>> LeaseStore::Handover(std::string name, Holding me, std::string target,
                                                                    Duration ttl, bool release_if_none,
                                                                    TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(me.holder));
  params.emplace_back(std::to_string(me.epoch));
  params.emplace_back(std::move(target));
  params.emplace_back(Millis(ttl));
  params.emplace_back(release_if_none ? "true" : "false");
  std::string to;
  auto r = co_await RunCas(kHandoverSql, std::move(params), deadline, std::string_view("handover"), &to);
  if (!r) co_return r.error();
  if (!*r) co_return std::optional<Handed>{};
  co_return std::optional<Handed>{Handed{**r, std::move(to)}};
}

asio::awaitable<Status> LeaseStore::Register(std::string name, std::string holder, Duration ttl, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(holder));
  params.emplace_back(Millis(ttl));
  auto r = co_await conn_.Query(kRegisterSql, std::move(params), deadline);
  if (!r) co_return Error(r.error().code, fmt::format("lease candidacy: {}", r.error().message));
  co_return Status{};
}

asio::awaitable<Status> LeaseStore::Unregister(std::string name, std::string holder, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(holder));
  auto r = co_await conn_.Query(kUnregisterSql, std::move(params), deadline);
  if (!r) co_return Error(r.error().code, fmt::format("lease candidacy: {}", r.error().message));
  co_return Status{};
}

asio::awaitable<Result<MaybeEpoch>> LeaseStore::OperatorRelease(std::string name, Holding seen, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(seen.holder));
  params.emplace_back(std::to_string(seen.epoch));
  co_return co_await RunCas(kOperatorReleaseSql, std::move(params), deadline, std::string_view("release"));
}

asio::awaitable<Result<bool>> LeaseStore::RequestHandover(std::string name, std::string to, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(to));
  auto r = co_await conn_.Query(kRequestSql, std::move(params), deadline);
  if (!r) co_return Error(r.error().code, fmt::format("lease transfer request: {}", r.error().message));
  co_return !r->rows.empty();
}

asio::awaitable<Status> LeaseStore::CancelRequest(std::string name, std::string to, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(std::move(name));
  params.emplace_back(std::move(to));
  auto r = co_await conn_.Query(kCancelRequestSql, std::move(params), deadline);
  if (!r) co_return Error(r.error().code, fmt::format("lease transfer request: {}", r.error().message));
  co_return Status{};
}

asio::awaitable<Result<LeaseView>> LeaseStore::View(std::string name, TimePoint deadline) {
  std::vector<pg::Value> params;
  params.emplace_back(name);
  auto row = co_await conn_.Query(kRowSql, params, deadline);
  if (!row) co_return Error(row.error().code, fmt::format("lease status: {}", row.error().message));
  LeaseView v;
  if (!row->rows.empty() && row->rows[0].size() == 4) {
    const auto& r = row->rows[0];
    v.exists = true;
    v.holder = r[0].value_or("");
    auto epoch = ParseEpoch(r[1]);
    if (!epoch) co_return epoch.error();
    v.epoch = *epoch;
    v.expires_at = r[2].value_or("");
    if (r[3]) {
      int64_t ms = 0;
      std::from_chars(r[3]->data(), r[3]->data() + r[3]->size(), ms);
      v.expires_in_ms = ms;
    }
  }
  auto cands = co_await conn_.Query(kCandidatesSql, std::move(params), deadline);
  if (!cands) co_return Error(cands.error().code, fmt::format("lease status: {}", cands.error().message));
  for (const auto& r : cands->rows) {
    if (r.size() != 3) continue;
    LeaseView::Candidate c;
    c.holder = r[0].value_or("");
    if (r[1]) std::from_chars(r[1]->data(), r[1]->data() + r[1]->size(), c.expires_in_ms);
    c.requested = r[2] == "t";
    v.candidates.push_back(std::move(c));
  }
  co_return v;
}

}  // namespace baton::ownership
