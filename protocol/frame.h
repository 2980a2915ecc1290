// Framing for the control channel and the admin socket: a 4-byte big-endian
// payload length, then one serialized baton.v1.Envelope (docs/design.md §6).
//
// FrameDecoder is incremental and owns no I/O: bytes in, then Next() yields a
// frame, "need more", or an error. Partial input is kept across calls, so a
// reader that times out and comes back loses nothing. After an error the
// decoder stays failed: the session must be closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "base/errors.h"
#include "protocol/control.pb.h"

namespace baton::protocol {

inline constexpr size_t kFrameHeaderSize = 4;
inline constexpr size_t kMaxFramePayload = 1024 * 1024;  // 1 MiB

enum class FrameErrorKind {
  kOversize,     // declared length above the cap
  kZeroLength,   // declared length of 0: never valid
  kUndecodable,  // payload is not a valid Envelope
  kTruncated,    // the stream ended inside a frame
};
std::string_view FrameErrorName(FrameErrorKind k);

struct FrameError {
  FrameErrorKind kind;
  std::string message;  // names the kind and the numbers, e.g. sizes
  Error ToError() const { return Error(Errc::kProtocolError, message); }
};

struct NeedMore {};

using DecodeResult = std::variant<v1::Envelope, NeedMore, FrameError>;

// Serializes `env` into one frame. Fails (kInvalidArgument) if the payload
// would exceed the cap or be empty, so a sender can never emit a frame its
// peer must reject. For the same reason every string field is sent as
// UTF-8 (proto3 peers refuse anything else): an ill-formed sequence in
// text a daemon supplied (a build id, a hook's error message naming a
// path) is sent with each bad byte as U+FFFD.
Result<std::string> EncodeFrame(const v1::Envelope& env);

// Whether every string field of `m`, nested and repeated ones too, is
// UTF-8; and the repair: replaces ill-formed sequences with U+FFFD,
// returning how many strings changed.
bool StringsAreUtf8(const google::protobuf::Message& m);
size_t ScrubUtf8(google::protobuf::Message& m);

// Not thread-safe; one decoder per connection, used from its executor.
class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_payload = kMaxFramePayload) : max_payload_(max_payload) {}

  void Feed(std::string_view bytes);

  // Decodes the next complete frame from what was fed.
  DecodeResult Next();

  // To call when the stream ended: an error if a partial frame is buffered
  // (or the decoder already failed), nullopt on a clean frame boundary.
  std::optional<FrameError> Finish() const;

  size_t buffered() const { return buf_.size() - pos_; }
  // The bytes fed but not yet decoded (a partial frame), e.g. to carry a
  // stream across an exec into a new decoder.
  std::string_view unconsumed() const { return std::string_view(buf_).substr(pos_); }
  bool failed() const { return error_.has_value(); }

 private:
  DecodeResult Fail(FrameErrorKind kind, std::string message);

  size_t max_payload_;
  std::string buf_;
  size_t pos_ = 0;  // consumed prefix of buf_
  std::optional<FrameError> error_;
};

// The message's oneof name for logs ("hello", "seal_complete", ...), or
// "unrecognised" when no known message is set.
std::string_view MessageName(const v1::Envelope& env);

}  // namespace baton::protocol
