#include "tools/baton/progress.h"

#include <fmt/format.h>

#include "base/log.h"
#include "tools/baton/commands.h"

namespace baton::cli {
namespace {

constexpr const char* kClearLine = "\r\x1b[K";

double Ms(uint64_t us) { return static_cast<double>(us) / 1000.0; }

}  // namespace

std::string_view OutcomeText(v1::Outcome o) {
  switch (o) {
    case v1::COMMITTED: return "committed";
    case v1::ROLLED_BACK: return "rolled_back";
    case v1::REFUSED: return "refused";
    case v1::FAILED: return "failed";
    case v1::REVERTED: return "reverted";
    default: return "unknown";
  }
}

int ExitCodeFor(v1::Outcome o) {
  switch (o) {
    case v1::COMMITTED: return kExitOk;
    case v1::ROLLED_BACK: return kExitRolledBack;
    case v1::REFUSED: return kExitRefused;
    case v1::REVERTED: return kExitReverted;
    default: return kExitFailed;
  }
}

std::string ResultJson(const v1::UpgradeResult& r) {
  std::string by_name, ordered;
  for (const auto& p : r.phases()) {
    if (!by_name.empty()) by_name += ",";
    if (!ordered.empty()) ordered += ",";
    by_name += fmt::format("{}:{:.3f}", JsonQuote(p.phase()), Ms(p.duration_us()));
    ordered += fmt::format("{{\"phase\":{},\"ms\":{:.3f}}}", JsonQuote(p.phase()), Ms(p.duration_us()));
  }
  std::string probation;
  if (r.has_probation()) {
    const auto& p = r.probation();
    probation = fmt::format(
        ",\"probation\":{{\"outcome\":{},\"check\":{},\"reason\":{},\"window_ms\":{},\"elapsed_ms\":{},"
        "\"reverted_to\":{},\"revert\":{}}}",
        JsonQuote(p.outcome()), JsonQuote(p.check()), JsonQuote(p.reason()), p.window_ms(), p.elapsed_ms(),
        JsonQuote(p.reverted_to()), p.has_revert() ? ResultJson(p.revert()) : "null");
  }
  return fmt::format(
      "{{\"outcome\":{},\"exit_code\":{},\"reason\":{},\"handoff_id\":{},\"old_pid\":{},\"new_pid\":{},"
      "\"total_ms\":{:.3f},\"phases_ms\":{{{}}},\"phases\":[{}]{}}}",
      JsonQuote(OutcomeText(r.outcome())), ExitCodeFor(r.outcome()), JsonQuote(r.reason()), JsonQuote(r.handoff_id()),
      r.old_pid(), r.new_pid(), Ms(r.total_us()), by_name, ordered, probation);
}

std::string ProgressView::NextPhase() const {
  // After the last known phase: the one that follows it in the usual order.
  for (size_t i = 0; i + 1 < std::size(kPhaseOrder); ++i) {
    if (last_ == kPhaseOrder[i]) return kPhaseOrder[i + 1];
  }
  return done_ == 0 ? kPhaseOrder[0] : "";
}

std::string ProgressView::Begin(const std::string& target) {
  if (!tty_) return "";
  return fmt::format("upgrading {}\n", target);
}

std::string ProgressView::OnPhase(const v1::PhaseTiming& p) {
  ++done_;
  last_ = p.phase();
  if (!tty_) return fmt::format("{:<8} {:>10.3f} ms\n", p.phase(), Ms(p.duration_us()));
  std::string out = live_line_ ? kClearLine : "";
  live_line_ = false;
  return out + fmt::format("  {:<8} {:>10.3f} ms  done\n", p.phase(), Ms(p.duration_us()));
}

std::string ProgressView::Tick(std::chrono::milliseconds since) {
  if (!tty_) return "";
  const std::string next = NextPhase();
  if (next.empty()) return "";
  live_line_ = true;
  return fmt::format("{}  {:<8} {:>10.1f} s   ...", kClearLine, next, static_cast<double>(since.count()) / 1000.0);
}

std::string ProgressView::Finish(const v1::UpgradeResult& r) {
  std::string out = live_line_ ? kClearLine : "";
  live_line_ = false;
  std::string verdict;
  switch (r.outcome()) {
    case v1::COMMITTED:
      verdict = fmt::format("committed: pid {} serves (was pid {}), {:.1f} ms", r.new_pid(), r.old_pid(), Ms(r.total_us()));
      break;
    case v1::ROLLED_BACK:
      verdict = fmt::format("rolled back: {} (pid {} still serves), {:.1f} ms", r.reason(), r.old_pid(), Ms(r.total_us()));
      break;
    case v1::REFUSED: verdict = fmt::format("refused, nothing changed: {}", r.reason()); break;
    case v1::REVERTED:
      verdict = fmt::format("REVERTED: {} (the previous binary serves again)", r.reason());
      break;
    default:
      if (r.has_probation() && r.probation().outcome() != "pending") {
        verdict = fmt::format("FAILED its probation and NOT reverted (pid {} still serves): {}", r.new_pid(),
                              r.reason());
        break;
      }
      verdict = fmt::format("FAILED, state uncertain (check `baton status`): {}", r.reason());
      break;
  }
  if (r.outcome() == v1::COMMITTED && r.has_probation()) {
    const auto& p = r.probation();
    if (p.outcome() == "passed") verdict += fmt::format("; passed its probation ({} ms)", p.window_ms());
    if (p.outcome() == "pending") verdict += fmt::format("; on probation for {} ms (see `baton status`)", p.window_ms());
  }
  if (tty_) {
    const char* color = r.outcome() == v1::COMMITTED ? "\x1b[32m" : "\x1b[31m";
    return out + fmt::format("{}{}\x1b[0m\n", color, verdict);
  }
  return out + verdict + "\n";
}

}  // namespace baton::cli
