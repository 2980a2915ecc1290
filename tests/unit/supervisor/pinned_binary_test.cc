// Pinned binaries: the ELF build id read from the descriptor, scripts told
// apart, and a pin that still runs the same bytes after its path changed.
#include "supervisor/pinned_binary.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

using harness::BinPath;

std::string Readelf(const std::string& path) {
  // The reference answer from binutils: "Build ID: <hex>".
  std::string cmd = "readelf -n " + path + " 2>/dev/null | sed -n 's/.*Build ID: \\([0-9a-f]*\\).*/\\1/p'";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[256] = {};
  std::string out;
  if (p != nullptr && std::fgets(buf, sizeof buf, p) != nullptr) out = buf;
  if (p != nullptr) ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

TEST(PinnedBinaryTest, ReadsTheElfBuildIdLikeReadelf) {
  const std::string kvd = BinPath("kvd");
  const std::string expected = Readelf(kvd);
  ASSERT_FALSE(expected.empty()) << "kvd is linked with a GNU build id";
  auto pin = PinnedBinary::Open(kvd, {"--x"});
  ASSERT_TRUE(pin) << pin.error().message;
  EXPECT_EQ((*pin)->build_id, expected);
  EXPECT_FALSE((*pin)->script);
  EXPECT_GE((*pin)->fd, kPinnedFdFloor);
  EXPECT_EQ(::fcntl((*pin)->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  EXPECT_EQ((*pin)->args, std::vector<std::string>{"--x"});
}

TEST(PinnedBinaryTest, ScriptsAndNonElfFilesHaveNoBuildId) {
  harness::TempDir dir("pin");
  const std::string script = dir.path() + "/s";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  ::chmod(script.c_str(), 0755);
  auto pin = PinnedBinary::Open(script, {});
  ASSERT_TRUE(pin) << pin.error().message;
  EXPECT_TRUE((*pin)->script);
  EXPECT_EQ((*pin)->build_id, "");
}

TEST(PinnedBinaryTest, BadPathsAreClearErrors) {
  harness::TempDir dir("pin");
  auto missing = PinnedBinary::Open(dir.path() + "/nope", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_NE(missing.error().message.find("/nope"), std::string::npos);
  auto directory = PinnedBinary::Open(dir.path(), {});
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.error().message.find("not a regular file"), std::string::npos);
  const std::string plain = dir.path() + "/plain";
  std::ofstream(plain) << "data";
  ::chmod(plain.c_str(), 0644);
  auto not_exec = PinnedBinary::Open(plain, {});
  ASSERT_FALSE(not_exec);
  EXPECT_NE(not_exec.error().message.find("not executable"), std::string::npos);
}

TEST(PinnedBinaryTest, ThePinOutlivesItsPath) {
  harness::TempDir dir("pin");
  const std::string copy = dir.path() + "/kvd";
  ASSERT_EQ(std::system(("cp " + BinPath("kvd") + " " + copy).c_str()), 0);
  auto pin = PinnedBinary::Open(copy, {});
  ASSERT_TRUE(pin);
  const std::string id = (*pin)->build_id;
  ASSERT_EQ(::unlink(copy.c_str()), 0);
  std::ofstream(copy) << "#!/bin/sh\nexit 1\n";
  EXPECT_EQ(ReadElfBuildId((*pin)->fd), id);
}

TEST(PinHistoryTest, KeepsTheServingOneFirstAndForgetsReverted) {
  harness::TempDir dir("pin");
  std::vector<std::shared_ptr<PinnedBinary>> p;
  for (int i = 0; i < 3; ++i) {
    auto pin = PinnedBinary::Open(BinPath("kvd"), {std::to_string(i)});
    ASSERT_TRUE(pin);
    p.push_back(*pin);
  }
  PinHistory h(2);
  EXPECT_EQ(h.current(), nullptr);
  EXPECT_EQ(h.previous(), nullptr);
  h.Serving(p[0]);
  h.Serving(p[0]);  // a restart of the same pin changes nothing
  EXPECT_EQ(h.all().size(), 1u);
  h.Serving(p[1]);
  EXPECT_EQ(h.current(), p[1]);
  EXPECT_EQ(h.previous(), p[0]);
  h.Serving(p[2]);  // depth 2: the oldest goes
  EXPECT_EQ(h.all().size(), 2u);
  EXPECT_EQ(h.previous(), p[1]);
  h.Serving(p[1]);  // a revert: the previous one back in front
  h.Forget(p[2]);   // and the reverted one is gone
  EXPECT_EQ(h.current(), p[1]);
  EXPECT_EQ(h.previous(), nullptr);
}

}  // namespace
}  // namespace baton::supervisor
