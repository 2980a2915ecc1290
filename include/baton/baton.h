/* baton's C ABI: what a daemon written in C (or any language with a C FFI:
 * Go's cgo, Rust, Python ctypes) links to be upgradable. A thin layer over
 * the C++ baton::Daemon (baton/daemon.h): the same runtime, the same rules.
 *
 *   baton_options o = {.size = sizeof o, .build_id = "mykv 1.2"};
 *   baton_daemon* d = NULL;
 *   baton_error* err = NULL;
 *   if (baton_create(&o, &d, &err) != 0) die(err);   // before any thread
 *   int fd;
 *   baton_listener(d, "http", &fd, &err);             // inherited listener
 *   baton_hooks h = {.size = sizeof h, .user = &my_state, .warm = my_warm, ...};
 *   baton_start(d, &h, &err);                         // successor: warm + begin run here
 *   ... serve until baton_wait_for_exit(d, &code, &err) returns ...
 *   baton_destroy(d);
 *
 * Conventions (every function):
 * - Every fallible call returns int: 0 (BATON_OK) on success, else a
 *   baton_errc value (the numbers of the C++ baton::Errc). Its last
 *   parameter `baton_error** err` may be NULL; otherwise, on failure, *err
 *   receives a new error (code + message) that the caller frees with
 *   baton_error_free (a non-NULL *err is freed first); on success *err is
 *   left alone. No thread-local state: safe for Go, whose goroutines move
 *   between threads.
 * - Strings passed in are copied before the call returns; the caller keeps
 *   them. Strings handed out are owned by the library, with the lifetime
 *   stated at each function.
 * - Structs crossing the boundary start with `size_t size`: callers set it
 *   to sizeof the struct (their header's version); fields the library does
 *   not know must be zero. Structs the library fills have the size it
 *   filled. Enumerations travel as int.
 * - Nothing blocks unless stated; nothing installs signal handlers.
 * Thread-safety: create, start and destroy from one thread (destroy once no
 * other call on the handle runs); everything else from any thread. */
#ifndef BATON_BATON_H_
#define BATON_BATON_H_

#include <stddef.h>
#include <stdint.h>

#include "baton/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version: major << 16 | minor. A minor bump only adds functions or
 * struct fields at the end; a major bump breaks. Check at start-up:
 * baton_abi_version() >> 16 == BATON_ABI_VERSION >> 16. */
#define BATON_ABI_VERSION ((1u << 16) | 3u)
BATON_EXPORT uint32_t baton_abi_version(void);

/* Status codes; each says what the caller should do next. */
enum baton_errc {
  BATON_OK = 0,
  BATON_UNAVAILABLE = 1,         /* transient: retry the call */
  BATON_ABORTED = 2,             /* the handoff rolled back, or exit was requested */
  BATON_FAILED_PRECONDITION = 3, /* fix the state or configuration first */
  BATON_DEADLINE_EXCEEDED = 4,
  BATON_PROTOCOL_ERROR = 5, /* the peer sent something malformed */
  BATON_INVALID_ARGUMENT = 6,
  BATON_BUSY = 7,
  BATON_NOT_FOUND = 8,
  BATON_PERMISSION_DENIED = 9,
  BATON_INTERNAL = 10,     /* a bug */
  BATON_INCOMPATIBLE = 11, /* versions or schemas do not overlap */
  BATON_IO_ERROR = 12      /* the system refused: disk full, I/O error, ... */
};
/* A short lower-case name ("failed precondition"); "unknown" for a number
 * that is no code. Static storage; never NULL. */
BATON_EXPORT const char* baton_errc_name(int code);

/* An error: code + message with context. Owned by whoever received it. */
typedef struct baton_error baton_error;
BATON_EXPORT int baton_error_code(const baton_error* err);             /* BATON_INTERNAL for NULL */
BATON_EXPORT const char* baton_error_message(const baton_error* err);  /* valid until freed; "" for NULL */
BATON_EXPORT void baton_error_free(baton_error* err);                  /* NULL is fine */

enum baton_role {
  BATON_ROLE_STANDALONE = 0, /* no supervisor: the daemon just runs */
  BATON_ROLE_COLD_START = 1, /* started by the supervisor, first of its line (or a restart) */
  BATON_ROLE_SUCCESSOR = 2   /* started by the supervisor for a handoff */
};

enum baton_level { BATON_LEVEL_DEBUG = 0, BATON_LEVEL_INFO = 1, BATON_LEVEL_WARN = 2, BATON_LEVEL_ERROR = 3 };

/* Receives the library's structured events. `event` is a dotted stable name
 * ("handoff.phase"), `message` human text (maybe ""), `json` the whole event
 * as one JSON object with its fields ({"level":…,"event":…,"msg":…,…}, no
 * newline). The strings are valid only during the call. Called from several
 * library threads, possibly at once: must be thread-safe, quick, and must
 * not call back into baton_* functions of the same daemon. */
typedef void (*baton_log_fn)(void* user, int level, const char* event, const char* message, const char* json);

typedef struct baton_options {
  size_t size;                  /* sizeof(baton_options) */
  const char* build_id;         /* shown by `baton status`; NULL = "" */
  uint32_t state_schema_min;    /* on-disk state versions this build reads and writes; */
  uint32_t state_schema_max;    /* 0 and 0 = 1..1 */
  const char* data_dir;         /* NULL or "": $BATON_DATA_DIR; one of them is required */
  baton_log_fn log;             /* NULL: JSON lines on stderr */
  void* log_user;               /* passed to `log`; must outlive the daemon */
  /* A Postgres leader lease held while serving and handed over inside Seal
   * (docs/lease.md). lease_name NULL or "": the supervisor's [lease] if it
   * gives one (BATON_LEASE_NAME, _DSN, _TTL_MS, _OP_TIMEOUT_MS), else no lease
   * (libpq never loaded). */
  const char* lease_name;
  const char* lease_dsn;        /* NULL or "": $BATON_LEASE_DSN, then libpq's PG* variables */
  const char* lease_holder_id;  /* NULL or "": a generated id, unique per process; else a label (<= 64 bytes) put before it */
  int64_t lease_ttl_ms;         /* 0 = 10000 */
  int64_t lease_renew_interval_ms; /* 0 = ttl / 3 */
  int64_t lease_op_timeout_ms;  /* 0 = 1000 */
  int64_t lease_poll_interval_ms;  /* 0 = ttl / 4 */
} baton_options;

/* One generation of a daemon, opaque. */
typedef struct baton_daemon baton_daemon;

/* Reads and removes the supervisor's environment contract (LISTEN_FDS,
 * BATON_CONTROL_FD, BATON_ROLE, ...) and arms BATON_CRASH_AT. Call once per
 * process, before starting any thread. `options` NULL = all defaults. On
 * success *daemon is a new handle (free it with baton_destroy). Errors:
 * INVALID_ARGUMENT (daemon NULL, options.size too small, no data dir, empty
 * schema range, bad lease settings), INCOMPATIBLE (options carries non-zero
 * fields this library does not know), FAILED_PRECONDITION (a lease whose
 * libpq cannot be loaded), and whatever is wrong with the environment. */
BATON_EXPORT int baton_create(const baton_options* options, baton_daemon** daemon, baton_error** err);

/* Destroys the handle: releases the data-dir lock and the lease if still
 * held, stops the library's threads. Call it after baton_wait_for_exit
 * returned, or after baton_start failed, or if baton_start was never
 * called. NULL is fine. */
BATON_EXPORT void baton_destroy(baton_daemon* daemon);

/* *role = a baton_role value. */
BATON_EXPORT int baton_role(const baton_daemon* daemon, int* role, baton_error** err);
/* The data dir in use; *dir is valid until baton_destroy. */
BATON_EXPORT int baton_data_dir(const baton_daemon* daemon, const char** dir, baton_error** err);

/* The inherited listening socket called `name` (NOT_FOUND if none: e.g.
 * standalone, where the daemon binds its own). The fd is a listening
 * stream socket (tcp://, unix:) or, for a udp:// listener, a bound,
 * unconnected SOCK_DGRAM socket to recvfrom/sendto on (getsockopt SO_TYPE
 * tells them apart); O_CLOEXEC; it belongs to the library until
 * baton_start returns successfully, then to the caller. Listener fds must
 * stay open across a drain: the supervisor keeps its own copy for the
 * successor (datagrams wait in the socket meanwhile). */
BATON_EXPORT int baton_listener(const baton_daemon* daemon, const char* name, int* fd, baton_error** err);
/* All inherited listeners: *count of them, then each by index (0-based;
 * NOT_FOUND past the end). *name is valid until baton_destroy. */
BATON_EXPORT int baton_listener_count(const baton_daemon* daemon, size_t* count, baton_error** err);
BATON_EXPORT int baton_listener_at(const baton_daemon* daemon, size_t index, const char** name, int* fd,
                                   baton_error** err);

/* ---- Hooks: the daemon's part of a handoff --------------------------------
 * Every hook runs on a library thread (not the thread that called
 * baton_start), one at a time, never two at once; it may block as long as
 * it needs (the library keeps heartbeating meanwhile). A hook returns 0 for
 * success or a baton_errc for failure, which rolls the handoff back; give
 * the reason with baton_hook_fail. A hook must not unwind (C++ exception,
 * Rust panic) through the library, and must not call baton_start,
 * baton_wait_for_exit or baton_destroy. */
typedef struct baton_hook_ctx baton_hook_ctx; /* valid only during the hook call */

/* Records why the hook fails (copied) and returns `code`, so a hook can end
 * with `return baton_hook_fail(ctx, BATON_IO_ERROR, "seal: fsync: ...");`.
 * The hook's return value decides: returning 0 ignores it. A failure
 * without a message is reported as "<hook> hook failed". */
BATON_EXPORT int baton_hook_fail(baton_hook_ctx* ctx, int code, const char* message);

/* What the incumbent sealed, given to the successor's begin hook. Filled by
 * the library; `fingerprint` is valid during the hook only. */
typedef struct baton_sealed_state {
  size_t size;                /* sizeof what the library filled */
  int sealed;                 /* 0: the incumbent died before sealing; recover from disk */
  uint64_t revision;          /* the incumbent's last durable revision */
  const char* fingerprint;    /* its digest of the state at `revision` */
  uint64_t data_generation;   /* bumped by the library for this owner */
  uint64_t lease_epoch;       /* the lease epoch handed over (0: no lease) */
} baton_sealed_state;

/* What a seal hook reports. The library zeroes it and sets `size` before the
 * call; the hook sets the fields. `fingerprint` (NULL = "") must stay valid
 * until the hook returns (it is copied) and be printable ASCII, at most
 * 1024 bytes. */
typedef struct baton_seal_report {
  size_t size;
  uint64_t revision;        /* the last durable revision */
  const char* fingerprint;  /* a digest of the state at `revision` */
} baton_seal_report;

typedef struct baton_hooks {
  size_t size; /* sizeof(baton_hooks) */
  void* user;  /* passed to every hook; must stay valid until baton_destroy */
  /* Successor, before the incumbent is touched: slow start-up that needs
   * no ownership (open caches, read-only replay of the data dir). */
  int (*warm)(void* user, baton_hook_ctx* ctx);
  /* Incumbent: stop accepting, finish in-flight requests, close keep-alive
   * connections at response boundaries, make every acknowledged write
   * durable, by the deadline: `deadline_ns` on CLOCK_MONOTONIC
   * (clock_gettime), also given as `remaining_ms` from the call (>= 0).
   * INT64_MAX for both: no deadline. Keep the listening fds open. */
  int (*drain)(void* user, int64_t deadline_ns, int64_t remaining_ms, baton_hook_ctx* ctx);
  /* Incumbent: flush and close the writer, report revision + fingerprint.
   * Once it returns 0 the library releases the data-dir lock: no write may
   * happen after. If the writer failed earlier, report the last durable
   * revision. */
  int (*seal)(void* user, baton_seal_report* report, baton_hook_ctx* ctx);
  /* Successor: the library holds the data-dir lock. Replay the tail, check
   * `sealed` (an error rolls back), open the writer, start accepting. */
  int (*begin)(void* user, const baton_sealed_state* sealed, baton_hook_ctx* ctx);
  /* Incumbent after a rollback, the lock re-taken: accept and write again.
   * data_changed != 0: another process owned the data meanwhile; reload it
   * from disk rather than trusting memory. */
  int (*resume)(void* user, int data_changed, baton_hook_ctx* ctx);
  /* Incumbent after Commit: stop serving. baton_wait_for_exit returns after
   * it did; the process should then exit with the code it gives. */
  void (*retire)(void* user);
} baton_hooks;

/* Cold start / standalone: takes the data-dir lock (FAILED_PRECONDITION if
 * another process holds it), and campaigns for the lease if any; no hook is
 * called. Successor: takes part in the handoff; warm and begin run from
 * here. Returns once the daemon may serve (successor: after begin
 * succeeded). Blocks the calling thread. `hooks` is copied; all six must be
 * set (INVALID_ARGUMENT). Once only: FAILED_PRECONDITION the second time.
 * Successor: ABORTED if the handoff rolled back or baton_request_exit was
 * called meanwhile. */
BATON_EXPORT int baton_start(baton_daemon* daemon, const baton_hooks* hooks, baton_error** err);

/* Blocks until this generation must exit: after retire (committed away),
 * when the supervisor is gone and the failure rules say so, or after
 * baton_request_exit. *exit_code: the code the process should exit with.
 * Any thread, several at once. */
BATON_EXPORT int baton_wait_for_exit(baton_daemon* daemon, int* exit_code, baton_error** err);

/* Makes baton_wait_for_exit return `exit_code` (the first request wins), e.g.
 * on SIGTERM; a baton_start still waiting fails with ABORTED. Any thread;
 * not async-signal-safe (call it from a thread that waits for signals, or
 * a poll loop reading a signalfd, never from a signal handler). */
BATON_EXPORT int baton_request_exit(baton_daemon* daemon, int exit_code, baton_error** err);

/* Tells the supervisor this generation is not healthy; `reason` (may be
 * NULL; copied) says why. During the probation after an upgrade the
 * supervisor reverts to the previous binary (a handoff: drain, seal and
 * retire run here as for any upgrade); outside one it is an event. Returns
 * once the report is queued. FAILED_PRECONDITION: standalone, not yet
 * accepted by the supervisor (call it after baton_start returned), or a
 * supervisor too old to take health reports. Any thread. ABI 1.1. */
BATON_EXPORT int baton_report_unhealthy(baton_daemon* daemon, const char* reason, baton_error** err);

/* ---- Descriptor and state handover (docs/integrate.md) --------------------
 * ABI 1.2. The incumbent hands connections (and other descriptors, and a
 * state blob of any size) to the successor instead of closing them; until
 * the commit they stay the incumbent's: nobody serves them meanwhile, and a
 * rollback gives every one back to its resume hook. */
enum baton_handover_kind {
  BATON_HANDOVER_CONNECTION = 0, /* a connected SOCK_STREAM socket */
  BATON_HANDOVER_FILE = 1        /* any other descriptor, unchecked */
};
/* Incumbent, only from inside the drain or seal hook: hands `fd` over under
 * `name` (unique in the handoff; copied) with `metadata_len` bytes of
 * `metadata` (at most 256 KiB; copied; may be NULL when the length is 0),
 * e.g. the bytes read but not yet processed. On success the library owns
 * `fd`: stop using it at once. On error the caller still owns it.
 * Check baton_successor_accepts_handover before releasing connections for
 * it. FAILED_PRECONDITION: not inside drain or seal, the successor does not
 * accept handed-over descriptors, or over the per-handoff maximum (1024 by
 * default); INVALID_ARGUMENT: NULL or empty name, a bad kind, a
 * "connection" that is no connected stream socket, too much metadata. Any
 * thread (while the hook runs). */
BATON_EXPORT int baton_hand_over(baton_daemon* daemon, int kind, const char* name, int fd, const void* metadata,
                                 size_t metadata_len, baton_error** err);
/* Incumbent, only from inside the drain or seal hook: `len` bytes of `data`
 * (copied into a sealed memfd; any size) become the successor's state; a
 * second call replaces the first. Fails like baton_hand_over when the
 * successor does not accept a handover. Any thread (while the hook runs). */
BATON_EXPORT int baton_set_handover_state(baton_daemon* daemon, const void* data, size_t len, baton_error** err);
/* One handed-over descriptor, as received; opaque. */
typedef struct baton_handed_fd baton_handed_fd;
/* Successor from its begin hook on (the incumbent's), incumbent from its
 * resume hook on after a rollback (its own, back): the next descriptor not
 * taken yet, or *next = NULL when none is left. Free it with
 * baton_handed_fd_free. Any thread. */
BATON_EXPORT int baton_take_handed_over(baton_daemon* daemon, baton_handed_fd** next, baton_error** err);
/* Its name (valid until freed; "" for NULL). */
BATON_EXPORT const char* baton_handed_fd_name(const baton_handed_fd* h);
/* Its kind, a baton_handover_kind (-1 for NULL). */
BATON_EXPORT int baton_handed_fd_kind(const baton_handed_fd* h);
/* The descriptor (O_CLOEXEC; -1 for NULL). The caller owns it from
 * baton_take_handed_over on: baton_handed_fd_free does not close it. */
BATON_EXPORT int baton_handed_fd_fd(const baton_handed_fd* h);
/* Its metadata: *len bytes at the result (valid until freed; NULL and 0 for
 * NULL). `len` may be NULL. */
BATON_EXPORT const void* baton_handed_fd_metadata(const baton_handed_fd* h, size_t* len);
BATON_EXPORT void baton_handed_fd_free(baton_handed_fd* h); /* NULL is fine */
/* Like baton_take_handed_over, for the state blob: *data (malloc'd; free it
 * with baton_free) and *len, or *data = NULL and *len = 0 when there is
 * none (or it was taken). */
BATON_EXPORT int baton_take_handover_state(baton_daemon* daemon, void** data, size_t* len, baton_error** err);
/* Frees memory the library handed out to be freed by the caller. NULL is fine. */
BATON_EXPORT void baton_free(void* p);
/* ABI 1.3. Before baton_start, from the thread that calls it: this build
 * takes what an incumbent hands over (baton_take_handed_over,
 * baton_take_handover_state) in its begin hook. The successor's Hello
 * carries it to the supervisor, which tells the incumbent. A generation
 * that does not call it is never handed anything: its incumbent's
 * baton_hand_over fails, so the incumbent closes its connections politely
 * instead of leaving them to a process that would never serve them.
 * INVALID_ARGUMENT: daemon NULL; FAILED_PRECONDITION: after baton_start. */
BATON_EXPORT int baton_accept_handover(baton_daemon* daemon, baton_error** err);
/* ABI 1.3. Incumbent, inside the drain or seal hook: 1 when this handoff's
 * successor called baton_accept_handover, 0 when it did not (or is older,
 * or there is no handoff, or daemon is NULL): then drain without handing
 * over. Any thread. */
BATON_EXPORT int baton_successor_accepts_handover(const baton_daemon* daemon);

/* The lease epoch under which this process may act as leader right now, or
 * 0 when it may not (or has no lease). Use it as the fencing token of your
 * writes. Any thread; never blocks. */
BATON_EXPORT int baton_lease_epoch(const baton_daemon* daemon, uint64_t* epoch, baton_error** err);

/* ---- Testing: named crash points (`baton crashpoints`) ------------------- */
/* Fires if `name` is the armed point (the process ends like SIGKILL, exit
 * code 86, after writing a marker line); otherwise returns at once. Any
 * thread. */
BATON_EXPORT void baton_testing_crash_point(const char* name);
/* Arms the point `name` in this process (NOT_FOUND for a name `baton
 * crashpoints` does not list). Not thread-safe with itself. */
BATON_EXPORT int baton_testing_arm_crash_point(const char* name, baton_error** err);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BATON_BATON_H_ */
