#include "tools/harness/pg_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "tools/harness/cluster.h"
#include "tools/harness/reaper.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {
namespace {

struct RunAs {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// The server refuses to run as root: when we are root, run it as `postgres`.
RunAs ServerUser() {
  RunAs r;
  if (::geteuid() != 0) return r;
  if (const passwd* pw = ::getpwnam("postgres"); pw != nullptr) {
    r.drop = true;
    r.uid = pw->pw_uid;
    r.gid = pw->pw_gid;
  }
  return r;
}

// fork+exec with output appended to `log`; returns the pid (or -1).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log, const RunAs& as) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid > 0) {
    ::setpgid(pid, pid);
    KillGroupOnExit(pid);  // a killed test must not leave a server behind
  }
  if (pid != 0) return pid;
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::close(fd);
  }
  // Not in our process group: a test's ^C must not stop it before we do.
  ::setpgid(0, 0);
  if (as.drop) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(as.gid) != 0 || ::setuid(as.uid) != 0) ::_exit(126);
  }
  ::execv(args[0], args.data());
  ::_exit(127);
}

std::string Tail(const std::string& path) {
  std::string s = ReadAll(path);
  return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
}

}  // namespace

bool PgServerAvailable() { return ::access((std::string(kPgBinDir) + "/postgres").c_str(), X_OK) == 0; }

PgServer::PgServer() : dir_("pg") {
  data_ = dir() + "/data";
  const RunAs as = ServerUser();
  ::chmod(dir().c_str(), 0755);
  if (as.drop && ::chown(dir().c_str(), as.uid, as.gid) != 0) error_ = "chown " + dir();
}

PgServer::~PgServer() {
  Stop();
  // dir_ removes itself after this, once the server is down.
  const char* keep = std::getenv("BATON_KEEP_DIRS");
  if (keep != nullptr && std::string(keep) == "1") dir_.Keep();
}

std::string PgServer::dsn_for(const std::string& user) const {
  return "host=" + dir() + " port=" + std::to_string(port_) + " dbname=postgres user=" + user;
}

std::string PgServer::dsn() const { return dsn_for("postgres"); }

namespace {

// Runs `argv` (as the server user when `as_server`) to completion; true on exit 0.
bool RunToEnd(const std::vector<std::string>& argv, const std::string& log, bool as_server) {
  const pid_t pid = Spawn(argv, log, as_server ? ServerUser() : RunAs{});
  const int status = WaitFor(pid, std::chrono::seconds(60));
  if (status < 0) {
    ::kill(pid, SIGKILL);
    WaitFor(pid, std::chrono::seconds(5));
    ForgetGroup(pid);
    return false;
  }
  ForgetGroup(pid);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::vector<std::string> InitdbArgs(const std::string& data) {
  return {std::string(kPgBinDir) + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
          "--locale=C", "--no-sync", "--no-instructions"};
}

// One initdb'ed template per build tree (made once, under a lock shared by
// parallel test processes), so each server costs a copy instead of an
// initdb. False when it cannot be made here; the caller runs initdb itself.
bool CopyTemplate(const std::string& data, const std::string& log) {
  const std::string tmpl = std::string(BATON_TEST_BIN_DIR) + "/pg15-template";
  const int lock = ::open((tmpl + ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock < 0) return false;
  ::flock(lock, LOCK_EX);
  bool ok = ::access((tmpl + "/PG_VERSION").c_str(), R_OK) == 0;
  if (!ok) {
    const std::string staging = tmpl + ".new";
    std::error_code ec;
    std::filesystem::remove_all(staging, ec);
    const RunAs as = ServerUser();
    ok = ::mkdir(staging.c_str(), 0700) == 0 && (!as.drop || ::chown(staging.c_str(), as.uid, as.gid) == 0) &&
         RunToEnd(InitdbArgs(staging), log, true) && ::rename(staging.c_str(), tmpl.c_str()) == 0;
    if (!ok) std::filesystem::remove_all(staging, ec);
  }
  // cp -a keeps the owner (we are root when the server user differs) and 0700.
  ok = ok && RunToEnd({"/bin/cp", "-a", tmpl, data}, log, false);
  ::flock(lock, LOCK_UN);
  ::close(lock);
  return ok;
}

}  // namespace

bool PgServer::Initdb() {
  if (initialised_) return true;
  const std::string log = dir() + "/initdb.log";
  if (!CopyTemplate(data_, log)) {
    std::error_code ec;
    std::filesystem::remove_all(data_, ec);
    if (!RunToEnd(InitdbArgs(data_), log, true)) {
      error_ = "initdb failed: " + Tail(log);
      return false;
    }
  }
  initialised_ = true;
  return true;
}

bool PgServer::Start() {
  if (running()) return true;
  if (!error_.empty() || !Initdb()) return false;
  const std::string log = dir() + "/server.log";
  pid_ = Spawn({std::string(kPgBinDir) + "/postgres", "-D", data_, "-k", dir(), "-p", std::to_string(port_), "-c",
                "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=80", "-c", "shared_buffers=16MB", "-c", "unix_socket_permissions=0777"},
               log, ServerUser());
  if (pid_ < 0) {
    error_ = "fork postgres";
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (PQping(dsn().c_str()) == PQPING_OK) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "postgres exited at start: " + Tail(log);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  error_ = "postgres did not accept connections within 30 s: " + Tail(log);
  Stop();
  return false;
}

void PgServer::Stop() {
  if (pid_ <= 0) return;
  // Fast shutdown: active transactions are rolled back.
  ::kill(pid_, SIGINT);
  if (WaitFor(pid_, std::chrono::seconds(10)) < 0) {
    ::kill(pid_, SIGKILL);
    WaitFor(pid_, std::chrono::seconds(5));
  }
  ForgetGroup(pid_);
  pid_ = -1;
}

std::vector<std::string> PgServer::Query(const std::string& sql, bool* ok) {
  std::vector<std::string> out;
  if (ok != nullptr) *ok = false;
  PGconn* c = PQconnectdb((dsn() + " connect_timeout=5").c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    error_ = PQerrorMessage(c);
    PQfinish(c);
    return out;
  }
  PGresult* r = PQexec(c, sql.c_str());
  const auto st = PQresultStatus(r);
  if (st == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); ++i) out.emplace_back(PQgetisnull(r, i, 0) ? "" : PQgetvalue(r, i, 0));
    if (ok != nullptr) *ok = true;
  } else if (st == PGRES_COMMAND_OK) {
    if (ok != nullptr) *ok = true;
  } else {
    error_ = PQresultErrorMessage(r);
  }
  PQclear(r);
  PQfinish(c);
  return out;
}

std::vector<pid_t> PgServer::Backends(const std::string& app_prefix) {
  std::vector<pid_t> pids;
  std::string escaped;
  for (char ch : app_prefix) {
    if (ch == '\'') escaped += '\'';
    escaped += ch;
  }
  for (const auto& p :
       Query("SELECT pid FROM pg_stat_activity WHERE starts_with(application_name, '" + escaped + "')")) {
    pids.push_back(static_cast<pid_t>(std::atoi(p.c_str())));
  }
  return pids;
}

}  // namespace baton::harness
