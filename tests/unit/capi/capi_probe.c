/* A daemon written in C against baton.h only, for the C ABI's handoff tests:
 * it serves nothing, it records. Every generation appends lines
 * "<pid> <what>" to DIR/trace; a hook fails when DIR/fail-<hook> exists,
 * returning the code on the file's first line with the rest as its message
 * (code 0 with a message: the hook returns 0 after baton_hook_fail).
 * DIR/fingerprint, if present, is what seal reports instead of "fp-<pid>".
 * DIR/handover "N S", if present: drain hands over N connected socket pairs
 * (each end: "conn-I", a connection with unread bytes "ping-<pid>-I" and
 * metadata "meta-<pid>-I", and "peer-I", a file) and seal sets a state of S
 * bytes starting "state-<pid>"; begin and resume trace what they receive
 * (peeking at unread bytes, so a rollback finds them still unread), then
 * close it. Every generation accepts a handover (baton_accept_handover)
 * unless DIR/no-accept exists when it starts; drain traces whether the
 * successor accepts, and when it does not, that a hand-over is refused.
 *
 *   capi_probe DIR
 *
 * Exit: what baton_wait_for_exit said; 1 if baton_start failed; 2 bad
 * arguments or environment. SIGTERM asks baton to exit with 0. */
#define _GNU_SOURCE
#include <baton/baton.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* Drain with DIR/handover: hand over socket pairs (and check the errors). */
static void hand_over_pairs(void) {
  const char* spec = read_knob("handover");
  if (spec == NULL) return;
  const int accepts = baton_successor_accepts_handover(g_daemon);
  trace("successor_accepts=%d", accepts);
  if (!accepts) {
    /* Refused (FAILED_PRECONDITION), and still ours. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    const int code = baton_hand_over(g_daemon, BATON_HANDOVER_CONNECTION, "conn-0", sv[1], NULL, 0, NULL);
    trace("refused_unaccepted=%d open=%d", code, fcntl(sv[1], F_GETFD) >= 0);
    close(sv[0]);
    close(sv[1]);
    return;
  }
  const int n = atoi(spec);
  for (int i = 0; i < n; ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    char ping[64], meta[64], name[32];
    const int len = snprintf(ping, sizeof ping, "ping-%d-%d", (int)getpid(), i);
    if (write(sv[0], ping, (size_t)len) != len) return;
    const int mlen = snprintf(meta, sizeof meta, "meta-%d-%d", (int)getpid(), i);
    snprintf(name, sizeof name, "conn-%d", i);
    baton_error* err = NULL;
    if (baton_hand_over(g_daemon, BATON_HANDOVER_CONNECTION, name, sv[1], meta, (size_t)mlen, &err) != 0) {
      trace("hand_over %s failed %d %s", name, baton_error_code(err), baton_error_message(err));
      baton_error_free(err);
      return;
    }
    snprintf(name, sizeof name, "peer-%d", i);
    if (baton_hand_over(g_daemon, BATON_HANDOVER_FILE, name, sv[0], NULL, 0, &err) != 0) {
      trace("hand_over %s failed %d %s", name, baton_error_code(err), baton_error_message(err));
      baton_error_free(err);
      return;
    }
  }
  /* A pipe is no connection, and a name goes once: refused, still ours. */
  int p[2];
  if (pipe2(p, O_CLOEXEC) == 0) {
    const int bad = baton_hand_over(g_daemon, BATON_HANDOVER_CONNECTION, "pipe", p[0], NULL, 0, NULL);
    const int twice = n > 0 ? baton_hand_over(g_daemon, BATON_HANDOVER_FILE, "peer-0", p[0], NULL, 0, NULL) : 6;
    trace("refused pipe=%d twice=%d open=%d", bad, twice, fcntl(p[0], F_GETFD) >= 0);
    close(p[0]);
    close(p[1]);
  }
}

static void set_state(void) {
  const char* spec = read_knob("handover");
  if (spec == NULL) return;
  const char* space = strchr(spec, ' ');
  const size_t size = space != NULL ? (size_t)strtoull(space + 1, NULL, 10) : 0;
  char* state = malloc(size + 64);
  if (state == NULL) return;
  memset(state, 'x', size + 64);
  const int head = snprintf(state, 64, "state-%d", (int)getpid());
  if ((size_t)head < size) state[head] = 'x';
  baton_error* err = NULL;
  if (baton_set_handover_state(g_daemon, state, size, &err) != 0) {
    trace("set_state failed %d %s", baton_error_code(err), baton_error_message(err));
    baton_error_free(err);
  }
  free(state);
}

/* Begin or resume: trace what was handed over (sorted by the order taken), then close it. */
static void take_handed_over(const char* hook) {
  for (;;) {
    baton_handed_fd* h = NULL;
    if (baton_take_handed_over(g_daemon, &h, NULL) != 0 || h == NULL) break;
    size_t mlen = 0;
    const char* meta = baton_handed_fd_metadata(h, &mlen);
    char got[128] = "";
    const int fd = baton_handed_fd_fd(h);
    if (baton_handed_fd_kind(h) == BATON_HANDOVER_CONNECTION) {
      const ssize_t r = recv(fd, got, sizeof got - 1, MSG_DONTWAIT | MSG_PEEK);
      if (r > 0) got[r] = '\0';
    }
    trace("%s handed %s kind=%d meta=%.*s read=%s cloexec=%d", hook, baton_handed_fd_name(h),
          baton_handed_fd_kind(h), (int)mlen, meta != NULL ? meta : "", got, (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    close(fd);
    baton_handed_fd_free(h);
  }
  void* state = NULL;
  size_t len = 0;
  if (baton_take_handover_state(g_daemon, &state, &len, NULL) == 0 && state != NULL) {
    trace("%s state len=%zu head=%.*s", hook, len, (int)(len < 16 ? len : 16), (const char*)state);
    baton_free(state);
  }
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
  hand_over_pairs();
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
  set_state();
  return knob("seal", ctx);
}

static int on_begin(void* user, const baton_sealed_state* s, baton_hook_ctx* ctx) {
  (void)user;
  trace("begin size=%zu sealed=%d revision=%llu fingerprint=%s generation=%llu lease_epoch=%llu", s->size, s->sealed,
        (unsigned long long)s->revision, s->fingerprint, (unsigned long long)s->data_generation,
        (unsigned long long)s->lease_epoch);
  take_handed_over("begin");
  return knob("begin", ctx);
}

static int on_resume(void* user, int data_changed, baton_hook_ctx* ctx) {
  (void)user;
  trace("resume data_changed=%d", data_changed);
  take_handed_over("resume");
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

  if (read_knob("no-accept") == NULL && baton_accept_handover(g_daemon, &err) != 0) {
    fprintf(stderr, "capi_probe: %s\n", baton_error_message(err));
    baton_error_free(err);
    baton_destroy(g_daemon);
    return 2;
  }

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
  /* Outside drain and seal nothing may be handed over. */
  trace("outside=%d", baton_hand_over(g_daemon, BATON_HANDOVER_FILE, "x", 0, NULL, 0, NULL));
  /* Accepting is said before the Hello, or not at all. */
  trace("accept_after_start=%d", baton_accept_handover(g_daemon, NULL));
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
