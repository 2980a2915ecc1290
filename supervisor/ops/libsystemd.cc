#include "supervisor/ops/libsystemd.h"

#include <dlfcn.h>

#include <fmt/format.h>

namespace baton::supervisor {
namespace {

template <class F>
bool Sym(void* lib, const char* name, F* out, std::string* missing) {
  *out = reinterpret_cast<F>(::dlsym(lib, name));
  if (*out == nullptr && missing->empty()) *missing = name;
  return *out != nullptr;
}

}  // namespace

Result<Libsystemd> Libsystemd::LoadFrom(const char* soname) {
  void* lib = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    return Error(Errc::kUnavailable, fmt::format("systemd integration needs {} (Debian package libsystemd0): {}",
                                                 soname, why != nullptr ? why : "cannot load it"));
  }
  Libsystemd l;
  std::string missing;
  Sym(lib, "sd_notify", &l.notify, &missing);
  Sym(lib, "sd_pid_notify_with_fds", &l.pid_notify_with_fds, &missing);
  Sym(lib, "sd_listen_fds_with_names", &l.listen_fds_with_names, &missing);
  if (!missing.empty()) {
    ::dlclose(lib);
    return Error(Errc::kUnavailable, fmt::format("{} has no {} (too old a libsystemd)", soname, missing));
  }
  return l;  // the library stays loaded for the life of the process
}

Result<const Libsystemd*> Libsystemd::Load() {
  static const Result<Libsystemd> loaded = LoadFrom("libsystemd.so.0");
  if (!loaded) return loaded.error();
  return &*loaded;
}

}  // namespace baton::supervisor
