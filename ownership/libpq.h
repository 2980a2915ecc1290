// libpq, loaded on first use instead of linked. Only the Postgres lease
// needs it, and linking it would make every exec of every daemon load and
// relocate libpq and the ~20 libraries behind it (Kerberos, LDAP, GnuTLS...)
// — milliseconds on the critical path of each upgrade. The lease code
// (pg_connection.cc, lease_store.cc) calls libpq only through a Libpq table.
//
// Threading: LoadLibpq() is thread-safe (the first call loads, every later
// call returns the same outcome); a loaded table never changes and the
// library is never unloaded, so its pointers may be used from any thread.
#pragma once

#include <libpq-fe.h>

#include "base/errors.h"

namespace baton::ownership {

// libpq's soname since PostgreSQL 8.2 (Debian package libpq5).
inline constexpr const char* kLibpqSoname = "libpq.so.5";

// Every libpq function baton calls: X(name) for each.
#define BATON_LIBPQ_FUNCTIONS(X) \
  X(PQconnectStartParams)        \
  X(PQconnectPoll)               \
  X(PQstatus)                    \
  X(PQsocket)                    \
  X(PQfinish)                    \
  X(PQerrorMessage)              \
  X(PQsetnonblocking)            \
  X(PQsetNoticeProcessor)        \
  X(PQbackendPID)                \
  X(PQnotifies)                  \
  X(PQfreemem)                   \
  X(PQflush)                     \
  X(PQconsumeInput)              \
  X(PQisBusy)                    \
  X(PQgetResult)                 \
  X(PQresultStatus)              \
  X(PQntuples)                   \
  X(PQnfields)                   \
  X(PQgetisnull)                 \
  X(PQgetvalue)                  \
  X(PQgetlength)                 \
  X(PQcmdTuples)                 \
  X(PQresultErrorField)          \
  X(PQresultErrorMessage)        \
  X(PQclear)                     \
  X(PQsendQueryParams)           \
  X(PQsendQuery)                 \
  X(PQconninfoParse)             \
  X(PQconninfoFree)

// The loaded functions, each typed from <libpq-fe.h> so the compiler checks
// every call: pq.PQstatus(conn).
struct Libpq {
#define BATON_LIBPQ_MEMBER(name) decltype(&::name) name = nullptr;
  BATON_LIBPQ_FUNCTIONS(BATON_LIBPQ_MEMBER)
#undef BATON_LIBPQ_MEMBER
};

// libpq from kLibpqSoname, loaded by the first call; the outcome (the table
// or the error) is kept for the life of the process. kFailedPrecondition
// when it cannot be loaded: "the Postgres lease needs libpq (libpq.so.5,
// Debian package libpq5): <the loader's reason>".
Result<const Libpq*> LoadLibpq();

// Loads libpq from `soname` on every call, nothing cached (for tests). On
// success the library stays loaded for the life of the process.
Result<Libpq> LoadLibpqFrom(const char* soname);

}  // namespace baton::ownership
