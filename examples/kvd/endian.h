// Little-endian integers in kvd's files (the WAL and the snapshots).
#pragma once

#include <cstdint>
#include <string>

namespace kvd {

inline uint32_t LoadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline uint64_t LoadU64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline void StoreU32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void StoreU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void AppendU32(std::string& out, uint32_t v) {
  char b[4];
  StoreU32(b, v);
  out.append(b, 4);
}
inline void AppendU64(std::string& out, uint64_t v) {
  char b[8];
  StoreU64(b, v);
  out.append(b, 8);
}

}  // namespace kvd
