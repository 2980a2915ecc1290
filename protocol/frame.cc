#include "protocol/frame.h"

#include <fmt/format.h>

#include "base/utf8.h"

namespace baton::protocol {

std::string_view FrameErrorName(FrameErrorKind k) {
  switch (k) {
    case FrameErrorKind::kOversize: return "oversize";
    case FrameErrorKind::kZeroLength: return "zero_length";
    case FrameErrorKind::kUndecodable: return "undecodable";
    case FrameErrorKind::kTruncated: return "truncated";
  }
  return "unknown";
}

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Visits every string of `m`, nested and repeated ones too (`fix` ==
// nullptr: reading only, stopping at the first that is not UTF-8; else
// `fix` is `m` and each such string is repaired). Returns how many were
// not UTF-8 (at most 1 when only reading). Runs on every frame: strings
// are read by reference, copied only to be repaired.
size_t WalkStrings(const Message& m, Message* fix) {
  const auto* d = m.GetDescriptor();
  const auto* r = m.GetReflection();
  size_t bad = 0;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const bool text = f->type() == FieldDescriptor::TYPE_STRING;
    if (!text && f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    const int n = f->is_repeated() ? r->FieldSize(m, f) : (r->HasField(m, f) ? 1 : 0);
    for (int j = 0; j < n; ++j) {
      if (text) {
        std::string scratch;
        const std::string& s =
            f->is_repeated() ? r->GetRepeatedStringReference(m, f, j, &scratch) : r->GetStringReference(m, f, &scratch);
        if (IsUtf8(s)) continue;
        ++bad;
        if (fix == nullptr) return bad;
        std::string repaired = ToUtf8(s);
        if (f->is_repeated()) {
          r->SetRepeatedString(fix, f, j, std::move(repaired));
        } else {
          r->SetString(fix, f, std::move(repaired));
        }
      } else {
        const Message& sub = f->is_repeated() ? r->GetRepeatedMessage(m, f, j) : r->GetMessage(m, f);
        Message* sub_fix = nullptr;
        if (fix != nullptr) sub_fix = f->is_repeated() ? r->MutableRepeatedMessage(fix, f, j) : r->MutableMessage(fix, f);
        bad += WalkStrings(sub, sub_fix);
        if (fix == nullptr && bad > 0) return bad;
      }
    }
  }
  return bad;
}

}  // namespace

bool StringsAreUtf8(const Message& m) { return WalkStrings(m, nullptr) == 0; }

size_t ScrubUtf8(Message& m) { return WalkStrings(m, &m); }

Result<std::string> EncodeFrame(const v1::Envelope& given) {
  std::optional<v1::Envelope> scrubbed;
  if (!StringsAreUtf8(given)) {
    scrubbed.emplace(given);
    ScrubUtf8(*scrubbed);
  }
  const v1::Envelope& env = scrubbed ? *scrubbed : given;
  const size_t size = env.ByteSizeLong();
  if (size == 0) {
    return Error(Errc::kInvalidArgument, "frame: refusing to encode an empty envelope");
  }
  if (size > kMaxFramePayload) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("frame: {} message of {} bytes exceeds the {} byte cap",
                             MessageName(env), size, kMaxFramePayload));
  }
  std::string out(kFrameHeaderSize + size, '\0');
  out[0] = static_cast<char>((size >> 24) & 0xff);
  out[1] = static_cast<char>((size >> 16) & 0xff);
  out[2] = static_cast<char>((size >> 8) & 0xff);
  out[3] = static_cast<char>(size & 0xff);
  if (!env.SerializeToArray(out.data() + kFrameHeaderSize, static_cast<int>(size))) {
    return Error(Errc::kInternal, "frame: protobuf serialization failed");
  }
  return out;
}

void FrameDecoder::Feed(std::string_view bytes) {
  if (error_) return;  // a failed session reads nothing more
  // Compact lazily so a long session does not grow the buffer forever.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes.data(), bytes.size());
}

DecodeResult FrameDecoder::Fail(FrameErrorKind kind, std::string message) {
  error_ = FrameError{kind, std::move(message)};
  return *error_;
}

DecodeResult FrameDecoder::Next() {
  if (error_) return *error_;
  if (buffered() < kFrameHeaderSize) return NeedMore{};
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  const uint32_t len = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
                       (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  // Check the declared length before waiting for the payload, so an
  // oversize header fails at once instead of buffering up to 4 GiB.
  if (len == 0) {
    return Fail(FrameErrorKind::kZeroLength, "frame: zero-length frame (an empty envelope is never valid)");
  }
  if (len > max_payload_) {
    return Fail(FrameErrorKind::kOversize,
                fmt::format("frame: declared length {} exceeds the {} byte cap", len, max_payload_));
  }
  if (buffered() < kFrameHeaderSize + len) return NeedMore{};
  v1::Envelope env;
  if (!env.ParseFromArray(buf_.data() + pos_ + kFrameHeaderSize, static_cast<int>(len))) {
    return Fail(FrameErrorKind::kUndecodable,
                fmt::format("frame: {} byte payload is not a valid baton.v1.Envelope", len));
  }
  pos_ += kFrameHeaderSize + len;
  return env;
}

std::optional<FrameError> FrameDecoder::Finish() const {
  if (error_) return error_;
  if (buffered() == 0) return std::nullopt;
  return FrameError{FrameErrorKind::kTruncated,
                    fmt::format("frame: stream ended inside a frame ({} bytes buffered)", buffered())};
}

std::string_view MessageName(const v1::Envelope& env) {
  if (env.msg_case() == v1::Envelope::MSG_NOT_SET) return "unrecognised";
  const auto* field = v1::Envelope::descriptor()->FindFieldByNumber(env.msg_case());
  if (field == nullptr) return "unrecognised";
  return field->name();
}

}  // namespace baton::protocol
