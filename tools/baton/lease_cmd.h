// `baton lease run|status|release|transfer`: the leader lease without a
// supervised daemon (docs/lease.md "Lease-only use" and "Operators").
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace baton::cli {

// `baton lease run` exit codes besides CMD's own status (docs/lease.md).
inline constexpr int kLeaseExitUsage = 2;         // bad flag, DSN or TTL; no CMD
inline constexpr int kLeaseExitUnreachable = 69;  // PostgreSQL not reached, or the role may not use the tables
inline constexpr int kLeaseExitLost = 75;         // leadership lost while CMD ran: CMD was stopped
inline constexpr int kLeaseExitSpawn = 127;       // CMD could not be started

struct LeaseArgs {
  std::string name;
  std::string dsn;
  std::string ttl;              // "" = the library's default (10s)
  std::string grace = "10s";    // run: SIGTERM, then SIGKILL after this
  std::string connect_timeout = "30s";
  std::string holder;           // a holder id label
  std::string to;               // transfer
  std::string wait = "30s";     // transfer: how long to wait for the holder
  bool json = false;
  std::vector<std::string> command;
};

// Adds `lease` and its subcommands to `app`; returns a callable that runs the
// chosen one (or -1 when `lease` was not chosen).
struct LeaseCli {
  CLI::App* lease = nullptr;
  CLI::App* run = nullptr;
  CLI::App* status = nullptr;
  CLI::App* release = nullptr;
  CLI::App* transfer = nullptr;
  LeaseArgs args;
};
void AddLeaseCommands(CLI::App& app, LeaseCli& cli);
int RunLeaseCommand(const LeaseCli& cli);

int RunLeaseRun(const LeaseArgs& args);
int RunLeaseStatus(const LeaseArgs& args);
int RunLeaseRelease(const LeaseArgs& args);
int RunLeaseTransfer(const LeaseArgs& args);

}  // namespace baton::cli
