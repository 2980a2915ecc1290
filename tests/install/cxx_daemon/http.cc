#include "http.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace cxxd {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

Parsed Bad(int status) { return {Parsed::kBad, 0, status}; }

}  // namespace

Parsed ParseRequest(std::string_view buf, Request* req) {
  const size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    return buf.size() > kMaxHeaderBytes ? Bad(431) : Parsed{};
  }
  if (end > kMaxHeaderBytes) return Bad(431);
  std::string_view head = buf.substr(0, end);
  const size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return Bad(400);
  req->method = std::string(line.substr(0, sp1));
  req->target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return Bad(505);
  req->keep_alive = version == "HTTP/1.1";

  size_t length = 0;
  std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const size_t eol = rest.find("\r\n");
    std::string_view field = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos) return Bad(400);
    const std::string name = Lower(field.substr(0, colon));
    const std::string_view value = Trim(field.substr(colon + 1));
    if (name == "content-length") {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (ec != std::errc() || p != value.data() + value.size()) return Bad(400);
      if (length > kMaxBodyBytes) return Bad(413);
    } else if (name == "transfer-encoding") {
      return Bad(501);
    } else if (name == "connection") {
      const std::string v = Lower(value);
      if (v == "close") req->keep_alive = false;
      if (v == "keep-alive") req->keep_alive = true;
    }
  }
  const size_t total = end + 4 + length;
  if (buf.size() < total) return {};
  req->body = std::string(buf.substr(end + 4, length));
  return {Parsed::kRequest, total, 0};
}

std::string FormatResponse(int status, std::string_view body, bool close, std::string_view content_type) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n";
  out += body;
  return out;
}

}  // namespace cxxd
