// A minimal blocking HTTP/1.1 client for tests and tools: one request per
// connection to 127.0.0.1 (Connection: close).
#pragma once

#include <chrono>
#include <string>

namespace baton::harness {

// The whole response (status line, headers, body); "" when the connection
// or the write failed. Reads until the server closes or `timeout` passes
// without data.
std::string HttpRequest(int port, const std::string& method, const std::string& path, const std::string& body = "",
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));
inline std::string HttpGet(int port, const std::string& path) { return HttpRequest(port, "GET", path); }
// The body of a response (after the blank line); "" when none.
std::string HttpBody(const std::string& response);
// The status code of a response ("HTTP/1.1 200 OK..." -> 200); 0 when none.
int HttpStatus(const std::string& response);

}  // namespace baton::harness
