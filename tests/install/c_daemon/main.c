/* ckvd: a tiny HTTP key-value store in C with an append-only log,
 * upgradable in place by baton through its C ABI (baton/baton.h).
 *
 *   ckvd [--data-dir DIR] [--listen-name NAME] [--build-id ID] [--port PORT]
 *
 * Supervised (`baton supervise ... -- ckvd`) it serves the inherited
 * listener NAME (default "http"); alone it binds 127.0.0.1:PORT (8080).
 * The data dir defaults to $BATON_DATA_DIR. Exit codes: 0 clean exit, 1
 * could not start, 2 bad arguments or environment.
 *
 * This file is the whole baton integration: the six hooks and main(). The
 * store (store.c) and the server (server.c) do not know baton exists.
 * Threads: main runs the server's poll loop; baton runs the hooks on a
 * thread of its own, and they take the server's lock; a third thread waits
 * for baton to say this generation is done. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <baton/baton.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "server.h"
#include "store.h"

struct app {
  baton_daemon* daemon;
  struct store store;
  struct server* server;
  char fingerprint[17];
  int exit_code;
};

static int hook_failed(baton_hook_ctx* ctx, const char* hook, const char* why) {
  char msg[600];
  snprintf(msg, sizeof msg, "%s: %s", hook, why);
  return baton_hook_fail(ctx, BATON_IO_ERROR, msg);
}

/* Successor, while the incumbent still writes: replay what is there,
 * read-only (stops before a record being written). */
static int on_warm(void* user, baton_hook_ctx* ctx) {
  struct app* a = user;
  server_lock(a->server);
  const int rc = store_replay(&a->store, REPLAY_READ_ONLY);
  server_unlock(a->server);
  return rc == 0 ? 0 : hook_failed(ctx, "warm", a->store.error);
}

/* Incumbent: stop accepting, close keep-alive connections at response
 * boundaries, everything by the deadline. Every acknowledged PUT is
 * already fsynced. */
static int on_drain(void* user, int64_t deadline_ns, int64_t remaining_ms, baton_hook_ctx* ctx) {
  (void)remaining_ms;
  (void)ctx;
  struct app* a = user;
  server_drain(a->server, deadline_ns);
  return 0;
}

/* Incumbent: fsync and close the writer; report what is durable. */
static int on_seal(void* user, baton_seal_report* report, baton_hook_ctx* ctx) {
  struct app* a = user;
  server_lock(a->server);
  server_set_accepting(a->server, 0);
  const int rc = store_close_writer(&a->store);
  report->revision = a->store.revision;
  store_fingerprint(&a->store, a->fingerprint);
  report->fingerprint = a->fingerprint;
  server_unlock(a->server);
  return rc == 0 ? 0 : hook_failed(ctx, "seal", a->store.error);
}

/* Successor, now the owner: replay the tail written since warm, check it
 * ends where the incumbent sealed, open the writer, accept. */
static int on_begin(void* user, const baton_sealed_state* sealed, baton_hook_ctx* ctx) {
  struct app* a = user;
  char why[600] = "";
  server_lock(a->server);
  if (store_replay(&a->store, REPLAY_REPAIR) != 0) {
    snprintf(why, sizeof why, "%s", a->store.error);
  } else {
    store_fingerprint(&a->store, a->fingerprint);
    if (sealed->sealed && (a->store.revision != sealed->revision || strcmp(a->fingerprint, sealed->fingerprint))) {
      snprintf(why, sizeof why, "replayed revision %llu fingerprint %s, but the incumbent sealed %llu %s",
               (unsigned long long)a->store.revision, a->fingerprint, (unsigned long long)sealed->revision,
               sealed->fingerprint);
    } else if (store_open_writer(&a->store) != 0) {
      snprintf(why, sizeof why, "%s", a->store.error);
    } else {
      server_set_accepting(a->server, 1);
    }
  }
  server_unlock(a->server);
  return why[0] == '\0' ? 0 : hook_failed(ctx, "begin", why);
}

/* Incumbent after a rollback: reload if another process wrote, then write
 * and accept again. */
static int on_resume(void* user, int data_changed, baton_hook_ctx* ctx) {
  struct app* a = user;
  server_lock(a->server);
  int rc = data_changed ? store_reload(&a->store) : store_replay(&a->store, REPLAY_REPAIR);
  if (rc == 0) rc = store_open_writer(&a->store);
  if (rc == 0) server_set_accepting(a->server, 1);
  server_unlock(a->server);
  return rc == 0 ? 0 : hook_failed(ctx, "resume", a->store.error);
}

/* Incumbent after the commit: the successor serves; stop. */
static void on_retire(void* user) {
  struct app* a = user;
  server_stop(a->server);
}

/* SIGTERM/SIGINT, from the poll loop: leave (the waiter stops the loop). */
static void on_signal(void* user) {
  struct app* a = user;
  baton_request_exit(a->daemon, 0, NULL);
}

static void* wait_for_exit(void* user) {
  struct app* a = user;
  if (baton_wait_for_exit(a->daemon, &a->exit_code, NULL) != 0) a->exit_code = 1;
  server_stop(a->server);
  return NULL;
}

static int fail(int code, const char* what, baton_error* err) {
  fprintf(stderr, "ckvd: %s: %s (%s)\n", what, baton_error_message(err), baton_errc_name(baton_error_code(err)));
  baton_error_free(err);
  return code;
}

static int listen_local(int port) {
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int one = 1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(fd, 128) != 0) {
    perror("ckvd: listen");
    return -1;
  }
  return fd;
}

int main(int argc, char** argv) {
  const char *data_dir = NULL, *listen_name = "http", *build_id = "ckvd";
  int port = 8080;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--data-dir") == 0) data_dir = argv[i + 1];
    else if (strcmp(argv[i], "--listen-name") == 0) listen_name = argv[i + 1];
    else if (strcmp(argv[i], "--build-id") == 0) build_id = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    else break;
  }
  if (argc % 2 == 0) {
    fprintf(stderr, "usage: ckvd [--data-dir DIR] [--listen-name NAME] [--build-id ID] [--port PORT]\n");
    return 2;
  }
  if (baton_abi_version() >> 16 != BATON_ABI_VERSION >> 16) {
    fprintf(stderr, "ckvd: libbaton ABI %#x, built for %#x\n", baton_abi_version(), BATON_ABI_VERSION);
    return 2;
  }
  /* Before any thread (baton's inherit the mask): SIGTERM and SIGINT are
   * read from a signalfd by the poll loop. */
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);
  const int signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);

  struct app a = {.exit_code = 0};
  baton_error* err = NULL;
  /* State schema 4: ckvd's kv.log ("CKV1" records). kvd (1), gokvd and
   * rustkvd (2) and pykvd (3) write other formats, so a handoff between
   * ckvd and any of them is refused before any side effect. */
  baton_options opts = {.size = sizeof opts,
                        .build_id = build_id,
                        .state_schema_min = 4,
                        .state_schema_max = 4,
                        .data_dir = data_dir};
  if (baton_create(&opts, &a.daemon, &err) != 0) return fail(2, "baton", err);
  int role = BATON_ROLE_STANDALONE;
  const char* dir = NULL;
  if (baton_role(a.daemon, &role, &err) != 0 || baton_data_dir(a.daemon, &dir, &err) != 0) {
    return fail(2, "baton", err);
  }
  if (store_init(&a.store, dir) != 0) {
    fprintf(stderr, "ckvd: %s\n", a.store.error);
    return 2;
  }
  int listen_fd = -1;
  if (role == BATON_ROLE_STANDALONE) {
    if ((listen_fd = listen_local(port)) < 0) return 1;
  } else if (baton_listener(a.daemon, listen_name, &listen_fd, &err) != 0) {
    return fail(2, "listener", err);
  }
  if ((a.server = server_new(&a.store, listen_fd, signal_fd, on_signal, &a)) == NULL) return 1;

  /* Cold start / standalone: takes the data-dir lock and returns. Successor:
   * runs warm and begin, and returns once we own the data and serve. */
  const baton_hooks hooks = {.size = sizeof hooks, .user = &a, .warm = on_warm, .drain = on_drain,
                             .seal = on_seal, .begin = on_begin, .resume = on_resume, .retire = on_retire};
  if (baton_start(a.daemon, &hooks, &err) != 0) {
    const int code = fail(1, "start", err);
    baton_destroy(a.daemon);
    return code;
  }
  if (role != BATON_ROLE_SUCCESSOR) {
    /* We hold the lock: recover (cutting a torn tail), open the writer. */
    if (store_replay(&a.store, REPLAY_REPAIR) != 0 || store_open_writer(&a.store) != 0) {
      fprintf(stderr, "ckvd: recovery: %s\n", a.store.error);
      baton_destroy(a.daemon);
      return 1;
    }
    server_lock(a.server);
    server_set_accepting(a.server, 1);
    server_unlock(a.server);
  }
  fprintf(stderr, "ckvd: serving at revision %llu\n", (unsigned long long)a.store.revision);

  pthread_t waiter;
  pthread_create(&waiter, NULL, wait_for_exit, &a);
  if (server_run(a.server) != 0) baton_request_exit(a.daemon, 1, NULL); /* the waiter then returns */
  pthread_join(waiter, NULL);
  if (store_close_writer(&a.store) != 0) fprintf(stderr, "ckvd: %s\n", a.store.error);
  baton_destroy(a.daemon);
  server_free(a.server);
  store_free(&a.store);
  fprintf(stderr, "ckvd: exiting with %d\n", a.exit_code);
  return a.exit_code;
}
