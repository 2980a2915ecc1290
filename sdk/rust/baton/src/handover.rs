//! Descriptor and state handover (C ABI 1.2): the incumbent hands
//! connections (or any fd) and a state blob to the successor instead of
//! closing them; a rollback gives them back to the incumbent.
use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_void;
use std::os::unix::io::{FromRawFd, IntoRawFd, OwnedFd};

use baton_sys as sys;

use crate::error::{Code, Error};
use crate::{c_string, Daemon};

/// What a handed-over descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoverKind {
    /// A connected stream socket (the library checks).
    Connection,
    /// Any other descriptor, unchecked.
    File,
}

impl HandoverKind {
    fn as_raw(self) -> std::os::raw::c_int {
        match self {
            HandoverKind::Connection => sys::BATON_HANDOVER_CONNECTION,
            HandoverKind::File => sys::BATON_HANDOVER_FILE,
        }
    }
}

/// One descriptor handed over: in the successor the incumbent's, in the
/// incumbent after a rollback its own, back.
#[derive(Debug)]
pub struct Handed {
    /// As given to [`Daemon::hand_over`].
    pub name: String,
    /// As given to [`Daemon::hand_over`].
    pub kind: HandoverKind,
    /// The descriptor (close-on-exec), now the caller's: e.g.
    /// `TcpStream::from(handed.fd)`. Its `O_NONBLOCK` flag is the handing
    /// process's (the open file description is shared).
    pub fd: OwnedFd,
    /// As given to [`Daemon::hand_over`]: e.g. the bytes read but not yet
    /// processed, to parse before reading the socket.
    pub metadata: Vec<u8>,
}

/// A refused [`Daemon::hand_over`]: the error, and the descriptor, still
/// the caller's (drop it to close it: the client sees a close, as without
/// handover). `?` turns it into its [`Error`], closing the descriptor.
#[derive(Debug)]
pub struct HandOverError {
    error: Error,
    fd: OwnedFd,
}

impl HandOverError {
    /// Why it was refused.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The descriptor, back.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// The error and the descriptor.
    pub fn into_parts(self) -> (Error, OwnedFd) {
        (self.error, self.fd)
    }
}

impl fmt::Display for HandOverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for HandOverError {}

impl From<HandOverError> for Error {
    fn from(e: HandOverError) -> Error {
        e.error
    }
}

impl Daemon {
    /// Hands `fd` (a `TcpStream`, `UnixStream`, `File` or `OwnedFd`) to the
    /// successor under `name` (unique in the handoff) with `metadata` (at
    /// most 256 KiB, copied), e.g. the bytes read from a connection but not
    /// yet processed. Only from inside the `drain` or `seal` hook (any
    /// thread while it runs), once the daemon stopped using the descriptor.
    ///
    /// Ownership moves with the value: on success the library owns the
    /// descriptor; on error [`HandOverError`] gives it back. Until the
    /// commit it stays this process's: a rollback gives it back to
    /// `resume` ([`Daemon::take_handed_over`]).
    ///
    /// Ask [`Daemon::successor_accepts_handover`] first: a successor that
    /// did not call [`Daemon::accept_handover`] is handed nothing.
    ///
    /// Errors: `FailedPrecondition` (not inside drain or seal, the
    /// successor does not accept handed-over descriptors, or over the
    /// per-handoff maximum), `InvalidArgument` (an empty name or one with a
    /// NUL byte, a "connection" that is no connected stream socket, too
    /// much metadata).
    pub fn hand_over(
        &self,
        kind: HandoverKind,
        name: &str,
        fd: impl Into<OwnedFd>,
        metadata: &[u8],
    ) -> Result<(), HandOverError> {
        let fd: OwnedFd = fd.into();
        let cname = match c_string(name, "a handover name") {
            Ok(n) => n,
            Err(error) => return Err(HandOverError { error, fd }),
        };
        let raw = fd.into_raw_fd();
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle, a valid name, `metadata` valid for the call
        // (copied by the library), and `raw` open: the library owns it on
        // success and leaves it to us on error.
        let rc = unsafe {
            sys::baton_hand_over(
                self.raw,
                kind.as_raw(),
                cname.as_ptr(),
                raw,
                metadata.as_ptr() as *const c_void,
                metadata.len(),
                &mut err,
            )
        };
        Error::take(rc, err).map_err(|error| {
            // SAFETY: refused, so `raw` is still ours and open.
            HandOverError { error, fd: unsafe { OwnedFd::from_raw_fd(raw) } }
        })
    }

    /// Makes `state` (any size; copied into a sealed memfd) the successor's
    /// handover state; a second call replaces the first. Only from inside
    /// the `drain` or `seal` hook, for a successor that accepts a handover
    /// (`FailedPrecondition` otherwise). Not
    /// durable: a rollback gives it back to `resume`, a crash loses it.
    pub fn set_handover_state(&self, state: &[u8]) -> Result<(), Error> {
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle; `state` valid for the call (copied).
        Error::take(
            unsafe { sys::baton_set_handover_state(self.raw, state.as_ptr() as *const c_void, state.len(), &mut err) },
            err,
        )
    }

    /// Every descriptor handed over and not taken yet: in the successor
    /// from its `begin` hook on (the incumbent's), in the incumbent from its
    /// `resume` hook on after a rollback (its own, back). Serve a
    /// successor's only once `start` returned: until then a rollback gives
    /// them back to the incumbent, which must find their requests unread.
    /// Empty when none is left. On error the ones taken before it are
    /// closed. Any thread.
    pub fn take_handed_over(&self) -> Result<Vec<Handed>, Error> {
        let mut out = Vec::new();
        loop {
            let mut h = std::ptr::null_mut();
            let mut err = std::ptr::null_mut();
            // SAFETY: a live handle.
            Error::take(unsafe { sys::baton_take_handed_over(self.raw, &mut h, &mut err) }, err)?;
            if h.is_null() {
                return Ok(out);
            }
            // SAFETY: `h` is a live record until freed below; its strings and
            // bytes are copied first; its fd is ours from the take on (the
            // free does not close it).
            unsafe {
                let mut len = 0usize;
                let meta = sys::baton_handed_fd_metadata(h, &mut len);
                let metadata = if meta.is_null() || len == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(meta as *const u8, len).to_vec()
                };
                let name = CStr::from_ptr(sys::baton_handed_fd_name(h)).to_string_lossy().into_owned();
                let kind = if sys::baton_handed_fd_kind(h) == sys::BATON_HANDOVER_CONNECTION {
                    HandoverKind::Connection
                } else {
                    HandoverKind::File
                };
                let raw = sys::baton_handed_fd_fd(h);
                sys::baton_handed_fd_free(h);
                if raw < 0 {
                    return Err(Error::new(Code::Internal, format!("handed-over {:?} has no descriptor", name)));
                }
                out.push(Handed { name, kind, fd: OwnedFd::from_raw_fd(raw), metadata });
            }
        }
    }

    /// The handover state (see [`Daemon::take_handed_over`] for when),
    /// once: `None` when there is none or it was taken; `Some` of an empty
    /// vector for an empty state. Any thread.
    pub fn take_handover_state(&self) -> Result<Option<Vec<u8>>, Error> {
        let mut data = std::ptr::null_mut();
        let mut len = 0usize;
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle; `data` is malloc'd by the library, copied
        // and freed with baton_free.
        unsafe {
            Error::take(sys::baton_take_handover_state(self.raw, &mut data, &mut len, &mut err), err)?;
            if data.is_null() {
                return Ok(None);
            }
            let state = std::slice::from_raw_parts(data as *const u8, len).to_vec();
            sys::baton_free(data);
            Ok(Some(state))
        }
    }

    /// Says that this daemon's `begin` hook takes what an incumbent hands
    /// over ([`Daemon::take_handed_over`], [`Daemon::take_handover_state`]).
    /// Call it before [`Daemon::start`], from the thread that calls it. The
    /// successor's Hello carries it to the supervisor, which tells the
    /// incumbent: a generation that does not call it is never handed
    /// anything, so its incumbent closes its connections politely instead
    /// of leaving them to a process that would never serve them.
    /// `FailedPrecondition` after `start`.
    pub fn accept_handover(&self) -> Result<(), Error> {
        let mut err = std::ptr::null_mut();
        // SAFETY: a live handle.
        Error::take(unsafe { sys::baton_accept_handover(self.raw, &mut err) }, err)
    }

    /// Inside the `drain` or `seal` hook: whether this handoff's successor
    /// called [`Daemon::accept_handover`]. When `false` (also outside a
    /// handoff, and with a successor or supervisor older than ABI 1.3),
    /// drain without handing over: [`Daemon::hand_over`] would fail. Any
    /// thread.
    pub fn successor_accepts_handover(&self) -> bool {
        // SAFETY: a live handle.
        unsafe { sys::baton_successor_accepts_handover(self.raw) != 0 }
    }
}
