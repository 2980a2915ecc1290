// What the self-upgrade tests share: running `baton upgrade --self` on a
// cluster, and counting what its log says.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {

// The event each resumed image logs (count it to count self-upgrades).
inline const std::string kSelfUpgraded = "\"event\":\"supervisor.self_upgraded\"";

// `baton upgrade --self --json` on `c`, to `binary` ("" = the running one).
inline CommandResult SelfUpgrade(Cluster& c, const std::string& binary = "") {
  std::vector<std::string> argv = {BinPath("baton"), "upgrade", "--self", "--runtime-dir", c.dir() + "/run", "--json"};
  if (!binary.empty()) argv.insert(argv.end(), {"--binary", binary});
  return RunCommand(argv, std::chrono::seconds(60));
}

// How often `needle` occurs in `hay`.
inline size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace baton::harness
