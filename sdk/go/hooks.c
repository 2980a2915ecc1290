// The C side of the hooks and the log callback: trampolines with the
// signatures baton.h wants, each handing the cgo.Handle it got as `user`
// back to the exported Go function. No Go pointer is ever given to C.
#include <stdint.h>
#include <time.h>

#include "_cgo_export.h"

static int warm(void* user, baton_hook_ctx* ctx) { return batonGoWarm((uintptr_t)user, ctx); }

static int drain(void* user, int64_t deadline_ns, int64_t remaining_ms, baton_hook_ctx* ctx) {
  (void)remaining_ms;
  int64_t remaining_ns = INT64_MAX;
  if (deadline_ns != INT64_MAX) {
    // The deadline is on CLOCK_MONOTONIC, which Go's time does not expose:
    // hand over what is left of it, measured here.
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    remaining_ns = deadline_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
    if (remaining_ns < 0) remaining_ns = 0;
  }
  return batonGoDrain((uintptr_t)user, remaining_ns, ctx);
}

static int seal(void* user, baton_seal_report* report, baton_hook_ctx* ctx) {
  return batonGoSeal((uintptr_t)user, report, ctx);
}

static int begin(void* user, const baton_sealed_state* sealed, baton_hook_ctx* ctx) {
  return batonGoBegin((uintptr_t)user, (baton_sealed_state*)sealed, ctx);
}

static int resume(void* user, int data_changed, baton_hook_ctx* ctx) {
  return batonGoResume((uintptr_t)user, data_changed, ctx);
}

static void retire(void* user) { batonGoRetire((uintptr_t)user); }

void batongo_fill_hooks(baton_hooks* h, uintptr_t handle) {
  h->size = sizeof *h;
  h->user = (void*)handle;
  h->warm = warm;
  h->drain = drain;
  h->seal = seal;
  h->begin = begin;
  h->resume = resume;
  h->retire = retire;
}

static void log_event(void* user, int level, const char* event, const char* message, const char* json) {
  batonGoLog((uintptr_t)user, level, (char*)event, (char*)message, (char*)json);
}

void batongo_set_log(baton_options* o, uintptr_t handle) {
  o->log = log_event;
  o->log_user = (void*)handle;
}
