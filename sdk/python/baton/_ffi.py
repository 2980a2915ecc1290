"""libbaton through ctypes: finding the library and declaring baton.h.

Private: the rest of the package calls :func:`lib` and uses the structures
and callback types below; users see only the classes of :mod:`baton`.

The declarations follow ``baton/baton.h`` one to one. ctypes releases the
GIL around every call into the library (``CDLL``, not ``PyDLL``), so a call
that blocks (``baton_start``, ``baton_wait_for_exit``) lets the other Python
threads run; the callbacks (hooks, the log function) take the GIL again when
the library calls them from its own threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Optional

from .errors import Errc, Error

#: The environment variable naming libbaton's path; it wins over the search.
LIBRARY_ENV = "BATON_LIBRARY"
#: The ABI major version this package speaks (baton.h's BATON_ABI_VERSION >> 16).
ABI_MAJOR = 1

_c_int_p = ctypes.POINTER(ctypes.c_int)
_c_char_pp = ctypes.POINTER(ctypes.c_char_p)
_error_pp = ctypes.POINTER(ctypes.c_void_p)  # baton_error**: the struct is opaque

LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p)


class Options(ctypes.Structure):
    """``baton_options``."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("build_id", ctypes.c_char_p),
        ("state_schema_min", ctypes.c_uint32),
        ("state_schema_max", ctypes.c_uint32),
        ("data_dir", ctypes.c_char_p),
        ("log", LOG_FN),
        ("log_user", ctypes.c_void_p),
        ("lease_name", ctypes.c_char_p),
        ("lease_dsn", ctypes.c_char_p),
        ("lease_holder_id", ctypes.c_char_p),
        ("lease_ttl_ms", ctypes.c_int64),
        ("lease_renew_interval_ms", ctypes.c_int64),
        ("lease_op_timeout_ms", ctypes.c_int64),
        ("lease_poll_interval_ms", ctypes.c_int64),
    ]


class SealedStateStruct(ctypes.Structure):
    """``baton_sealed_state`` (filled by the library)."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("sealed", ctypes.c_int),
        ("revision", ctypes.c_uint64),
        ("fingerprint", ctypes.c_char_p),
        ("data_generation", ctypes.c_uint64),
        ("lease_epoch", ctypes.c_uint64),
    ]


class SealReportStruct(ctypes.Structure):
    """``baton_seal_report`` (filled by the seal hook)."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("revision", ctypes.c_uint64),
        ("fingerprint", ctypes.c_char_p),
    ]


# Hooks get `user` (unused: the Python callbacks are bound methods) and the
# opaque baton_hook_ctx*.
WARM_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
DRAIN_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
SEAL_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(SealReportStruct), ctypes.c_void_p)
BEGIN_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(SealedStateStruct), ctypes.c_void_p)
RESUME_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
RETIRE_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class HooksStruct(ctypes.Structure):
    """``baton_hooks``."""

    _fields_ = [
        ("size", ctypes.c_size_t),
        ("user", ctypes.c_void_p),
        ("warm", WARM_FN),
        ("drain", DRAIN_FN),
        ("seal", SEAL_FN),
        ("begin", BEGIN_FN),
        ("resume", RESUME_FN),
        ("retire", RETIRE_FN),
    ]


# name: (restype, argtypes)
_SIGNATURES = {
    "baton_abi_version": (ctypes.c_uint32, []),
    "baton_errc_name": (ctypes.c_char_p, [ctypes.c_int]),
    "baton_error_code": (ctypes.c_int, [ctypes.c_void_p]),
    "baton_error_message": (ctypes.c_char_p, [ctypes.c_void_p]),
    "baton_error_free": (None, [ctypes.c_void_p]),
    "baton_create": (ctypes.c_int, [ctypes.POINTER(Options), ctypes.POINTER(ctypes.c_void_p), _error_pp]),
    "baton_destroy": (None, [ctypes.c_void_p]),
    "baton_role": (ctypes.c_int, [ctypes.c_void_p, _c_int_p, _error_pp]),
    "baton_data_dir": (ctypes.c_int, [ctypes.c_void_p, _c_char_pp, _error_pp]),
    "baton_listener": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, _c_int_p, _error_pp]),
    "baton_listener_count": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), _error_pp]),
    "baton_listener_at": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t, _c_char_pp, _c_int_p, _error_pp]),
    "baton_hook_fail": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]),
    "baton_start": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(HooksStruct), _error_pp]),
    "baton_wait_for_exit": (ctypes.c_int, [ctypes.c_void_p, _c_int_p, _error_pp]),
    "baton_request_exit": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, _error_pp]),
    "baton_report_unhealthy": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, _error_pp]),
    "baton_lease_epoch": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), _error_pp]),
    # Descriptor and state handover (ABI 1.2); baton_handed_fd* is opaque.
    "baton_hand_over": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p,
                                       ctypes.c_size_t, _error_pp]),
    "baton_set_handover_state": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, _error_pp]),
    "baton_take_handed_over": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), _error_pp]),
    "baton_handed_fd_name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "baton_handed_fd_kind": (ctypes.c_int, [ctypes.c_void_p]),
    "baton_handed_fd_fd": (ctypes.c_int, [ctypes.c_void_p]),
    "baton_handed_fd_metadata": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]),
    "baton_handed_fd_free": (None, [ctypes.c_void_p]),
    "baton_take_handover_state": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                                 ctypes.POINTER(ctypes.c_size_t), _error_pp]),
    "baton_free": (None, [ctypes.c_void_p]),
    "baton_accept_handover": (ctypes.c_int, [ctypes.c_void_p, _error_pp]),
    "baton_successor_accepts_handover": (ctypes.c_int, [ctypes.c_void_p]),
    "baton_testing_crash_point": (None, [ctypes.c_char_p]),
    "baton_testing_arm_crash_point": (ctypes.c_int, [ctypes.c_char_p, _error_pp]),
}

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None


def _candidates() -> list:
    """Where to look, in order: $BATON_LIBRARY alone if set, else the
    system's search (ldconfig, LD_LIBRARY_PATH) and the soname itself."""
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        return [explicit]
    found = ctypes.util.find_library("baton")
    return ([found] if found else []) + ["libbaton.so.0"]


def _load() -> ctypes.CDLL:
    tried = []
    handle = None
    for name in _candidates():
        try:
            handle = ctypes.CDLL(name)
            break
        except OSError as e:
            tried.append(str(e))
    if handle is None:
        where = f"${LIBRARY_ENV}={os.environ[LIBRARY_ENV]}" if os.environ.get(LIBRARY_ENV) else "the library path"
        raise Error(
            Errc.FAILED_PRECONDITION,
            f"libbaton not found in {where} ({'; '.join(tried)}): install baton, "
            f"or set {LIBRARY_ENV} to the path of libbaton.so.0",
        )
    for fn, (restype, argtypes) in _SIGNATURES.items():
        try:
            f = getattr(handle, fn)
        except AttributeError:
            raise Error(
                Errc.INCOMPATIBLE, f"{handle._name} has no {fn}: not a libbaton with the C ABI (baton.h)"
            ) from None
        f.restype = restype
        f.argtypes = argtypes
    version = handle.baton_abi_version()
    if version >> 16 != ABI_MAJOR:
        raise Error(
            Errc.INCOMPATIBLE,
            f"{handle._name} speaks the C ABI {version >> 16}.{version & 0xFFFF}; "
            f"this package needs {ABI_MAJOR}.x",
        )
    return handle


def lib() -> ctypes.CDLL:
    """libbaton, loaded and declared on first use.

    Raises:
        Error: FAILED_PRECONDITION when it cannot be found or loaded,
            INCOMPATIBLE when it is no libbaton of ABI major 1.
    """
    global _lib
    with _lock:
        if _lib is None:
            _lib = _load()
        return _lib


def check(rc: int, err: ctypes.c_void_p, what: str) -> None:
    """Raises the :class:`Error` a failed call returned (and frees it)."""
    if rc == 0:
        return
    message = ""
    if err:
        code = lib().baton_error_code(err)
        message = (lib().baton_error_message(err) or b"").decode("utf-8", "replace")
        lib().baton_error_free(err)
        err.value = None
    else:
        code = rc
    raise Error.from_code(code, f"{what}: {message}" if message else what)
