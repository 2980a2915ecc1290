/* A daemon written in C against baton.h only, for the C ABI's handoff tests:
 * it serves nothing, it records. Every generation appends lines
 * "<pid> <what>" to DIR/trace; a hook fails when DIR/fail-<hook> exists,
 * returning the code on the file's first line with the rest as its message
 * (code 0 with a message: the hook returns 0 after baton_hook_fail).
 * DIR/fingerprint, if present, is what seal reports instead of "fp-<pid>".
 *
 *   capi_probe DIR
 *
 * Exit: what baton_wait_for_exit said; 1 if baton_start failed; 2 bad
 * arguments or environment. SIGTERM asks baton to exit with 0. */
#define _GNU_SOURCE
#include <baton/baton.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char* g_dir;
static baton_daemon* g_daemon;

static void trace(const char* fmt, ...) {
  char line[1024];
  int n = snprintf(line, sizeof line, "%d ", (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  char path[512];
  snprintf(path, sizeof path, "%s/trace", g_dir);
  FILE* f = fopen(path, "a");
  if (f != NULL) {
    fwrite(line, 1, (size_t)n, f); /* one write: generations append concurrently */
    fclose(f);
  }
}

/* The contents of DIR/<name> without a trailing newline, or NULL. */
static char* read_knob(const char* name) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE* f = fopen(path, "r");
  if (f == NULL) return NULL;
  static char buf[2048];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  while (n > 0 && buf[n - 1] == '\n') --n;
  buf[n] = '\0';
  return buf;
}

/* 0, or the failure DIR/fail-<hook> asks for. */
static int knob(const char* hook, baton_hook_ctx* ctx) {
  char name[64];
  snprintf(name, sizeof name, "fail-%s", hook);
  const char* spec = read_knob(name);
  if (spec == NULL) return 0;
  char* rest = NULL;
  const int code = (int)strtol(spec, &rest, 10);
  while (*rest == ' ' || *rest == '\n') ++rest;
  trace("%s fails with %d", hook, code);
  if (*rest != '\0') baton_hook_fail(ctx, code == 0 ? BATON_INTERNAL : code, rest);
  return code;
}

static int on_warm(void* user, baton_hook_ctx* ctx) {
  (void)user;
  trace("warm");
  return knob("warm", ctx);
}

static int on_drain(void* user, int64_t deadline_ns, int64_t remaining_ms, baton_hook_ctx* ctx) {
  (void)user;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const int64_t left_ms = (deadline_ns - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec)) / 1000000;
  /* The two forms of the deadline agree (within scheduling noise). */
  const int agree = deadline_ns == INT64_MAX ? remaining_ms == INT64_MAX : llabs(left_ms - remaining_ms) <= 100;
  trace("drain remaining_ms=%lld agree=%d", (long long)remaining_ms, agree);
  return knob("drain", ctx);
}

static int on_seal(void* user, baton_seal_report* report, baton_hook_ctx* ctx) {
  (void)user;
  static char fp[2048];
  const char* custom = read_knob("fingerprint");
  if (custom != NULL) {
    snprintf(fp, sizeof fp, "%s", custom);
  } else {
    snprintf(fp, sizeof fp, "fp-%d", (int)getpid());
  }
  report->revision = 1000 + (uint64_t)getpid();
  report->fingerprint = fp;
  trace("seal size=%zu revision=%llu", report->size, (unsigned long long)report->revision);
  return knob("seal", ctx);
}

static int on_begin(void* user, const baton_sealed_state* s, baton_hook_ctx* ctx) {
  (void)user;
  trace("begin size=%zu sealed=%d revision=%llu fingerprint=%s generation=%llu lease_epoch=%llu", s->size, s->sealed,
        (unsigned long long)s->revision, s->fingerprint, (unsigned long long)s->data_generation,
        (unsigned long long)s->lease_epoch);
  return knob("begin", ctx);
}

static int on_resume(void* user, int data_changed, baton_hook_ctx* ctx) {
  (void)user;
  trace("resume data_changed=%d", data_changed);
  return knob("resume", ctx);
}

static void on_retire(void* user) {
  (void)user;
  trace("retire");
}

static void* wait_signal(void* arg) {
  sigset_t* set = arg;
  int sig = 0;
  if (sigwait(set, &sig) == 0) {
    trace("signal %d", sig);
    baton_request_exit(g_daemon, 0, NULL);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: capi_probe DIR\n");
    return 2;
  }
  g_dir = argv[1];
  static sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);

  baton_error* err = NULL;
  baton_options opts = {.size = sizeof opts, .build_id = "capi-probe"};
  if (baton_create(&opts, &g_daemon, &err) != 0) {
    fprintf(stderr, "capi_probe: %s\n", baton_error_message(err));
    baton_error_free(err);
    return 2;
  }
  int role = -1, fd = -1, at_fd = -1;
  size_t count = 0;
  const char* at_name = "";
  baton_role(g_daemon, &role, NULL);
  baton_listener(g_daemon, "http", &fd, NULL);
  baton_listener_count(g_daemon, &count, NULL);
  baton_listener_at(g_daemon, 0, &at_name, &at_fd, NULL);
  const int missing = baton_listener(g_daemon, "nope", &fd, &err);
  trace("created role=%d listeners=%zu http_fd=%d at0=%s:%d nope=%d:%s", role, count, fd, at_name, at_fd, missing,
        baton_error_message(err));
  baton_error_free(err);
  err = NULL;

  pthread_t signals;
  pthread_create(&signals, NULL, wait_signal, &set);
  const baton_hooks hooks = {.size = sizeof hooks, .user = NULL, .warm = on_warm, .drain = on_drain,
                             .seal = on_seal, .begin = on_begin, .resume = on_resume, .retire = on_retire};
  if (baton_start(g_daemon, &hooks, &err) != 0) {
    trace("start failed %d %s", baton_error_code(err), baton_error_message(err));
    baton_error_free(err);
    pthread_cancel(signals);
    pthread_join(signals, NULL);
    baton_destroy(g_daemon);
    return 1;
  }
  trace("serving");
  int code = -1;
  baton_wait_for_exit(g_daemon, &code, NULL);
  trace("exit %d", code);
  /* sigwait is a cancellation point: no late SIGTERM touches a freed handle. */
  pthread_cancel(signals);
  pthread_join(signals, NULL);
  baton_destroy(g_daemon);
  return code;
}
