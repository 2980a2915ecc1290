"""baton.Daemon: one generation of an upgradable daemon, over libbaton."""

from __future__ import annotations

import atexit
import ctypes
import os
import socket
import threading
import traceback
from typing import Callable, Dict, List, Optional, Set, Tuple, Union

from . import _ffi
from .errors import Errc, Error
from .handover import HandoverMixin
from .hooks import Hooks, Level, Role, SealedState, SealReport

#: ``log(level, event, message, json)``: see :class:`Daemon`.
LogFunction = Callable[[Level, str, str, str], None]

_INT64_MAX = 2**63 - 1
_UINT32_MAX = 2**32 - 1
_FINGERPRINT_MAX = 1024


def _text(value: object, what: str, *, allow_none: bool = True) -> Optional[bytes]:
    """`value` as bytes for a C string: a str or path (None = unset)."""
    if value is None and allow_none:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
    else:
        raise TypeError(f"baton: {what} must be a str, not {type(value).__name__}")
    if b"\0" in raw:
        raise Error(Errc.INVALID_ARGUMENT, f"{what} contains a NUL character")
    return raw


def _int(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"baton: {what} must be an int, not {type(value).__name__}")
    if not lo <= value <= hi:
        raise Error(Errc.INVALID_ARGUMENT, f"{what} {value} is out of range [{lo}, {hi}]")
    return value


def _fail(ctx: Optional[int], code: Errc, message: str) -> int:
    return _ffi.lib().baton_hook_fail(ctx, int(code), message.encode("utf-8", "replace"))


def _call_hook(name: str, ctx: Optional[int], fn: Callable[[], None]) -> int:
    """Runs a hook; turns what it raises into baton_hook_fail (never lets an
    exception reach the library)."""
    try:
        fn()
        return 0
    except Error as e:
        return _fail(ctx, e.code, e.message or f"{name} hook failed")
    except OSError as e:
        return _fail(ctx, Errc.IO_ERROR, f"{name}: {e}")
    except BaseException as e:  # noqa: B902 - a hook must never unwind into C
        traceback.print_exc()
        return _fail(ctx, Errc.INTERNAL, f"{name}: {type(e).__name__}: {e}")


def _seal_report(result: object) -> Tuple[int, bytes]:
    if not isinstance(result, tuple) or len(result) != 2:
        raise Error(Errc.INVALID_ARGUMENT, f"seal must return a SealReport(revision, fingerprint), not {result!r}")
    revision, fingerprint = result
    revision = _int(revision, "seal: revision", 0, 2**64 - 1)
    if not isinstance(fingerprint, str):
        raise Error(Errc.INVALID_ARGUMENT, f"seal: fingerprint must be a str, not {type(fingerprint).__name__}")
    if len(fingerprint) > _FINGERPRINT_MAX or not all(" " <= c <= "~" for c in fingerprint):
        raise Error(Errc.INVALID_ARGUMENT, "seal: fingerprint must be printable ASCII, at most 1024 characters")
    return revision, fingerprint.encode("ascii")


class _Trampolines:
    """The six C callbacks around a :class:`Hooks` object. Kept alive by
    the daemon for its whole life: the library holds raw pointers to them."""

    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks
        self.fingerprint = b""
        self.struct = _ffi.HooksStruct(
            size=ctypes.sizeof(_ffi.HooksStruct),
            user=None,
            warm=_ffi.WARM_FN(self._warm),
            drain=_ffi.DRAIN_FN(self._drain),
            seal=_ffi.SEAL_FN(self._seal),
            begin=_ffi.BEGIN_FN(self._begin),
            resume=_ffi.RESUME_FN(self._resume),
            retire=_ffi.RETIRE_FN(self._retire),
        )

    def _warm(self, _user: Optional[int], ctx: Optional[int]) -> int:
        return _call_hook("warm", ctx, self.hooks.warm)

    def _drain(self, _user: Optional[int], deadline_ns: int, _remaining_ms: int, ctx: Optional[int]) -> int:
        # time.monotonic() is CLOCK_MONOTONIC, the clock of deadline_ns.
        deadline = None if deadline_ns == _INT64_MAX else deadline_ns / 1e9
        return _call_hook("drain", ctx, lambda: self.hooks.drain(deadline))

    def _seal(self, _user: Optional[int], report: "ctypes._Pointer", ctx: Optional[int]) -> int:
        def run() -> None:
            revision, fingerprint = _seal_report(self.hooks.seal())
            # The library copies the string after this callback returned:
            # keep its bytes alive beyond it.
            self.fingerprint = fingerprint
            report.contents.revision = revision
            report.contents.fingerprint = fingerprint

        return _call_hook("seal", ctx, run)

    def _begin(self, _user: Optional[int], sealed: "ctypes._Pointer", ctx: Optional[int]) -> int:
        def run() -> None:
            s = sealed.contents
            known = lambda field: s.size >= getattr(_ffi.SealedStateStruct, field).offset + 8  # noqa: E731
            self.hooks.begin(
                SealedState(
                    sealed=bool(s.sealed),
                    revision=s.revision,
                    fingerprint=(s.fingerprint or b"").decode("ascii", "replace"),
                    data_generation=s.data_generation if known("data_generation") else 0,
                    lease_epoch=s.lease_epoch if known("lease_epoch") else 0,
                )
            )

        return _call_hook("begin", ctx, run)

    def _resume(self, _user: Optional[int], data_changed: int, ctx: Optional[int]) -> int:
        return _call_hook("resume", ctx, lambda: self.hooks.resume(bool(data_changed)))

    def _retire(self, _user: Optional[int]) -> None:
        try:
            self.hooks.retire()
        except BaseException:  # noqa: B902 - nothing may unwind into C
            traceback.print_exc()


class _LogTrampoline:
    def __init__(self, log: LogFunction) -> None:
        self.log = log
        self.fn = _ffi.LOG_FN(self._call)

    def _call(self, _user: Optional[int], level: int, event: bytes, message: bytes, json: bytes) -> None:
        try:
            lvl = Level(level) if level in Level._value2member_map_ else Level.ERROR
            d = lambda b: (b or b"").decode("utf-8", "replace")  # noqa: E731
            self.log(lvl, d(event), d(message), d(json))
        except BaseException:  # noqa: B902 - nothing may unwind into C
            traceback.print_exc()


# Every daemon not closed yet, held strongly: the library holds raw pointers
# to its callbacks, which must not be collected while it may call them.
_live: "Set[Daemon]" = set()


@atexit.register
def _close_all() -> None:
    # The library's threads call back into Python: stop them before the
    # interpreter goes away, if the program did not close its daemon.
    for d in list(_live):
        d.close()


class Daemon(HandoverMixin):
    """One generation of an upgradable daemon.

    Create it first thing in ``main``, before starting threads: it reads and
    removes the supervisor's environment contract (``LISTEN_FDS``,
    ``BATON_CONTROL_FD``, ``BATON_ROLE``, ...) and arms ``BATON_CRASH_AT``.
    Once per process. Use it as a context manager (or call :meth:`close`)::

        with baton.Daemon(build_id="mykv 1.2") as daemon:
            sock = daemon.listener("http")
            daemon.start(MyHooks(...))   # successor: warm + begin run here
            ...serve until daemon.wait_for_exit() returns its exit code...

    Args:
        build_id: shown by ``baton status``.
        data_dir: the data directory; None = ``$BATON_DATA_DIR`` (one of
            them is required).
        state_schema: the (oldest, newest) on-disk state versions this build
            reads and writes; the supervisor refuses a successor whose range
            does not overlap the incumbent's.
        log: receives every library event as ``log(level, event, message,
            json)``: ``event`` a dotted stable name ("handoff.phase"),
            ``json`` the whole event as one JSON object. Called from several
            library threads, possibly at once: must be thread-safe and quick
            and must not call this daemon's methods. None: JSON lines on
            stderr.
        lease_name: a Postgres leader lease held while serving and handed
            over inside Seal; None: no lease.
        lease_dsn, lease_holder_id, lease_ttl_ms, lease_renew_interval_ms,
        lease_op_timeout_ms, lease_poll_interval_ms: the lease's settings
            (None or 0: the library's defaults; see ``docs/lease.md``).

    Raises:
        Error: INVALID_ARGUMENT (no data dir, an empty schema range, bad
            lease settings), FAILED_PRECONDITION (libbaton or libpq missing),
            and whatever is wrong with the supervisor's environment.
        TypeError: an argument of the wrong type.
    """

    def __init__(
        self,
        *,
        build_id: str = "",
        data_dir: Union[str, "os.PathLike[str]", None] = None,
        state_schema: Tuple[int, int] = (1, 1),
        log: Optional[LogFunction] = None,
        lease_name: Optional[str] = None,
        lease_dsn: Optional[str] = None,
        lease_holder_id: Optional[str] = None,
        lease_ttl_ms: int = 0,
        lease_renew_interval_ms: int = 0,
        lease_op_timeout_ms: int = 0,
        lease_poll_interval_ms: int = 0,
    ) -> None:
        self._handle: Optional[int] = None
        self._mu = threading.Lock()
        self._trampolines: List[_Trampolines] = []  # C holds their pointers: alive as long as we are
        self._started = False
        self._waiter: Optional[threading.Thread] = None
        self._exited = threading.Event()
        self._exit_code = 0
        self._exit_error: Optional[Error] = None
        if not isinstance(state_schema, tuple) or len(state_schema) != 2:
            raise TypeError("baton: state_schema must be a (min, max) tuple of ints")
        schema_min = _int(state_schema[0], "state_schema min", 1, _UINT32_MAX)
        schema_max = _int(state_schema[1], "state_schema max", 1, _UINT32_MAX)
        if schema_min > schema_max:
            raise Error(Errc.INVALID_ARGUMENT, f"state_schema ({schema_min}, {schema_max}) is an empty range")
        if log is not None and not callable(log):
            raise TypeError(f"baton: log must be callable, not {type(log).__name__}")
        self._log = _LogTrampoline(log) if log is not None else None
        opts = _ffi.Options(
            size=ctypes.sizeof(_ffi.Options),
            build_id=_text(build_id, "build_id", allow_none=False),
            state_schema_min=schema_min,
            state_schema_max=schema_max,
            data_dir=_text(data_dir, "data_dir"),
            lease_name=_text(lease_name, "lease_name"),
            lease_dsn=_text(lease_dsn, "lease_dsn"),
            lease_holder_id=_text(lease_holder_id, "lease_holder_id"),
            lease_ttl_ms=_int(lease_ttl_ms, "lease_ttl_ms", 0, _INT64_MAX),
            lease_renew_interval_ms=_int(lease_renew_interval_ms, "lease_renew_interval_ms", 0, _INT64_MAX),
            lease_op_timeout_ms=_int(lease_op_timeout_ms, "lease_op_timeout_ms", 0, _INT64_MAX),
            lease_poll_interval_ms=_int(lease_poll_interval_ms, "lease_poll_interval_ms", 0, _INT64_MAX),
        )
        if self._log is not None:
            opts.log = self._log.fn
        lib = _ffi.lib()
        handle = ctypes.c_void_p()
        err = ctypes.c_void_p()
        _ffi.check(lib.baton_create(ctypes.byref(opts), ctypes.byref(handle), ctypes.byref(err)), err, "baton")
        self._handle = handle.value
        _live.add(self)
        role = ctypes.c_int()
        _ffi.check(lib.baton_role(self._handle, ctypes.byref(role), ctypes.byref(err)), err, "role")
        self._role = Role(role.value)
        path = ctypes.c_char_p()
        _ffi.check(lib.baton_data_dir(self._handle, ctypes.byref(path), ctypes.byref(err)), err, "data dir")
        self._data_dir = os.fsdecode(path.value or b"")

    # ---- context manager ----------------------------------------------------

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exit_code=0 if exc_type is None else 1)

    # ---- accessors ----------------------------------------------------------

    def _h(self) -> int:
        if self._handle is None:
            raise Error(Errc.FAILED_PRECONDITION, "the baton.Daemon is closed")
        return self._handle

    @property
    def role(self) -> Role:
        """How this process was started."""
        return self._role

    @property
    def data_dir(self) -> str:
        """The data directory in use."""
        return self._data_dir

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._handle is None

    def listener(self, name: str) -> socket.socket:
        """The inherited listening socket called ``name``.

        A ``udp://`` listener comes back as a datagram socket
        (``SOCK_DGRAM``, bound, never connected: ``recvfrom``/``sendto``,
        no ``accept``): :class:`socket.socket` reads the type and family
        from the descriptor, so no separate helper is needed; check
        ``sock.type`` if a name can be either.

        The socket is yours (close it when done): a duplicate of the
        library's descriptor sharing its open file description with the
        supervisor and the other generation. So its blocking mode is shared
        too: accept only when ``select``/``selectors`` says a connection is
        waiting, and expect :class:`BlockingIOError` (another generation
        may take it first). Keep it open across a drain.

        Raises:
            Error: NOT_FOUND if there is none (e.g. standalone, where the
                daemon binds its own).
        """
        raw = _text(name, "listener name", allow_none=False)
        if not raw:
            raise Error(Errc.INVALID_ARGUMENT, "listener name is empty")
        fd = ctypes.c_int(-1)
        err = ctypes.c_void_p()
        _ffi.check(_ffi.lib().baton_listener(self._h(), raw, ctypes.byref(fd), ctypes.byref(err)), err,
                   f"listener {name!r}")
        return socket.socket(fileno=os.dup(fd.value))

    def listeners(self) -> Dict[str, socket.socket]:
        """Every inherited listener by name (see :meth:`listener`)."""
        lib = _ffi.lib()
        err = ctypes.c_void_p()
        count = ctypes.c_size_t()
        _ffi.check(lib.baton_listener_count(self._h(), ctypes.byref(count), ctypes.byref(err)), err, "listeners")
        out = {}
        for i in range(count.value):
            name = ctypes.c_char_p()
            fd = ctypes.c_int(-1)
            _ffi.check(lib.baton_listener_at(self._h(), i, ctypes.byref(name), ctypes.byref(fd), ctypes.byref(err)),
                       err, f"listener #{i}")
            out[(name.value or b"").decode("utf-8", "replace")] = socket.socket(fileno=os.dup(fd.value))
        return out

    @property
    def lease_epoch(self) -> int:
        """The lease epoch under which this process may act as leader right
        now (the fencing token of its writes), or 0 when it may not."""
        epoch = ctypes.c_uint64()
        err = ctypes.c_void_p()
        _ffi.check(_ffi.lib().baton_lease_epoch(self._h(), ctypes.byref(epoch), ctypes.byref(err)), err,
                   "lease epoch")
        return epoch.value

    # ---- life cycle ---------------------------------------------------------

    def start(self, hooks: Hooks) -> None:
        """Cold start / standalone: takes the data-dir lock (and campaigns
        for the lease); no hook is called. Successor: takes part in the
        handoff; :meth:`Hooks.warm` and :meth:`Hooks.begin` run meanwhile.
        Returns once the daemon may serve. Blocks (other threads run). Once
        only, from the thread that created the daemon.

        Raises:
            Error: FAILED_PRECONDITION (another process holds the data-dir
                lock, or a second call); successor: ABORTED if the handoff
                rolled back or :meth:`request_exit` was called meanwhile.
        """
        if not isinstance(hooks, Hooks):
            raise TypeError(f"baton: hooks must be a baton.Hooks, not {type(hooks).__name__}")
        handle = self._h()
        trampolines = _Trampolines(hooks)
        self._trampolines.append(trampolines)
        err = ctypes.c_void_p()
        rc = _ffi.lib().baton_start(handle, ctypes.byref(trampolines.struct), ctypes.byref(err))
        if rc == 0:
            self._started = True
        _ffi.check(rc, err, "start")

    def _start_waiter(self, handle: int) -> threading.Thread:
        """Lock held: the thread that waits in baton_wait_for_exit (once)."""
        if self._waiter is None:
            self._waiter = threading.Thread(target=self._wait_in_library, args=(handle,),
                                            name="baton-wait-for-exit", daemon=True)
            self._waiter.start()
        return self._waiter

    def _wait_in_library(self, handle: int) -> None:
        code = ctypes.c_int(0)
        err = ctypes.c_void_p()
        try:
            _ffi.check(_ffi.lib().baton_wait_for_exit(handle, ctypes.byref(code), ctypes.byref(err)), err,
                       "wait for exit")
            self._exit_code = code.value
        except Error as e:
            self._exit_error = e
        finally:
            self._exited.set()

    def wait_for_exit(self, timeout: Optional[float] = None) -> Optional[int]:
        """Blocks until this generation must exit: after :meth:`Hooks.retire`
        (committed away), when the supervisor is gone and the failure rules
        say so, or after :meth:`request_exit`. Any thread, several at once.
        The library call runs on a thread of the SDK, so signal handlers
        still run while the main thread waits here.

        Args:
            timeout: seconds; None waits as long as it takes.

        Returns:
            The code the process should exit with; None if ``timeout``
            passed first.
        """
        if not self._exited.is_set():
            with self._mu:
                self._start_waiter(self._h())
            if not self._exited.wait(timeout):
                return None
        if self._exit_error is not None:
            raise self._exit_error
        return self._exit_code

    def request_exit(self, exit_code: int = 0) -> None:
        """Makes :meth:`wait_for_exit` return ``exit_code`` (the first request
        wins), e.g. on SIGTERM; a :meth:`start` still waiting fails with
        ABORTED. Any thread, and from a Python signal handler (which Python
        runs on the main thread). Does nothing once the daemon is closed."""
        code = _int(exit_code, "exit code", 0, 255)
        handle = self._handle
        if handle is None:
            return
        err = ctypes.c_void_p()
        _ffi.check(_ffi.lib().baton_request_exit(handle, code, ctypes.byref(err)), err, "request exit")

    def report_unhealthy(self, reason: str = "") -> None:
        """Tells the supervisor this generation is not healthy, ``reason``
        saying why. During the probation after an upgrade the supervisor
        reverts to the previous binary (a handoff); outside one it is an
        event. Returns once the report is queued. Raises the FAILED_PRECONDITION
        error when standalone, before the supervisor accepted this generation
        (call it after :meth:`start`), or with a supervisor too old to take
        health reports. Any thread."""
        raw = _text(reason, "reason", allow_none=False)
        handle = self._h()
        err = ctypes.c_void_p()
        _ffi.check(
            _ffi.lib().baton_report_unhealthy(handle, raw, ctypes.byref(err)),
            err,
            "report unhealthy",
        )

    def close(self, exit_code: int = 0) -> None:
        """Releases the data-dir lock and the lease if still held and stops
        the library's threads. If the daemon started and has not been told
        to exit, it first requests exit with ``exit_code``. Idempotent."""
        code = _int(exit_code, "exit code", 0, 255)
        with self._mu:
            handle, self._handle = self._handle, None
            if handle is None:
                return
            waiter = self._waiter
            if self._started and waiter is None:
                waiter = self._start_waiter(handle)
        _live.discard(self)
        lib = _ffi.lib()
        if waiter is not None:
            # baton_destroy only once baton_wait_for_exit returned (baton.h).
            lib.baton_request_exit(handle, code, None)
            waiter.join()
        lib.baton_destroy(handle)


def abi_version() -> Tuple[int, int]:
    """The (major, minor) C ABI version of the libbaton in use."""
    v = _ffi.lib().baton_abi_version()
    return v >> 16, v & 0xFFFF

