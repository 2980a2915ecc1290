"""Descriptor and state handover (C ABI 1.2): the incumbent hands
connections (or any descriptor) and a state blob to the successor instead
of closing them; a rollback gives them back to the incumbent."""

from __future__ import annotations

import ctypes
import enum
import fcntl
import os
import socket
from dataclasses import dataclass
from typing import List, Optional, Union

from . import _ffi
from .errors import Errc, Error


class HandoverKind(enum.IntEnum):
    """What a handed-over descriptor is (``baton_handover_kind``)."""

    #: A connected stream socket (the library checks).
    CONNECTION = 0
    #: Any other descriptor, unchecked.
    FILE = 1


@dataclass
class Handed:
    """One descriptor handed over: in the successor the incumbent's, in the
    incumbent after a rollback its own, back.

    Attributes:
        name: as given to :meth:`Daemon.hand_over`.
        kind: as given to :meth:`Daemon.hand_over`.
        metadata: as given to :meth:`Daemon.hand_over`, e.g. the bytes read
            but not yet processed: parse them before reading the socket.
        fd: the descriptor (close-on-exec). A FILE's is yours to close; a
            CONNECTION's belongs to :attr:`socket`.
        socket: for a CONNECTION, a :class:`socket.socket` owning ``fd``
            (close it when done); None for a FILE. Its timeout mirrors the
            descriptor's ``O_NONBLOCK`` flag as the handing process left it
            (0.0: non-blocking, None: blocking); set your own.
    """

    name: str
    kind: HandoverKind
    metadata: bytes
    fd: int
    socket: Optional[socket.socket] = None

    def close(self) -> None:
        """Closes the descriptor (through the socket if there is one)."""
        if self.socket is not None:
            self.socket.close()
        elif self.fd >= 0:
            os.close(self.fd)
        self.fd = -1


def _as_socket(fd: int) -> socket.socket:
    sock = socket.socket(fileno=fd)
    # socket(fileno=) assumes blocking whatever the flag says: tell it the truth.
    if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK:
        sock.settimeout(0.0)
    return sock


class HandoverMixin:
    """The handover methods of :class:`baton.Daemon` (kept apart for size)."""

    def _h(self) -> int:  # pragma: no cover - Daemon's
        raise NotImplementedError

    def hand_over(
        self,
        name: str,
        conn: Union[socket.socket, int],
        metadata: bytes = b"",
        kind: HandoverKind = HandoverKind.CONNECTION,
    ) -> None:
        """Hands ``conn`` to the successor under ``name`` (unique in the
        handoff) with ``metadata`` (bytes-like, at most 256 KiB, copied),
        e.g. the bytes read from a connection but not yet processed. Only
        from inside :meth:`Hooks.drain` or :meth:`Hooks.seal` (any thread
        while it runs), once nothing uses ``conn`` any more.

        Ownership is exact: on success the library owns the descriptor and
        a :class:`socket.socket` is detached (it no longer closes it; the
        connection stays open for the successor); on error ``conn`` is
        untouched and still yours (close it: the client sees a close, as
        without handover). Until the commit the descriptor stays this
        process's: a rollback gives it back to :meth:`Hooks.resume`
        (:meth:`take_handed_over`).

        Args:
            conn: a socket, or a descriptor number (kind FILE for anything
                that is no connected stream socket).

        Ask :meth:`successor_accepts_handover` first: a successor that did
        not call :meth:`accept_handover` is handed nothing.

        Raises:
            Error: FAILED_PRECONDITION (not inside drain or seal, the
                successor does not accept handed-over descriptors, or over
                the per-handoff maximum), INVALID_ARGUMENT (an empty name, a
                "connection" that is no connected stream socket, too much
                metadata).
            TypeError: ``conn`` is neither a socket nor an int.
        """
        from .daemon import _text  # the Daemon module's argument checks

        raw_name = _text(name, "handover name", allow_none=False)
        if isinstance(conn, socket.socket):
            fd = conn.fileno()
        elif isinstance(conn, int) and not isinstance(conn, bool):
            fd = conn
        else:
            raise TypeError(f"baton: hand_over needs a socket.socket or a descriptor, not {type(conn).__name__}")
        meta = bytes(metadata)
        err = ctypes.c_void_p()
        _ffi.check(
            _ffi.lib().baton_hand_over(self._h(), int(HandoverKind(kind)), raw_name, fd, meta, len(meta),
                                       ctypes.byref(err)),
            err,
            f"hand over {name!r}",
        )
        if isinstance(conn, socket.socket):
            conn.detach()

    def accept_handover(self) -> None:
        """Says that this daemon's :meth:`Hooks.begin` takes what an
        incumbent hands over (:meth:`take_handed_over`,
        :meth:`take_handover_state`). Call it before :meth:`start`, from the
        thread that calls it. The successor's Hello carries it to the
        supervisor, which tells the incumbent: a generation that does not
        call it is never handed anything, so its incumbent closes its
        connections politely instead of leaving them to a process that
        would never serve them.

        Raises:
            Error: FAILED_PRECONDITION after :meth:`start`.
        """
        err = ctypes.c_void_p()
        _ffi.check(_ffi.lib().baton_accept_handover(self._h(), ctypes.byref(err)), err, "accept handover")

    def successor_accepts_handover(self) -> bool:
        """Inside :meth:`Hooks.drain` or :meth:`Hooks.seal`: whether this
        handoff's successor called :meth:`accept_handover`. When False (also
        outside a handoff, and with a successor or supervisor older than
        ABI 1.3), drain without handing over: :meth:`hand_over` would fail.
        Any thread."""
        return _ffi.lib().baton_successor_accepts_handover(self._h()) != 0

    def set_handover_state(self, state: bytes) -> None:
        """Makes ``state`` (bytes-like, any size; copied into a sealed memfd)
        the successor's handover state; a second call replaces the first.
        Only from inside drain or seal, for a successor that accepts a
        handover (FAILED_PRECONDITION otherwise). Not
        durable: a rollback gives it back to resume, a crash loses it."""
        data = bytes(state)
        err = ctypes.c_void_p()
        _ffi.check(_ffi.lib().baton_set_handover_state(self._h(), data, len(data), ctypes.byref(err)), err,
                   "set handover state")

    def take_handed_over(self) -> List[Handed]:
        """Every descriptor handed over and not taken yet: in the successor
        from :meth:`Hooks.begin` on (the incumbent's), in the incumbent from
        :meth:`Hooks.resume` on after a rollback (its own, back). Serve a
        successor's only once :meth:`start` returned: until then a rollback
        gives them back to the incumbent, which must find their requests
        unread. Empty when none is left. Any thread."""
        lib = _ffi.lib()
        out: List[Handed] = []
        while True:
            h = ctypes.c_void_p()
            err = ctypes.c_void_p()
            _ffi.check(lib.baton_take_handed_over(self._h(), ctypes.byref(h), ctypes.byref(err)), err,
                       "take handed over")
            if not h.value:
                return out
            try:
                n = ctypes.c_size_t(0)
                meta = lib.baton_handed_fd_metadata(h, ctypes.byref(n))
                metadata = ctypes.string_at(meta, n.value) if meta and n.value else b""
                name = (lib.baton_handed_fd_name(h) or b"").decode("utf-8", "replace")
                kind = lib.baton_handed_fd_kind(h)
                fd = lib.baton_handed_fd_fd(h)  # ours from the take on: the free does not close it
            finally:
                lib.baton_handed_fd_free(h)
            if fd < 0:
                raise Error(Errc.INTERNAL, f"handed-over {name!r} has no descriptor")
            if kind == HandoverKind.CONNECTION:
                out.append(Handed(name, HandoverKind.CONNECTION, metadata, fd, _as_socket(fd)))
            else:
                out.append(Handed(name, HandoverKind.FILE, metadata, fd))

    def take_handover_state(self) -> Optional[bytes]:
        """The handover state (see :meth:`take_handed_over` for when), once:
        None when there is none or it was taken, ``b""`` for an empty
        state. Any thread."""
        lib = _ffi.lib()
        data = ctypes.c_void_p()
        size = ctypes.c_size_t(0)
        err = ctypes.c_void_p()
        _ffi.check(lib.baton_take_handover_state(self._h(), ctypes.byref(data), ctypes.byref(size),
                                                 ctypes.byref(err)), err, "take handover state")
        if not data.value:
            return None
        try:
            return ctypes.string_at(data, size.value)
        finally:
            lib.baton_free(data)
