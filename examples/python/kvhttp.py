"""pykvd's HTTP/1.1 server: one thread accepts, one thread per connection
serves it (keep-alive), and a drain that ends connections only at response
boundaries, or releases them at request boundaries for another process to
adopt. Knows nothing about baton.

    PUT /kv/<key>  body = value; 200 "<revision>" once the record is fsynced
    GET /kv/<key>  200 + value, 404 if absent
    GET /healthz   200 {"status":"ok","pid":...,"revision":...}
"""

from __future__ import annotations

import json
import os
import select
import selectors
import socket
import sys
import threading
import time
from typing import List, Optional, Set, Tuple

from kvstore import Store, StoreError

MAX_HEADER = 16 << 10
MAX_BODY = 1 << 20
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           431: "Request Header Fields Too Large", 501: "Not Implemented", 503: "Service Unavailable"}


class Server:
    """Serves ``store`` on the listening socket ``sock`` (never closed here).

    Threads: :meth:`run` is the accept loop; everything else may be called
    from any thread.
    """

    def __init__(self, store: Store, sock: socket.socket) -> None:
        self.store = store
        self.sock = sock
        # The listening socket's open file description is shared with the
        # supervisor and the other generation: another process may take a
        # connection we were told about, so accept must not block.
        self.sock.setblocking(False)
        self._cv = threading.Condition()
        self._accepting = False
        self._stopped = False
        self._draining = False
        self._releasing = False  # drain_for_handover: connections give themselves up
        self._released: List[Tuple[socket.socket, bytes]] = []
        self._idle_deadline = 0.0  # drain: idle keep-alive connections close after it
        self._deadline = float("inf")  # drain: every connection closes at it
        self._conns: Set[_Connection] = set()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # wakes run()
        self.drain_r, self._drain_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # readable while draining

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # full: run() wakes anyway

    def set_accepting(self, on: bool) -> None:
        """Starts or stops accepting (the listening socket stays open).
        Starting also ends a drain."""
        with self._cv:
            self._accepting = on
            if on and (self._draining or self._releasing):
                self._draining = self._releasing = False
                for sock, _ in self._released:  # released too late for the last drain
                    sock.close()
                self._released.clear()
                while True:
                    try:
                        os.read(self.drain_r, 64)
                    except BlockingIOError:
                        break
            self._wake()

    def drain(self, deadline: Optional[float]) -> None:
        """Stops accepting; every later response says ``Connection: close``
        and ends its connection; idle keep-alive connections get up to 1 s
        (at most half the time left) for one more request; what is still
        open at ``deadline`` (time.monotonic(), None: none) is closed.
        Returns when no connection is left."""
        with self._cv:
            now = time.monotonic()
            self._deadline = deadline if deadline is not None else float("inf")
            self._idle_deadline = now + max(0.0, min(1.0, (self._deadline - now) / 2))
            self._accepting = False
            self._draining = True
            os.write(self._drain_w, b"x")
            self._wake()
            while self._conns and not self._stopped:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    for c in self._conns:
                        c.abort()
                    while self._conns:
                        self._cv.wait()
                    break
                self._cv.wait(None if left == float("inf") else left)

    def drain_for_handover(self, deadline: Optional[float]) -> List[Tuple[socket.socket, bytes]]:
        """Like :meth:`drain`, but keep-alive connections are released at a
        request boundary (between requests, or with a request partly read)
        instead of closed: returns each socket with the bytes read from it
        and not processed, once no connection is served any more. What is
        still served at ``deadline`` is closed."""
        with self._cv:
            self._deadline = deadline if deadline is not None else float("inf")
            self._accepting = False
            self._releasing = True
            os.write(self._drain_w, b"x")  # wakes the connections waiting for bytes
            self._wake()
            while self._conns and not self._stopped:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    for c in self._conns:
                        c.abort()
                    while self._conns:
                        self._cv.wait()
                    break
                self._cv.wait(None if left == float("inf") else left)
            released, self._released = self._released, []
            return released

    def adopt(self, sock: socket.socket, unread: bytes) -> None:
        """Serves a connection another process served before (released by
        its :meth:`drain_for_handover`), starting with ``unread``."""
        sock.setblocking(True)
        conn = _Connection(self, sock, unread)
        with self._cv:
            self._conns.add(conn)
        threading.Thread(target=conn.run, name="pykvd-conn", daemon=True).start()

    def stop(self) -> None:
        """Makes :meth:`run` return; closes every connection."""
        with self._cv:
            self._stopped = True
            self._accepting = False
            for c in self._conns:
                c.abort()
            self._cv.notify_all()
            self._wake()

    def run(self) -> None:
        """The accept loop, until :meth:`stop`."""
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ)
        listening = False
        while True:
            with self._cv:
                if self._stopped:
                    break
                want = self._accepting
            if want != listening:
                if want:
                    sel.register(self.sock, selectors.EVENT_READ)
                else:
                    sel.unregister(self.sock)
                listening = want
            for key, _ in sel.select():
                if key.fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                else:
                    self._accept()
        sel.close()
        with self._cv:
            while self._conns:
                self._cv.wait()

    def _accept(self) -> None:
        with self._cv:  # so that no connection is taken once a drain began
            while self._accepting:
                try:
                    sock, _ = self.sock.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    return  # none left (or another generation took it)
                except OSError as e:  # e.g. out of fds: let the backlog wait
                    print(f"pykvd: accept: {e}", file=sys.stderr)
                    return
                sock.setblocking(True)
                conn = _Connection(self, sock)
                self._conns.add(conn)
                threading.Thread(target=conn.run, name="pykvd-conn", daemon=True).start()

    def _releasing_now(self) -> bool:
        with self._cv:
            return self._releasing and not self._stopped

    def _release(self, conn: "_Connection") -> None:
        with self._cv:
            self._released.append((conn.sock, bytes(conn.buf)))

    def _forget(self, conn: "_Connection") -> None:
        with self._cv:
            self._conns.discard(conn)
            self._cv.notify_all()

    def _wait_plan(self, idle: bool) -> Tuple[bool, float]:
        """(draining, until when to wait for bytes) for a connection."""
        with self._cv:
            if not self._draining:
                return False, float("inf")
            return True, self._idle_deadline if idle else self._deadline

    def _closing(self) -> bool:
        with self._cv:
            return self._draining or self._stopped

    def route(self, method: str, target: bytes, body: bytes) -> Tuple[int, bytes]:
        if method == "GET" and target == b"/healthz":
            health = {"status": "ok", "pid": os.getpid(), "revision": self.store.revision}
            return 200, json.dumps(health, separators=(",", ":")).encode() + b"\n"
        if not target.startswith(b"/kv/") or len(target) == 4:
            return 404, b"no such route\n"
        key = target[4:]
        if method == "GET":
            value = self.store.get(key)
            return (404, b"no such key\n") if value is None else (200, value)
        if method == "PUT":
            try:
                return 200, str(self.store.put(key, body)).encode()
            except StoreError:
                return 503, b"not writable\n"
        return 405, b"method not allowed\n"


class _Released(Exception):
    """A connection gives itself up for handover."""


class _Connection:
    """One client connection, served on its own thread."""

    def __init__(self, server: Server, sock: socket.socket, unread: bytes = b"") -> None:
        self.server = server
        self.sock = sock
        self.buf = bytearray(unread)

    def abort(self) -> None:
        """Any thread: ends the connection now (its thread wakes and leaves)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def run(self) -> None:
        released = False
        try:
            self._serve()
        except _Released:
            released = True
        except OSError:
            pass  # the client went away, or we aborted
        finally:
            if released:
                self.server._release(self)  # open, for the drain to hand over
            else:
                self.sock.close()
            self.server._forget(self)

    def _fill(self) -> bool:
        """Reads more bytes; False if the connection is to close instead:
        the client closed, or a drain's deadline (the idle one if no
        request is under way) passed first."""
        while True:
            # Called with no whole request in buf: a request boundary.
            if self.server._releasing_now():
                raise _Released()
            draining, until = self.server._wait_plan(idle=not self.buf)
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            if not draining:
                poller.register(self.server.drain_r, select.POLLIN)
                timeout = None
            else:
                timeout = max(0, int((until - time.monotonic()) * 1000) + 1) if until != float("inf") else None
            ready = poller.poll(timeout)
            if any(fd == self.sock.fileno() for fd, _ in ready):
                data = self.sock.recv(65536)
                if not data:
                    return False
                self.buf += data
                return True
            if draining and time.monotonic() >= until:
                return False

    def _serve(self) -> None:
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER:
                    return self._respond(431, b"headers too large\n", keep_alive=False)
                if not self._fill():
                    return
                continue
            lines = bytes(self.buf[:end]).split(b"\r\n")
            parts = lines[0].split(b" ")
            if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
                return self._respond(400, b"bad request line\n", keep_alive=False)
            method, target, version = parts[0].decode("latin-1"), parts[1], parts[2]
            keep_alive = version != b"HTTP/1.0"
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    if not value.isdigit():
                        return self._respond(400, b"bad content-length\n", keep_alive=False)
                    length = int(value)
                elif name == b"connection":
                    keep_alive = value == b"keep-alive" or (keep_alive and value != b"close")
                elif name == b"transfer-encoding":
                    return self._respond(501, b"chunked bodies are not supported\n", keep_alive=False)
            if length > MAX_BODY:
                return self._respond(413, b"body too large\n", keep_alive=False)
            while len(self.buf) < end + 4 + length:
                if not self._fill():
                    return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            status, payload = self.server.route(method, target, body)
            if not self._respond(status, payload, keep_alive):
                return

    def _respond(self, status: int, body: bytes, keep_alive: bool) -> bool:
        """Sends a response; True if the connection stays open for the next
        request. A connection that ends is closed gracefully: our side shut
        down, then read until the client closes (no reset)."""
        if status >= 400 and status not in (404, 503):
            keep_alive = False  # after a malformed request, the stream cannot be trusted
        keep = keep_alive and not self.server._closing()
        head = f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nContent-Type: text/plain\r\n"
        head += f"Content-Length: {len(body)}\r\n" + ("\r\n" if keep else "Connection: close\r\n\r\n")
        self.sock.sendall(head.encode("latin-1") + body)
        if keep:
            return True
        self.sock.shutdown(socket.SHUT_WR)
        self.sock.settimeout(1.0)
        try:
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        return False
