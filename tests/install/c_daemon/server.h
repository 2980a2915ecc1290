/* ckvd's HTTP/1.1 server: one poll() loop on one thread, keep-alive, group
 * commit (every PUT read in one loop turn shares one fdatasync, and is
 * answered only after it). Knows nothing about baton.
 *
 *   PUT /kv/<key>  body = value; 200 "<revision>" once the record is fsynced
 *   GET /kv/<key>  200 + value, 404 if absent
 *   GET /healthz   200 {"status":"ok","pid":…,"revision":…}
 *
 * Threading: server_run owns the loop and holds the server's lock except
 * while it waits in poll(). Other threads (baton's hook thread) take the lock
 * with server_lock before touching the server or its store; the functions
 * marked "thread-safe" take it themselves. */
#ifndef CKVD_SERVER_H_
#define CKVD_SERVER_H_

#include <stdint.h>

#include "store.h"

struct server;

/* `listen_fd`: a listening socket, owned by the caller and never closed
 * here. `signal_fd`: a signalfd (or -1); on a signal the loop calls
 * on_signal(user) with the lock held. NULL on failure (errno set). */
struct server* server_new(struct store* store, int listen_fd, int signal_fd, void (*on_signal)(void* user),
                          void* user);
void server_free(struct server* sv);

/* The poll loop; returns 0 after server_stop, -1 if it failed (out of
 * memory, poll error), every connection closed either way. */
int server_run(struct server* sv);

void server_lock(struct server* sv);
void server_unlock(struct server* sv);
/* Lock held: start or stop accepting new connections (the listening socket
 * stays open either way). Starting also ends a drain. */
void server_set_accepting(struct server* sv, int on);

/* Thread-safe, blocks: stops accepting; every later response says
 * Connection: close and its connection is closed once it is written; idle
 * keep-alive connections get up to 1 s (at most half the time left) to send
 * one more request; whatever is still open at `deadline_ns`
 * (CLOCK_MONOTONIC) is closed. Returns when no connection is left. */
void server_drain(struct server* sv, int64_t deadline_ns);

/* Thread-safe: makes server_run return. */
void server_stop(struct server* sv);

int64_t now_ns(void);

#endif /* CKVD_SERVER_H_ */
