#!/usr/bin/env python3
"""A daemon that serves nothing, for the Python SDK's handover tests
(tests/sdk/handover_test.cc): it hands over socket pairs and a state in its
drain and seal hooks and records what it receives in begin and resume. The
Go and Rust SDKs have the same probe, trace for trace.

    handover_probe.py DIR

Every generation appends lines "<pid> <what>" to DIR/trace. DIR/handover
"N S", if present: drain makes N connected socket pairs, writes
"ping-<pid>-I" into one end, reads it from the other (bytes read but not
processed) and hands that end over as connection "conn-I" with them as
metadata, and the first end's descriptor as file "peer-I"; seal sets a state
of S bytes starting "state-<pid>". Begin and resume take what was handed
over, write "pong-<pid>-I" into each peer and trace what its connection
reads, then close them. DIR/fail-begin makes begin fail with its contents.
Every generation accepts a handover (accept_handover) unless DIR/no-accept
exists when it starts; drain traces whether the successor accepts, and when
it does not, that a hand-over is refused. SIGTERM asks for exit 0.
"""

import os
import signal
import socket
import sys
from typing import Optional

import baton

DIR = sys.argv[1] if len(sys.argv) == 2 else ""


def trace(line: str) -> None:
    with open(os.path.join(DIR, "trace"), "a") as f:
        f.write(f"{os.getpid()} {line}\n")  # one write: generations append concurrently


def knob(name: str) -> Optional[str]:
    try:
        with open(os.path.join(DIR, name)) as f:
            return f.read().rstrip("\n")
    except FileNotFoundError:
        return None


def code_of(fn) -> int:
    try:
        fn()
        return 0
    except baton.Error as e:
        return int(e.code)


def read_exactly(sock: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            break
        got += chunk
    return got


class ProbeHooks(baton.Hooks):
    def __init__(self, daemon: baton.Daemon) -> None:
        self.daemon = daemon

    def warm(self) -> None:
        trace("warm")

    def drain(self, deadline: Optional[float]) -> None:
        trace("drain")
        spec = knob("handover")
        if spec is None:
            return
        accepts = self.daemon.successor_accepts_handover()
        trace(f"successor_accepts={int(accepts)}")
        if not accepts:
            # Refused (FAILED_PRECONDITION), and still ours.
            peer, conn = socket.socketpair()
            with peer, conn:
                code = code_of(lambda: self.daemon.hand_over("conn-0", conn))
                trace(f"refused_unaccepted={code} open={int(conn.fileno() != -1)}")
            return
        for i in range(int(spec.split()[0])):
            peer, conn = socket.socketpair()
            ping = f"ping-{os.getpid()}-{i}".encode()
            peer.sendall(ping)
            unread = read_exactly(conn, len(ping))
            self.daemon.hand_over(f"conn-{i}", conn, unread)
            # Handed over: the socket object no longer holds the descriptor.
            trace(f"handed conn-{i} detached={int(conn.fileno() == -1)}")
            self.daemon.hand_over(f"peer-{i}", peer.detach(), kind=baton.HandoverKind.FILE)
        # A pipe is no connection, and a name goes once: refused, still ours.
        r, w = os.pipe()
        try:
            bad = code_of(lambda: self.daemon.hand_over("pipe", r))
            twice = code_of(lambda: self.daemon.hand_over("peer-0", r, kind=baton.HandoverKind.FILE))
            os.write(w, b"still open")
            still_open = os.read(r, 10) == b"still open"
            trace(f"refused pipe={bad} twice={twice} open={int(still_open)}")
        finally:
            os.close(r)
            os.close(w)

    def seal(self) -> baton.SealReport:
        trace("seal")
        spec = knob("handover")
        if spec is not None:
            size = int(spec.split()[-1])
            head = f"state-{os.getpid()}".encode()[:size]
            state = head + b"x" * (size - len(head))
            if not self.daemon.successor_accepts_handover():
                # Refused (FAILED_PRECONDITION): the seal goes on without it.
                trace(f"state_unaccepted={code_of(lambda: self.daemon.set_handover_state(state))}")
            else:
                self.daemon.set_handover_state(state)
        return baton.SealReport(1, "probe")

    def take_all(self, hook: str) -> None:
        handed = {h.name: h for h in self.daemon.take_handed_over()}
        for name in sorted(handed):
            h = handed[name]
            read = ""
            if h.kind == baton.HandoverKind.CONNECTION:
                i = name[len("conn-"):]
                peer = handed.get(f"peer-{i}")
                read = "no-peer" if peer is None else self.ping_pong(h, peer, i)
            trace(f"{hook} handed {name} kind={int(h.kind)} meta={h.metadata.decode()} read={read}")
        for h in handed.values():
            h.close()
        state = self.daemon.take_handover_state()
        if state is None:
            trace(f"{hook} state none")
        else:
            trace(f"{hook} state len={len(state)} head={state[:32].decode()}")

    @staticmethod
    def ping_pong(conn: baton.Handed, peer: baton.Handed, i: str) -> str:
        pong = f"pong-{os.getpid()}-{i}".encode()
        os.write(peer.fd, pong)
        assert conn.socket is not None
        conn.socket.settimeout(20)
        return read_exactly(conn.socket, len(pong)).decode()

    def begin(self, sealed: baton.SealedState) -> None:
        trace("begin")
        self.take_all("begin")
        msg = knob("fail-begin")
        if msg is not None:
            raise baton.Error(baton.Errc.INTERNAL, msg)

    def resume(self, data_changed: bool) -> None:
        trace("resume")
        self.take_all("resume")

    def retire(self) -> None:
        trace("retire")


def main() -> int:
    if not DIR:
        print("usage: handover_probe.py DIR", file=sys.stderr)
        return 2
    with baton.Daemon(build_id="python-handover-probe") as daemon:
        if knob("no-accept") is None:
            daemon.accept_handover()
        signal.signal(signal.SIGTERM, lambda *_: daemon.request_exit(0))
        try:
            daemon.start(ProbeHooks(daemon))
        except baton.Error as e:
            trace(f"start failed {int(e.code)} {e}")
            return 1
        # Outside drain and seal nothing may be handed over.
        null = os.open("/dev/null", os.O_RDONLY)
        trace(f"outside={code_of(lambda: daemon.hand_over('x', null, kind=baton.HandoverKind.FILE))}")
        os.close(null)
        # Accepting is said before the Hello, or not at all.
        trace(f"accept_after_start={code_of(daemon.accept_handover)}")
        trace("serving")
        code = daemon.wait_for_exit()
        trace(f"exit {code}")
        return code if code is not None else 1


if __name__ == "__main__":
    sys.exit(main())
