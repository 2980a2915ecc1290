// Fuzzes the incremental frame decoder: arbitrary bytes, fed in arbitrary
// splits, must yield frames, need-more or one clean error — never a crash,
// a hang or unbounded buffering — and every decoded frame must re-encode to
// the same envelope.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace baton::protocol;
  if (size == 0) return 0;
  // The first byte picks the split size, so one input explores many splits.
  const size_t step = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  FrameDecoder dec;
  size_t fed = 0;
  bool failed = false;
  while (fed < input.size() && !failed) {
    const size_t n = std::min(step, input.size() - fed);
    dec.Feed(input.substr(fed, n));
    fed += n;
    for (;;) {
      DecodeResult r = dec.Next();
      if (std::holds_alternative<NeedMore>(r)) break;
      if (std::holds_alternative<FrameError>(r)) {
        failed = true;
        break;
      }
      const auto& env = std::get<baton::v1::Envelope>(r);
      auto again = EncodeFrame(env);
      if (env.ByteSizeLong() > 0 && !again) std::abort();  // a decodable frame must re-encode
      (void)MessageName(env);
    }
    // Buffering is bounded by one maximal frame plus one read.
    if (dec.buffered() > kFrameHeaderSize + kMaxFramePayload + 64) std::abort();
  }
  (void)dec.Finish();
  return 0;
}
