"""The systems the peer bench upgrades: how each starts, upgrades, stops.

Every system serves the same 64-byte body on 127.0.0.1:<port>, at the path
in `path`. upgrade() returns {"trigger_ns", "gone_ns", "ok", "detail"}:
trigger is the moment the upgrade is set off (signal sent or command
spawned), gone is when the bench first saw every process of the old
generation gone (exited or a zombie).
"""

import http.client
import json
import os
import signal
import subprocess
import time

import procs

BODY = "x" * 63 + "\n"  # 64 bytes, served by every system
READY_TIMEOUT = 15.0
UPGRADE_TIMEOUT = 30.0
WRITE_GAP_MS = 5  # baton-load logs every gap between write acks longer than this


def http_status(port, method, path, body=None, timeout=1.0):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request(method, path, body=body)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except OSError:
        return None


def wait_ready(port, path, what, proc=None):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if http_status(port, "GET", path) == 200:
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before serving")
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not serve 200 on 127.0.0.1:{port}{path} within {READY_TIMEOUT:.0f} s")


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_until(cond, what, timeout=UPGRADE_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        procs.reap()
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.0005)


class System:
    name = ""
    title = ""
    path = "/"

    def __init__(self, tools, workdir, port):
        self.tools = tools
        self.dir = workdir
        self.port = port

    def url(self):
        return f"http://127.0.0.1:{self.port}{self.path}"

    def log(self, name):
        return os.path.join(self.dir, name)


class Baton(System):
    """baton supervise + kvd; wrk reads one key. With writes=True,
    baton-load also writes (and verifies) in the background."""

    path = "/kv/bench"

    def __init__(self, tools, workdir, port, writes=False, trigger="sighup", hand_over=True):
        super().__init__(tools, workdir, port)
        self.writes = writes
        self.trigger = trigger  # "sighup": kill -HUP the supervisor, like the peers' signals; "cli": baton upgrade
        # False: kvd --no-hand-over, which ends each keep-alive connection
        # politely at a response boundary instead of handing it over.
        self.hand_over = hand_over
        self.name = "baton-kvd-writes" if writes else "baton-kvd"
        self.title = "baton + kvd, reads + writes" if writes else "baton + kvd, reads"
        if not hand_over:
            self.name += "-no-hand-over"
            self.title += ", no hand-over"
        self.run = os.path.join(workdir, "run")
        self.data = os.path.join(workdir, "data")
        self.load = None

    def cli(self, *args):
        return [self.tools["baton"], *args, "--runtime-dir", self.run]

    def start(self):
        os.makedirs(self.data)
        self.sup = procs.start([self.tools["baton"], "supervise", "--listen", f"http=tcp://127.0.0.1:{self.port}",
                                "--data-dir", self.data, "--runtime-dir", self.run, "--",
                                self.tools["kvd"], "--listen-name", "http",
                                *([] if self.hand_over else ["--no-hand-over"])], self.log("supervisor.log"))
        wait_ready(self.port, "/healthz", "baton supervise + kvd", self.sup)
        if http_status(self.port, "PUT", self.path, BODY) != 200:
            raise RuntimeError("kvd: PUT /kv/bench failed")

    def start_side_load(self, seconds):
        if not self.writes:
            return
        self.load = procs.start([self.tools["baton-load"], "--target", f"http://127.0.0.1:{self.port}",
                                 "--connections", "4", "--write-ratio", "1", "--rate-limit", "1000",
                                 "--duration", f"{seconds:.1f}s", "--gaps-over", str(WRITE_GAP_MS), "--json"],
                                self.log("baton-load.json"))

    def side_load_result(self):
        if self.load is None:
            return None
        try:
            self.load.wait(timeout=60)
        except subprocess.TimeoutExpired:
            return {"error": "baton-load did not finish"}
        try:
            with open(self.log("baton-load.json")) as f:
                lines = [l for l in f.read().splitlines() if l.startswith("{")]
            out = json.loads(lines[-1])
        except (OSError, ValueError, IndexError):
            return {"error": "no JSON from baton-load", "exit": self.load.returncode}
        out["exit"] = self.load.returncode
        return out

    def status(self):
        r = subprocess.run(self.cli("status", "--json"), capture_output=True, text=True, timeout=10)
        return json.loads(r.stdout)

    def upgrade(self):
        before = self.status()
        old = before["incumbent_pid"]
        last_id = (before.get("last_handoff") or {}).get("handoff_id")
        trigger_mono_ms = time.monotonic_ns() / 1e6  # baton-load's gap log uses CLOCK_MONOTONIC
        if self.trigger == "sighup":
            # The supervisor's own signal trigger (SIGHUP: upgrade to the
            # configured binary, here the same one), as the peers are
            # triggered by theirs; the outcome is read back from status.
            trigger = time.time_ns()
            procs.signal_pid(self.sup.pid, signal.SIGHUP)
            gone = procs.wait_gone([old], time.monotonic() + UPGRADE_TIMEOUT)

            def finished():
                st = self.status()
                last = st.get("last_handoff") or {}
                return last if last.get("handoff_id") not in (None, last_id) and not st["handoff_in_progress"] else None
            res = wait_until(finished, "the SIGHUP handoff's outcome in baton status")
            ok = res.get("outcome") == "committed" and gone is not None
        else:
            trigger = time.time_ns()
            up = subprocess.Popen(self.cli("upgrade", "--json"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  text=True)
            gone = procs.wait_gone([old], time.monotonic() + UPGRADE_TIMEOUT)
            out, _ = up.communicate(timeout=UPGRADE_TIMEOUT)
            try:
                res = json.loads(out)
            except ValueError:
                res = {"outcome": "no JSON", "exit_code": up.returncode}
            ok = up.returncode == 0 and gone is not None
        return {"trigger_ns": trigger, "gone_ns": gone, "ok": ok,
                "detail": {"outcome": res.get("outcome"), "total_ms": res.get("total_ms"),
                           "trigger_mono_ms": trigger_mono_ms, "trigger": self.trigger,
                           "phases_ms": res.get("phases_ms")}}

    def stop(self):
        procs.signal_pid(self.sup.pid, signal.SIGTERM)
        try:
            self.sup.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class Restart(System):
    """The naive baseline: kvd on its own, stopped (SIGTERM, kvd drains and
    exits) and started again."""

    name = "restart"
    title = "stop + start (kvd alone)"
    path = "/kv/bench"

    def start(self):
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.p = self._spawn()
        if http_status(self.port, "PUT", self.path, BODY) != 200:
            raise RuntimeError("kvd: PUT /kv/bench failed")

    def _spawn(self):
        p = procs.start([self.tools["kvd"], "--data-dir", self.data, "--standalone-listen", f"127.0.0.1:{self.port}"],
                        self.log("kvd.log"))
        wait_ready(self.port, "/healthz", "kvd", p)
        return p

    def upgrade(self):
        old = self.p
        trigger = time.time_ns()
        old.send_signal(signal.SIGTERM)
        old.wait(timeout=UPGRADE_TIMEOUT)
        gone = time.time_ns()
        self.p = self._spawn()
        return {"trigger_ns": trigger, "gone_ns": gone, "ok": old.returncode == 0,
                "detail": {"serving_again_ms": (time.time_ns() - trigger) / 1e6}}

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


NGINX_CONF = """\
# nginx for the peer bench: one worker, the body from memory, no disk I/O.
# daemon on (the default): with daemon off nginx ignores USR2, and the bench
# is a subreaper, so the daemonised master is still its descendant.
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp-body;
  proxy_temp_path {dir}/tmp-proxy;
  fastcgi_temp_path {dir}/tmp-fastcgi;
  uwsgi_temp_path {dir}/tmp-uwsgi;
  scgi_temp_path {dir}/tmp-scgi;
  # The default (1000) would close every keep-alive connection after 1000
  # requests; the other systems do not, so neither does nginx here.
  keepalive_requests 1000000000;
  server {{
    listen 127.0.0.1:{port};
    location / {{ default_type text/plain; return 200 "{body}"; }}
  }}
}}
"""


class Nginx(System):
    """nginx; binary=True: the binary upgrade (USR2, then WINCH and QUIT to the
    old master once the new one runs its worker); else `nginx -s reload`."""

    def __init__(self, tools, workdir, port, binary):
        super().__init__(tools, workdir, port)
        self.binary = binary
        self.name = "nginx-usr2" if binary else "nginx-reload"
        self.title = "nginx binary upgrade (USR2, WINCH, QUIT)" if binary else "nginx -s reload"
        self.conf = os.path.join(workdir, "nginx.conf")
        self.pidfile = os.path.join(workdir, "nginx.pid")

    def start(self):
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, body=BODY.replace("\n", "\\n")))
        # An absolute argv[0]: USR2 re-executes it.
        p = procs.start([self.tools["nginx"], "-p", self.dir, "-c", self.conf], self.log("nginx.out"))
        if p.wait(timeout=READY_TIMEOUT) != 0:
            raise RuntimeError(f"nginx exited with {p.returncode}; see {self.log('error.log')}")
        wait_ready(self.port, "/", "nginx")
        wait_until(lambda: self.master() and procs.children(self.master()), "nginx worker")

    def master(self):
        return read_pid(self.pidfile)

    def upgrade(self):
        old = self.master()
        old_workers = procs.children(old)
        if not self.binary:
            trigger = time.time_ns()
            r = subprocess.run([self.tools["nginx"], "-p", self.dir, "-c", self.conf, "-s", "reload"],
                               capture_output=True, timeout=UPGRADE_TIMEOUT)
            gone = procs.wait_gone(old_workers, time.monotonic() + UPGRADE_TIMEOUT)
            return {"trigger_ns": trigger, "gone_ns": gone, "ok": r.returncode == 0 and gone is not None,
                    "detail": {}}
        trigger = time.time_ns()
        procs.signal_pid(old, signal.SIGUSR2)
        new = wait_until(lambda: (self.master() if self.master() not in (None, old) else None), "new nginx master")
        wait_until(lambda: procs.children(new), "new nginx worker")
        new_started = time.time_ns()
        procs.signal_pid(old, signal.SIGWINCH)
        procs.signal_pid(old, signal.SIGQUIT)
        gone = procs.wait_gone([old, *old_workers], time.monotonic() + UPGRADE_TIMEOUT)
        return {"trigger_ns": trigger, "gone_ns": gone, "ok": gone is not None,
                "detail": {"new_worker_ms": (new_started - trigger) / 1e6}}

    def stop(self):
        m = self.master()
        if m:
            procs.signal_pid(m, signal.SIGQUIT)
            procs.wait_gone([m], time.monotonic() + 10)


HAPROXY_CFG = """\
{header}global
  master-worker
  nbthread 1
  stats socket {dir}/admin.sock mode 600 level admin{stats_extra}
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 30s
frontend bench
  bind 127.0.0.1:{port}
  http-request return status 200 content-type text/plain string "{body}"
"""


class Haproxy(System):
    """HAProxy -W; the upgrade is the master-worker reload: USR2 to the
    master, which re-executes itself and hands the listening sockets to the
    new worker."""

    name = "haproxy"
    title = "HAProxy -W seamless reload (USR2, expose-fd listeners)"
    cfg_header = ("# HAProxy for the peer bench: master-worker, seamless reload (the new worker\n"
                  "# takes the listeners over the stats socket: expose-fd listeners), the body\n"
                  "# from memory, no backend.\n")
    stats_extra = " expose-fd listeners"

    def start(self):
        self.cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(self.cfg, "w") as f:
            f.write(HAPROXY_CFG.format(header=self.cfg_header, dir=self.dir, port=self.port, body=BODY.strip(),
                                       stats_extra=self.stats_extra))
        self.p = self.spawn()
        wait_ready(self.port, "/", "haproxy", self.p)

    def spawn(self, *extra):
        """Starts a master (-W) on the config; it forks the worker."""
        return procs.start([self.tools["haproxy"], "-W", "-f", self.cfg, *extra], self.log("haproxy.out"))

    def upgrade(self):
        old_workers = procs.children(self.p.pid)
        trigger = time.time_ns()
        procs.signal_pid(self.p.pid, signal.SIGUSR2)
        wait_until(lambda: [c for c in procs.children(self.p.pid) if c not in old_workers], "new haproxy worker")
        gone = procs.wait_gone(old_workers, time.monotonic() + UPGRADE_TIMEOUT)
        return {"trigger_ns": trigger, "gone_ns": gone, "ok": gone is not None and self.p.poll() is None,
                "detail": {}}

    def stop(self):
        procs.signal_pid(self.p.pid, signal.SIGUSR1)  # soft stop
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


class HaproxyNoFd(Haproxy):
    """The same master-worker HAProxy, upgraded without handing the
    listening sockets over: the new worker binds its own.

    USR2 cannot do that in HAProxy 2.6: on every reload the master itself
    adds `-x sockpair@N` and the new worker takes the old worker's sockets
    over the master's socketpair, with or without `expose-fd listeners` on
    the stats socket (2.6.12 also drops a `-x /dev/null` given at start).
    So the upgrade is HAProxy's classic reload instead: a new master,
    `haproxy -W -f cfg -sf <old master>`. It binds its own listening socket
    beside the old one (SO_REUSEPORT, HAProxy's default on Linux), forks its
    worker and sends SIGUSR1 to the old master, whose worker closes its
    listener, finishes its connections and exits, and the old master with it.
    """

    name = "haproxy-nofd"
    title = "HAProxy -W reload, no fd transfer (new master with -sf)"
    cfg_header = ("# HAProxy for the peer bench: master-worker, reloaded without fd transfer (a\n"
                  "# new master with -sf old-master; its worker binds its own listener), the\n"
                  "# body from memory, no backend.\n")
    stats_extra = ""

    def upgrade(self):
        old = self.p
        old_gen = [old.pid, *procs.children(old.pid)]
        trigger = time.time_ns()
        new = self.p = self.spawn("-sf", str(old.pid))

        def new_worker():
            if not procs.alive(new.pid):
                raise RuntimeError(f"the new haproxy master exited during the upgrade; see {self.log('haproxy.out')}")
            return procs.children(new.pid)

        wait_until(new_worker, "new haproxy worker")
        gone = procs.wait_gone(old_gen, time.monotonic() + UPGRADE_TIMEOUT)
        return {"trigger_ns": trigger, "gone_ns": gone, "ok": gone is not None and procs.alive(new.pid),
                "detail": {}}


class Tableflip(System):
    name = "tableflip"
    title = "Go net/http + cloudflare/tableflip (SIGHUP)"

    def start(self):
        self.pidfile = os.path.join(self.dir, "tf.pid")
        self.p = procs.start([self.tools["tfserver"], "-listen", f"127.0.0.1:{self.port}", "-pid-file", self.pidfile,
                              "-body", BODY], self.log("tfserver.log"))
        wait_ready(self.port, "/", "tfserver", self.p)
        wait_until(lambda: read_pid(self.pidfile), "tableflip pid file")

    def upgrade(self):
        old = read_pid(self.pidfile)
        trigger = time.time_ns()
        procs.signal_pid(old, signal.SIGHUP)
        gone = procs.wait_gone([old], time.monotonic() + UPGRADE_TIMEOUT)
        new = read_pid(self.pidfile)
        return {"trigger_ns": trigger, "gone_ns": gone, "ok": gone is not None and new not in (None, old),
                "detail": {}}

    def stop(self):
        pid = read_pid(self.pidfile)
        if pid:
            procs.signal_pid(pid, signal.SIGTERM)
            procs.wait_gone([pid], time.monotonic() + 10)


def make(name, tools, workdir, port, baton_trigger="sighup"):
    if name == "baton-kvd":
        return Baton(tools, workdir, port, trigger=baton_trigger)
    if name == "baton-kvd-writes":
        return Baton(tools, workdir, port, writes=True, trigger=baton_trigger)
    if name == "baton-kvd-no-hand-over":
        return Baton(tools, workdir, port, trigger=baton_trigger, hand_over=False)
    if name == "nginx-usr2":
        return Nginx(tools, workdir, port, binary=True)
    if name == "nginx-reload":
        return Nginx(tools, workdir, port, binary=False)
    if name == "haproxy":
        return Haproxy(tools, workdir, port)
    if name == "haproxy-nofd":
        return HaproxyNoFd(tools, workdir, port)
    if name == "tableflip":
        return Tableflip(tools, workdir, port)
    if name == "restart":
        return Restart(tools, workdir, port)
    if name == "baton-gunicorn":
        import gunicorn_systems  # it builds on this module's classes
        return gunicorn_systems.BatonGunicorn(tools, workdir, port, trigger=baton_trigger)
    if name in ("gunicorn-hup", "gunicorn-usr2"):
        import gunicorn_systems
        return gunicorn_systems.Gunicorn(tools, workdir, port, name.split("-")[1])
    raise ValueError(name)


ALL = ["baton-kvd", "baton-kvd-writes", "nginx-usr2", "nginx-reload", "haproxy", "haproxy-nofd", "tableflip",
       "restart"]
# Not in the default run: an unmodified Debian daemon under baton next to its
# own reload and binary upgrade (--systems gunicorn; needs python3-gunicorn).
GUNICORN = ["baton-gunicorn", "gunicorn-hup", "gunicorn-usr2"]
# Not in the default run: kvd draining its keep-alive connections at a
# response boundary instead of handing them over (--systems baton-kvd-no-hand-over).
NO_HAND_OVER = ["baton-kvd-no-hand-over"]
KNOWN = ALL + GUNICORN + NO_HAND_OVER
