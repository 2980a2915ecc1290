// The `baton` command line. Thin: parse with CLI11, call the library, print.
// Exit codes are documented in `baton --help` and docs/operations.md.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "crashpoints/crashpoints.h"
#include "protocol/version.h"

#ifndef BATON_VERSION
#define BATON_VERSION "0.0.0"
#endif

namespace {

constexpr int kExitUsage = 2;

int RunVersion(bool json) {
  if (json) {
    fmt::print("{{\"version\":\"{}\",\"protocol_min\":{},\"protocol_max\":{}}}\n", BATON_VERSION,
               baton::protocol::kProtocolMin, baton::protocol::kProtocolMax);
  } else {
    fmt::print("baton {} (control protocol {}..{})\n", BATON_VERSION, baton::protocol::kProtocolMin,
               baton::protocol::kProtocolMax);
  }
  return 0;
}

int RunCrashpoints(const std::string& role_filter, bool names_only) {
  namespace cp = baton::crashpoints;
  for (const auto& info : cp::All()) {
    const auto role = cp::RoleName(info.role);
    if (!role_filter.empty() && role != role_filter) continue;
    if (names_only) {
      fmt::print("{}\n", info.name);
    } else {
      fmt::print("{:<40} {:<11} {}\n", info.name, role, info.description);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "baton: zero-downtime binary upgrades of stateful daemons.\n\n"
      "Exit codes: 0 ok; 1 supervisor unreachable; 2 usage error."};
  app.require_subcommand(1);
  app.set_version_flag("--version", BATON_VERSION);

  bool version_json = false;
  auto* version = app.add_subcommand("version", "Print the version and the control protocol range");
  version->add_flag("--json", version_json, "One JSON object");

  std::string role;
  bool names_only = false;
  auto* crash = app.add_subcommand("crashpoints", "List every named crash point (BATON_CRASH_AT=<name>)");
  crash->add_option("--role", role, "Only the points of this role")
      ->check(CLI::IsMember({"supervisor", "incumbent", "successor", "daemon", "test"}));
  crash->add_flag("--names", names_only, "Names only, one per line");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (*version) return RunVersion(version_json);
  if (*crash) return RunCrashpoints(role, names_only);
  return kExitUsage;
}
