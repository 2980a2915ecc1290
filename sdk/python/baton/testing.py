"""Named crash points for tests (``baton crashpoints`` lists them)."""

from __future__ import annotations

import ctypes

from . import _ffi


def crash_point(name: str) -> None:
    """Ends the process like SIGKILL (exit code 86, after a marker line on
    stderr) if ``name`` is the armed point; otherwise returns at once. Any
    thread."""
    _ffi.lib().baton_testing_crash_point(name.encode("utf-8"))


def arm_crash_point(name: str) -> None:
    """Arms the point ``name`` in this process, like ``BATON_CRASH_AT``.

    Raises:
        baton.Error: NOT_FOUND for a name ``baton crashpoints`` does not list.
    """
    err = ctypes.c_void_p()
    _ffi.check(_ffi.lib().baton_testing_arm_crash_point(name.encode("utf-8"), ctypes.byref(err)), err,
               f"crash point {name!r}")
