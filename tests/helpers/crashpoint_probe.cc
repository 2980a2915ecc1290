// Arms crash points from the environment, then hits test.probe.
// Exit 0: the point did not fire; 2: arming failed (message on stderr).
#include <cstdio>

#include "crashpoints/crashpoints.h"

int main() {
  if (auto st = baton::crashpoints::ArmFromEnvironment(); !st) {
    std::fprintf(stderr, "arm: %s\n", st.error().message.c_str());
    return 2;
  }
  BATON_CRASH_POINT(kTestProbe);
  std::printf("survived\n");
  return 0;
}
