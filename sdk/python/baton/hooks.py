"""The daemon's part of a handoff: :class:`Hooks` and what they exchange.

Pure Python: importing this module does not load libbaton.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import NamedTuple, Optional


class Role(enum.IntEnum):
    """How this process was started (``enum baton_role``)."""

    #: No supervisor: the daemon just runs (and binds its own sockets).
    STANDALONE = 0
    #: Started by the supervisor, first of its line (or a restart).
    COLD_START = 1
    #: Started by the supervisor for a handoff.
    SUCCESSOR = 2


class Level(enum.IntEnum):
    """The level of a library event given to the ``log`` callback."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


class SealReport(NamedTuple):
    """What :meth:`Hooks.seal` returns (a plain ``(revision, fingerprint)``
    tuple does too)."""

    #: The last durable revision, 0 <= revision < 2**64.
    revision: int
    #: A digest of the state at ``revision``: printable ASCII, at most 1024 bytes.
    fingerprint: str = ""


@dataclasses.dataclass(frozen=True)
class SealedState:
    """What the incumbent sealed, given to the successor's :meth:`Hooks.begin`."""

    #: False: the incumbent died before sealing; recover from disk.
    sealed: bool
    #: The incumbent's last durable revision.
    revision: int
    #: Its digest of the state at ``revision``.
    fingerprint: str
    #: Bumped by the library for this owner.
    data_generation: int
    #: The lease epoch handed over (0: no lease).
    lease_epoch: int


class Hooks:
    """The daemon's part of a handoff: subclass it and override the methods.

    baton calls them on a library thread (never the thread that called
    :meth:`baton.Daemon.start`), one at a time, never two at once. A hook may
    block as long as it needs: the library keeps heartbeating meanwhile, and
    the other Python threads run (the GIL is released while the hook waits,
    as anywhere in Python).

    A hook fails by raising; a failure rolls the handoff back, and its
    message reaches ``baton upgrade``'s output:

    * :class:`baton.Error`: its code and message, as given;
    * :class:`OSError` (a failed ``fsync``, a full disk, ...):
      ``Errc.IO_ERROR`` with ``"<hook>: <the error>"``;
    * anything else (a bug): ``Errc.INTERNAL`` with the exception's type and
      text, and its traceback on stderr.

    No exception ever unwinds into the library. A hook must not call
    :meth:`~baton.Daemon.start`, :meth:`~baton.Daemon.wait_for_exit` or
    :meth:`~baton.Daemon.close`.

    The defaults do nothing (and :meth:`seal` reports revision 0): right for
    a daemon with no state to hand over. A stateful daemon overrides all six.
    """

    def warm(self) -> None:
        """Successor, before the incumbent is touched: slow start-up that
        needs no ownership (open caches, read-only replay of the data dir)."""

    def drain(self, deadline: Optional[float]) -> None:
        """Incumbent: stop accepting, finish in-flight requests, close
        keep-alive connections at response boundaries and make every
        acknowledged write durable, all by ``deadline``. Keep the listening
        sockets open (the successor accepts on the same ones).

        Args:
            deadline: on the clock of :func:`time.monotonic` (seconds), or
                None for no deadline. ``deadline - time.monotonic()`` is the
                time left.
        """

    def seal(self) -> SealReport:
        """Incumbent: flush and close the writer and report what is durable.
        Once it returns, the library releases the data-dir lock: no write
        may happen after. If the writer failed earlier, report the last
        durable revision.

        Returns:
            :class:`SealReport` (or a ``(revision, fingerprint)`` tuple).
        """
        return SealReport(0, "")

    def begin(self, sealed: SealedState) -> None:
        """Successor: the library holds the data-dir lock now. Replay the
        tail, check it against ``sealed`` (raise to roll back), open the
        writer, start accepting."""

    def resume(self, data_changed: bool) -> None:
        """Incumbent after a rollback, the lock taken again: accept and
        write again.

        Args:
            data_changed: another process owned the data meanwhile: reload
                it from disk rather than trusting memory.
        """

    def retire(self) -> None:
        """Incumbent after the commit: stop serving.
        :meth:`baton.Daemon.wait_for_exit` returns after it did. It cannot
        fail: an exception is printed and ignored."""
