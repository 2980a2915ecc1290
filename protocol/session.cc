#include "protocol/session.h"

namespace baton::protocol {

std::string_view HookName(HookKind h) {
  switch (h) {
    case HookKind::kWarm: return "warm";
    case HookKind::kDrain: return "drain";
    case HookKind::kSeal: return "seal";
    case HookKind::kBegin: return "begin";
    case HookKind::kResume: return "resume";
    case HookKind::kRetire: return "retire";
  }
  return "unknown";
}

}  // namespace baton::protocol
