// Errors as values: baton::Errc, baton::Error, Result<T> and Status.
//
//   baton::Result<int> fd = daemon->Listener("http");
//   if (!fd) { std::cerr << fd.error().ToString() << "\n"; return 1; }
//   Serve(*fd);
//
// No function of the public API throws. The code says what the caller
// should do next; the message says what happened, with context
// ("seal: fsync wal-000012: Input/output error").
//
// Thread-safety: these are plain values; distinct objects may be used from
// distinct threads, one object from one thread at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "baton/export.h"

namespace baton {

// Canonical codes; the numbers are part of the ABI (the C ABI's
// baton_status uses the same values).
enum class Errc : int {
  kOk = 0,
  kUnavailable = 1,         // transient: retry the call
  kAborted = 2,             // the handoff rolled back, or exit was requested
  kFailedPrecondition = 3,  // fix the state or configuration first
  kDeadlineExceeded = 4,    // a deadline passed
  kProtocolError = 5,       // the peer sent something malformed or unexpected
  kInvalidArgument = 6,     // bad input from the caller
  kBusy = 7,                // one at a time: try again later
  kNotFound = 8,
  kPermissionDenied = 9,
  kInternal = 10,           // a bug
  kIncompatible = 11,       // versions or schemas do not overlap
  kIoError = 12,            // the system refused: disk full, I/O error, ...
};

// A short lower-case name: "failed precondition", "io error". Never null.
BATON_EXPORT std::string_view ErrcName(Errc code) noexcept;

// A code plus a human message carrying context.
struct Error {
  Errc code = Errc::kInternal;
  std::string message;

  Error() = default;
  Error(Errc c, std::string m) : code(c), message(std::move(m)) {}

  bool Is(Errc c) const { return code == c; }
  // "message (baton:failed precondition)", for logs.
  std::string ToString() const { return message + " (baton:" + std::string(ErrcName(code)) + ")"; }
};

// An Error from an errno value with the operation named, e.g.
// ErrnoError("open /x", ENOENT) = {kNotFound, "open /x: No such file or
// directory"}. The code follows the errno: ENOENT → kNotFound, EACCES/EPERM →
// kPermissionDenied, EAGAIN/EINTR → kUnavailable, ETIMEDOUT →
// kDeadlineExceeded, EBUSY → kBusy, EINVAL → kInvalidArgument, others →
// kIoError.
BATON_EXPORT Error ErrnoError(std::string_view what, int err);

namespace detail {
// Called when value() is used on an error or error() on a value: a bug in
// the caller. Prints the error (if any) and aborts.
[[noreturn]] BATON_EXPORT void BadResultAccess(const Error* error) noexcept;
}  // namespace detail

// A T or an Error. Converts implicitly from either.
template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  // A value-initialised T (what coroutine frameworks such as Asio's
  // co_spawn need before the real result arrives).
  Result()
    requires std::is_default_constructible_v<T>
      : v_(std::in_place_index<0>) {}
  template <class U = T,
            std::enable_if_t<std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Result> &&
                                 !std::is_same_v<std::decay_t<U>, Error>,
                             int> = 0>
  Result(U&& v) : v_(std::in_place_index<0>, std::forward<U>(v)) {}  // NOLINT: implicit by design
  Result(Error e) : v_(std::in_place_index<1>, std::move(e)) {}      // NOLINT: implicit by design

  bool has_value() const noexcept { return v_.index() == 0; }
  bool has_error() const noexcept { return v_.index() == 1; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & { return Check(), *std::get_if<0>(&v_); }
  const T& value() const& { return Check(), *std::get_if<0>(&v_); }
  T&& value() && { return Check(), std::move(*std::get_if<0>(&v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    if (!has_error()) detail::BadResultAccess(nullptr);
    return *std::get_if<1>(&v_);
  }
  Error& error() & {
    if (!has_error()) detail::BadResultAccess(nullptr);
    return *std::get_if<1>(&v_);
  }
  Error&& error() && {
    if (!has_error()) detail::BadResultAccess(nullptr);
    return std::move(*std::get_if<1>(&v_));
  }

 private:
  void Check() const {
    if (!has_value()) detail::BadResultAccess(std::get_if<1>(&v_));
  }
  std::variant<T, Error> v_;
};

// Success or an Error. A default-constructed Status is success: `return {};`.
template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;

  Result() = default;
  Result(Error e) : error_(std::move(e)) {}  // NOLINT: implicit by design

  bool has_value() const noexcept { return !error_.has_value(); }
  bool has_error() const noexcept { return error_.has_value(); }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (error_) detail::BadResultAccess(&*error_);
  }

  const Error& error() const& {
    if (!error_) detail::BadResultAccess(nullptr);
    return *error_;
  }
  Error& error() & {
    if (!error_) detail::BadResultAccess(nullptr);
    return *error_;
  }
  Error&& error() && {
    if (!error_) detail::BadResultAccess(nullptr);
    return std::move(*error_);
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

}  // namespace baton
