"""The gunicorn systems of the peer benchmark (--systems gunicorn): an
unmodified Debian daemon under baton, next to gunicorn's own reload and
binary upgrade. The shared machinery is in systems.py."""

import os
import signal
import time

import procs
from systems import BODY, UPGRADE_TIMEOUT, Baton, System, wait_ready, wait_until

# An unmodified Debian daemon: gunicorn (python3-gunicorn) serving the WSGI
# key-value app of tests/notify (GET /kv/<key> reads a file in
# $BATON_DATA_DIR). The same gunicorn command line for every gunicorn system;
# --keep-alive 0 as docs/unmodified.md recommends (gunicorn's gthread worker
# resets idle keep-alive connections when it stops), so every response says
# Connection: close and wrk reconnects, in both modes.
KVAPP_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "notify")
GUNICORN_ARGS = ["-m", "gunicorn", "--worker-class", "gthread", "--threads", "4", "--workers", "2",
                 "--graceful-timeout", "3", "--keep-alive", "0", "--pythonpath", KVAPP_DIR, "kvapp:app"]


class BatonGunicorn(Baton):
    """baton supervise --protocol notify --strategy overlap + gunicorn,
    unmodified: it takes LISTEN_FDS and says READY=1; SIGTERM is its
    graceful stop. Set off like baton + kvd (SIGHUP to the supervisor)."""

    def __init__(self, tools, workdir, port, trigger="sighup"):
        super().__init__(tools, workdir, port, trigger=trigger)
        self.name = "baton-gunicorn"
        self.title = "baton + gunicorn, unmodified (notify, overlap)"

    def start(self):
        os.makedirs(self.data)
        with open(os.path.join(self.data, "bench"), "w") as f:
            f.write(BODY)
        self.sup = procs.start([self.tools["baton"], "supervise", "--listen", f"http=tcp://127.0.0.1:{self.port}",
                                "--data-dir", self.data, "--runtime-dir", self.run, "--protocol", "notify",
                                "--strategy", "overlap", "--", self.tools["python3"], *GUNICORN_ARGS],
                               self.log("supervisor.log"))
        wait_ready(self.port, self.path, "baton supervise + gunicorn", self.sup)


class Gunicorn(System):
    """gunicorn on its own (--bind), upgraded by its own signals.
    hup: `kill -HUP master`: the master starts new workers (the app loaded
    again) and stops the old ones gracefully; the master itself stays, so
    gunicorn's own code is not replaced (its reload, as nginx -s reload).
    usr2: `kill -USR2 master`: the master forks and re-executes itself (a new
    master with new workers on the same listening socket); once the new
    master runs its workers, `kill -TERM old master` (graceful stop of the
    old master and its workers): gunicorn's binary upgrade, as nginx's
    USR2 -> QUIT."""

    path = "/kv/bench"

    def __init__(self, tools, workdir, port, how):
        super().__init__(tools, workdir, port)
        self.how = how
        self.name = f"gunicorn-{how}"
        self.title = ("gunicorn HUP (new workers, same master)" if how == "hup"
                      else "gunicorn binary upgrade (USR2, then TERM to the old master)")
        self.pidfile = os.path.join(workdir, "gunicorn.pid")

    def start(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data)
        with open(os.path.join(data, "bench"), "w") as f:
            f.write(BODY)
        self.p = procs.start([self.tools["python3"], *GUNICORN_ARGS, "--bind", f"127.0.0.1:{self.port}",
                              "--pid", self.pidfile], self.log("gunicorn.log"),
                             env=dict(os.environ, BATON_DATA_DIR=data))
        wait_ready(self.port, self.path, "gunicorn", self.p)
        wait_until(lambda: len(procs.children(self.p.pid)) >= 2, "gunicorn workers")
        self.master = self.p.pid

    def upgrade(self):
        master = self.master
        old_workers = procs.children(master)
        trigger = time.time_ns()
        if self.how == "hup":
            procs.signal_pid(master, signal.SIGHUP)
            gone = procs.wait_gone(old_workers, time.monotonic() + UPGRADE_TIMEOUT)
            ok = gone is not None and len([c for c in procs.children(master) if c not in old_workers]) >= 1
            return {"trigger_ns": trigger, "gone_ns": gone, "ok": ok, "detail": {}}
        procs.signal_pid(master, signal.SIGUSR2)
        new = wait_until(lambda: ([c for c in procs.children(master) if c not in old_workers] or [None])[0],
                         "new gunicorn master")
        wait_until(lambda: len(procs.children(new)) >= 2, "the new gunicorn master's workers")
        new_started = time.time_ns()
        procs.signal_pid(master, signal.SIGTERM)
        gone = procs.wait_gone([master, *old_workers], time.monotonic() + UPGRADE_TIMEOUT)
        self.master = new
        return {"trigger_ns": trigger, "gone_ns": gone, "ok": gone is not None and procs.alive(new),
                "detail": {"new_workers_ms": (new_started - trigger) / 1e6}}

    def stop(self):
        procs.signal_pid(self.master, signal.SIGTERM)
        procs.wait_gone([self.master], time.monotonic() + 10)
