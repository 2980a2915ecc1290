// `baton events` without --json: one readable line per event,
// "2026-01-02T03:04:05.678Z warn  handoff.end          rolled_back: ...".
#pragma once

#include <string>

namespace baton::cli {

// `json` is one line of events.jsonl; text that does not parse is returned
// unchanged (never dropped).
std::string HumanEventLine(const std::string& json);

}  // namespace baton::cli
