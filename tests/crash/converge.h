// The crash matrix's convergence check, shared by every daemon it runs
// (kvd, and the SDKs' example daemons).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "ownership/data_dir.h"
#include "tools/harness/cluster.h"
#include "tools/harness/subprocess.h"

namespace baton::harness {

// Waits (up to 15 s: liveness plus grace) until the cluster has converged to
// one serving generation that is the only holder of the data-dir lock. Use
// with ASSERT_NO_FATAL_FAILURE.
inline void ExpectConvergesToOneOwner(Cluster& c) {
  bool healthy = false;
  pid_t serving = -1;
  for (int i = 0; i < 750 && !healthy; ++i) {
    // The status names the generation of record; right after a death it may
    // still name the dead one (not yet reaped) while a restart comes up, so
    // wait until it names a running process that also holds the flock and
    // that the supervisor counts as serving (it said Hello: a restart can
    // hold the flock and answer HTTP before that, and an upgrade started
    // then is refused as "no generation is serving").
    auto st = c.Status();
    serving = st.exit_code == 0 && st.json.is_object() ? static_cast<pid_t>(st.json.at("incumbent_pid").to_number<int64_t>()) : -1;
    healthy = serving > 0 && st.json.at("state").as_string() == "serving" && ProcessRunning(serving) && c.Healthy() &&
              ownership::RecordedHolder(c.dir() + "/data") == serving;
    if (!healthy) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(healthy) << c.SupervisorLog().substr(0, 8000);
  // Exactly one flock holder, and it is the serving generation.
  auto probe = ownership::DataDirLock::Acquire(c.dir() + "/data");
  EXPECT_FALSE(probe) << "nobody holds the data-dir lock";
  EXPECT_EQ(ownership::RecordedHolder(c.dir() + "/data"), serving);
}

}  // namespace baton::harness
