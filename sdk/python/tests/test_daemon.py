"""baton.Daemon over the real libbaton ($BATON_LIBRARY): standalone life
cycle, errors with their codes, the data-dir lock, signals while waiting,
the log callback, a udp:// listener, and finding the library. Each case
runs in a process of its own (a Daemon is once per process)."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import baton
from baton import daemon as bd

SDK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(code, env=None, timeout=30):
    """Runs `code` in a new python3 with this SDK; returns (exit code, the
    JSON it printed last, stderr)."""
    full_env = dict(os.environ, PYTHONPATH=SDK_DIR, PYTHONDONTWRITEBYTECODE="1")
    full_env.update(env or {})
    if "BATON_DATA_DIR" not in (env or {}):
        full_env.pop("BATON_DATA_DIR", None)
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True,
                       timeout=timeout)
    lines = [line for line in p.stdout.splitlines() if line[:1] in ("{", "[")]
    return p.returncode, json.loads(lines[-1]) if lines else None, p.stderr


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_standalone_life_cycle(self):
        rc, out, err = run(f"""
            import json, baton
            out = {{}}
            d = baton.Daemon(build_id="t", data_dir={self.dir!r})
            out["role"] = d.role.name
            out["data_dir"] = d.data_dir
            try:
                d.listener("http")
            except baton.Error as e:
                out["listener"] = [e.code.name, e.message]
            out["listeners"] = len(d.listeners())
            out["epoch"] = d.lease_epoch
            try:
                d.report_unhealthy("no supervisor")
            except baton.Error as e:
                out["unhealthy"] = e.code.name
            d.start(baton.Hooks())
            try:
                d.start(baton.Hooks())
            except baton.Error as e:
                out["again"] = e.code.name
            out["early"] = d.wait_for_exit(timeout=0.05)
            d.request_exit(7)
            d.request_exit(9)  # the first request wins
            out["exit"] = d.wait_for_exit()
            d.close()
            d.close()
            out["closed"] = d.closed
            d.request_exit(0)  # a no-op once closed (a late signal)
            out["exit_after_close"] = d.wait_for_exit()
            try:
                d.lease_epoch
            except baton.Error as e:
                out["after_close"] = e.code.name
            print(json.dumps(out))
        """)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["role"], "STANDALONE")
        self.assertEqual(out["data_dir"], self.dir)
        self.assertEqual(out["listener"][0], "NOT_FOUND")
        self.assertIn("http", out["listener"][1])
        self.assertEqual(out["listeners"], 0)
        self.assertEqual(out["epoch"], 0)
        self.assertEqual(out["unhealthy"], "FAILED_PRECONDITION")
        self.assertEqual(out["again"], "FAILED_PRECONDITION")
        self.assertIsNone(out["early"])
        self.assertEqual(out["exit"], 7)
        self.assertTrue(out["closed"])
        self.assertEqual(out["exit_after_close"], 7)
        self.assertEqual(out["after_close"], "FAILED_PRECONDITION")

    def test_context_manager_exits_a_started_daemon(self):
        rc, out, err = run(f"""
            import json, baton
            with baton.Daemon(data_dir={self.dir!r}) as d:
                d.start(baton.Hooks())
            print(json.dumps({{"closed": d.closed}}))
        """, timeout=20)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out["closed"])

    def test_no_data_dir_is_an_invalid_argument(self):
        rc, out, err = run("""
            import json, baton
            try:
                baton.Daemon()
            except baton.Error as e:
                print(json.dumps({"code": int(e.code), "message": e.message}))
        """)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["code"], baton.Errc.INVALID_ARGUMENT)
        self.assertIn("BATON_DATA_DIR", out["message"])

    def test_hooks_must_be_a_hooks(self):
        rc, out, err = run(f"""
            import json, baton
            with baton.Daemon(data_dir={self.dir!r}) as d:
                try:
                    d.start(object())
                except TypeError as e:
                    print(json.dumps({{"error": str(e)}}))
        """)
        self.assertEqual(rc, 0, err)
        self.assertIn("baton.Hooks", out["error"])

    def test_second_process_cannot_take_a_held_data_dir(self):
        holder = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(f"""
                import sys, baton
                d = baton.Daemon(data_dir={self.dir!r})
                d.start(baton.Hooks())
                print("started", flush=True)
                sys.stdin.read()
                d.close()
            """)],
            env=dict(os.environ, PYTHONPATH=SDK_DIR, PYTHONDONTWRITEBYTECODE="1"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "started")
            rc, out, err = run(f"""
                import json, baton
                with baton.Daemon(data_dir={self.dir!r}) as d:
                    try:
                        d.start(baton.Hooks())
                    except baton.Error as e:
                        print(json.dumps({{"code": e.code.name, "message": e.message}}))
            """)
            self.assertEqual(rc, 0, err)
            self.assertEqual(out["code"], "FAILED_PRECONDITION")
        finally:
            holder.communicate("", timeout=20)
        self.assertEqual(holder.returncode, 0)

    def test_sigterm_reaches_a_main_thread_waiting_for_exit(self):
        p = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(f"""
                import signal, sys, baton
                with baton.Daemon(data_dir={self.dir!r}) as d:
                    d.start(baton.Hooks())
                    signal.signal(signal.SIGTERM, lambda *_: d.request_exit(3))
                    print("waiting", flush=True)
                    code = d.wait_for_exit()
                sys.exit(code)
            """)],
            env=dict(os.environ, PYTHONPATH=SDK_DIR, PYTHONDONTWRITEBYTECODE="1"), stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        try:
            self.assertEqual(p.stdout.readline().strip(), "waiting")
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=20), 3)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()

    def test_a_udp_listener_comes_back_as_a_datagram_socket(self):
        """A udp:// listener, passed as socket activation passes one (fd 3,
        LISTEN_* meant for this process, what the supervisor also does),
        is a SOCK_DGRAM socket that receives what was sent to its address
        and answers from it."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            listener.bind(("127.0.0.1", 0))
            client.bind(("127.0.0.1", 0))
            client.settimeout(30)
            # Queued on the socket until the daemon reads it.
            client.sendto(b"ping", listener.getsockname())
            code = f"""
                import json, os, socket, baton
                fd = int(os.environ.pop("TEST_UDP_FD"))
                if fd != 3:
                    try:
                        os.fstat(3)
                        raise SystemExit("fd 3 is taken: the listener cannot go there")
                    except OSError:
                        pass
                    os.dup2(fd, 3)
                    os.close(fd)
                os.environ["LISTEN_PID"] = str(os.getpid())  # putenv: libbaton reads it
                with baton.Daemon(data_dir={self.dir!r}) as d:
                    s = d.listener("dns")
                    every = d.listeners()
                    data, peer = s.recvfrom(64)
                    s.sendto(b"pong " + data, peer)
                    out = {{"type": int(s.type), "family": int(s.family), "data": data.decode(),
                            "names": sorted(every), "every_type": int(every["dns"].type)}}
                    s.close()
                    for sock in every.values():
                        sock.close()
                print(json.dumps(out))
            """
            env = dict(os.environ, PYTHONPATH=SDK_DIR, PYTHONDONTWRITEBYTECODE="1",
                       TEST_UDP_FD=str(listener.fileno()), LISTEN_FDS="1", LISTEN_FDNAMES="dns")
            for name in ("BATON_DATA_DIR", "BATON_ROLE", "BATON_CONTROL_FD", "LISTEN_PID"):
                env.pop(name, None)
            p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                               pass_fds=(listener.fileno(),), capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            out = json.loads([line for line in p.stdout.splitlines() if line.startswith("{")][-1])
            self.assertEqual(out["type"], socket.SOCK_DGRAM)
            self.assertEqual(out["family"], socket.AF_INET)
            self.assertEqual(out["data"], "ping")
            self.assertEqual(out["names"], ["dns"])
            self.assertEqual(out["every_type"], socket.SOCK_DGRAM)
            reply, _ = client.recvfrom(64)
            self.assertEqual(reply, b"pong ping")
        finally:
            listener.close()
            client.close()

    def test_log_callback_gets_the_library_events(self):
        rc, out, err = run(f"""
            import json, threading, baton
            events = []
            lock = threading.Lock()
            def log(level, event, message, js):
                with lock:
                    events.append([int(level), event, message, json.loads(js)])
            with baton.Daemon(data_dir={self.dir!r}, log=log) as d:
                d.start(baton.Hooks())
                d.request_exit(0)
                d.wait_for_exit()
            print(json.dumps(events))
        """)
        self.assertEqual(rc, 0, err)
        self.assertNotIn("daemon.start", err)  # nothing on stderr: the callback got it
        start = [e for e in out if e[1] == "daemon.start"]
        self.assertEqual(len(start), 1, out)
        self.assertEqual(start[0][0], baton.Level.INFO)
        self.assertEqual(start[0][3]["event"], "daemon.start")

    def test_crash_point_names_are_checked(self):
        rc, out, err = run("""
            import json, baton, baton.testing
            try:
                baton.testing.arm_crash_point("no.such.point")
            except baton.Error as e:
                print(json.dumps({"code": e.code.name}))
        """)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["code"], "NOT_FOUND")

    def test_an_armed_crash_point_ends_the_process(self):
        rc, _, err = run("""
            import baton.testing
            baton.testing.arm_crash_point("incumbent.in_seal")
            baton.testing.crash_point("incumbent.in_seal")
            print("survived")
        """)
        self.assertEqual(rc, 86, err)
        self.assertIn("incumbent.in_seal", err)


class HookFailTest(unittest.TestCase):
    def test_failures_go_through_baton_hook_fail(self):
        def hook():
            raise OSError(28, "No space left on device")
        self.assertEqual(bd._call_hook("seal", None, hook), baton.Errc.IO_ERROR)
        self.assertEqual(bd._call_hook("seal", None, lambda: None), 0)


class LibraryTest(unittest.TestCase):
    def test_abi_major_is_1(self):
        self.assertEqual(baton.abi_version()[0], 1)

    def test_code_descriptions_are_baton_errc_name(self):
        lib = bd._ffi.lib()
        for code in baton.Errc:
            self.assertEqual(code.description, lib.baton_errc_name(int(code)).decode(), code)

    def test_a_missing_library_is_a_clear_error(self):
        rc, out, err = run("""
            import json, baton
            try:
                baton.abi_version()
            except baton.Error as e:
                print(json.dumps({"code": e.code.name, "message": e.message}))
        """, env={"BATON_LIBRARY": "/nonexistent/libbaton.so.0"})
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["code"], "FAILED_PRECONDITION")
        self.assertIn("BATON_LIBRARY=/nonexistent/libbaton.so.0", out["message"])
        self.assertIn("install baton", out["message"])

    def test_a_library_that_is_no_libbaton_is_refused(self):
        rc, out, err = run("""
            import json, baton
            try:
                baton.Daemon(data_dir="/tmp")
            except baton.Error as e:
                print(json.dumps({"code": e.code.name, "message": e.message}))
        """, env={"BATON_LIBRARY": "libc.so.6"})
        self.assertEqual(rc, 0, err)
        self.assertEqual(out["code"], "INCOMPATIBLE")
        self.assertIn("baton_", out["message"])


if __name__ == "__main__":
    unittest.main()
