"""Processes the peer bench starts, and how it ends every one of them.

The bench makes itself a child subreaper, so processes that re-exec or fork
a new generation and then let the old one exit (nginx USR2, tableflip,
HAProxy -W) are reparented to the bench, not to init: every process it ever
started stays in its own tree, and cleanup ends that whole tree by PID.
"""

import ctypes
import os
import signal
import subprocess
import time

PR_SET_CHILD_SUBREAPER = 36

_started = []  # Popen objects, in start order


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def start(argv, log_path, env=None, cwd=None):
    """Starts argv with stdout+stderr to log_path; remembered for cleanup."""
    log = open(log_path, "ab")
    try:
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, cwd=cwd)
    finally:
        log.close()
    _started.append(p)
    return p


def proc_state(pid):
    """'R', 'S', ... from /proc/PID/stat; None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: the state follows the last ')'.
    return data[data.rindex(b")") + 2:data.rindex(b")") + 3].decode()


def alive(pid):
    """True while pid exists and is not a zombie."""
    s = proc_state(pid)
    return s is not None and s != "Z"


def children(pid):
    """PIDs whose parent is pid (from /proc; racy by nature, good enough to poll)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2:].split()
        if int(rest[1]) == pid and rest[0] != b"Z":
            out.append(int(name))
    return out


def descendants(pid):
    found = []
    todo = [pid]
    while todo:
        for c in children(todo.pop()):
            found.append(c)
            todo.append(c)
    return found


def reap():
    """Reaps exited children (our own and orphans reparented to us)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_gone(pids, deadline):
    """Polls every 0.5 ms until none of pids is alive; returns the time_ns
    when that was seen, or None at the deadline (a time.monotonic value)."""
    pids = list(pids)
    while True:
        reap()
        pids = [p for p in pids if alive(p)]
        if not pids:
            return time.time_ns()
        if time.monotonic() > deadline:
            return None
        time.sleep(0.0005)


def signal_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def end_all(grace=3.0):
    """SIGTERM every live descendant of the bench, then SIGKILL what is left
    after grace seconds; reaps them. Called after each run and on exit."""
    me = os.getpid()
    pids = descendants(me)
    for pid in pids:
        signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        reap()
        pids = [p for p in descendants(me)]
        if not pids:
            break
        time.sleep(0.02)
    for pid in descendants(me):
        signal_pid(pid, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while descendants(me) and time.monotonic() < deadline:
        reap()
        time.sleep(0.02)
    reap()
    for p in _started:
        if p.returncode is None:
            try:
                p.wait(timeout=0)
            except (subprocess.TimeoutExpired, ChildProcessError):
                pass
    _started.clear()
