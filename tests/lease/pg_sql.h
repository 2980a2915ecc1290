// Blocking SQL on a test database as the superuser, for checks and for
// setting up states (links libpq).
#pragma once

#include <libpq-fe.h>

#include <string>

namespace baton::testing {

// The first column of the first row ("" if none), or the error message with
// *ok = false.
inline std::string SqlOn(const std::string& dsn, const std::string& sql, bool* ok = nullptr) {
  PGconn* c = PQconnectdb(dsn.c_str());
  PGresult* r = PQexec(c, sql.c_str());
  const bool good = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
  if (ok != nullptr) *ok = good;
  std::string out = good ? (PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "") : PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  return out;
}

}  // namespace baton::testing
