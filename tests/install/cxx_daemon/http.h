// HTTP/1.1, just enough for a key-value server: one request parsed from the
// front of a buffer (Content-Length bodies; no chunked encoding), responses
// written with Content-Length. Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cxxd {

struct Request {
  std::string method;
  std::string target;
  std::string body;
  bool keep_alive = true;  // HTTP/1.1 default; `Connection: close` or HTTP/1.0 turn it off
};

struct Parsed {
  enum Kind { kIncomplete, kRequest, kBad } kind = kIncomplete;
  size_t consumed = 0;  // kRequest: bytes of the buffer it took
  int status = 0;       // kBad: the status to answer before closing (400, 413, 431, 501, 505)
};

constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxBodyBytes = 1 << 20;

Parsed ParseRequest(std::string_view buf, Request* req);
// A complete response; `close` adds `Connection: close`.
std::string FormatResponse(int status, std::string_view body, bool close,
                           std::string_view content_type = "text/plain");

}  // namespace cxxd
