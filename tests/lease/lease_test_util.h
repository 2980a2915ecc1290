// Shared pieces of the lease tests: one real PostgreSQL 15 server per test
// binary (started on first use, stopped after the last test), fresh
// databases, and a way to run the lease coroutines to completion.
#pragma once

#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "ownership/lease_store.h"
#include "tools/harness/pg_server.h"

namespace baton::testing {

// Owns the binary's server: started on first use, stopped (and its dir
// removed) by gtest's global tear-down after the last test, in this process
// only; an atexit handler would also run in a forked child that calls
// exit(). Registered before main (gtest wants environments before
// RUN_ALL_TESTS). Test thread only.
class SharedPgEnvironment : public ::testing::Environment {
 public:
  harness::PgServer& Get() {
    if (server_ == nullptr) {
      server_ = std::make_unique<harness::PgServer>();
      server_->Start();
    }
    return *server_;
  }
  void TearDown() override { server_.reset(); }

 private:
  std::unique_ptr<harness::PgServer> server_;
};

inline SharedPgEnvironment* const kSharedPgEnvironment =
    static_cast<SharedPgEnvironment*>(::testing::AddGlobalTestEnvironment(new SharedPgEnvironment));

// The binary's server; a failure to start fails the calling test (never skips).
inline harness::PgServer& SharedPg() { return kSharedPgEnvironment->Get(); }

// A fresh database on `pg`; returns its DSN.
inline std::string FreshDatabase(harness::PgServer& pg, const std::string& user = "postgres") {
  static std::atomic<int> n{0};
  const std::string db = "t" + std::to_string(::getpid()) + "_" + std::to_string(n++);
  bool ok = false;
  pg.Query("CREATE DATABASE " + db, &ok);
  EXPECT_TRUE(ok) << pg.error();
  return "host=" + pg.dir() + " port=5432 dbname=" + db + " user=" + user;
}

inline std::vector<std::pair<std::string, std::string>> ConnInfo(const std::string& dsn,
                                                                  Duration lock_timeout = milliseconds(500),
                                                                  const std::string& app = "baton-test") {
  ownership::StoreSettings s;
  s.dsn = dsn;
  s.application_name = app;
  s.lock_timeout = lock_timeout;
  s.statement_timeout = seconds(5);
  auto info = ownership::BuildConnInfo(s);
  EXPECT_TRUE(info.has_value()) << info.error().message;
  return info ? *info : std::vector<std::pair<std::string, std::string>>{};
}

// Runs `a` on `io` until it completes; returns its value.
template <class T>
T RunSync(boost::asio::io_context& io, boost::asio::awaitable<T> a) {
  std::optional<T> out;
  boost::asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    if (e) std::rethrow_exception(e);
    out.emplace(std::move(v));
  });
  io.restart();
  io.run();
  return std::move(*out);
}

inline TimePoint In(Duration d) { return std::chrono::steady_clock::now() + d; }

}  // namespace baton::testing
