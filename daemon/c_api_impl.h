// Shared by the C ABI's translation units (c_api.cc, c_api_handover.cc):
// the error plumbing every entry point uses, and access to a handle's parts.
#pragma once

#include <deque>
#include <exception>
#include <mutex>
#include <new>
#include <string>

#include <fmt/format.h>

#include "baton/baton.h"
#include "baton/daemon.h"

struct baton_error {
  int code;
  std::string message;
};

namespace baton::capi {

// Descriptors taken from the Daemon and not yet handed to the caller
// (baton_take_handed_over hands out one per call).
struct TakenQueue {
  std::mutex mu;
  std::deque<baton::HandedOverFd> items;  // guarded by mu
};

// A static error for when even an error cannot be allocated; never freed.
baton_error* OutOfMemory();
// Sets *err (when err is not NULL) and returns `code`.
int Fail(baton_error** err, int code, std::string message);
int Fail(baton_error** err, const baton::Error& e);
int NullArgument(baton_error** err, const char* function, const char* argument);
baton::Daemon& DaemonOf(baton_daemon* d);
const baton::Daemon& DaemonOf(const baton_daemon* d);
TakenQueue& TakenOf(baton_daemon* d);

// Runs an entry point's body: nothing may unwind out of an extern "C"
// function, so an exception (only bad_alloc is expected) becomes BATON_INTERNAL.
template <class F>
int Guarded(baton_error** err, const char* function, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    if (err != nullptr) {
      baton_error_free(*err);
      *err = OutOfMemory();
    }
    return BATON_INTERNAL;
  } catch (const std::exception& e) {
    try {
      return Fail(err, BATON_INTERNAL, fmt::format("{}: {}", function, e.what()));
    } catch (...) {
      return BATON_INTERNAL;
    }
  }
}

}  // namespace baton::capi
