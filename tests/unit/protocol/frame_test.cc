#include "protocol/frame.h"

#include <random>

#include <gtest/gtest.h>
#include <google/protobuf/util/message_differencer.h>

namespace baton::protocol {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Sets every scalar field of `m` (and one level of nested messages) to a
// distinctive non-default value, so a round trip really carries data.
void Populate(Message* m, int depth = 0) {
  const auto* d = m->GetDescriptor();
  const auto* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        rep ? r->AddString(m, f, "s-" + f->name()) : r->SetString(m, f, "s-" + f->name());
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        rep ? r->AddUInt32(m, f, 7 + i) : r->SetUInt32(m, f, 7 + i);
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        rep ? r->AddUInt64(m, f, (uint64_t{1} << 40) + i) : r->SetUInt64(m, f, (uint64_t{1} << 40) + i);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        rep ? r->AddBool(m, f, true) : r->SetBool(m, f, true);
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const auto* v = f->enum_type()->value(f->enum_type()->value_count() - 1);
        rep ? r->AddEnum(m, f, v) : r->SetEnum(m, f, v);
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth < 2) Populate(rep ? r->AddMessage(m, f) : r->MutableMessage(m, f), depth + 1);
        break;
      default:
        FAIL() << "unhandled field type in " << f->full_name();
    }
  }
}

std::vector<v1::Envelope> EveryMessage() {
  std::vector<v1::Envelope> out;
  const auto* oneof = v1::Envelope::descriptor()->FindOneofByName("msg");
  for (int i = 0; i < oneof->field_count(); ++i) {
    v1::Envelope env;
    Populate(env.GetReflection()->MutableMessage(&env, oneof->field(i)));
    out.push_back(std::move(env));
  }
  return out;
}

v1::Envelope Decode1(std::string_view bytes) {
  FrameDecoder dec;
  dec.Feed(bytes);
  auto r = dec.Next();
  EXPECT_TRUE(std::holds_alternative<v1::Envelope>(r));
  return std::holds_alternative<v1::Envelope>(r) ? std::get<v1::Envelope>(r) : v1::Envelope{};
}

TEST(FrameTest, EveryMessageRoundTrips) {
  auto all = EveryMessage();
  // The 20 control messages of docs/design.md §2-3 (Handover the newest)
  // and the 14 admin ones (SelfUpgradeRequest and SelfUpgradeResult the
  // newest).
  ASSERT_EQ(all.size(), 34u);
  for (const auto& env : all) {
    auto frame = EncodeFrame(env);
    ASSERT_TRUE(frame) << MessageName(env);
    auto back = Decode1(*frame);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(env, back)) << MessageName(env);
    EXPECT_NE(MessageName(back), "unrecognised");
  }
}

TEST(FrameTest, HeaderIsBigEndianLength) {
  v1::Envelope env;
  env.mutable_heartbeat()->set_seq(1);
  auto frame = EncodeFrame(env);
  ASSERT_TRUE(frame);
  const size_t len = frame->size() - 4;
  EXPECT_EQ(static_cast<unsigned char>((*frame)[0]), (len >> 24) & 0xff);
  EXPECT_EQ(static_cast<unsigned char>((*frame)[3]), len & 0xff);
}

TEST(FrameTest, EncoderRefusesEmptyAndOversize) {
  v1::Envelope empty;
  auto r = EncodeFrame(empty);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kInvalidArgument));
  v1::Envelope big;
  big.mutable_error()->set_message(std::string(kMaxFramePayload + 1, 'x'));
  r = EncodeFrame(big);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("exceeds"), std::string::npos);
}

TEST(FrameTest, TextThatIsNotUtf8IsSentWithReplacementCharacters) {
  // A proto3 peer refuses a string field that is not UTF-8: without the
  // repair a daemon's build id or an error message naming a Latin-1 path
  // would make the whole frame undecodable.
  v1::Envelope env;
  auto* hello = env.mutable_hello();
  hello->set_build_id("caf\xe9-1");
  hello->add_capabilities("lease");
  hello->add_capabilities("bad\xff");
  std::string raw;
  ASSERT_TRUE(env.SerializeToString(&raw));
  v1::Envelope strict;
  EXPECT_FALSE(strict.ParseFromString(raw));  // the premise: protobuf refuses it
  EXPECT_FALSE(StringsAreUtf8(env));

  auto frame = EncodeFrame(env);
  ASSERT_TRUE(frame);
  auto back = Decode1(*frame);
  EXPECT_EQ(back.hello().build_id(), "caf\xef\xbf\xbd-1");
  ASSERT_EQ(back.hello().capabilities_size(), 2);
  EXPECT_EQ(back.hello().capabilities(0), "lease");
  EXPECT_EQ(back.hello().capabilities(1), "bad\xef\xbf\xbd");
  EXPECT_EQ(env.hello().build_id(), "caf\xe9-1");  // the caller's message is left as it was

  // Nested and repeated messages too. Paths are bytes fields: they go
  // exactly as they are (a file may be named in any bytes but NUL).
  v1::Envelope status;
  status.mutable_status_reply()->add_pinned()->set_path("/opt/caf\xe9/kvd");
  status.mutable_status_reply()->mutable_last_handoff()->set_reason("cannot open /opt/caf\xe9/kvd");
  status.mutable_status_reply()->set_daemon_status("ok \xe2\x9c\x93");
  EXPECT_FALSE(StringsAreUtf8(status));
  EXPECT_EQ(ScrubUtf8(status), 1u);
  EXPECT_TRUE(StringsAreUtf8(status));
  EXPECT_EQ(status.status_reply().last_handoff().reason(), "cannot open /opt/caf\xef\xbf\xbd/kvd");
  EXPECT_EQ(status.status_reply().pinned(0).path(), "/opt/caf\xe9/kvd");
  EXPECT_EQ(status.status_reply().daemon_status(), "ok \xe2\x9c\x93");  // UTF-8 untouched
  auto status_frame = EncodeFrame(status);
  ASSERT_TRUE(status_frame);
  EXPECT_EQ(Decode1(*status_frame).status_reply().pinned(0).path(), "/opt/caf\xe9/kvd");
}

FrameError ExpectError(FrameDecoder& dec) {
  auto r = dec.Next();
  EXPECT_TRUE(std::holds_alternative<FrameError>(r));
  return std::holds_alternative<FrameError>(r) ? std::get<FrameError>(r) : FrameError{};
}

TEST(FrameTest, OversizeFailsFromTheHeaderAlone) {
  FrameDecoder dec;
  dec.Feed(std::string("\x00\x10\x00\x01", 4));  // 1 MiB + 1
  auto e = ExpectError(dec);
  EXPECT_EQ(e.kind, FrameErrorKind::kOversize);
  EXPECT_NE(e.message.find("1048577"), std::string::npos);
  EXPECT_TRUE(dec.failed());
  // Stays failed: more input does not resurrect it.
  dec.Feed(std::string(100, 'a'));
  EXPECT_EQ(ExpectError(dec).kind, FrameErrorKind::kOversize);
}

TEST(FrameTest, MaxSizeFrameIsAccepted) {
  v1::Envelope env;
  env.mutable_error()->set_message(std::string(kMaxFramePayload - 16, 'x'));
  auto frame = EncodeFrame(env);
  ASSERT_TRUE(frame);
  EXPECT_LE(frame->size() - 4, kMaxFramePayload);
  auto back = Decode1(*frame);
  EXPECT_EQ(back.error().message().size(), kMaxFramePayload - 16);
}

TEST(FrameTest, ZeroLengthIsAnError) {
  FrameDecoder dec;
  dec.Feed(std::string("\x00\x00\x00\x00", 4));
  EXPECT_EQ(ExpectError(dec).kind, FrameErrorKind::kZeroLength);
}

TEST(FrameTest, UndecodablePayloadIsAnError) {
  FrameDecoder dec;
  // A field tag with wire type 7 does not exist.
  dec.Feed(std::string("\x00\x00\x00\x02\x0f\x01", 6));
  auto e = ExpectError(dec);
  EXPECT_EQ(e.kind, FrameErrorKind::kUndecodable);
  EXPECT_NE(e.message.find("Envelope"), std::string::npos);
}

TEST(FrameTest, TruncatedStreamIsReportedAtEof) {
  v1::Envelope env;
  env.mutable_seal()->set_handoff_id("h1");
  auto frame = EncodeFrame(env);
  ASSERT_TRUE(frame);
  for (size_t cut = 1; cut < frame->size(); ++cut) {
    FrameDecoder dec;
    dec.Feed(std::string_view(*frame).substr(0, cut));
    EXPECT_TRUE(std::holds_alternative<NeedMore>(dec.Next())) << cut;
    auto fin = dec.Finish();
    ASSERT_TRUE(fin.has_value()) << cut;
    EXPECT_EQ(fin->kind, FrameErrorKind::kTruncated);
  }
  FrameDecoder clean;
  clean.Feed(*frame);
  EXPECT_TRUE(std::holds_alternative<v1::Envelope>(clean.Next()));
  EXPECT_FALSE(clean.Finish().has_value());
}

TEST(FrameTest, UnknownMessageDecodesAsUnrecognised) {
  // Field 99 (length-delimited, empty): a message from a newer peer.
  FrameDecoder dec;
  dec.Feed(std::string("\x00\x00\x00\x03\x9a\x06\x00", 7));
  auto r = dec.Next();
  ASSERT_TRUE(std::holds_alternative<v1::Envelope>(r));
  EXPECT_EQ(std::get<v1::Envelope>(r).msg_case(), v1::Envelope::MSG_NOT_SET);
  EXPECT_EQ(MessageName(std::get<v1::Envelope>(r)), "unrecognised");
}

std::string AllFrames(std::vector<v1::Envelope>& msgs) {
  msgs = EveryMessage();
  std::string stream;
  for (const auto& m : msgs) stream += *EncodeFrame(m);
  return stream;
}

void ExpectStream(FrameDecoder& dec, const std::vector<v1::Envelope>& want, std::vector<v1::Envelope>& got) {
  for (;;) {
    auto r = dec.Next();
    if (std::holds_alternative<NeedMore>(r)) return;
    ASSERT_TRUE(std::holds_alternative<v1::Envelope>(r));
    ASSERT_LT(got.size(), want.size());
    got.push_back(std::get<v1::Envelope>(r));
  }
}

TEST(FrameTest, OneByteAtATime) {
  std::vector<v1::Envelope> want, got;
  const std::string stream = AllFrames(want);
  FrameDecoder dec;
  for (char c : stream) {
    dec.Feed(std::string_view(&c, 1));
    ExpectStream(dec, want, got);
  }
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(want[i], got[i])) << i;
  }
  EXPECT_FALSE(dec.Finish().has_value());
  EXPECT_EQ(dec.buffered(), 0u);
}

TEST(FrameTest, RandomSplits) {
  std::vector<v1::Envelope> want;
  const std::string stream = AllFrames(want);
  std::mt19937 rng(20261121);
  for (int round = 0; round < 200; ++round) {
    std::vector<v1::Envelope> got;
    FrameDecoder dec;
    size_t pos = 0;
    while (pos < stream.size()) {
      const size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % 97);
      dec.Feed(std::string_view(stream).substr(pos, n));
      pos += n;
      ExpectStream(dec, want, got);
    }
    ASSERT_EQ(got.size(), want.size()) << "round " << round;
    EXPECT_FALSE(dec.Finish().has_value());
  }
}

}  // namespace
}  // namespace baton::protocol
