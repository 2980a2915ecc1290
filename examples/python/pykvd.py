#!/usr/bin/env python3
"""pykvd: kvd's HTTP key-value store in Python, upgradable in place by baton.

    pykvd.py [--data-dir DIR] [--listen-name NAME] [--build-id ID] [--port PORT]
             [--schema-min N] [--schema-max N] [--hand-over]

Supervised (``baton supervise ... -- pykvd.py``) it serves the inherited
listener NAME (default "http"); alone it binds 127.0.0.1:PORT (8080). The
data dir defaults to $BATON_DATA_DIR. Exit codes: 0 clean exit, 1 could not
start, 2 bad arguments or environment.

With --hand-over the drain hands its keep-alive connections, with the bytes
read and not processed, to the successor instead of closing them (clients
see no reconnect); every generation serves what it is handed, so the
successor needs no flag. Off by default, like rustkvd's.

This file is the whole baton integration: the six hooks and main(). The
store (kvstore.py) and the server (kvhttp.py) do not know baton exists.
Threads: main runs the accept loop; baton runs the hooks on a thread of its
own; another thread waits for baton to say this generation is done.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from typing import List, Optional, Type

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # kvstore, kvhttp next to us

import baton  # noqa: E402
from kvhttp import Server  # noqa: E402
from kvstore import Store, StoreError  # noqa: E402


class KvHooks(baton.Hooks):
    """The daemon's part of a handoff. Every exception a hook raises rolls
    the handoff back: an OSError as IO_ERROR, a baton.Error with its code."""

    def __init__(self, store: Store, server: Server, daemon: Optional[baton.Daemon] = None,
                 hand_over: bool = False) -> None:
        self.store, self.server = store, server
        self.daemon, self.hand_over = daemon, hand_over

    def warm(self) -> None:
        # Successor, while the incumbent still writes: replay what is there,
        # read-only (stops before a record being written).
        self.store.replay(repair=False)

    def drain(self, deadline: Optional[float]) -> None:
        # Incumbent: stop accepting, close keep-alive connections at response
        # boundaries by the deadline, or with --hand-over hand them to the
        # successor with their unread bytes. Every acknowledged PUT is
        # already fsynced.
        if not self.hand_over or self.daemon is None or not self.daemon.successor_accepts_handover():
            self.server.drain(deadline)
            return
        for i, (sock, unread) in enumerate(self.server.drain_for_handover(deadline)):
            try:
                self.daemon.hand_over(f"http-{i}", sock, unread)
            except baton.Error as e:  # still ours: the client sees a close, as without handover
                print(f"pykvd: closing a connection instead of handing it over: {e}", file=sys.stderr)
                sock.close()

    def seal(self) -> baton.SealReport:
        # Incumbent: fsync and close the writer; report what is durable.
        self.server.set_accepting(False)
        self.store.close_writer()
        return baton.SealReport(self.store.revision, self.store.fingerprint())

    def begin(self, sealed: baton.SealedState) -> None:
        # Successor, now the owner: replay the tail written since warm, check
        # it ends where the incumbent sealed, open the writer, accept.
        self.store.replay(repair=True)
        mine = (self.store.revision, self.store.fingerprint())
        if sealed.sealed and mine != (sealed.revision, sealed.fingerprint):
            raise baton.Error(baton.Errc.FAILED_PRECONDITION,
                              f"replayed revision {mine[0]} fingerprint {mine[1]}, but the incumbent "
                              f"sealed {sealed.revision} {sealed.fingerprint}")
        self.store.open_writer()
        self.server.set_accepting(True)

    def resume(self, data_changed: bool) -> None:
        # Incumbent after a rollback: reload if another process wrote, then
        # write and accept again.
        if data_changed:
            self.store.reload()
        else:
            self.store.replay(repair=True)
        self.store.open_writer()
        self.server.set_accepting(True)
        if self.daemon is not None:
            adopt_handed_over(self.daemon, self.server)  # ours again

    def retire(self) -> None:
        # Incumbent after the commit: the successor serves; stop.
        self.server.stop()


def adopt_handed_over(daemon: baton.Daemon, server: Server) -> None:
    """Serves every connection handed over to this process (by the
    incumbent, or its own back after a rollback); closes anything else."""
    for h in daemon.take_handed_over():
        if h.socket is not None:
            server.adopt(h.socket, h.metadata)
        else:
            h.close()


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pykvd", description="kvd's HTTP key-value store in Python, on baton")
    p.add_argument("--data-dir", help="data directory (default: $BATON_DATA_DIR)")
    p.add_argument("--listen-name", default="http", help="name of the inherited listener to serve")
    p.add_argument("--build-id", default="pykvd", help="build id reported to the supervisor")
    p.add_argument("--port", type=int, default=8080, help="standalone: the port to bind on 127.0.0.1")
    # 3 is pykvd's kv.log format ("PKV1" records, docs/integrate.md "State
    # schemas"): kvd (1), gokvd and rustkvd (2) write other formats, so a
    # handoff between pykvd and them is refused before any side effect.
    p.add_argument("--schema-min", type=int, default=3, help="oldest on-disk state schema this build reads")
    p.add_argument("--schema-max", type=int, default=3, help="newest on-disk state schema this build reads")
    p.add_argument("--hand-over", action="store_true",
                   help="drain: hand keep-alive connections to the successor instead of closing them")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None, hooks_class: Type[KvHooks] = KvHooks) -> int:
    args = parse_args(argv)
    try:
        daemon = baton.Daemon(build_id=args.build_id, data_dir=args.data_dir,
                              state_schema=(args.schema_min, args.schema_max))
        with daemon:
            store = Store(daemon.data_dir)
            if daemon.role == baton.Role.STANDALONE:
                sock = socket.create_server(("127.0.0.1", args.port))
            else:
                sock = daemon.listener(args.listen_name)
            server = Server(store, sock)
            # Cold start / standalone: takes the data-dir lock and returns.
            # Successor: runs warm and begin, returns once we own the data.
            # Begin takes the connections an incumbent hands over (whatever
            # this generation's own --hand-over says).
            daemon.accept_handover()
            try:
                daemon.start(hooks_class(store, server, daemon, args.hand_over))
            except baton.Error as e:
                print(f"pykvd: start: {e}", file=sys.stderr)
                return 1
            if daemon.role != baton.Role.SUCCESSOR:
                try:  # we hold the lock: recover (cutting a torn tail), open the writer
                    store.replay(repair=True)
                    store.open_writer()
                except (OSError, StoreError) as e:
                    print(f"pykvd: recovery: {e}", file=sys.stderr)
                    return 1
                server.set_accepting(True)
            # A successor serves what the incumbent handed over only now that
            # start returned: until then a rollback gives it back.
            adopt_handed_over(daemon, server)
            print(f"pykvd: serving at revision {store.revision}", file=sys.stderr)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: daemon.request_exit(0))

            def stop_when_told() -> None:
                daemon.wait_for_exit()  # after retire, or request_exit, or the supervisor is gone
                server.stop()

            threading.Thread(target=stop_when_told, name="pykvd-wait", daemon=True).start()
            try:
                server.run()  # the accept loop, until server.stop()
            except BaseException:
                daemon.request_exit(1)
                raise
            exit_code = daemon.wait_for_exit()
            store.close_writer()
    except baton.Error as e:
        print(f"pykvd: {e}", file=sys.stderr)
        return 2
    print(f"pykvd: exiting with {exit_code}", file=sys.stderr)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
