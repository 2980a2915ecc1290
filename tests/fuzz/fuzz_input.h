// Turns fuzzer bytes into a stream of small decisions.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <string>

// A broken invariant is a crash the fuzzer reports (with the input).
#define FUZZ_CHECK(cond)       \
  do {                         \
    if (!(cond)) std::abort(); \
  } while (0)

namespace baton::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t Below(uint32_t n) { return n == 0 ? 0 : Byte() % n; }
  bool Bool() { return Byte() & 1; }
  // One of a few handoff ids, mostly the right one.
  std::string Id(const std::string& right) {
    switch (Below(8)) {
      case 0: return "";
      case 1: return "other";
      default: return right;
    }
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace baton::fuzz
