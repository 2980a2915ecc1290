#include "ownership/pg_connection.h"

#include <variant>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "ownership/libpq.h"
#include "ownership/pg_resolver.h"

namespace baton::ownership::pg {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using Wait = asio::posix::descriptor_base::wait_type;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

Error PgError(std::string_view what, std::string_view sqlstate, std::string_view message) {
  Errc code = Errc::kUnavailable;
  const std::string msg = Trim(message);
  if (sqlstate == "42501" || msg.find("permission denied") != std::string::npos ||
      msg.find("password authentication failed") != std::string::npos ||
      msg.find("no pg_hba.conf entry") != std::string::npos) {
    code = Errc::kPermissionDenied;
  } else if (sqlstate == "55P03" || sqlstate == "57014") {
    code = Errc::kDeadlineExceeded;  // lock_timeout / statement_timeout
  } else if (sqlstate.size() == 5 && sqlstate.substr(0, 2) == "42") {
    code = Errc::kFailedPrecondition;  // our SQL against an unexpected schema
  } else if (msg.find("invalid connection option") != std::string::npos ||
             msg.find("missing \"=\"") != std::string::npos || msg.find("invalid URI") != std::string::npos) {
    code = Errc::kInvalidArgument;
  }
  if (sqlstate.empty()) return Error(code, fmt::format("{}: {}", what, msg));
  return Error(code, fmt::format("{}: {} (SQLSTATE {})", what, msg, sqlstate));
}

struct Connection::Impl {
  asio::any_io_executor ex;
  std::vector<std::pair<std::string, std::string>> conninfo;
  const Libpq* pq = nullptr;  // set by the first Connect; never null while conn is set
  std::optional<Resolver> resolver;  // host names, off this thread (ownership/pg_resolver.h)
  PGconn* conn = nullptr;
  std::optional<asio::posix::stream_descriptor> sock;
  std::vector<std::string> notes;

  // Registers libpq's current socket with the executor (never owning it).
  void Attach() {
    Detach();
    const int fd = pq->PQsocket(conn);
    if (fd >= 0) sock.emplace(ex, fd);
  }
  void Detach() {
    if (sock) {
      sock->release();
      sock.reset();
    }
  }
  void Close() {
    Detach();
    if (conn != nullptr) {
      // Non-blocking: PQfinish only queues a Terminate message and closes.
      pq->PQfinish(conn);
      conn = nullptr;
    }
  }

  Error ConnError(std::string_view what) const {
    return PgError(what, "", conn != nullptr ? pq->PQerrorMessage(conn) : "out of memory");
  }

  // Waits for the socket or the deadline, whichever comes first.
  asio::awaitable<Status> WaitFor(Wait w, TimePoint deadline, std::string_view what) {
    if (!sock) co_return Error(Errc::kUnavailable, fmt::format("{}: no connection", what));
    asio::steady_timer timer(ex, deadline);
    auto r = co_await (sock->async_wait(w, kTuple) || timer.async_wait(kTuple));
    if (r.index() == 1) {
      co_return Error(Errc::kDeadlineExceeded, fmt::format("{}: no answer from PostgreSQL in time", what));
    }
    auto [ec] = std::get<0>(r);
    if (ec) co_return Error(Errc::kUnavailable, fmt::format("{}: {}", what, ec.message()));
    co_return Status{};
  }

  asio::awaitable<Status> Connect(TimePoint deadline) {
    Close();
    if (pq == nullptr) {
      auto lib = LoadLibpq();
      if (!lib) co_return lib.error();
      pq = *lib;
    }
    // libpq would resolve host names on this thread: hand it addresses.
    ConnInfo info = conninfo;
    if (auto names = NamesToResolve(conninfo); !names.empty()) {
      auto addrs = co_await resolver->Resolve(std::move(names), deadline);
      if (!addrs) co_return Error(addrs.error().code, fmt::format("connect to PostgreSQL: {}", addrs.error().message));
      auto with = WithHostAddrs(conninfo, *addrs);
      if (!with) co_return Error(with.error().code, fmt::format("connect to PostgreSQL: {}", with.error().message));
      info = std::move(*with);
    }
    std::vector<const char*> keys;
    std::vector<const char*> values;
    for (const auto& [k, v] : info) {
      keys.push_back(k.c_str());
      values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    conn = pq->PQconnectStartParams(keys.data(), values.data(), 0);
    if (conn == nullptr || pq->PQstatus(conn) == CONNECTION_BAD) {
      Error e = ConnError("connect to PostgreSQL");
      Close();
      co_return e;
    }
    pq->PQsetnonblocking(conn, 1);
    // Server notices ("already exists, skipping") are not ours to print.
    pq->PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
      if (st == PGRES_POLLING_FAILED) {
        Error e = ConnError("connect to PostgreSQL");
        Close();
        co_return e;
      }
      // libpq may switch sockets while connecting (several hosts, SSL
      // fallback): register the current one before every wait.
      Attach();
      auto w = co_await WaitFor(st == PGRES_POLLING_READING ? Wait::wait_read : Wait::wait_write, deadline,
                                std::string_view("connect to PostgreSQL"));
      if (!w) {
        Close();
        co_return w.error();
      }
      st = pq->PQconnectPoll(conn);
    }
    Attach();
    co_return Status{};
  }

  void TakeNotifications() {
    while (PGnotify* n = pq->PQnotifies(conn)) {
      if (notes.size() >= kMaxPendingNotifications) notes.erase(notes.begin());
      notes.emplace_back(n->extra != nullptr ? n->extra : "");
      pq->PQfreemem(n);
    }
  }

  // Sends with `send`, flushes, and collects every result until libpq is idle.
  template <class Send>
  asio::awaitable<Result<QueryResult>> Run(Send send, TimePoint deadline, std::string_view what) {
    if (conn == nullptr || pq->PQstatus(conn) != CONNECTION_OK) {
      if (auto st = co_await Connect(deadline); !st) co_return st.error();
    }
    if (send(*pq, conn) == 0) {
      Error e = ConnError(what);
      Close();
      co_return e;
    }
    for (;;) {
      const int f = pq->PQflush(conn);
      if (f == 0) break;
      if (f < 0) {
        Error e = ConnError(what);
        Close();
        co_return e;
      }
      if (auto w = co_await WaitFor(Wait::wait_write, deadline, what); !w) {
        Close();
        co_return w.error();
      }
    }
    QueryResult out;
    std::optional<Error> err;
    for (;;) {
      if (pq->PQconsumeInput(conn) == 0) {
        Error e = ConnError(what);
        Close();
        co_return e;
      }
      TakeNotifications();
      bool done = false;
      while (!done && pq->PQisBusy(conn) == 0) {
        PGresult* r = pq->PQgetResult(conn);
        if (r == nullptr) {
          done = true;
          break;
        }
        switch (pq->PQresultStatus(r)) {
          case PGRES_TUPLES_OK: {
            out.rows.clear();
            const int nrows = pq->PQntuples(r);
            const int ncols = pq->PQnfields(r);
            for (int i = 0; i < nrows; ++i) {
              Row row;
              for (int j = 0; j < ncols; ++j) {
                if (pq->PQgetisnull(r, i, j) != 0) {
                  row.emplace_back(std::nullopt);
                } else {
                  row.emplace_back(std::string(pq->PQgetvalue(r, i, j), pq->PQgetlength(r, i, j)));
                }
              }
              out.rows.push_back(std::move(row));
            }
            out.affected = static_cast<uint64_t>(nrows);
            break;
          }
          case PGRES_COMMAND_OK: {
            const char* n = pq->PQcmdTuples(r);
            out.affected = (n != nullptr && *n != '\0') ? std::strtoull(n, nullptr, 10) : 0;
            break;
          }
          default:
            if (!err) {
              const char* state = pq->PQresultErrorField(r, PG_DIAG_SQLSTATE);
              err = PgError(what, state != nullptr ? state : "", pq->PQresultErrorMessage(r));
            }
            break;
        }
        pq->PQclear(r);
      }
      if (done) break;
      if (auto w = co_await WaitFor(Wait::wait_read, deadline, what); !w) {
        // The outcome is unknown and the connection mid-statement: drop it.
        Close();
        co_return w.error();
      }
    }
    if (pq->PQstatus(conn) != CONNECTION_OK) Close();
    if (err) co_return *err;
    co_return out;
  }
};

Connection::Connection(asio::any_io_executor ex, std::vector<std::pair<std::string, std::string>> conninfo)
    : impl_(std::make_unique<Impl>()) {
  impl_->ex = ex;
  impl_->conninfo = std::move(conninfo);
  impl_->resolver.emplace(std::move(ex));
}

Connection::~Connection() { impl_->Close(); }

asio::awaitable<Status> Connection::Ensure(TimePoint deadline) {
  if (connected()) co_return Status{};
  co_return co_await impl_->Connect(deadline);
}

asio::awaitable<Result<QueryResult>> Connection::Query(std::string sql, std::vector<Value> params,
                                                       TimePoint deadline) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  co_return co_await impl_->Run(
      [&](const Libpq& pq, PGconn* c) {
        return pq.PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                                    nullptr, 0);
      },
      deadline, std::string_view("query"));
}

asio::awaitable<Result<QueryResult>> Connection::Exec(std::string sql, TimePoint deadline) {
  co_return co_await impl_->Run([&](const Libpq& pq, PGconn* c) { return pq.PQsendQuery(c, sql.c_str()); }, deadline,
                                std::string_view("query"));
}

asio::awaitable<Result<std::vector<std::string>>> Connection::WaitNotifications(TimePoint deadline) {
  if (!connected()) co_return Error(Errc::kUnavailable, "wait for notifications: not connected");
  if (impl_->notes.empty()) {
    auto w = co_await impl_->WaitFor(Wait::wait_read, deadline, std::string_view("wait for notifications"));
    if (!w) {
      if (w.error().Is(Errc::kDeadlineExceeded)) co_return std::vector<std::string>{};
      impl_->Close();
      co_return w.error();
    }
    if (impl_->pq->PQconsumeInput(impl_->conn) == 0) {
      Error e = impl_->ConnError("wait for notifications");
      impl_->Close();
      co_return e;
    }
    impl_->TakeNotifications();
  }
  co_return std::exchange(impl_->notes, {});
}

size_t Connection::pending_notifications() const { return impl_->notes.size(); }

void Connection::DiscardNotifications() { impl_->notes.clear(); }

bool Connection::connected() const {
  return impl_->conn != nullptr && impl_->pq->PQstatus(impl_->conn) == CONNECTION_OK;
}

int Connection::backend_pid() const { return connected() ? impl_->pq->PQbackendPID(impl_->conn) : 0; }

void Connection::Close() { impl_->Close(); }

}  // namespace baton::ownership::pg
