// Arbitrary notify datagrams against the parser and judge
// (supervisor/notify_message.h). The first bytes choose the sender, the
// descriptor count and truncation; the rest is the payload. Whatever comes:
//   * no crash, and a verdict either accepts or refuses, never both silent;
//   * a refused datagram carries exactly one refusal that says why;
//   * descriptors are accepted only with FDSTORE=1, from the child itself;
//   * nothing from another pid or over the size limit is ever accepted;
//   * a STATUS= kept is UTF-8 (one that is not is refused alone), and any
//     payload written as a JSON string is UTF-8.
#include <string_view>

#include "base/log.h"
#include "base/utf8.h"
#include "supervisor/notify_message.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace baton::supervisor;
  baton::fuzz::Input in(data, size);
  constexpr pid_t kChild = 100;
  NotifyDatagram d;
  switch (in.Below(4)) {
    case 0: d.sender_pid = std::nullopt; break;
    case 1: d.sender_pid = 101; break;
    default: d.sender_pid = kChild; break;
  }
  d.fds = in.Below(4) == 0 ? in.Below(80) : 0;
  d.control_truncated = in.Below(16) == 0;
  const size_t used = size < 3 ? size : 3;
  d.payload = std::string_view(reinterpret_cast<const char*>(data) + used, size - used);
  d.length = d.payload.size() + (in.Below(16) == 0 ? 70000 : 0);
  const NotifyVerdict v = JudgeNotify(d, kChild);
  if (!v.message) {
    FUZZ_CHECK(v.refusals.size() == 1);
    FUZZ_CHECK(!v.refusals[0].reason.empty());
    return 0;
  }
  FUZZ_CHECK(d.sender_pid == kChild);
  FUZZ_CHECK(d.length <= kNotifyMaxBytes && !d.control_truncated);
  FUZZ_CHECK(v.message->fds == d.fds);
  FUZZ_CHECK(d.fds == 0 || v.message->fdstore);
  FUZZ_CHECK(!v.message->fdstore || d.fds > 0);
  FUZZ_CHECK(!v.message->fdstore_remove || v.message->fdname.has_value());
  FUZZ_CHECK(baton::IsUtf8(baton::JsonQuote(d.payload)));
  for (const auto& r : v.refusals) {
    FUZZ_CHECK(r.kind == NotifyReject::kMainPid ||
               (r.kind == NotifyReject::kMalformed && r.reason.find("STATUS=") == 0));
  }
  if (v.message->fdname) FUZZ_CHECK(ValidFdName(*v.message->fdname));
  if (v.message->status) FUZZ_CHECK(baton::IsUtf8(*v.message->status));
  return 0;
}
