// Errors as values inside baton: the public types of baton/errors.h (Errc,
// Error, Result<T>, Status), one set for the library and its users, plus
// the bridge from the system and Asio error codes the internals meet.
#pragma once

#include <string>

#include <boost/system/error_code.hpp>

#include "baton/errors.h"

namespace baton {

// The Errc an errno value means (see ErrnoError).
Errc ErrcFromErrno(int err) noexcept;

// An Error from a system or Asio error code, keeping the caller's message:
// system and generic codes map like ErrnoError, end of file to kUnavailable,
// anything else to kIoError.
Error SystemError(const boost::system::error_code& ec, std::string message);

}  // namespace baton
