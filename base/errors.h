// Errors as values: a baton error category whose codes say what the caller
// should do, plus an Error (code + context message) and Result<T>.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <boost/assert/source_location.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace baton {

// Canonical codes. Each one tells the caller what to do next.
enum class Errc {
  kOk = 0,
  kUnavailable = 1,          // transient: retry the call
  kAborted = 2,              // the handoff rolled back
  kFailedPrecondition = 3,   // fix the state or configuration first
  kDeadlineExceeded = 4,     // a deadline passed
  kProtocolError = 5,        // the peer sent something malformed or unexpected
  kInvalidArgument = 6,      // bad input from the caller
  kBusy = 7,                 // one at a time: try again later
  kNotFound = 8,
  kPermissionDenied = 9,
  kInternal = 10,            // a bug
  kIncompatible = 11,        // versions or schemas do not overlap
};

const boost::system::error_category& BatonCategory() noexcept;

inline boost::system::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), BatonCategory()};
}

// An error code plus a human message carrying context, e.g.
// "seal: fsync wal-000012: Input/output error".
struct Error {
  boost::system::error_code code;
  std::string message;

  Error() = default;
  Error(boost::system::error_code c, std::string m) : code(c), message(std::move(m)) {}
  Error(Errc c, std::string m) : code(make_error_code(c)), message(std::move(m)) {}

  bool Is(Errc c) const { return code == make_error_code(c); }
  // "message (category:value)" for logs.
  std::string ToString() const;
};

// An Error from errno with the operation named: "open /x: No such file or directory".
Error ErrnoError(std::string_view what, int err);

// Needed by boost::system::result<T, Error>::value() (found by ADL).
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;
using Status = boost::system::result<void, Error>;

}  // namespace baton

namespace boost::system {
template <>
struct is_error_code_enum<baton::Errc> : std::true_type {};
}  // namespace boost::system
