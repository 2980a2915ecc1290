// The flags of `baton lease ...` (CLI11); the commands are in lease_run.cc
// and lease_admin.cc.
#include <CLI/CLI.hpp>

#include "tools/baton/lease_cmd.h"

namespace baton::cli {
namespace {

constexpr const char* kRunFooter =
    "Example: baton lease run --name reconciler --dsn 'host=db dbname=app' -- /usr/bin/reconcile --all\n"
    "CMD runs only while this process holds the lease, with BATON_LEASE_EPOCH (the fencing token),\n"
    "BATON_LEASE_HOLDER and BATON_LEASE_RUN_NAME in its environment. SIGTERM/SIGINT: CMD is stopped\n"
    "(SIGTERM, SIGKILL after --grace), then the lease is handed to a live standby or released.\n"
    "Exit codes:\n"
    "  CMD's own status when CMD exits by itself (128+N when a signal N ended it)\n"
    "  0    stopped by SIGTERM/SIGINT (CMD stopped, the lease handed over or released)\n"
    "  2    usage error (bad flag, DSN or TTL; no CMD)\n"
    "  69   PostgreSQL not reached within --connect-timeout, or the role may not use the lease tables\n"
    "  75   leadership lost while CMD ran (fenced out, expired, or transferred): CMD was stopped\n"
    "  127  CMD could not be started";

constexpr const char* kAdminFooter =
    "Exit codes: 0 ok, 1 PostgreSQL unreachable, 2 usage error, 4 refused (nothing changed), 5 not done in time";

void Common(CLI::App* c, LeaseArgs& a, bool name_positional) {
  if (name_positional) {
    c->add_option("name", a.name, "The lease's name")->required();
  } else {
    c->add_option("--name", a.name, "The lease's name")->required();
  }
  c->add_option("--dsn", a.dsn,
                "libpq conninfo or URI (default: $BATON_LEASE_DSN, else PGHOST, PGUSER...; keep passwords off "
                "command lines: see docs/lease.md)");
}

}  // namespace

void AddLeaseCommands(CLI::App& app, LeaseCli& cli) {
  LeaseArgs& a = cli.args;
  cli.lease = app.add_subcommand("lease", "The PostgreSQL leader lease without a supervised daemon");
  cli.lease->require_subcommand(1);

  cli.run = cli.lease->add_subcommand("run", "Run CMD while holding the lease (like `consul lock`)");
  Common(cli.run, a, false);
  cli.run->add_option("--ttl", a.ttl, "Lease TTL, e.g. 10s (default 10s)");
  cli.run->add_option("--grace", a.grace, "SIGKILL CMD this long after its SIGTERM (default 10s)");
  cli.run->add_option("--connect-timeout", a.connect_timeout,
                      "Give up (exit 69) if PostgreSQL was not reached within this (default 30s)");
  cli.run->add_option("--holder", a.holder, "A label in front of this process's holder id (at most 64 bytes)");
  cli.run->add_option("command", a.command, "-- CMD [ARGS...]")->required();
  cli.run->footer(kRunFooter);

  cli.status = cli.lease->add_subcommand("status", "Show the holder, epoch, expiry and live candidates");
  Common(cli.status, a, true);
  cli.status->add_flag("--json", a.json, "One JSON object");
  cli.status->footer(kAdminFooter);

  cli.release = cli.lease->add_subcommand(
      "release", "Take the lease from its holder (epoch+1); nobody acquires it before its current expiry");
  Common(cli.release, a, true);
  cli.release->add_flag("--json", a.json, "One JSON object");
  cli.release->footer(kAdminFooter);

  cli.transfer = cli.lease->add_subcommand(
      "transfer", "Ask the holder to hand the lease to a live candidate at its next renew, and wait for it");
  Common(cli.transfer, a, true);
  cli.transfer->add_option("--to", a.to, "The candidate's holder id (see `baton lease status`)")->required();
  cli.transfer->add_option("--wait", a.wait, "How long to wait for the handover (default 30s)");
  cli.transfer->add_flag("--json", a.json, "One JSON object");
  cli.transfer->footer(kAdminFooter);
}

int RunLeaseCommand(const LeaseCli& cli) {
  if (cli.lease == nullptr || !*cli.lease) return -1;
  if (*cli.run) return RunLeaseRun(cli.args);
  if (*cli.status) return RunLeaseStatus(cli.args);
  if (*cli.release) return RunLeaseRelease(cli.args);
  if (*cli.transfer) return RunLeaseTransfer(cli.args);
  return kLeaseExitUsage;
}

}  // namespace baton::cli
