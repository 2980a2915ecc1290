#include "base/clock.h"

namespace baton {

const Clock& RealClock() {
  static const SteadyClock clock;
  return clock;
}

}  // namespace baton
