"""baton's status codes and the exception that carries them.

Pure Python: importing this module does not load libbaton.
"""

from __future__ import annotations

import enum


class Errc(enum.IntEnum):
    """baton's status codes (``enum baton_errc``, the numbers of the C++
    ``baton::Errc``); each says what the caller should do next."""

    OK = 0
    #: Transient: retry the call.
    UNAVAILABLE = 1
    #: The handoff rolled back, or exit was requested.
    ABORTED = 2
    #: Fix the state or configuration first.
    FAILED_PRECONDITION = 3
    DEADLINE_EXCEEDED = 4
    #: The peer sent something malformed.
    PROTOCOL_ERROR = 5
    INVALID_ARGUMENT = 6
    BUSY = 7
    NOT_FOUND = 8
    PERMISSION_DENIED = 9
    #: A bug.
    INTERNAL = 10
    #: Versions or schemas do not overlap.
    INCOMPATIBLE = 11
    #: The system refused: disk full, I/O error, ...
    IO_ERROR = 12

    @property
    def description(self) -> str:
        """The short lower-case name baton prints ("failed precondition"),
        as ``baton_errc_name`` gives it."""
        return "internal error" if self is Errc.INTERNAL else self.name.lower().replace("_", " ")


class Error(Exception):
    """A failure reported by baton, or one a hook reports to baton.

    Attributes:
        code: what kind of failure (never ``Errc.OK``).
        message: what happened, with context.

    Raise it from a hook to choose the code baton reports::

        raise baton.Error(baton.Errc.IO_ERROR, "seal: fsync kv.log failed")
    """

    code: Errc
    message: str

    def __init__(self, code: Errc, message: str = "") -> None:
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"baton.Error: code must be a baton.Errc, not {type(code).__name__}")
        code = Errc(code)  # ValueError for a number that is no code
        if code == Errc.OK:
            raise ValueError("baton.Error: code must not be Errc.OK")
        if not isinstance(message, str):
            raise TypeError(f"baton.Error: message must be a str, not {type(message).__name__}")
        super().__init__(code, message)
        self.code = code
        self.message = message

    @classmethod
    def from_code(cls, code: int, message: str) -> "Error":
        """The error for a raw ``baton_errc`` number from the library; a
        number that is no code (or 0 given as a failure) becomes INTERNAL
        with the number in the message."""
        try:
            errc = Errc(code)
        except ValueError:
            errc = None
        if errc is None or errc == Errc.OK:
            return cls(Errc.INTERNAL, f"{message} (unexpected status {code})")
        return cls(errc, message)

    def __str__(self) -> str:
        return f"{self.message} ({self.code.description})" if self.message else self.code.description

    def __repr__(self) -> str:
        return f"baton.Error(baton.Errc.{self.code.name}, {self.message!r})"

    def __reduce__(self):
        return (type(self), (self.code, self.message))
