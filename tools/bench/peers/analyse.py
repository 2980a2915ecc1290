"""Turns one run's per-response log into figures; summarises repetitions;
writes the Markdown table and the gnuplot picture."""

import bisect
import glob
import math
import os
import statistics
import subprocess

BUCKET_US = 100_000  # the picture's time resolution
WINDOW_US = 1_000_000  # "around an upgrade": trigger ± 1 s


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list; None if empty."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def ms(us):
    return None if us is None else us / 1000.0


def read_log(rundir):
    """(end times, latencies) in us, statuses as strings, in file order
    (each thread's file is in time order; the files are not merged), and how
    many responses said "Connection: close"."""
    ts, lats, sts, closes = [], [], [], 0
    for path in sorted(glob.glob(os.path.join(rundir, "lat-*.log"))):
        with open(path) as f:
            v = f.read().split()
        n = len(v) - len(v) % 4
        ts += map(int, v[0:n:4])
        lats += map(int, v[1:n:4])
        sts += v[2:n:4]
        closes += sum(1 for c in v[3:n:4] if c == "1")
    return ts, lats, sts, closes


def lat_stats(lats):
    lats = sorted(lats)
    return {"n": len(lats), "p50": ms(pct(lats, 50)), "p99": ms(pct(lats, 99)), "max": ms(lats[-1] if lats else None)}


def analyse_run(rundir, start_ns, lead_s, control_s, upgrades, wrk, mode):
    ts, lats, sts, close_responses = read_log(rundir)
    start_us = start_ns // 1000
    ctl_from = start_us + int(lead_s * 1e6)
    ctl_to = ctl_from + int(control_s * 1e6)
    triggers = sorted(u["trigger_ns"] // 1000 for u in upgrades)
    first = triggers[0] if triggers else None

    # Responses that ended within ±1 s of a trigger: merge the windows into
    # disjoint intervals and look each end time up by bisection.
    starts, ends = [], []
    for tr in triggers:
        if ends and tr - WINDOW_US <= ends[-1]:
            ends[-1] = tr + WINDOW_US
        else:
            starts.append(tr - WINDOW_US)
            ends.append(tr + WINDOW_US)

    def near_upgrade(t):
        k = bisect.bisect_right(starts, t) - 1
        return k >= 0 and t <= ends[k]

    pairs = list(zip(ts, lats))
    control = [lat for t, lat in pairs if ctl_from <= t < ctl_to and t - lat >= ctl_from]
    during = [lat for t, lat in pairs if first is not None and t >= first]
    window = [lat for t, lat in pairs if near_upgrade(t)]
    non2xx = sum(1 for st in sts if not st.startswith("2"))
    socket_errors = wrk["connect"] + wrk["read"] + wrk["write"] + wrk["timeout"]
    gone = [(u["gone_ns"] - u["trigger_ns"]) / 1e6 for u in upgrades if u["gone_ns"] is not None]
    sorted_ts = sorted(ts)

    def longest_pause(t_from, t_to):
        # Longest time in [t_from, t_to) in which no response completed, on
        # any connection: how long the service looked stopped to clients.
        lo = bisect.bisect_left(sorted_ts, t_from)
        hi = bisect.bisect_left(sorted_ts, t_to)
        if lo == hi:
            return None
        edges = [t_from, *sorted_ts[lo:hi], t_to]
        return max(b - a for a, b in zip(edges, edges[1:])) / 1000.0

    # 100 ms buckets over the whole run for the picture: p50 and max latency.
    buckets = {}
    for t, lat in pairs:
        b = (t - start_us) // BUCKET_US
        v = buckets.get(b)
        if v is None:
            buckets[b] = [lat]
        else:
            v.append(lat)
    series = []
    for b in sorted(buckets):
        vals = sorted(buckets[b])
        series.append((b * BUCKET_US / 1e6, ms(pct(vals, 50)), ms(vals[-1]), len(vals)))

    n_up = len(upgrades)
    # Connections the server ended: a response saying "Connection: close", or
    # a connection that failed under wrk after it was established (wrk counts
    # a FIN or a reset while reading or writing as a read or write error, then
    # reconnects). With one connection per request every response closes, so
    # only keep-alive runs report it.
    server_closed = None if mode == "close" else close_responses + wrk["read"] + wrk["write"]
    return {
        "upgrades": n_up,
        "upgrades_ok": sum(1 for u in upgrades if u["ok"]),
        "requests": wrk["requests"],
        "responses_logged": len(ts),
        "socket_errors": {k: wrk[k] for k in ("connect", "read", "write", "timeout")},
        "non2xx": non2xx,
        "errors": socket_errors + non2xx,
        "errors_per_upgrade": (socket_errors + non2xx) / n_up if n_up else None,
        "server_closed": server_closed,
        "server_closed_per_upgrade": server_closed / n_up if n_up and server_closed is not None else None,
        "overall": lat_stats(lats),
        "control": lat_stats(control),
        "during_upgrades": lat_stats(during),
        "near_upgrade": lat_stats(window),
        "gone_ms": gone,
        "pause_control_ms": longest_pause(ctl_from, ctl_to),
        "pause_upgrades_ms": longest_pause(first, triggers[-1] + WINDOW_US) if triggers else None,
        "upgrade_detail": [dict(u["detail"], trigger_s=(u["trigger_ns"] - start_ns) / 1e9,
                                gone_ms=(u["gone_ns"] - u["trigger_ns"]) / 1e6 if u["gone_ns"] else None, ok=u["ok"])
                           for u in upgrades],
        "series": series,
        "trigger_s": [(u["trigger_ns"] - start_ns) / 1e9 for u in upgrades],
    }


def write_pauses(gaps, upgrades, ctl_from_ms, ctl_to_ms, floor_ms):
    """From baton-load's gap log (gaps between write acks over floor_ms, with
    CLOCK_MONOTONIC starts): the longest gap overlapping each upgrade's
    [trigger, old gone] and the longest overlapping the control. A window
    with no logged gap counts as floor_ms (an upper bound)."""
    def longest(lo, hi):
        m = floor_ms
        for g in gaps:
            a, b = g["start_mono_ms"], g["start_mono_ms"] + g["gap_ms"]
            if a < hi and b > lo:
                m = max(m, g["gap_ms"])
        return m
    per = []
    for u in upgrades:
        t = u["detail"].get("trigger_mono_ms")
        if t is None or u["gone_ns"] is None:
            continue
        per.append(longest(t, t + (u["gone_ns"] - u["trigger_ns"]) / 1e6))
    return {"control_ms": longest(ctl_from_ms, ctl_to_ms), "per_upgrade_ms": per,
            "all_over_floor": sorted((g["gap_ms"] for g in gaps), reverse=True)[:10]}


def plot_series(_rundir, r):
    return {"series": r["series"], "trigger_s": r["trigger_s"]}


def fmt_num(v):
    if v is None:
        return "–"
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int):
        return f"{v:,}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def med_range(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def show(mr):
    if mr is None:
        return "–"
    if mr["min"] == mr["max"]:
        return fmt_num(mr["median"])
    return f"{fmt_num(mr['median'])} ({fmt_num(mr['min'])}–{fmt_num(mr['max'])})"


def summarise(results, names, modes):
    out = {}
    for name in names:
        for mode in modes:
            rs = [r for r in results if r["system"] == name and r["mode"] == mode]
            if not rs:
                continue
            ratio = [r["during_upgrades"]["p99"] / r["control"]["p99"]
                     for r in rs if r["control"]["p99"] and r["during_upgrades"]["p99"]]
            out[f"{name}/{mode}"] = {
                "runs": len(rs),
                "upgrades": sum(r["upgrades"] for r in rs),
                "upgrades_ok": sum(r["upgrades_ok"] for r in rs),
                "requests": med_range([r["requests"] for r in rs]),
                **{f"socket_{k}": med_range([r["socket_errors"][k] for r in rs])
                   for k in ("connect", "read", "write", "timeout")},
                "non2xx": med_range([r["non2xx"] for r in rs]),
                "errors_per_upgrade": med_range([r["errors_per_upgrade"] for r in rs]),
                "server_closed_per_upgrade": med_range([r["server_closed_per_upgrade"] for r in rs]),
                "p50": med_range([r["overall"]["p50"] for r in rs]),
                "p99": med_range([r["overall"]["p99"] for r in rs]),
                "max": med_range([r["overall"]["max"] for r in rs]),
                "near_p99": med_range([r["near_upgrade"]["p99"] for r in rs]),
                "near_max": med_range([r["near_upgrade"]["max"] for r in rs]),
                "control_p99": med_range([r["control"]["p99"] for r in rs]),
                "during_p99": med_range([r["during_upgrades"]["p99"] for r in rs]),
                "p99_ratio": med_range(ratio),
                "pause_control_ms": med_range([r["pause_control_ms"] for r in rs]),
                "pause_upgrades_ms": med_range([r["pause_upgrades_ms"] for r in rs]),
                "gone_ms": med_range([statistics.median(r["gone_ms"]) for r in rs if r["gone_ms"]]),
                "gone_ms_max": med_range([max(r["gone_ms"]) for r in rs if r["gone_ms"]]),
                "side_load": [r["side_load"] for r in rs if r.get("side_load")],
                "write_pause": [r["write_pause"] for r in rs if r.get("write_pause")],
            }
    return out


def progress_line(r):
    s = r["socket_errors"]
    return (f"{r['system']:<17} {r['mode']:<9} rep {r['rep']}: {r['upgrades_ok']}/{r['upgrades']} upgrades, "
            f"{r['requests']} req, errors c/r/w/t {s['connect']}/{s['read']}/{s['write']}/{s['timeout']} "
            f"non-2xx {r['non2xx']}, server closes {fmt_num(r['server_closed'])}, "
            f"p99 {fmt_num(r['overall']['p99'])} ms "
            f"(control {fmt_num(r['control']['p99'])}, ±1 s {fmt_num(r['near_upgrade']['p99'])}), "
            f"pause {fmt_num(r['pause_control_ms'])}/{fmt_num(r['pause_upgrades_ms'])} ms, "
            f"old gone {fmt_num(statistics.median(r['gone_ms'])) if r['gone_ms'] else '–'} ms median")


TITLES = {
    "baton-kvd": "baton + kvd (reads)",
    "baton-kvd-writes": "baton + kvd (reads + baton-load writes)",
    "baton-kvd-no-hand-over": "baton + kvd --no-hand-over (reads; connections closed at a response boundary)",
    "nginx-usr2": "nginx binary upgrade (USR2 → WINCH → QUIT)",
    "nginx-reload": "nginx -s reload",
    "haproxy": "HAProxy -W seamless reload",
    "haproxy-nofd": "HAProxy -W, no fd transfer (new master, -sf)",
    "tableflip": "Go + tableflip",
    "restart": "stop + start (kvd alone)",
    "baton-gunicorn": "baton + gunicorn, unmodified (notify, overlap)",
    "gunicorn-hup": "gunicorn HUP (new workers, same master)",
    "gunicorn-usr2": "gunicorn binary upgrade (USR2, then TERM to the old master)",
}


def markdown(summary, names, modes, args):
    lines = []
    for mode in modes:
        label = "Keep-alive" if mode == "keepalive" else "One connection per request"
        rows = [(name, summary[f"{name}/{mode}"]) for name in names if f"{name}/{mode}" in summary]
        if not rows:
            continue
        lines.append(f"**{label}**: {args.connections} wrk connections; each run has {args.control:g} s of control "
                     f"(no upgrade), then {args.upgrades} upgrades {args.interval:g} s apart; median (min–max) "
                     f"of {args.reps} runs. baton's upgrades are set off by "
                     + ("SIGHUP to the supervisor." if args.baton_trigger == "sighup" else "`baton upgrade --json`."))
        lines.append("")
        lines.append("| system | upgrades ok | requests | socket errors connect / read / write / timeout | non-2xx "
                     "| errors per upgrade | connections closed by the server per upgrade "
                     "| longest pause in responses (ms): control | with upgrades "
                     "| trigger → old gone (ms), median | worst |")
        lines.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, s in rows:
            keys = ("connect", "read", "write", "timeout")
            sock = " / ".join(fmt_num(s[f"socket_{k}"]["median"]) for k in keys)
            if any(s[f"socket_{k}"]["min"] != s[f"socket_{k}"]["max"] for k in keys):
                sock += " (" + " / ".join(f"{fmt_num(s[f'socket_{k}']['min'])}–{fmt_num(s[f'socket_{k}']['max'])}"
                                          for k in keys) + ")"
            lines.append(
                f"| {TITLES.get(name, name)} | {s['upgrades_ok']}/{s['upgrades']} | {show(s['requests'])} | {sock} | "
                f"{show(s['non2xx'])} | **{show(s['errors_per_upgrade'])}** | "
                f"{show(s['server_closed_per_upgrade']) if mode == 'keepalive' else 'all (by design)'} | "
                f"{show(s['pause_control_ms'])} | "
                f"{show(s['pause_upgrades_ms'])} | **{show(s['gone_ms'])}** | {show(s['gone_ms_max'])} |")
        lines.append("")
        lines.append("| system (latency, ms) | p50 | p99 | max | p99 within ±1 s of an upgrade | max within ±1 s "
                     "| control p99 | p99 from the first upgrade on | ÷ control p99 |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, s in rows:
            lines.append(
                f"| {TITLES.get(name, name)} | {show(s['p50'])} | {show(s['p99'])} | {show(s['max'])} | "
                f"{show(s['near_p99'])} | {show(s['near_max'])} | {show(s['control_p99'])} | "
                f"{show(s['during_p99'])} | **{show(s['p99_ratio'])}** |")
        lines.append("")
    side = [(k, s["side_load"]) for k, s in summary.items() if s["side_load"]]
    if side:
        lines.append("baton-load beside wrk (writes, verified by reading every acknowledged write back):")
        lines.append("")
        for k, loads in side:
            parts = []
            for l in loads:
                if "error" in l:
                    parts.append(l["error"])
                    continue
                parts.append(describe_side_load(l))
            lines.append(f"* {k}: " + "; ".join(parts))
            wp = summary[k]["write_pause"]
            if wp:
                per = [g for w in wp for g in w["per_upgrade_ms"]]
                per.sort()
                lines.append(f"  longest gap between write acks overlapping an upgrade (trigger → old gone), over "
                             f"{len(per)} upgrades: median {fmt_num(statistics.median(per))} ms, max "
                             f"{fmt_num(per[-1])} ms; in the control windows: "
                             + ", ".join(fmt_num(w["control_ms"]) for w in wp) + " ms")
        lines.append("")
    return "\n".join(lines)


def describe_side_load(l):
    gap = l.get("write_gap_ms", {}).get("max")
    return (f"{l.get('writes_acked', '?'):,} writes acked, {l.get('errors_total', '?')} errors, "
            f"{l.get('lost_writes', '?')} lost, longest gap between write acks {fmt_num(gap)} ms "
            f"(exit {l.get('exit')})")


def draw(plots, names, modes, out, png, args):
    rows = [n for n in names if any((n, m) in plots for m in modes)]
    cols = [m for m in modes if any((n, m) in plots for n in names)]
    script = [
        f"set terminal pngcairo size {560 * len(cols) + 80},{230 * len(rows) + 60} font 'DejaVu Sans,9'",
        f"set output '{png}'",
        "set logscale y",
        "set format y '%g'",
        "set grid ytics",
        "set key top left horizontal font ',8' samplen 2",
        "set yrange [0.02:3000]",
        "set datafile missing '?'",
        f"set multiplot layout {len(rows)},{len(cols)} title 'Client latency (ms, log scale) over time (s) "
        f"per 100 ms: max and median (a break: no response completed); dashed red lines: upgrade triggers ({args.connections} wrk connections)'",
    ]
    for n in rows:
        for m in cols:
            p = plots.get((n, m))
            label = "keep-alive" if m == "keepalive" else "new connection per request"
            if not p:
                script.append("set multiplot next")
                continue
            data = os.path.join(out, f"plot-{n}-{m}.dat")
            with open(data, "w") as f:
                prev = None
                for t, p50, mx, cnt in p["series"]:
                    if prev is not None and t - prev > 1.5 * BUCKET_US / 1e6:
                        f.write("\n")  # no response in the buckets between: break the lines
                    f.write(f"{t:.2f} {p50:.4f} {mx:.4f} {cnt * 1e6 / BUCKET_US:.0f}\n")
                    prev = t
            script.append("unset arrow")
            for t in p["trigger_s"]:
                script.append(f"set arrow from {t:.3f}, graph 0 to {t:.3f}, graph 1 nohead lc rgb '#cc0000' dt 2")
            script.append(f"set title '{TITLES.get(n, n)} — {label}'")
            script.append(f"plot '{data}' using 1:3 with lines lc rgb '#1f77b4' title 'max', "
                          f"'' using 1:2 with lines lc rgb '#2ca02c' title 'median'")
    script.append("unset multiplot")
    gp = os.path.join(out, "plot.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["gnuplot", gp], check=True)
