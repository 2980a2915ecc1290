// The C ABI (include/baton/baton.h): a thin layer over baton::Daemon, with
// no runtime of its own. Each function checks its arguments, calls the C++
// API and turns its Error into a return code plus an optional baton_error.
//
// Nothing may unwind out of an extern "C" function: every entry point runs
// its body through Guarded(), which turns an exception (only bad_alloc is
// expected) into BATON_INTERNAL.
#include "baton/baton.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "baton/daemon.h"
#include "baton/errors.h"
#include "baton/log.h"
#include "baton/testing.h"
#include "daemon/c_api_impl.h"

struct baton_hook_ctx {
  const char* hook;     // "warm", ...
  std::string message;  // set by baton_hook_fail
};

namespace baton::capi {

// Handed out when even the error cannot be allocated; never freed.
baton_error g_out_of_memory{BATON_INTERNAL, "out of memory"};

baton_error* OutOfMemory() { return &g_out_of_memory; }

int Fail(baton_error** err, int code, std::string message) {
  if (err != nullptr) {
    baton_error_free(*err);
    *err = new (std::nothrow) baton_error{code, std::move(message)};
    if (*err == nullptr) *err = &g_out_of_memory;
  }
  return code;
}

int Fail(baton_error** err, const baton::Error& e) { return Fail(err, static_cast<int>(e.code), e.message); }

int NullArgument(baton_error** err, const char* function, const char* argument) {
  return Fail(err, BATON_INVALID_ARGUMENT, fmt::format("{}: {} is NULL", function, argument));
}

}  // namespace baton::capi

using namespace baton::capi;

namespace {

using baton::Errc;

static_assert(BATON_OK == static_cast<int>(Errc::kOk));
static_assert(BATON_UNAVAILABLE == static_cast<int>(Errc::kUnavailable));
static_assert(BATON_ABORTED == static_cast<int>(Errc::kAborted));
static_assert(BATON_FAILED_PRECONDITION == static_cast<int>(Errc::kFailedPrecondition));
static_assert(BATON_DEADLINE_EXCEEDED == static_cast<int>(Errc::kDeadlineExceeded));
static_assert(BATON_PROTOCOL_ERROR == static_cast<int>(Errc::kProtocolError));
static_assert(BATON_INVALID_ARGUMENT == static_cast<int>(Errc::kInvalidArgument));
static_assert(BATON_BUSY == static_cast<int>(Errc::kBusy));
static_assert(BATON_NOT_FOUND == static_cast<int>(Errc::kNotFound));
static_assert(BATON_PERMISSION_DENIED == static_cast<int>(Errc::kPermissionDenied));
static_assert(BATON_INTERNAL == static_cast<int>(Errc::kInternal));
static_assert(BATON_INCOMPATIBLE == static_cast<int>(Errc::kIncompatible));
static_assert(BATON_IO_ERROR == static_cast<int>(Errc::kIoError));
static_assert(BATON_LEVEL_DEBUG == static_cast<int>(baton::Level::kDebug));
static_assert(BATON_LEVEL_ERROR == static_cast<int>(baton::Level::kError));

constexpr int kLastErrc = BATON_IO_ERROR;
constexpr size_t kMaxFingerprint = 1024;

// Copies a caller's sized struct into `out` (zeroed first). Callers built
// against an older header pass less (the rest stays zero = default); a
// newer header more, which is fine only while the fields we do not know
// are zero (as openat2(2) does it).
template <class T>
int CopySized(const T* in, size_t min_size, const char* what, T* out, baton_error** err) {
  std::memset(static_cast<void*>(out), 0, sizeof(T));
  const size_t size = in->size;
  if (size < min_size) {
    return Fail(err, BATON_INVALID_ARGUMENT,
                fmt::format("{}.size is {}, less than the {} bytes of {} 1.0: set it to sizeof({})", what, size,
                            min_size, what, what));
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(in);
  for (size_t i = sizeof(T); i < size; ++i) {
    if (bytes[i] != 0) {
      return Fail(err, BATON_INCOMPATIBLE,
                  fmt::format("{} sets fields this libbaton does not know (size {}, known {}): link a newer libbaton",
                              what, size, sizeof(T)));
    }
  }
  std::memcpy(static_cast<void*>(out), in, std::min(size, sizeof(T)));
  return BATON_OK;
}

// Sends the library's events to a C callback.
class CLogSink final : public baton::LogSink {
 public:
  CLogSink(baton_log_fn fn, void* user) : fn_(fn), user_(user) {}
  void Emit(const baton::Event& e) override {
    try {
      const std::string json = baton::ToJson(e);
      fn_(user_, static_cast<int>(e.level), e.name.c_str(), e.message.c_str(), json.c_str());
    } catch (...) {
      // Out of memory: the event is lost, the daemon goes on.
    }
  }

 private:
  baton_log_fn fn_;
  void* user_;
};

// Calls the C hooks; a non-zero return becomes the hook's Error.
class CHooks final : public baton::Hooks {
 public:
  explicit CHooks(const baton_hooks& h) : h_(h) {}

  baton::Status Warm() override {
    baton_hook_ctx ctx{"warm", {}};
    return Done(ctx, h_.warm(h_.user, &ctx));
  }

  baton::Status Drain(Deadline deadline) override {
    // libstdc++'s steady_clock is CLOCK_MONOTONIC, so deadline_ns compares
    // with clock_gettime(CLOCK_MONOTONIC) in the hook.
    int64_t deadline_ns = INT64_MAX;
    int64_t remaining_ms = INT64_MAX;
    if (deadline != Deadline::max()) {
      using std::chrono::ceil;
      using std::chrono::milliseconds;
      using std::chrono::nanoseconds;
      deadline_ns = std::chrono::duration_cast<nanoseconds>(deadline.time_since_epoch()).count();
      remaining_ms = std::max<int64_t>(0, ceil<milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    }
    baton_hook_ctx ctx{"drain", {}};
    return Done(ctx, h_.drain(h_.user, deadline_ns, remaining_ms, &ctx));
  }

  baton::Result<baton::SealReport> Seal() override {
    baton_seal_report report{};
    report.size = sizeof report;
    baton_hook_ctx ctx{"seal", {}};
    if (auto st = Done(ctx, h_.seal(h_.user, &report, &ctx)); !st) return st.error();
    const char* fp = report.fingerprint != nullptr ? report.fingerprint : "";
    const size_t len = ::strnlen(fp, kMaxFingerprint + 1);
    const bool printable = std::all_of(fp, fp + len, [](char c) { return c >= 0x20 && c < 0x7f; });
    if (len > kMaxFingerprint || !printable) {
      return baton::Error(Errc::kInvalidArgument,
                          fmt::format("seal hook: the fingerprint must be printable ASCII of at most {} bytes",
                                      kMaxFingerprint));
    }
    return baton::SealReport{report.revision, std::string(fp, len)};
  }

  baton::Status Begin(const baton::SealedState& sealed) override {
    baton_sealed_state s{};
    s.size = sizeof s;
    s.sealed = sealed.sealed ? 1 : 0;
    s.revision = sealed.revision;
    s.fingerprint = sealed.fingerprint.c_str();
    s.data_generation = sealed.data_generation;
    s.lease_epoch = sealed.lease_epoch;
    baton_hook_ctx ctx{"begin", {}};
    return Done(ctx, h_.begin(h_.user, &s, &ctx));
  }

  baton::Status Resume(bool data_changed) override {
    baton_hook_ctx ctx{"resume", {}};
    return Done(ctx, h_.resume(h_.user, data_changed ? 1 : 0, &ctx));
  }

  void Retire() override { h_.retire(h_.user); }

 private:
  static baton::Status Done(const baton_hook_ctx& ctx, int rc) {
    if (rc == BATON_OK) return {};
    const bool known = rc > 0 && rc <= kLastErrc;
    std::string message = ctx.message.empty() ? fmt::format("{} hook failed", ctx.hook) : ctx.message;
    if (!known) message += fmt::format(" (the hook returned {}, which is no baton_errc)", rc);
    return baton::Error(known ? static_cast<Errc>(rc) : Errc::kInternal, std::move(message));
  }

  baton_hooks h_;
};

}  // namespace

// Members in this order so that the Daemon goes first: it may still call
// the hooks and the sink while it shuts down.
struct baton_daemon {
  std::unique_ptr<CLogSink> sink;
  std::unique_ptr<CHooks> hooks;
  std::atomic<bool> started{false};
  std::unique_ptr<baton::Daemon> impl;
  baton::capi::TakenQueue taken;
};

baton::Daemon& baton::capi::DaemonOf(baton_daemon* d) { return *d->impl; }
const baton::Daemon& baton::capi::DaemonOf(const baton_daemon* d) { return *d->impl; }
baton::capi::TakenQueue& baton::capi::TakenOf(baton_daemon* d) { return d->taken; }

extern "C" {

uint32_t baton_abi_version(void) { return BATON_ABI_VERSION; }

const char* baton_errc_name(int code) {
  // baton::ErrcName's names, as NUL-terminated C strings.
  static const char* const kNames[] = {
      "ok", "unavailable", "aborted", "failed precondition", "deadline exceeded", "protocol error",
      "invalid argument", "busy", "not found", "permission denied", "internal error", "incompatible", "io error"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == kLastErrc + 1);
  return code >= 0 && code <= kLastErrc ? kNames[code] : "unknown";
}

int baton_error_code(const baton_error* err) { return err != nullptr ? err->code : BATON_INTERNAL; }

const char* baton_error_message(const baton_error* err) { return err != nullptr ? err->message.c_str() : ""; }

void baton_error_free(baton_error* err) {
  if (err != &g_out_of_memory) delete err;
}

int baton_create(const baton_options* options, baton_daemon** daemon, baton_error** err) {
  return Guarded(err, "baton_create", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_create", "daemon");
    *daemon = nullptr;
    baton_options o{};
    if (options != nullptr) {
      if (int rc = CopySized(options, sizeof(baton_options), "baton_options", &o, err); rc != 0) return rc;
    }
    baton::DaemonOptions d;
    d.build_id = o.build_id != nullptr ? o.build_id : "";
    if (o.state_schema_min != 0 || o.state_schema_max != 0) {
      d.state_schema_min = o.state_schema_min;
      d.state_schema_max = o.state_schema_max;
    }
    d.data_dir = o.data_dir != nullptr ? o.data_dir : "";
    auto handle = std::make_unique<baton_daemon>();
    if (o.log != nullptr) {
      handle->sink = std::make_unique<CLogSink>(o.log, o.log_user);
      d.log = handle->sink.get();
    }
    if (o.lease_name != nullptr && o.lease_name[0] != '\0') {
      const int64_t ms[] = {o.lease_ttl_ms, o.lease_renew_interval_ms, o.lease_op_timeout_ms,
                            o.lease_poll_interval_ms};
      if (std::any_of(std::begin(ms), std::end(ms), [](int64_t v) { return v < 0; })) {
        return Fail(err, BATON_INVALID_ARGUMENT, "baton_create: a lease_*_ms option is negative");
      }
      baton::LeaseOptions lease;
      lease.name = o.lease_name;
      lease.dsn = o.lease_dsn != nullptr ? o.lease_dsn : "";
      lease.holder_id = o.lease_holder_id != nullptr ? o.lease_holder_id : "";
      using std::chrono::milliseconds;
      if (o.lease_ttl_ms != 0) lease.ttl = milliseconds(o.lease_ttl_ms);
      if (o.lease_renew_interval_ms != 0) lease.renew_interval = milliseconds(o.lease_renew_interval_ms);
      if (o.lease_op_timeout_ms != 0) lease.op_timeout = milliseconds(o.lease_op_timeout_ms);
      if (o.lease_poll_interval_ms != 0) lease.poll_interval = milliseconds(o.lease_poll_interval_ms);
      d.lease = std::move(lease);
    }
    auto created = baton::Daemon::Create(std::move(d));
    if (!created) return Fail(err, created.error());
    handle->impl = std::move(*created);
    *daemon = handle.release();
    return BATON_OK;
  });
}

void baton_destroy(baton_daemon* daemon) { delete daemon; }

int baton_role(const baton_daemon* daemon, int* role, baton_error** err) {
  return Guarded(err, "baton_role", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_role", "daemon");
    if (role == nullptr) return NullArgument(err, "baton_role", "role");
    switch (daemon->impl->role()) {
      case baton::Role::kStandalone: *role = BATON_ROLE_STANDALONE; break;
      case baton::Role::kColdStart: *role = BATON_ROLE_COLD_START; break;
      case baton::Role::kSuccessor: *role = BATON_ROLE_SUCCESSOR; break;
    }
    return BATON_OK;
  });
}

int baton_data_dir(const baton_daemon* daemon, const char** dir, baton_error** err) {
  return Guarded(err, "baton_data_dir", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_data_dir", "daemon");
    if (dir == nullptr) return NullArgument(err, "baton_data_dir", "dir");
    *dir = daemon->impl->data_dir().c_str();
    return BATON_OK;
  });
}

int baton_listener(const baton_daemon* daemon, const char* name, int* fd, baton_error** err) {
  return Guarded(err, "baton_listener", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_listener", "daemon");
    if (name == nullptr) return NullArgument(err, "baton_listener", "name");
    if (fd == nullptr) return NullArgument(err, "baton_listener", "fd");
    auto l = daemon->impl->Listener(name);
    if (!l) return Fail(err, l.error());
    *fd = *l;
    return BATON_OK;
  });
}

int baton_listener_count(const baton_daemon* daemon, size_t* count, baton_error** err) {
  return Guarded(err, "baton_listener_count", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_listener_count", "daemon");
    if (count == nullptr) return NullArgument(err, "baton_listener_count", "count");
    *count = daemon->impl->listeners().size();
    return BATON_OK;
  });
}

int baton_listener_at(const baton_daemon* daemon, size_t index, const char** name, int* fd, baton_error** err) {
  return Guarded(err, "baton_listener_at", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_listener_at", "daemon");
    if (name == nullptr) return NullArgument(err, "baton_listener_at", "name");
    if (fd == nullptr) return NullArgument(err, "baton_listener_at", "fd");
    const auto& all = daemon->impl->listeners();
    if (index >= all.size()) {
      return Fail(err, BATON_NOT_FOUND,
                  fmt::format("baton_listener_at: index {} but there are {} listeners", index, all.size()));
    }
    *name = all[index].name.c_str();
    *fd = all[index].fd;
    return BATON_OK;
  });
}

int baton_hook_fail(baton_hook_ctx* ctx, int code, const char* message) {
  if (ctx != nullptr) {
    try {
      ctx->message = message != nullptr ? message : "";
    } catch (...) {
      // Out of memory: the generic "<hook> hook failed" will do.
    }
  }
  return code;
}

int baton_start(baton_daemon* daemon, const baton_hooks* hooks, baton_error** err) {
  return Guarded(err, "baton_start", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_start", "daemon");
    if (hooks == nullptr) return NullArgument(err, "baton_start", "hooks");
    baton_hooks h;
    if (int rc = CopySized(hooks, sizeof(baton_hooks), "baton_hooks", &h, err); rc != 0) return rc;
    const std::pair<const char*, bool> set[] = {{"warm", h.warm != nullptr},     {"drain", h.drain != nullptr},
                                                {"seal", h.seal != nullptr},     {"begin", h.begin != nullptr},
                                                {"resume", h.resume != nullptr}, {"retire", h.retire != nullptr}};
    for (const auto& [name, ok] : set) {
      if (!ok) return Fail(err, BATON_INVALID_ARGUMENT, fmt::format("baton_start: hooks.{} is NULL", name));
    }
    if (daemon->started.exchange(true)) {
      return Fail(err, BATON_FAILED_PRECONDITION, "baton_start: already called for this daemon");
    }
    daemon->hooks = std::make_unique<CHooks>(h);
    if (auto st = daemon->impl->Start(*daemon->hooks); !st) return Fail(err, st.error());
    return BATON_OK;
  });
}

int baton_wait_for_exit(baton_daemon* daemon, int* exit_code, baton_error** err) {
  return Guarded(err, "baton_wait_for_exit", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_wait_for_exit", "daemon");
    if (exit_code == nullptr) return NullArgument(err, "baton_wait_for_exit", "exit_code");
    *exit_code = daemon->impl->WaitForExit();
    return BATON_OK;
  });
}

int baton_request_exit(baton_daemon* daemon, int exit_code, baton_error** err) {
  return Guarded(err, "baton_request_exit", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_request_exit", "daemon");
    daemon->impl->RequestExit(exit_code);
    return BATON_OK;
  });
}

int baton_report_unhealthy(baton_daemon* daemon, const char* reason, baton_error** err) {
  return Guarded(err, "baton_report_unhealthy", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_report_unhealthy", "daemon");
    auto st = daemon->impl->ReportUnhealthy(reason != nullptr ? reason : "");
    if (!st) return Fail(err, st.error());
    return BATON_OK;
  });
}

int baton_lease_epoch(const baton_daemon* daemon, uint64_t* epoch, baton_error** err) {
  return Guarded(err, "baton_lease_epoch", [&]() -> int {
    if (daemon == nullptr) return NullArgument(err, "baton_lease_epoch", "daemon");
    if (epoch == nullptr) return NullArgument(err, "baton_lease_epoch", "epoch");
    const baton::Lease* lease = daemon->impl->lease();
    *epoch = lease != nullptr ? lease->epoch() : 0;
    return BATON_OK;
  });
}

void baton_testing_crash_point(const char* name) {
  if (name != nullptr) baton::testing::CrashPoint(name);
}

int baton_testing_arm_crash_point(const char* name, baton_error** err) {
  return Guarded(err, "baton_testing_arm_crash_point", [&]() -> int {
    if (name == nullptr) return NullArgument(err, "baton_testing_arm_crash_point", "name");
    if (auto st = baton::testing::ArmCrashPoint(name); !st) return Fail(err, st.error());
    return BATON_OK;
  });
}

}  // extern "C"
