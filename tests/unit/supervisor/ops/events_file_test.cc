#include "supervisor/ops/events_file.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tools/harness/subprocess.h"

namespace baton::supervisor {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(EventsFileTest, AppendsLinesPrivately) {
  const harness::TempDir tmp("ej");
  const std::string& dir = tmp.path();
  auto j = EventsFile::Open(dir, 1 << 20);
  ASSERT_TRUE(j) << j.error().message;
  ASSERT_TRUE(j->Append(R"({"event":"a"})"));
  ASSERT_TRUE(j->Append(R"({"event":"b"})"));
  EXPECT_EQ(Read(dir + "/events.jsonl"), "{\"event\":\"a\"}\n{\"event\":\"b\"}\n");
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/events.jsonl").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(EventsFileTest, RotatesSoBothFilesStayUnderTheBound) {
  const harness::TempDir tmp("ej");
  const std::string& dir = tmp.path();
  const uint64_t max = 8192;
  auto j = EventsFile::Open(dir, max);
  ASSERT_TRUE(j);
  const std::string line(99, 'x');  // 100 bytes with the newline
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(j->Append(line));
  const auto cur = Read(dir + "/events.jsonl").size();
  const auto old = Read(dir + "/events.jsonl.1").size();
  EXPECT_GT(old, 0u);
  EXPECT_LE(cur + old, max);
  EXPECT_GE(cur + old, max / 2);  // still keeps a useful amount of history
  EXPECT_EQ(cur % 100, 0u);       // never a torn line
}

TEST(EventsFileTest, ReopeningAppendsAndCountsTheExistingSize) {
  const harness::TempDir tmp("ej");
  const std::string& dir = tmp.path();
  {
    auto j = EventsFile::Open(dir, 1000);
    ASSERT_TRUE(j);
    ASSERT_TRUE(j->Append(std::string(399, 'a')));
  }
  auto j = EventsFile::Open(dir, 1000);
  ASSERT_TRUE(j);
  ASSERT_TRUE(j->Append(std::string(399, 'b')));  // 800 > 500: the old line moves to .1
  EXPECT_EQ(Read(dir + "/events.jsonl.1"), std::string(399, 'a') + "\n");
  EXPECT_EQ(Read(dir + "/events.jsonl"), std::string(399, 'b') + "\n");
}

TEST(EventsFileTest, OpenFailsClearly) {
  auto j = EventsFile::Open("/nonexistent/dir", 1000);
  ASSERT_FALSE(j);
  EXPECT_NE(j.error().message.find("/nonexistent/dir/events.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace baton::supervisor
