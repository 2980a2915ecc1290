#!/usr/bin/env python3
"""baton against the tools users pick today, side by side, under the same wrk load.

For every system and load mode, repeated --reps times: start the system on a
fresh loopback port, start wrk (one thread per connection, every response
logged with its end time and latency by latency.lua), let it run --control
seconds with no upgrade (the control), then set off --upgrades upgrades one
every --interval seconds, stop, analyse, end every process.
"""

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import analyse  # noqa: E402
import procs  # noqa: E402
import systems  # noqa: E402

LEAD_S = 1.0  # wrk's first second (connections opening, caches warming) is left out of the control
TAIL_S = 1.0  # load after the last upgrade: its +1 s window


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(text):
    out = {"requests": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0, "non2xx3xx": 0}
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out.update(connect=int(m.group(1)), read=int(m.group(2)), write=int(m.group(3)), timeout=int(m.group(4)))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["non2xx3xx"] = int(m.group(1))
    return out


def one_run(args, tools, name, mode, rep, root):
    rundir = os.path.join(root, f"{name}-{mode}-{rep}")
    os.makedirs(rundir)
    port = free_port()
    sysm = systems.make(name, tools, rundir, port, args.baton_trigger)
    t_setup = time.monotonic()
    sysm.start()
    # wrk takes whole seconds.
    duration = math.ceil(LEAD_S + args.control + (args.upgrades - 1) * args.interval + TAIL_S)
    wrk_argv = [tools["wrk"], "-t", str(args.connections), "-c", str(args.connections), "-d", f"{duration}s",
                "--timeout", "2s", "-s", os.path.join(HERE, "latency.lua")]
    if mode == "close":
        wrk_argv += ["-H", "Connection: close"]
    wrk_argv.append(sysm.url())
    env = dict(os.environ, PEERS_LOG_PREFIX=os.path.join(rundir, "lat-"))
    start_ns = time.time_ns()
    wrk = procs.start(wrk_argv, os.path.join(rundir, "wrk.out"), env=env)
    t0 = time.monotonic()
    if isinstance(sysm, systems.Baton):
        sysm.start_side_load(duration)
    upgrades = []
    for i in range(args.upgrades):
        at = t0 + LEAD_S + args.control + i * args.interval
        now = time.monotonic()
        if at > now:
            time.sleep(at - now)
        if time.monotonic() > t0 + duration - 0.2:
            break  # the previous upgrade overran the run
        u = sysm.upgrade()
        upgrades.append(u)
    wrk.wait(timeout=duration + 30)
    side = sysm.side_load_result() if isinstance(sysm, systems.Baton) else None
    sysm.stop()
    procs.end_all()
    with open(os.path.join(rundir, "wrk.out")) as f:
        wrk_out = parse_wrk(f.read())
    result = analyse.analyse_run(rundir, start_ns, LEAD_S, args.control, upgrades, wrk_out, mode)
    if side and "gaps" in side:
        result["write_pause"] = analyse.write_pauses(side.pop("gaps"), upgrades, (t0 + LEAD_S) * 1000,
                                                     (t0 + LEAD_S + args.control) * 1000, systems.WRITE_GAP_MS)
        side.pop("timeline", None)
    result.update(system=name, mode=mode, rep=rep, port=port, side_load=side,
                  wall_s=time.monotonic() - t_setup, wrk_argv=wrk_argv)
    return result, rundir


def versions(tools):
    """One line per tool, as the tools print them."""
    def first_line(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError as e:
            return str(e)
        return ((r.stdout or "") + (r.stderr or "")).strip().splitlines()[0] if (r.stdout or r.stderr) else "?"
    def package(name):
        return first_line(["dpkg-query", "-W", "-f=${Package} ${Version}\n", name])
    tf = package("golang-github-cloudflare-tableflip-dev")
    return [first_line([tools["nginx"], "-v"]), first_line([tools["haproxy"], "-v"]), first_line([tools["wrk"], "-v"]),
            first_line(["go", "version"]), tf, package("python3-gunicorn"), first_line([tools["baton"], "version"]),
            first_line(["uname", "-sr"])]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_sweep(args, out):
    """baton alone: handoff time and write window against connections and
    WAL size, by the existing baton-bench sweep. Returns its Markdown table."""
    argv = [os.path.join(args.bin_dir, "baton-bench"), "handoff", "--sweep", "--upgrades", str(args.sweep_upgrades),
            "--markdown", "--json", os.path.join(out, "sweep.json")]
    p = procs.start(argv, os.path.join(out, "sweep.txt"))
    rc = p.wait()
    with open(os.path.join(out, "sweep.txt")) as f:
        text = f.read()
    table = "\n".join(l for l in text.splitlines() if l.startswith("|")) + "\n"
    print(f"baton-bench exited {rc}; its output: {os.path.join(out, 'sweep.txt')}", flush=True)
    return table if rc == 0 else f"(baton-bench exited {rc}; see sweep.txt)\n" + table


def main():
    ap = argparse.ArgumentParser(prog="tools/bench/peers/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upgrades", type=int, default=6, help="upgrades per run (default 6: with 3 reps, 18 per "
                    "system and mode, which keeps the default run under 15 minutes)")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between upgrades (default 2)")
    ap.add_argument("--control", type=float, default=3.0, help="seconds of load with no upgrade first (default 3: "
                    "latency varies by ±20 %% from one second to the next here even without upgrades, so a shorter "
                    "control makes the p99 ratio noisy)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of every system and mode (default 3)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (= threads; default 32)")
    ap.add_argument("--systems", default=",".join(systems.ALL), help="comma-separated subset of: "
                    + ", ".join(systems.KNOWN) + " (default: all but the gunicorn and no-hand-over ones); 'gunicorn' stands for "
                    + ",".join(systems.GUNICORN))
    ap.add_argument("--modes", default="keepalive,close", help="keepalive, close or both (default)")
    ap.add_argument("--out", default="", help="directory for results.json, results.md and the plot data "
                    "(default: a new temp dir, printed)")
    ap.add_argument("--png", default="", help="draw latency over time into this PNG with gnuplot (default: "
                    "peers.png in --out)")
    ap.add_argument("--keep", action="store_true", help="keep every run's logs (per-request logs are large)")
    ap.add_argument("--sweep-upgrades", type=int, default=5, help="then baton alone: `baton-bench handoff --sweep` "
                    "(1/32/256 connections, WAL of 100k and 1M records) with this many upgrades per row; 0: skip "
                    "(default 5)")
    ap.add_argument("--baton-trigger", choices=("sighup", "cli"), default="sighup",
                    help="how baton's upgrades are set off: sighup (default) sends SIGHUP to the supervisor, its own "
                    "signal trigger, as every peer is set off by a signal or its own command; cli runs `baton upgrade "
                    "--json` (what deploy scripts run; adds the CLI's start-up to trigger -> old gone)")
    ap.add_argument("--bin-dir", required=True, help="where baton, kvd and baton-load are")
    ap.add_argument("--tfserver", required=True, help="the built tableflip server")
    args = ap.parse_args()

    names = []
    for s in args.systems.split(","):
        names += systems.GUNICORN if s == "gunicorn" else [s] if s else []
    for n in names:
        if n not in systems.KNOWN:
            ap.error(f"unknown system {n}")
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("keepalive", "close"):
            ap.error(f"unknown mode {m}")
    tools = {
        "baton": os.path.join(args.bin_dir, "baton"),
        "kvd": os.path.join(args.bin_dir, "kvd"),
        "baton-load": os.path.join(args.bin_dir, "baton-load"),
        "tfserver": args.tfserver,
        "nginx": shutil.which("nginx") or "/usr/sbin/nginx",
        "haproxy": shutil.which("haproxy") or "/usr/sbin/haproxy",
        "wrk": shutil.which("wrk") or "/usr/bin/wrk",
        "python3": "/usr/bin/python3",  # Debian's, with python3-gunicorn
    }
    for k, v in tools.items():
        if not os.access(v, os.X_OK):
            print(f"peers: {k} not found at {v} (tools/setup --bench installs the Debian packages)", file=sys.stderr)
            return 3

    out = args.out or tempfile.mkdtemp(prefix="bt-peers-")
    os.makedirs(out, exist_ok=True)
    root = tempfile.mkdtemp(prefix="bt-pr-")  # short: nginx and HAProxy put sockets here
    procs.become_subreaper()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    results = []
    plots = {}
    rc = 0
    sweep_md = ""
    began = time.monotonic()
    load_before = loadavg()
    try:
        total = len(names) * len(modes) * args.reps
        k = 0
        for rep in range(1, args.reps + 1):
            for mode in modes:
                for name in names:
                    k += 1
                    r, rundir = one_run(args, tools, name, mode, rep, root)
                    results.append(r)
                    if rep == 1:
                        plots[(name, mode)] = analyse.plot_series(rundir, r)
                    if not args.keep:
                        shutil.rmtree(rundir, ignore_errors=True)
                    print(f"[{k}/{total} {time.monotonic() - began:5.0f} s] {analyse.progress_line(r)}", flush=True)
        if args.sweep_upgrades > 0:
            print(f"[{time.monotonic() - began:5.0f} s] baton alone: baton-bench handoff --sweep "
                  f"--upgrades {args.sweep_upgrades}", flush=True)
            sweep_md = run_sweep(args, out)
    except Interrupted as e:
        print(f"peers: interrupted ({e}); ending every process", file=sys.stderr)
        rc = 130
    except Exception as e:  # a system failed to start or upgrade: report, clean up
        print(f"peers: {type(e).__name__}: {e}", file=sys.stderr)
        rc = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.end_all()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"peers: run logs kept in {root}", file=sys.stderr)

    summary = analyse.summarise(results, names, modes)
    config = {k: v for k, v in vars(args).items()}
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"config": config, "runs": results, "summary": summary}, f, indent=1)
    user_args, skip = [], False
    for a in sys.argv[1:]:  # what the user gave run, without what run adds
        if skip:
            skip = False
        elif a in ("--bin-dir", "--tfserver"):
            skip = True
        elif not a.startswith(("--bin-dir=", "--tfserver=")):
            user_args.append(a)
    header = ["Command: `" + " ".join(["tools/bench/peers/run", *user_args]) + "`",
              f"Load average (1/5/15 min) at start: {load_before}; at the end: {loadavg()}; "
              f"wall time {time.monotonic() - began:.0f} s.", "", "Versions:", ""]
    header += [f"* {v}" for v in versions(tools)]
    md = "\n".join(header) + "\n\n" + analyse.markdown(summary, names, modes, args)
    if sweep_md:
        md += f"\nbaton alone, `baton-bench handoff --sweep --upgrades {args.sweep_upgrades}` (times in ms):\n\n" + sweep_md
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(md)
    print()
    print(md)
    png = os.path.abspath(args.png or os.path.join(out, "peers.png"))
    if plots:
        try:
            analyse.draw(plots, names, modes, out, png, args)
            print(f"peers: plot written to {png}")
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"peers: could not draw {png}: {e}", file=sys.stderr)
            rc = rc or 1
    print(f"peers: results in {out} ({time.monotonic() - began:.0f} s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
