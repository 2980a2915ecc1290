use std::any::Any;
use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_sys as sys;

use crate::error::{Code, Error};

/// The daemon's part of a handoff.
///
/// libbaton calls the hooks one at a time, never two at once, each on a
/// library thread (not the one that called [`Daemon::start`](crate::Daemon::start));
/// a hook may block as long as it needs, the library keeps heartbeating
/// meanwhile. They take `&self` because the daemon's own threads share the
/// state they change, hence `Send + Sync`. A hook that returns an error rolls
/// the handoff back; the error's code and message reach `baton upgrade`'s
/// output. A hook that panics fails with [`Code::Internal`]: the panic is
/// caught and never unwinds into the C library. Hooks must not call
/// `start` or `wait`, nor drop the [`Daemon`](crate::Daemon).
pub trait Hooks: Send + Sync + 'static {
    /// Successor, before the incumbent is touched: slow start-up that needs
    /// no ownership (open caches, read-only replay of the data dir).
    fn warm(&self) -> Result<(), Error>;

    /// Incumbent: stop accepting, finish in-flight requests, close
    /// keep-alive connections at response boundaries, make every
    /// acknowledged write durable, all by `deadline` (`None`: no deadline).
    /// Keep the inherited listening fds open; dropping the `TcpListener` of
    /// [`Daemon::listener`](crate::Daemon::listener) is fine, it holds a dup.
    fn drain(&self, deadline: Option<Instant>) -> Result<(), Error>;

    /// Incumbent: flush and close the writer, report the last durable
    /// revision and a fingerprint of the state at it. Once it returns `Ok`
    /// the library releases the data-dir lock: no write may happen after.
    /// If the writer failed earlier, report the last durable revision.
    fn seal(&self) -> Result<SealReport, Error>;

    /// Successor, which now holds the data-dir lock: replay the tail, check
    /// `sealed` (an error rolls back), open the writer, start accepting.
    fn begin(&self, sealed: &SealedState) -> Result<(), Error>;

    /// Incumbent after a rollback, the lock re-taken: accept and write
    /// again. `data_changed`: another process owned the data meanwhile;
    /// reload it from disk rather than trusting memory.
    fn resume(&self, data_changed: bool) -> Result<(), Error>;

    /// Incumbent after the commit: stop serving.
    /// [`Daemon::wait`](crate::Daemon::wait) returns after it did; the
    /// process should then exit with the code `wait` gives.
    fn retire(&self);
}

/// What [`Hooks::seal`] reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealReport {
    /// The last durable revision.
    pub revision: u64,
    /// A digest of the state at `revision`: printable ASCII, at most 1024
    /// bytes.
    pub fingerprint: String,
}

/// What the incumbent sealed, given to [`Hooks::begin`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealedState {
    /// `false`: the incumbent died before sealing; recover from disk.
    pub sealed: bool,
    /// The incumbent's last durable revision.
    pub revision: u64,
    /// Its digest of the state at `revision`.
    pub fingerprint: String,
    /// Bumped by the library for this owner.
    pub data_generation: u64,
    /// The lease epoch handed over (0: no lease).
    pub lease_epoch: u64,
}

impl SealedState {
    /// Copies what the library filled (`size` says how much).
    ///
    /// # Safety
    /// `s` points to a `baton_sealed_state` valid for the call.
    unsafe fn from_raw(s: *const sys::baton_sealed_state) -> SealedState {
        let s = &*s;
        let has = |end: usize| s.size >= end;
        let mut out = SealedState::default();
        if has(memoffset_end_sealed()) {
            out.sealed = s.sealed != 0;
        }
        if has(16) {
            out.revision = s.revision;
        }
        if has(24) && !s.fingerprint.is_null() {
            out.fingerprint = CStr::from_ptr(s.fingerprint).to_string_lossy().into_owned();
        }
        if has(32) {
            out.data_generation = s.data_generation;
        }
        if has(40) {
            out.lease_epoch = s.lease_epoch;
        }
        out
    }
}

// The end of `sealed` in baton_sealed_state (after `size`).
const fn memoffset_end_sealed() -> usize {
    std::mem::size_of::<usize>() + std::mem::size_of::<c_int>()
}

/// What the C side keeps as the hooks' `user` pointer (boxed: a thin
/// pointer), alive until `baton_destroy` returned.
pub(crate) struct HookBox {
    hooks: Box<dyn Hooks>,
    /// The last seal's fingerprint: the library copies it after the hook
    /// returned, so it lives here until the next seal or the end.
    fingerprint: Mutex<CString>,
}

impl HookBox {
    pub(crate) fn new(hooks: Box<dyn Hooks>) -> HookBox {
        HookBox { hooks, fingerprint: Mutex::new(CString::default()) }
    }
}

/// The C hooks table for `user`, a `*const HookBox`.
pub(crate) fn table(user: *const HookBox) -> sys::baton_hooks {
    sys::baton_hooks {
        size: std::mem::size_of::<sys::baton_hooks>(),
        user: user as *mut c_void,
        warm: Some(warm),
        drain: Some(drain),
        seal: Some(seal),
        begin: Some(begin),
        resume: Some(resume),
        retire: Some(retire),
    }
}

fn panic_text(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}

/// Runs hook `name` without letting a panic unwind into C, and turns its
/// result into the C status (with `baton_hook_fail` for a failure).
///
/// # Safety
/// `user` is the `*const HookBox` of [`table`]; `ctx` the hook's context.
unsafe fn call(
    name: &str,
    user: *mut c_void,
    ctx: *mut sys::baton_hook_ctx,
    f: impl FnOnce(&dyn Hooks) -> Result<(), Error>,
) -> c_int {
    let hooks: &dyn Hooks = &*(*(user as *const HookBox)).hooks;
    match run(name, || f(hooks)) {
        Ok(()) => sys::BATON_OK,
        Err(e) => fail(ctx, &e),
    }
}

/// Runs a hook's body; a panic becomes an `Internal` error with its text.
fn run(name: &str, f: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => Err(Error::new(Code::Internal, format!("{} hook panicked: {}", name, panic_text(&*p)))),
    }
}

/// Reports `e` through `baton_hook_fail` and returns its code.
unsafe fn fail(ctx: *mut sys::baton_hook_ctx, e: &Error) -> c_int {
    let message = CString::new(e.message().replace('\0', " ")).unwrap_or_default();
    sys::baton_hook_fail(ctx, e.code().as_raw(), message.as_ptr())
}

unsafe extern "C" fn warm(user: *mut c_void, ctx: *mut sys::baton_hook_ctx) -> c_int {
    call("warm", user, ctx, |h| h.warm())
}

unsafe extern "C" fn drain(user: *mut c_void, deadline_ns: i64, remaining_ms: i64, ctx: *mut sys::baton_hook_ctx) -> c_int {
    call("drain", user, ctx, |h| h.drain(deadline(deadline_ns, remaining_ms)))
}

/// The drain deadline as an `Instant`: `deadline_ns` is on CLOCK_MONOTONIC,
/// the clock `Instant` reads on Linux, but an `Instant` cannot be made from
/// a raw value, so it is now + (deadline - the clock now).
fn deadline(deadline_ns: i64, remaining_ms: i64) -> Option<Instant> {
    if deadline_ns == i64::MAX || remaining_ms == i64::MAX {
        return None;
    }
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    let left_ns = if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } == 0 {
        let now_ns = (ts.tv_sec as i64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as i64);
        deadline_ns.saturating_sub(now_ns).max(0) as u64
    } else {
        remaining_ms.max(0) as u64 * 1_000_000
    };
    Instant::now().checked_add(Duration::from_nanos(left_ns))
}

unsafe extern "C" fn seal(user: *mut c_void, report: *mut sys::baton_seal_report, ctx: *mut sys::baton_hook_ctx) -> c_int {
    call("seal", user, ctx, |h| {
        let r = h.seal()?;
        let fingerprint = CString::new(r.fingerprint)
            .map_err(|_| Error::new(Code::InvalidArgument, "seal: the fingerprint holds a NUL byte"))?;
        let mut kept = (*(user as *const HookBox)).fingerprint.lock().unwrap_or_else(|p| p.into_inner());
        *kept = fingerprint;
        (*report).revision = r.revision;
        (*report).fingerprint = kept.as_ptr();
        Ok(())
    })
}

unsafe extern "C" fn begin(user: *mut c_void, sealed: *const sys::baton_sealed_state, ctx: *mut sys::baton_hook_ctx) -> c_int {
    let state = SealedState::from_raw(sealed);
    call("begin", user, ctx, |h| h.begin(&state))
}

unsafe extern "C" fn resume(user: *mut c_void, data_changed: c_int, ctx: *mut sys::baton_hook_ctx) -> c_int {
    call("resume", user, ctx, |h| h.resume(data_changed != 0))
}

unsafe extern "C" fn retire(user: *mut c_void) {
    let hooks: &dyn Hooks = &*(*(user as *const HookBox)).hooks;
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| hooks.retire())) {
        // Nothing to report it to: retire cannot fail.
        eprintln!("baton: retire hook panicked: {}", panic_text(&*p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let e = run("seal", || panic!("disk on fire")).unwrap_err();
        assert_eq!(e, Error::new(Code::Internal, "seal hook panicked: disk on fire"));
        let e = run("warm", || panic!("{} left", 3)).unwrap_err();
        assert_eq!(e.message(), "warm hook panicked: 3 left");
        assert_eq!(run("begin", || Err(Error::new(Code::Busy, "x"))), Err(Error::new(Code::Busy, "x")));
        assert_eq!(run("begin", || Ok(())), Ok(()));
    }

    #[test]
    fn no_deadline_is_none() {
        assert_eq!(deadline(i64::MAX, i64::MAX), None);
    }

    #[test]
    fn a_deadline_in_the_past_is_now() {
        let d = deadline(0, 0).unwrap();
        assert!(d <= Instant::now());
    }

    #[test]
    fn sealed_state_reads_only_what_was_filled() {
        let fp = CString::new("abc").unwrap();
        let mut raw = sys::baton_sealed_state {
            size: std::mem::size_of::<sys::baton_sealed_state>(),
            sealed: 1,
            revision: 7,
            fingerprint: fp.as_ptr(),
            data_generation: 3,
            lease_epoch: 9,
        };
        // SAFETY: a valid struct.
        let s = unsafe { SealedState::from_raw(&raw) };
        assert_eq!(
            s,
            SealedState { sealed: true, revision: 7, fingerprint: "abc".into(), data_generation: 3, lease_epoch: 9 }
        );
        raw.size = 24; // an older library: no data_generation, no lease_epoch
        let s = unsafe { SealedState::from_raw(&raw) };
        assert_eq!((s.revision, s.data_generation, s.lease_epoch), (7, 0, 0));
    }
}
