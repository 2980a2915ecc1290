#include "base/journal_stream.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/log.h"

namespace baton {
namespace {

// Sets $JOURNAL_STREAM for one test and restores it.
class JournalStreamEnv {
 public:
  explicit JournalStreamEnv(const std::string& value) {
    if (const char* old = std::getenv("JOURNAL_STREAM")) {
      old_ = old;
      had_ = true;
    }
    ::setenv("JOURNAL_STREAM", value.c_str(), 1);
  }
  ~JournalStreamEnv() {
    if (had_) {
      ::setenv("JOURNAL_STREAM", old_.c_str(), 1);
    } else {
      ::unsetenv("JOURNAL_STREAM");
    }
  }

 private:
  std::string old_;
  bool had_ = false;
};

std::string DevIno(std::FILE* f) {
  struct stat st {};
  EXPECT_EQ(::fstat(::fileno(f), &st), 0);
  return fmt::format("{}:{}", static_cast<uintmax_t>(st.st_dev), static_cast<uintmax_t>(st.st_ino));
}

std::string ReadAll(std::FILE* f) {
  std::rewind(f);
  std::string out;
  char buf[512];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  return out;
}

TEST(JournalStreamTest, PrioritiesAreSyslogs) {
  EXPECT_EQ(JournalPriority(Level::kDebug), 7);
  EXPECT_EQ(JournalPriority(Level::kInfo), 6);
  EXPECT_EQ(JournalPriority(Level::kWarn), 4);
  EXPECT_EQ(JournalPriority(Level::kError), 3);
}

TEST(JournalStreamTest, RecognisesTheStreamJournalStreamNames) {
  std::FILE* f = std::tmpfile();
  std::FILE* other = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ASSERT_NE(other, nullptr);
  {
    JournalStreamEnv env(DevIno(f));
    EXPECT_TRUE(IsJournalStream(::fileno(f)));
    EXPECT_FALSE(IsJournalStream(::fileno(other)));
  }
  {
    JournalStreamEnv env("garbage");
    EXPECT_FALSE(IsJournalStream(::fileno(f)));
  }
  std::fclose(f);
  std::fclose(other);
}

TEST(JournalStreamTest, SinkPrefixesLevelsOnlyWhenWritingToTheJournal) {
  std::FILE* journal = std::tmpfile();
  std::FILE* plain = std::tmpfile();
  ASSERT_NE(journal, nullptr);
  ASSERT_NE(plain, nullptr);
  {
    JournalStreamEnv env(DevIno(journal));
    JsonLinesSink to_journal(journal);
    JsonLinesSink to_plain(plain);
    for (JsonLinesSink* s : {&to_journal, &to_plain}) {
      s->Emit(MakeEvent(Level::kInfo, "a.info", "i"));
      s->Emit(MakeEvent(Level::kWarn, "handoff.end", "rolled_back: x"));
      s->Emit(MakeEvent(Level::kError, "a.error", "e"));
    }
  }
  const std::string j = ReadAll(journal);
  EXPECT_EQ(j.rfind("<6>{", 0), 0u) << j;
  EXPECT_NE(j.find("\n<4>{"), std::string::npos) << j;
  EXPECT_NE(j.find("\n<3>{"), std::string::npos) << j;
  const std::string p = ReadAll(plain);
  EXPECT_EQ(p.rfind("{", 0), 0u) << p;
  EXPECT_EQ(p.find('<'), std::string::npos) << p;
  std::fclose(journal);
  std::fclose(plain);
}

TEST(JournalStreamTest, ReopenIsANoOpWhenStderrIsNotTheJournal) {
  JournalStreamEnv env("0:0");
  struct stat before {}, after {};
  ASSERT_EQ(::fstat(STDERR_FILENO, &before), 0);
  EXPECT_TRUE(ReopenStderrInJournal("kvd").has_value());
  ASSERT_EQ(::fstat(STDERR_FILENO, &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_STREQ(std::getenv("JOURNAL_STREAM"), "0:0");
}

}  // namespace
}  // namespace baton
