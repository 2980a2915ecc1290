//! Zero-downtime binary upgrades for stateful daemons: the Rust SDK of
//! baton, a safe wrapper over libbaton's C ABI (`baton/baton.h`, declared
//! in the `baton-sys` crate).
//!
//! A daemon creates a [`Daemon`] first thing in `main`, serves the listener
//! the supervisor passed it ([`Daemon::listener`], a `TcpListener`, or for
//! a `udp://` one [`Daemon::udp_socket`], a `UdpSocket`; each owns a dup of
//! the inherited fd, so dropping it in a drain leaves the socket open for
//! the successor), implements [`Hooks`] (its part of a handoff) and calls
//! [`Daemon::start`], then [`Daemon::wait`]s until it must exit:
//!
//! ```no_run
//! use baton::{Daemon, Error, Hooks, Options, SealReport, SealedState};
//! use std::time::Instant;
//!
//! struct App; // the daemon's state and server
//!
//! impl Hooks for App {
//!     fn warm(&self) -> Result<(), Error> { Ok(()) }                        // read-only replay
//!     fn drain(&self, _deadline: Option<Instant>) -> Result<(), Error> { Ok(()) } // stop serving
//!     fn seal(&self) -> Result<SealReport, Error> { Ok(SealReport::default()) } // close the writer
//!     fn begin(&self, _sealed: &SealedState) -> Result<(), Error> { Ok(()) } // replay, check, serve
//!     fn resume(&self, _data_changed: bool) -> Result<(), Error> { Ok(()) } // serve again
//!     fn retire(&self) {}                                                  // stop serving
//! }
//!
//! fn main() -> Result<(), Error> {
//!     let daemon = Daemon::new(Options { build_id: "app 1.0".into(), ..Options::default() })?;
//!     let listener = daemon.listener("http")?; // a std::net::TcpListener
//!     daemon.start(App)?;
//!     // ... serve `listener` on threads of your own ...
//!     # drop(listener);
//!     let code = daemon.wait()?;
//!     drop(daemon);
//!     std::process::exit(code);
//! }
//! ```
//!
//! Instead of closing its connections in `drain`, the incumbent can hand
//! them (and a state blob) to the successor: [`Daemon::hand_over`],
//! [`Daemon::set_handover_state`], and in the successor's `begin` (or the
//! incumbent's `resume` after a rollback) [`Daemon::take_handed_over`] and
//! [`Daemon::take_handover_state`]. Hooks reach the daemon through a
//! `Weak<Daemon>` (an `Arc` would keep it alive forever).
//!
//! The whole protocol and its state machines live in libbaton; this crate
//! only translates types. See `docs/sdk-rust.md` for the hook contract.
#![warn(missing_docs)]

mod error;
mod handover;
mod hooks;

use std::ffi::{CStr, CString};
use std::net::{TcpListener, UdpSocket};
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::io::{BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use baton_sys as sys;

pub use error::{Code, Error};
pub use handover::{HandOverError, Handed, HandoverKind};
pub use hooks::{Hooks, SealReport, SealedState};

use hooks::HookBox;

/// Who started this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No supervisor: the daemon just runs (and binds its own sockets).
    Standalone,
    /// Started by the supervisor, first of its line (or a restart).
    ColdStart,
    /// Started by the supervisor for a handoff.
    Successor,
}

/// The severity of a library event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warning.
    Warn,
    /// Error.
    Error,
}

/// Receives the library's events: the level, a dotted stable name
/// ("handoff.phase"), human text, and the whole event as one JSON object.
pub type LogFn = dyn Fn(Level, &str, &str, &str) + Send + Sync + 'static;

/// Options of [`Daemon::new`]. `Options::default()` is valid when
/// `$BATON_DATA_DIR` is set (as `baton supervise` does).
#[derive(Default)]
pub struct Options {
    /// Shown by `baton status`.
    pub build_id: String,
    /// The oldest on-disk state version this build reads and writes
    /// (0 and 0 with `state_schema_max`: 1..1).
    pub state_schema_min: u32,
    /// The newest on-disk state version this build reads and writes.
    pub state_schema_max: u32,
    /// The data dir; `None`: `$BATON_DATA_DIR`. One of them is required.
    pub data_dir: Option<PathBuf>,
    /// Receives the library's events. Called from several library threads,
    /// possibly at once; must be quick and must not call the `Daemon`.
    /// `None`: JSON lines on stderr.
    pub log: Option<Box<LogFn>>,
    /// A Postgres leader lease held while serving and handed over inside
    /// Seal (docs/lease.md); empty: no lease.
    pub lease_name: String,
    /// Empty: `$BATON_LEASE_DSN`, then libpq's `PG*` variables.
    pub lease_dsn: String,
    /// Empty: generated, unique per process.
    pub lease_holder_id: String,
    /// Zero: 10 s.
    pub lease_ttl: Duration,
    /// Zero: the TTL / 3.
    pub lease_renew_interval: Duration,
    /// Zero: 1 s.
    pub lease_op_timeout: Duration,
    /// Zero: the TTL / 4.
    pub lease_poll_interval: Duration,
}

/// One generation of a daemon.
///
/// `Daemon` is `Send` and `Sync`: libbaton lets every function but create,
/// start and destroy run on any thread at once; [`Daemon::start`] is
/// serialized by a mutex here (a second call fails with
/// `FailedPrecondition` without reaching the library), creation happens in
/// [`Daemon::new`] before a `Daemon` exists, and destruction in `Drop`,
/// which the borrow rules keep from running while any other method does.
/// Share it with `Arc` or scoped threads to call [`Daemon::wait`] on one
/// thread and [`Daemon::request_exit`] on another.
///
/// Dropping it releases the data-dir lock and the lease if still held and
/// stops the library's threads: drop it after `wait` returned, after
/// `start` failed, or if `start` was never called.
pub struct Daemon {
    raw: *mut sys::baton_daemon,
    /// The hooks given to start; freed after baton_destroy.
    hooks: Mutex<Option<Box<HookBox>>>,
    /// The log callback; its address is the C side's log_user.
    _log: Option<Box<Box<LogFn>>>,
}

// SAFETY: see the type's documentation: the C ABI's thread rules hold.
unsafe impl Send for Daemon {}
// SAFETY: as above.
unsafe impl Sync for Daemon {}

/// A NUL-free C string of `s`, or `InvalidArgument` naming `what`.
fn c_string(s: &str, what: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::new(Code::InvalidArgument, format!("{} must not hold a NUL byte", what)))
}

fn millis(d: Duration, what: &str) -> Result<i64, Error> {
    i64::try_from(d.as_millis()).map_err(|_| Error::new(Code::InvalidArgument, format!("{} is too long", what)))
}

unsafe extern "C" fn log_trampoline(
    user: *mut c_void,
    level: c_int,
    event: *const c_char,
    message: *const c_char,
    json: *const c_char,
) {
    let f: &LogFn = &**(user as *const Box<LogFn>);
    let s = |p: *const c_char| if p.is_null() { "".into() } else { CStr::from_ptr(p).to_string_lossy() };
    let level = match level {
        sys::BATON_LEVEL_DEBUG => Level::Debug,
        sys::BATON_LEVEL_INFO => Level::Info,
        sys::BATON_LEVEL_WARN => Level::Warn,
        _ => Level::Error,
    };
    let (event, message, json) = (s(event), s(message), s(json));
    // A panic must not unwind into the library; the event is lost.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(level, &event, &message, &json)));
}

impl Daemon {
    /// Reads and removes the supervisor's environment contract
    /// (`LISTEN_FDS`, `BATON_CONTROL_FD`, `BATON_ROLE`, ...) and arms
    /// `BATON_CRASH_AT`. Call it once per process, first thing in `main`,
    /// before starting any thread. Errors: `InvalidArgument` (no data dir,
    /// an empty schema range, bad lease settings), `FailedPrecondition` (a
    /// lease whose libpq cannot be loaded), and whatever is wrong with the
    /// environment.
    pub fn new(options: Options) -> Result<Daemon, Error> {
        // SAFETY: no arguments.
        let abi = unsafe { sys::baton_abi_version() };
        if abi >> 16 != sys::BATON_ABI_VERSION >> 16 {
            return Err(Error::new(
                Code::Incompatible,
                format!("libbaton speaks ABI {}.{}, this crate {}", abi >> 16, abi & 0xffff, sys::BATON_ABI_VERSION >> 16),
            ));
        }
        if options.state_schema_min > options.state_schema_max {
            return Err(Error::new(
                Code::InvalidArgument,
                format!("state schema range [{},{}] is empty", options.state_schema_min, options.state_schema_max),
            ));
        }
        let build_id = c_string(&options.build_id, "the build id")?;
        let data_dir = match &options.data_dir {
            Some(d) => Some(c_string(
                d.to_str().ok_or_else(|| Error::new(Code::InvalidArgument, "the data dir must be UTF-8"))?,
                "the data dir",
            )?),
            None => None,
        };
        let lease_name = c_string(&options.lease_name, "the lease name")?;
        let lease_dsn = c_string(&options.lease_dsn, "the lease DSN")?;
        let lease_holder_id = c_string(&options.lease_holder_id, "the lease holder id")?;
        let log = options.log.map(Box::new);
        let raw_options = sys::baton_options {
            size: std::mem::size_of::<sys::baton_options>(),
            build_id: build_id.as_ptr(),
            state_schema_min: options.state_schema_min,
            state_schema_max: options.state_schema_max,
            data_dir: data_dir.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
            log: if log.is_some() { Some(log_trampoline) } else { None },
            log_user: log.as_ref().map_or(std::ptr::null_mut(), |l| &**l as *const Box<LogFn> as *mut c_void),
            lease_name: lease_name.as_ptr(),
            lease_dsn: lease_dsn.as_ptr(),
            lease_holder_id: lease_holder_id.as_ptr(),
            lease_ttl_ms: millis(options.lease_ttl, "the lease TTL")?,
            lease_renew_interval_ms: millis(options.lease_renew_interval, "the lease renew interval")?,
            lease_op_timeout_ms: millis(options.lease_op_timeout, "the lease operation timeout")?,
            lease_poll_interval_ms: millis(options.lease_poll_interval, "the lease poll interval")?,
        };
        let mut raw = std::ptr::null_mut();
        let mut err = std::ptr::null_mut();
        // SAFETY: valid options whose strings outlive the call (copied).
        Error::take(unsafe { sys::baton_create(&raw_options, &mut raw, &mut err) }, err)?;
        Ok(Daemon { raw, hooks: Mutex::new(None), _log: log })
    }

    /// Who started this process.
    pub fn role(&self) -> Role {
        let mut role: c_int = 0;
        // SAFETY: a live handle; cannot fail with one.
        unsafe { sys::baton_role(self.raw, &mut role, std::ptr::null_mut()) };
        match role {
            sys::BATON_ROLE_COLD_START => Role::ColdStart,
            sys::BATON_ROLE_SUCCESSOR => Role::Successor,
            _ => Role::Standalone,
        }
    }

    /// The data dir in use.
    pub fn data_dir(&self) -> PathBuf {
        let mut dir: *const c_char = std::ptr::null();
        // SAFETY: a live handle; the string is valid until destroy, copied here.
        unsafe {
            sys::baton_data_dir(self.raw, &mut dir, std::ptr::null_mut());
            if dir.is_null() {
                return PathBuf::new();
            }
            PathBuf::from(CStr::from_ptr(dir).to_string_lossy().into_owned())
        }
    }

    /// The names of the inherited listeners, in order.
    pub fn listener_names(&self) -> Vec<String> {
        let mut count = 0usize;
        // SAFETY: a live handle; names are valid until destroy, copied here.
        unsafe {
            sys::baton_listener_count(self.raw, &mut count, std::ptr::null_mut());
            (0..count)
                .filter_map(|i| {
                    let (mut name, mut fd): (*const c_char, c_int) = (std::ptr::null(), -1);
                    (sys::baton_listener_at(self.raw, i, &mut name, &mut fd, std::ptr::null_mut()) == sys::BATON_OK)
                        .then(|| CStr::from_ptr(name).to_string_lossy().into_owned())
                })
                .collect()
        }
    }

    /// The inherited listening socket called `name` as a `TcpListener`
    /// (`NotFound` if there is none: e.g. standalone, where the daemon
    /// binds its own). `InvalidArgument` naming the listener if it is no
    /// TCP listener: a `udp://` one ([`Daemon::udp_socket`] gives it) or a
    /// `unix:` one (wrap a dup of [`Daemon::listener_fd`] in a
    /// `std::os::unix::net::UnixListener`).
    ///
    /// The listener owns a duplicate of the inherited fd (`F_DUPFD_CLOEXEC`):
    /// the fd itself belongs to the library until `start` returns, and the
    /// listening socket must stay open across a drain (the supervisor hands
    /// it to the successor). So dropping the `TcpListener`, e.g. to stop
    /// accepting in a drain, leaves the socket listening; call `listener`
    /// again for a new one after a rollback.
    ///
    /// The socket is shared with the supervisor and the other generation:
    /// its file status flags (`set_nonblocking`) are theirs too.
    pub fn listener(&self, name: &str) -> Result<TcpListener, Error> {
        Ok(TcpListener::from(self.dup_listener(name, Kind::Tcp)?))
    }

    /// The inherited `udp://` listener called `name`, a bound datagram
    /// socket, as a `UdpSocket`: `recv_from` and `send_to`, no `accept`
    /// (`NotFound` if there is none: e.g. standalone, where the daemon
    /// binds its own). `InvalidArgument` naming the listener if it is no
    /// UDP socket: a stream listener (`tcp://`, `unix:`), which
    /// [`Daemon::listener`] gives for TCP.
    ///
    /// The `UdpSocket` owns a duplicate of the inherited fd
    /// (`F_DUPFD_CLOEXEC`): the fd itself belongs to the library until
    /// `start` returns, and the socket must stay bound across a drain (the
    /// supervisor hands it to the successor). So dropping the `UdpSocket`
    /// in a drain leaves the socket bound, the datagrams not yet read
    /// queued on it for the successor (or for a resume); call `udp_socket`
    /// again for a new one after a rollback.
    ///
    /// The socket is shared with the supervisor and the other generation:
    /// its file status flags (`set_nonblocking`) are theirs too, and so are
    /// its socket options (`set_read_timeout` is `SO_RCVTIMEO`, a socket
    /// option): wait with `poll` rather than a read timeout.
    pub fn udp_socket(&self, name: &str) -> Result<UdpSocket, Error> {
        Ok(UdpSocket::from(self.dup_listener(name, Kind::Udp)?))
    }

    /// A duplicate of the inherited listener called `name`, checked to be
    /// the `want` kind of socket.
    fn dup_listener(&self, name: &str, want: Kind) -> Result<OwnedFd, Error> {
        let fd = self.listener_fd(name)?;
        check_listener(name, fd, want)?;
        // SAFETY: the library keeps fd open until destroy, and the
        // process owns it after start: it is open for this borrow.
        unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .map_err(|e| Error::new(Code::IoError, format!("listener {:?}: dup fd {}: {}", name, fd, e)))
    }

    /// The inherited listener called `name` (a listening socket, or for
    /// `udp://` a bound datagram socket) as the fd itself: owned by the
    /// library until `start` returns, then by the process. Do not close it
    /// while the daemon runs.
    pub fn listener_fd(&self, name: &str) -> Result<RawFd, Error> {
        if name.is_empty() {
            return Err(Error::new(Code::InvalidArgument, "a listener name must not be empty"));
        }
        let cname = c_string(name, "a listener name")?;
        let mut fd: c_int = -1;
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle and a valid name.
        Error::take(unsafe { sys::baton_listener(self.raw, cname.as_ptr(), &mut fd, &mut err) }, err)?;
        Ok(fd)
    }

    /// Starts this generation. Cold start or standalone: takes the data-dir
    /// lock (`FailedPrecondition` if another process holds it) and
    /// campaigns for the lease if any; no hook is called. Successor: takes
    /// part in the handoff, and `warm` and `begin` run from here. Returns
    /// once the daemon may serve (successor: after `begin` succeeded); a
    /// successor gets `Aborted` if the handoff rolled back or
    /// [`Daemon::request_exit`] was called meanwhile. Blocks. Once only
    /// (`FailedPrecondition` the second time).
    pub fn start<H: Hooks>(&self, hooks: H) -> Result<(), Error> {
        let user = {
            let mut slot = self.hooks.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_some() {
                return Err(Error::new(Code::FailedPrecondition, "start was already called"));
            }
            let boxed = Box::new(HookBox::new(Box::new(hooks)));
            let user: *const HookBox = &*boxed;
            *slot = Some(boxed);
            user
        };
        let table = hooks::table(user);
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle; `user` lives in self.hooks until after
        // baton_destroy (Drop), as the C ABI requires.
        Error::take(unsafe { sys::baton_start(self.raw, &table, &mut err) }, err)
    }

    /// Blocks until this generation must exit: after `retire` (committed
    /// away), when the supervisor is gone and the failure rules say so, or
    /// after [`Daemon::request_exit`]. Returns the code the process should
    /// exit with. Any thread, several at once.
    pub fn wait(&self) -> Result<i32, Error> {
        let mut code: c_int = 0;
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle.
        Error::take(unsafe { sys::baton_wait_for_exit(self.raw, &mut code, &mut err) }, err)?;
        Ok(code)
    }

    /// Makes [`Daemon::wait`] return `code` (the first request wins), e.g.
    /// on SIGTERM; a `start` still waiting fails with `Aborted`. Any thread,
    /// but not from a signal handler (use a thread that waits for signals).
    pub fn request_exit(&self, code: i32) -> Result<(), Error> {
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle.
        Error::take(unsafe { sys::baton_request_exit(self.raw, code, &mut err) }, err)
    }

    /// Tells the supervisor this generation is not healthy, `reason` saying
    /// why. During the probation after an upgrade it reverts to the
    /// previous binary (a handoff); outside one it is an event. Returns once
    /// queued. `FailedPrecondition`: standalone, not yet accepted (call it
    /// after `start`), or a supervisor too old for health reports. Any thread.
    pub fn report_unhealthy(&self, reason: &str) -> Result<(), Error> {
        let reason = c_string(reason, "reason")?;
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle; `reason` outlives the call (copied by the library).
        Error::take(unsafe { sys::baton_report_unhealthy(self.raw, reason.as_ptr(), &mut err) }, err)
    }

    /// The lease epoch under which this process may act as leader right
    /// now, or 0 when it may not (or has no lease). Use it as the fencing
    /// token of your writes. Never blocks.
    pub fn lease_epoch(&self) -> u64 {
        let mut epoch = 0u64;
        // SAFETY: a live handle.
        if unsafe { sys::baton_lease_epoch(self.raw, &mut epoch, std::ptr::null_mut()) } != sys::BATON_OK {
            return 0;
        }
        epoch
    }
}

/// The kind of socket a typed listener helper gives.
#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    Udp,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Tcp => "a TCP listener",
            Kind::Udp => "a UDP socket",
        }
    }
}

/// Whether `fd`, the listener called `name`, is the `want` kind of socket
/// (`SO_TYPE`, `SO_DOMAIN`); if not, `InvalidArgument` saying what it is
/// and what to use instead.
fn check_listener(name: &str, fd: RawFd, want: Kind) -> Result<(), Error> {
    let get = |opt: c_int, what: &str| {
        socket_option(fd, opt)
            .map_err(|e| Error::new(Code::IoError, format!("listener {:?}: {} of fd {}: {}", name, what, fd, e)))
    };
    let (kind, domain) = (get(libc::SO_TYPE, "SO_TYPE")?, get(libc::SO_DOMAIN, "SO_DOMAIN")?);
    let inet = domain == libc::AF_INET || domain == libc::AF_INET6;
    let refuse = |is: &str, use_instead: &str| {
        Err(Error::new(
            Code::InvalidArgument,
            format!("listener {:?} is {}, not {}: {}", name, is, want.describe(), use_instead),
        ))
    };
    match (want, kind, inet) {
        (Kind::Tcp, libc::SOCK_STREAM, true) | (Kind::Udp, libc::SOCK_DGRAM, true) => Ok(()),
        (_, _, false) if domain == libc::AF_UNIX => {
            refuse("a unix socket (unix:)", "wrap a dup of listener_fd in a std::os::unix::net type")
        }
        (Kind::Tcp, libc::SOCK_DGRAM, true) => refuse("a datagram socket (udp://)", "use udp_socket"),
        (Kind::Udp, libc::SOCK_STREAM, true) => refuse("a stream listener (tcp://)", "use listener"),
        _ => refuse(&format!("a socket of type {} in family {}", kind, domain), "use listener_fd"),
    }
}

/// The `SOL_SOCKET` option `opt` of `fd`, an int.
fn socket_option(fd: RawFd, opt: c_int) -> std::io::Result<c_int> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: an int and its length to fill; a bad fd is an error, not UB.
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, &mut value as *mut c_int as *mut c_void, &mut len) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(value)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: the handle is live and, `&mut self`, no other call runs.
        unsafe { sys::baton_destroy(self.raw) };
        // The library's threads are gone: no hook can run any more.
        self.hooks.get_mut().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Ends the process like SIGKILL (exit code 86, after a marker line) if
/// `name` is the armed crash point (`BATON_CRASH_AT`); otherwise returns at
/// once. For tests.
pub fn testing_crash_point(name: &str) {
    if let Ok(name) = CString::new(name) {
        // SAFETY: a valid C string.
        unsafe { sys::baton_testing_crash_point(name.as_ptr()) };
    }
}

#[cfg(test)]
mod tests;
