#include "ownership/libpq.h"

#include <dlfcn.h>

#include <fmt/format.h>

namespace baton::ownership {
namespace {

Error LoadError(const char* soname, const char* why) {
  return Error(Errc::kFailedPrecondition, fmt::format("the Postgres lease needs libpq ({}, Debian package libpq5): {}",
                                                      soname, why != nullptr ? why : "unknown error"));
}

}  // namespace

Result<Libpq> LoadLibpqFrom(const char* soname) {
  // RTLD_NOW: a libpq missing a function fails here, not at a later call.
  // RTLD_LOCAL: its symbols do not take part in resolving anyone else's.
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return LoadError(soname, ::dlerror());
  ::dlerror();  // clear any earlier error, so dlerror() below is about dlsym
  Libpq pq;
  // dlsym returns a data pointer; POSIX guarantees it converts to the
  // function's pointer type.
#define BATON_LIBPQ_RESOLVE(name)                                        \
  pq.name = reinterpret_cast<decltype(pq.name)>(::dlsym(handle, #name)); \
  if (pq.name == nullptr) {                                              \
    Error e = LoadError(soname, ::dlerror());                            \
    ::dlclose(handle);                                                   \
    return e;                                                            \
  }
  BATON_LIBPQ_FUNCTIONS(BATON_LIBPQ_RESOLVE)
#undef BATON_LIBPQ_RESOLVE
  return pq;  // the handle is never closed: the pointers stay valid
}

Result<const Libpq*> LoadLibpq() {
  // A function-local static: initialised exactly once, even when several
  // threads get here first at the same time.
  static const Result<Libpq> loaded = LoadLibpqFrom(kLibpqSoname);
  if (!loaded) return loaded.error();
  return &*loaded;
}

}  // namespace baton::ownership
