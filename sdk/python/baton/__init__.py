"""baton for Python: make a daemon upgradable in place, with zero downtime.

A thin, idiomatic layer over libbaton's C ABI (``baton/baton.h``) through
:mod:`ctypes`; no other dependency. The library is found with
``ctypes.util.find_library("baton")``, or at the path in ``$BATON_LIBRARY``.

::

    import baton

    class MyHooks(baton.Hooks):
        def warm(self): ...                 # successor: read-only replay
        def drain(self, deadline): ...      # incumbent: stop accepting, finish requests
        def seal(self): return baton.SealReport(revision, fingerprint)
        def begin(self, sealed): ...        # successor: replay the tail, check, serve
        def resume(self, data_changed): ... # incumbent after a rollback
        def retire(self): ...               # incumbent after the commit: stop

    with baton.Daemon(build_id="mykv 1.2") as daemon:
        sock = daemon.listener("http")
        daemon.start(MyHooks())
        ...
        code = daemon.wait_for_exit()

See ``docs/sdk-python.md`` for the whole contract.
"""

from .daemon import Daemon, LogFunction, abi_version
from .errors import Errc, Error
from .handover import Handed, HandoverKind
from .hooks import Hooks, Level, Role, SealedState, SealReport

__all__ = [
    "Daemon",
    "Errc",
    "Error",
    "Handed",
    "HandoverKind",
    "Hooks",
    "Level",
    "LogFunction",
    "Role",
    "SealReport",
    "SealedState",
    "abi_version",
]
__version__ = "0.1.0"
