use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;

use baton_sys as sys;

/// What went wrong, as the C ABI's `baton_errc` numbers it; each says what
/// the caller should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    /// Transient: retry the call.
    Unavailable,
    /// The handoff rolled back, or exit was requested.
    Aborted,
    /// Fix the state or configuration first.
    FailedPrecondition,
    /// A deadline passed.
    DeadlineExceeded,
    /// The peer sent something malformed.
    ProtocolError,
    /// A bad argument.
    InvalidArgument,
    /// Busy.
    Busy,
    /// Not found.
    NotFound,
    /// Permission denied.
    PermissionDenied,
    /// A bug.
    Internal,
    /// Versions or schemas do not overlap.
    Incompatible,
    /// The system refused: disk full, I/O error, ...
    IoError,
}

impl Code {
    /// The code for a `baton_errc` number; `Internal` for 0 or a number
    /// that is no code (an error must have a failure code).
    pub fn from_raw(code: c_int) -> Code {
        match code {
            sys::BATON_UNAVAILABLE => Code::Unavailable,
            sys::BATON_ABORTED => Code::Aborted,
            sys::BATON_FAILED_PRECONDITION => Code::FailedPrecondition,
            sys::BATON_DEADLINE_EXCEEDED => Code::DeadlineExceeded,
            sys::BATON_PROTOCOL_ERROR => Code::ProtocolError,
            sys::BATON_INVALID_ARGUMENT => Code::InvalidArgument,
            sys::BATON_BUSY => Code::Busy,
            sys::BATON_NOT_FOUND => Code::NotFound,
            sys::BATON_PERMISSION_DENIED => Code::PermissionDenied,
            sys::BATON_IO_ERROR => Code::IoError,
            sys::BATON_INCOMPATIBLE => Code::Incompatible,
            _ => Code::Internal,
        }
    }

    /// The `baton_errc` number of the code.
    pub fn as_raw(self) -> c_int {
        match self {
            Code::Unavailable => sys::BATON_UNAVAILABLE,
            Code::Aborted => sys::BATON_ABORTED,
            Code::FailedPrecondition => sys::BATON_FAILED_PRECONDITION,
            Code::DeadlineExceeded => sys::BATON_DEADLINE_EXCEEDED,
            Code::ProtocolError => sys::BATON_PROTOCOL_ERROR,
            Code::InvalidArgument => sys::BATON_INVALID_ARGUMENT,
            Code::Busy => sys::BATON_BUSY,
            Code::NotFound => sys::BATON_NOT_FOUND,
            Code::PermissionDenied => sys::BATON_PERMISSION_DENIED,
            Code::Internal => sys::BATON_INTERNAL,
            Code::Incompatible => sys::BATON_INCOMPATIBLE,
            Code::IoError => sys::BATON_IO_ERROR,
        }
    }

    /// The library's short lower-case name of the code ("failed
    /// precondition").
    pub fn name(self) -> &'static str {
        // SAFETY: baton_errc_name returns static storage, never NULL.
        let name = unsafe { CStr::from_ptr(sys::baton_errc_name(self.as_raw())) };
        name.to_str().unwrap_or("unknown")
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure reported by libbaton, by this crate before it calls libbaton,
/// or by a hook: a [`Code`] and a message with context. A hook that returns
/// one fails with its code and message (`baton_hook_fail`); both reach
/// `baton upgrade`'s output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: Code,
    message: String,
}

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }

    /// What went wrong.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The message, with context; maybe empty.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Turns a C status and its `baton_error` into a result (`Ok` for
    /// `BATON_OK`) and frees the C error.
    pub(crate) fn take(rc: c_int, err: *mut sys::baton_error) -> Result<(), Error> {
        if rc == sys::BATON_OK {
            // SAFETY: err is NULL or an error of ours; freeing NULL is fine.
            unsafe { sys::baton_error_free(err) };
            return Ok(());
        }
        // SAFETY: as above; the message is valid until the free.
        let message = unsafe { CStr::from_ptr(sys::baton_error_message(err)).to_string_lossy().into_owned() };
        unsafe { sys::baton_error_free(err) };
        Err(Error::new(Code::from_raw(rc), message))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "baton: {}", self.code)
        } else {
            write!(f, "baton: {} ({})", self.message, self.code)
        }
    }
}

impl std::error::Error for Error {}

/// An I/O error becomes [`Code::IoError`] with its text, so a hook can use
/// `?` on file operations.
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(Code::IoError, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_numbers() {
        for n in 1..=12 {
            assert_eq!(Code::from_raw(n).as_raw(), n);
        }
        assert_eq!(Code::from_raw(0), Code::Internal);
        assert_eq!(Code::from_raw(99), Code::Internal);
    }

    #[test]
    fn codes_have_the_library_names() {
        assert_eq!(Code::FailedPrecondition.name(), "failed precondition");
        assert_eq!(Code::NotFound.to_string(), "not found");
    }

    #[test]
    fn display_gives_message_and_code() {
        assert_eq!(Error::new(Code::Busy, "try later").to_string(), "baton: try later (busy)");
        assert_eq!(Error::new(Code::Busy, "").to_string(), "baton: busy");
    }

    #[test]
    fn io_errors_map_to_io_error() {
        let e: Error = std::io::Error::new(std::io::ErrorKind::Other, "disk full").into();
        assert_eq!(e.code(), Code::IoError);
        assert_eq!(e.message(), "disk full");
    }

    #[test]
    fn take_maps_a_c_error() {
        assert_eq!(Error::take(sys::BATON_OK, std::ptr::null_mut()), Ok(()));
        let mut err = std::ptr::null_mut();
        let name = std::ffi::CString::new("no.such.point").unwrap();
        // SAFETY: a valid C string and error out-pointer.
        let rc = unsafe { sys::baton_testing_arm_crash_point(name.as_ptr(), &mut err) };
        let e = Error::take(rc, err).unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
        assert!(e.message().contains("no.such.point"), "{}", e);
    }
}
