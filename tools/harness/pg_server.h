// A private PostgreSQL 15 server for tests and benchmarks: initdb in a
// fresh temp dir, listening only on a Unix socket in that dir, run as the
// `postgres` user when we are root (the server refuses to run as root).
// Stopped and removed by the destructor (BATON_KEEP_DIRS=1 or
// BATON_KEEP_TEST_DIRS=1 keeps the dir).
//
// Blocking: every call waits for the server (bounded, seconds).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tools/harness/subprocess.h"

namespace baton::harness {

// Where Debian installs the server binaries.
inline constexpr const char* kPgBinDir = "/usr/lib/postgresql/15/bin";

class PgServer {
 public:
  PgServer();
  ~PgServer();
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // initdb (first call only) and start; false with `error()` set on failure.
  bool Start();
  // Fast shutdown (SIGINT), waits for the postmaster.
  void Stop();
  bool running() const { return pid_ > 0; }

  // "host=<dir> port=<port> dbname=postgres user=postgres".
  std::string dsn() const;
  std::string dsn_for(const std::string& user) const;
  const std::string& dir() const { return dir_.path(); }
  const std::string& error() const { return error_; }

  // Runs SQL as the superuser with a short blocking connection. Returns the
  // first column of every row; sets `error()` and returns nullopt-like empty
  // vector with ok=false on failure.
  std::vector<std::string> Query(const std::string& sql, bool* ok = nullptr);
  // Server pids of the backends whose application_name starts with `prefix`.
  std::vector<pid_t> Backends(const std::string& app_prefix);

 private:
  bool Initdb();
  TempDir dir_;
  std::string data_;
  int port_ = 5432;
  pid_t pid_ = -1;
  bool initialised_ = false;
  std::string error_;
};

// Whether the server binaries exist (tools/setup installs postgresql-15).
bool PgServerAvailable();

}  // namespace baton::harness
