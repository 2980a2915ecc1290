//! Raw declarations of libbaton's C ABI, `include/baton/baton.h`, written by
//! hand. Every item means exactly what the header says; read it for the
//! ownership and thread rules. The safe wrapper is the `baton` crate.
//!
//! The library is found with pkg-config (`baton.pc`) by this crate's build
//! script.
#![allow(non_camel_case_types)]
#![warn(missing_docs)]

use std::os::raw::{c_char, c_int, c_void};

/// The ABI version this crate was written against: major << 16 | minor.
pub const BATON_ABI_VERSION: u32 = (1 << 16) | 3;

/// Success.
pub const BATON_OK: c_int = 0;
/// Transient: retry the call.
pub const BATON_UNAVAILABLE: c_int = 1;
/// The handoff rolled back, or exit was requested.
pub const BATON_ABORTED: c_int = 2;
/// Fix the state or configuration first.
pub const BATON_FAILED_PRECONDITION: c_int = 3;
/// A deadline passed.
pub const BATON_DEADLINE_EXCEEDED: c_int = 4;
/// The peer sent something malformed.
pub const BATON_PROTOCOL_ERROR: c_int = 5;
/// A bad argument.
pub const BATON_INVALID_ARGUMENT: c_int = 6;
/// Busy.
pub const BATON_BUSY: c_int = 7;
/// Not found.
pub const BATON_NOT_FOUND: c_int = 8;
/// Permission denied.
pub const BATON_PERMISSION_DENIED: c_int = 9;
/// A bug.
pub const BATON_INTERNAL: c_int = 10;
/// Versions or schemas do not overlap.
pub const BATON_INCOMPATIBLE: c_int = 11;
/// The system refused: disk full, I/O error, ...
pub const BATON_IO_ERROR: c_int = 12;

/// No supervisor: the daemon just runs.
pub const BATON_ROLE_STANDALONE: c_int = 0;
/// Started by the supervisor, first of its line (or a restart).
pub const BATON_ROLE_COLD_START: c_int = 1;
/// Started by the supervisor for a handoff.
pub const BATON_ROLE_SUCCESSOR: c_int = 2;

/// Log level: debug.
pub const BATON_LEVEL_DEBUG: c_int = 0;
/// Log level: info.
pub const BATON_LEVEL_INFO: c_int = 1;
/// Log level: warning.
pub const BATON_LEVEL_WARN: c_int = 2;
/// Log level: error.
pub const BATON_LEVEL_ERROR: c_int = 3;

/// Handover kind: a connected `SOCK_STREAM` socket (ABI 1.2).
pub const BATON_HANDOVER_CONNECTION: c_int = 0;
/// Handover kind: any other descriptor, unchecked (ABI 1.2).
pub const BATON_HANDOVER_FILE: c_int = 1;

/// An error: code + message. Opaque; freed with [`baton_error_free`].
#[repr(C)]
pub struct baton_error {
    _private: [u8; 0],
}

/// One generation of a daemon. Opaque; freed with [`baton_destroy`].
#[repr(C)]
pub struct baton_daemon {
    _private: [u8; 0],
}

/// One handed-over descriptor, as received. Opaque; freed with
/// [`baton_handed_fd_free`] (which does not close its fd).
#[repr(C)]
pub struct baton_handed_fd {
    _private: [u8; 0],
}

/// A hook's context, valid only during the hook call.
#[repr(C)]
pub struct baton_hook_ctx {
    _private: [u8; 0],
}

/// Receives the library's structured events (see baton.h).
pub type baton_log_fn = Option<
    unsafe extern "C" fn(user: *mut c_void, level: c_int, event: *const c_char, message: *const c_char, json: *const c_char),
>;

/// Options of [`baton_create`]; `size` = `size_of::<baton_options>()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct baton_options {
    /// `size_of::<baton_options>()`.
    pub size: usize,
    /// Shown by `baton status`; NULL = "".
    pub build_id: *const c_char,
    /// The oldest on-disk state version read and written (0 and 0 = 1..1).
    pub state_schema_min: u32,
    /// The newest on-disk state version read and written.
    pub state_schema_max: u32,
    /// NULL or "": `$BATON_DATA_DIR`.
    pub data_dir: *const c_char,
    /// NULL: JSON lines on stderr.
    pub log: baton_log_fn,
    /// Passed to `log`; must outlive the daemon.
    pub log_user: *mut c_void,
    /// A Postgres leader lease; NULL or "": none.
    pub lease_name: *const c_char,
    /// NULL or "": `$BATON_LEASE_DSN`, then libpq's `PG*` variables.
    pub lease_dsn: *const c_char,
    /// NULL or "": generated.
    pub lease_holder_id: *const c_char,
    /// 0 = 10000.
    pub lease_ttl_ms: i64,
    /// 0 = ttl / 3.
    pub lease_renew_interval_ms: i64,
    /// 0 = 1000.
    pub lease_op_timeout_ms: i64,
    /// 0 = ttl / 4.
    pub lease_poll_interval_ms: i64,
}

/// What the incumbent sealed, given to the successor's begin hook.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct baton_sealed_state {
    /// sizeof what the library filled.
    pub size: usize,
    /// 0: the incumbent died before sealing.
    pub sealed: c_int,
    /// The incumbent's last durable revision.
    pub revision: u64,
    /// Its digest of the state at `revision`; valid during the hook.
    pub fingerprint: *const c_char,
    /// Bumped by the library for this owner.
    pub data_generation: u64,
    /// The lease epoch handed over (0: no lease).
    pub lease_epoch: u64,
}

/// What a seal hook reports.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct baton_seal_report {
    /// Set by the library.
    pub size: usize,
    /// The last durable revision.
    pub revision: u64,
    /// A digest of the state at `revision`; valid until the hook returns.
    pub fingerprint: *const c_char,
}

/// The six hooks of [`baton_start`]; `size` = `size_of::<baton_hooks>()`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct baton_hooks {
    /// `size_of::<baton_hooks>()`.
    pub size: usize,
    /// Passed to every hook; valid until `baton_destroy`.
    pub user: *mut c_void,
    /// Successor: start-up needing no ownership.
    pub warm: Option<unsafe extern "C" fn(user: *mut c_void, ctx: *mut baton_hook_ctx) -> c_int>,
    /// Incumbent: stop serving by the deadline (CLOCK_MONOTONIC ns).
    pub drain: Option<
        unsafe extern "C" fn(user: *mut c_void, deadline_ns: i64, remaining_ms: i64, ctx: *mut baton_hook_ctx) -> c_int,
    >,
    /// Incumbent: close the writer, report revision + fingerprint.
    pub seal:
        Option<unsafe extern "C" fn(user: *mut c_void, report: *mut baton_seal_report, ctx: *mut baton_hook_ctx) -> c_int>,
    /// Successor, holding the lock: replay, check `sealed`, serve.
    pub begin: Option<
        unsafe extern "C" fn(user: *mut c_void, sealed: *const baton_sealed_state, ctx: *mut baton_hook_ctx) -> c_int,
    >,
    /// Incumbent after a rollback: serve again.
    pub resume: Option<unsafe extern "C" fn(user: *mut c_void, data_changed: c_int, ctx: *mut baton_hook_ctx) -> c_int>,
    /// Incumbent after the commit: stop serving.
    pub retire: Option<unsafe extern "C" fn(user: *mut c_void)>,
}

extern "C" {
    /// The library's ABI version (major << 16 | minor).
    pub fn baton_abi_version() -> u32;
    /// A short lower-case name of a code; static storage, never NULL.
    pub fn baton_errc_name(code: c_int) -> *const c_char;
    /// The code of an error (`BATON_INTERNAL` for NULL).
    pub fn baton_error_code(err: *const baton_error) -> c_int;
    /// The message of an error, valid until freed ("" for NULL).
    pub fn baton_error_message(err: *const baton_error) -> *const c_char;
    /// Frees an error; NULL is fine.
    pub fn baton_error_free(err: *mut baton_error);

    /// Reads the supervisor's environment contract and makes a handle. Once per process, before any thread.
    pub fn baton_create(options: *const baton_options, daemon: *mut *mut baton_daemon, err: *mut *mut baton_error)
        -> c_int;
    /// Destroys the handle: releases the lock and lease, stops the library's threads.
    pub fn baton_destroy(daemon: *mut baton_daemon);
    /// The role (`BATON_ROLE_*`) of this process.
    pub fn baton_role(daemon: *const baton_daemon, role: *mut c_int, err: *mut *mut baton_error) -> c_int;
    /// The data dir in use, valid until `baton_destroy`.
    pub fn baton_data_dir(daemon: *const baton_daemon, dir: *mut *const c_char, err: *mut *mut baton_error) -> c_int;
    /// The inherited listening fd called `name` (library-owned until `baton_start` succeeded).
    pub fn baton_listener(
        daemon: *const baton_daemon,
        name: *const c_char,
        fd: *mut c_int,
        err: *mut *mut baton_error,
    ) -> c_int;
    /// How many listeners were inherited.
    pub fn baton_listener_count(daemon: *const baton_daemon, count: *mut usize, err: *mut *mut baton_error) -> c_int;
    /// The inherited listener at `index`: its name and fd.
    pub fn baton_listener_at(
        daemon: *const baton_daemon,
        index: usize,
        name: *mut *const c_char,
        fd: *mut c_int,
        err: *mut *mut baton_error,
    ) -> c_int;

    /// Records why a hook fails (copied) and returns `code`.
    pub fn baton_hook_fail(ctx: *mut baton_hook_ctx, code: c_int, message: *const c_char) -> c_int;

    /// Starts this generation (successor: runs warm and begin). Blocks; once only.
    pub fn baton_start(daemon: *mut baton_daemon, hooks: *const baton_hooks, err: *mut *mut baton_error) -> c_int;
    /// Blocks until this generation must exit; gives the exit code.
    pub fn baton_wait_for_exit(daemon: *mut baton_daemon, exit_code: *mut c_int, err: *mut *mut baton_error) -> c_int;
    /// Makes `baton_wait_for_exit` return `exit_code` (the first request wins).
    pub fn baton_request_exit(daemon: *mut baton_daemon, exit_code: c_int, err: *mut *mut baton_error) -> c_int;
    /// Tells the supervisor this generation is unhealthy (ABI 1.1).
    pub fn baton_report_unhealthy(daemon: *mut baton_daemon, reason: *const c_char, err: *mut *mut baton_error) -> c_int;
    /// Incumbent, inside drain or seal: hands `fd` over under `name` with
    /// `metadata` (both copied). On success the library owns `fd` (ABI 1.2).
    pub fn baton_hand_over(
        daemon: *mut baton_daemon,
        kind: c_int,
        name: *const c_char,
        fd: c_int,
        metadata: *const c_void,
        metadata_len: usize,
        err: *mut *mut baton_error,
    ) -> c_int;
    /// Incumbent, inside drain or seal: `len` bytes of `data` (copied) become
    /// the successor's state; a second call replaces the first (ABI 1.2).
    pub fn baton_set_handover_state(
        daemon: *mut baton_daemon,
        data: *const c_void,
        len: usize,
        err: *mut *mut baton_error,
    ) -> c_int;
    /// The next handed-over descriptor not taken yet, or `*next = NULL` (ABI 1.2).
    pub fn baton_take_handed_over(
        daemon: *mut baton_daemon,
        next: *mut *mut baton_handed_fd,
        err: *mut *mut baton_error,
    ) -> c_int;
    /// Its name, valid until freed ("" for NULL).
    pub fn baton_handed_fd_name(h: *const baton_handed_fd) -> *const c_char;
    /// Its kind, a `BATON_HANDOVER_*` (-1 for NULL).
    pub fn baton_handed_fd_kind(h: *const baton_handed_fd) -> c_int;
    /// The descriptor (O_CLOEXEC), the caller's from the take on (-1 for NULL).
    pub fn baton_handed_fd_fd(h: *const baton_handed_fd) -> c_int;
    /// Its metadata: `*len` bytes, valid until freed (NULL and 0 for NULL).
    pub fn baton_handed_fd_metadata(h: *const baton_handed_fd, len: *mut usize) -> *const c_void;
    /// Frees a handed-over descriptor's record, not the fd. NULL is fine.
    pub fn baton_handed_fd_free(h: *mut baton_handed_fd);
    /// The handover state: `*data` (free with [`baton_free`]) and `*len`, or
    /// `*data = NULL` when there is none (ABI 1.2).
    pub fn baton_take_handover_state(
        daemon: *mut baton_daemon,
        data: *mut *mut c_void,
        len: *mut usize,
        err: *mut *mut baton_error,
    ) -> c_int;
    /// Frees memory the library handed out. NULL is fine.
    pub fn baton_free(p: *mut c_void);
    /// Before `baton_start`: this build's begin takes what is handed over
    /// (ABI 1.3).
    pub fn baton_accept_handover(daemon: *mut baton_daemon, err: *mut *mut baton_error) -> c_int;
    /// Inside drain or seal: 1 when the successor accepts a handover (ABI 1.3).
    pub fn baton_successor_accepts_handover(daemon: *const baton_daemon) -> c_int;

    /// The lease epoch under which this process may lead now, or 0.
    pub fn baton_lease_epoch(daemon: *const baton_daemon, epoch: *mut u64, err: *mut *mut baton_error) -> c_int;

    /// Fires the named crash point if it is the armed one.
    pub fn baton_testing_crash_point(name: *const c_char);
    /// Arms the named crash point in this process.
    pub fn baton_testing_arm_crash_point(name: *const c_char, err: *mut *mut baton_error) -> c_int;
}
