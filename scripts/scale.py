#!/usr/bin/env python3
"""The scale step: the thread pool against GLib's GThreadPool from 1k to
1M (or 10M) tasks submitted at once, and the memory each future costs.

    scripts/py.sh scripts/scale.py [--out DIR] [--sizes 1000,...] [--reps 5]

For every size N, --reps alternations of the two programs, back to back
(the order flips every repetition), each after a warm-up round of the same
size inside the program:

    poolbench overhead -e threads -w W -c 0 --json -n N     (ours)
    glib_pool N W                      (scripts/peers/glib_pool.c)

Before each pair: the machine's state from `poolbench noise` (the CPUs a
0.2 s spin on every CPU got, the 1-minute load, steal), so a noisy figure
shows as one.  Then
once per size, the resident-set growth per pending future:

    poolbench footprint -w W -n N --json                    (ours)
    glib_rss N W                        (scripts/peers/glib_rss.c)

Writes OUT/scale.jsonl (one row per measurement), OUT/SCALE.md (medians,
min..max, the paired ratios, and the targets: at or below GLib at 100k,
within 1.0x at 1M and 10M, at most 128 bytes per pending future) and
OUT/charts/scale.png/.svg; prints the path of SCALE.md.  Without GLib's
headers (libglib2.0-dev) only our side is measured.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MEMORY_TARGET = 128.0


def build_peers(outdir):
    """Compiles the GLib peers; their paths, or None without GLib."""
    if shutil.which("pkg-config") is None or subprocess.call(
            ["pkg-config", "--exists", "glib-2.0"]) != 0:
        print("scale: GLib skipped: libglib2.0-dev is not installed", file=sys.stderr)
        return None
    flags = subprocess.check_output(["pkg-config", "--cflags", "--libs", "glib-2.0"],
                                    text=True).split()
    peers = {}
    for name in ("glib_pool", "glib_rss"):
        exe = os.path.join(outdir, name)
        src = os.path.join(HERE, "peers", name + ".c")
        subprocess.check_call([os.environ.get("CC", "cc"), "-O2", "-o", exe, src] + flags)
        peers[name] = exe
    return peers


def run_json(cmd, timeout):
    """The last JSON line a command prints; raises on failure."""
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True).stdout
    lines = [l for l in out.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def conditions(args, n, rep):
    """The machine's state before a pair (poolbench noise: a 0.2 s spin on
    every allowed CPU, the load, steal and other processes' CPU)."""
    j = run_json([args.poolbench, "noise", "--json", "--ms", "200"], args.timeout)
    return {"n": n, "rep": rep, "load1": j["loadavg_1m"], "capacity_cpus": j["capacity_cpus"],
            "online_cpus": j["online_cpus"], "steal_pct": j["steal_pct"],
            "others_cpu_s": j["others_cpu_s"]}


def measure_pair(args, peers, n, rep):
    """One alternation at size n: ours and GLib's, order flipped on odd reps."""
    cond = conditions(args, n, rep)
    ours = [args.poolbench, "overhead", "-e", "threads", "-w", str(args.workers), "-c", "0",
            "--json", "-n", str(n)]
    runs = [("threads", ours)]
    if peers:
        runs.append(("glib", [peers["glib_pool"], str(n), str(args.workers)]))
    if rep % 2:
        runs.reverse()
    rows = []
    for who, cmd in runs:
        j = run_json(cmd, args.timeout)
        row = dict(cond, kind="throughput", who=who, ns_per_task=j["throughput_ns_per_task"],
                   command=" ".join(os.path.basename(c) if c == cmd[0] else c for c in cmd))
        if who == "threads":
            row["latency_median_ns"] = j.get("latency_median_ns")
        rows.append(row)
    return rows


def measure_memory(args, peers, n):
    rows = []
    j = run_json([args.poolbench, "footprint", "-w", str(args.workers), "-n", str(n), "--json"],
                 args.timeout)
    rows.append({"n": n, "kind": "memory", "who": "threads",
                 "bytes_per_future": j["rss_pending_bytes_per_future"],
                 "bytes_done": j["rss_done_bytes_per_future"]})
    if peers:
        j = run_json([peers["glib_rss"], str(n), str(args.workers)], args.timeout)
        rows.append({"n": n, "kind": "memory", "who": "glib",
                     "bytes_per_future": j["rss_pending_bytes_per_task"]})
    return rows


def spread(values):
    return "%.0f (%.0f..%.0f)" % (statistics.median(values), min(values), max(values))


def summary_rows(rows, sizes):
    """Per size: medians and ranges of both, the paired ratios, conditions."""
    out = []
    for n in sizes:
        tp = [r for r in rows if r["kind"] == "throughput" and r["n"] == n]
        ours = {r["rep"]: r for r in tp if r["who"] == "threads"}
        glib = {r["rep"]: r for r in tp if r["who"] == "glib"}
        mem = {r["who"]: r for r in rows if r["kind"] == "memory" and r["n"] == n}
        s = {"n": n, "ours": [r["ns_per_task"] for r in ours.values()],
             "glib": [r["ns_per_task"] for r in glib.values()],
             "ratios": [ours[k]["ns_per_task"] / glib[k]["ns_per_task"] for k in ours if k in glib],
             "latency": [r["latency_median_ns"] for r in ours.values() if r.get("latency_median_ns")],
             "load": [r["load1"] for r in tp], "capacity": [r["capacity_cpus"] for r in tp],
             "mem_ours": mem.get("threads", {}).get("bytes_per_future"),
             "mem_glib": mem.get("glib", {}).get("bytes_per_future")}
        out.append(s)
    return out


def verdicts(summary):
    lines = []
    for s in summary:
        if s["ratios"]:
            med = statistics.median(s["ratios"])
            if s["n"] == 100000:
                lines.append("- 100k: ours / GLib = %.2f (median of paired runs): %s (target: at or "
                             "below GLib)" % (med, "met" if med <= 1.0 else "NOT met"))
            elif s["n"] >= 1000000:
                lines.append("- %s: ours / GLib = %.2f: %s (target: within 1.0x)" % (
                    human(s["n"]), med, "met" if med <= 1.0 else "NOT met"))
        if s["mem_ours"] is not None and s["n"] >= 100000:
            lines.append("- %s: %.1f B of RSS per pending future: %s (target: at most %.0f B)" % (
                human(s["n"]), s["mem_ours"], "met" if s["mem_ours"] <= MEMORY_TARGET else "NOT met",
                MEMORY_TARGET))
    return lines


def busy_note(args, summary):
    """A warning when some pair ran with fewer CPUs than the pool has
    workers: a pool's cost then depends on how it fares under contention
    (GLib's swings by 10x), so the verdicts below say little."""
    caps = [c for s in summary for c in s["capacity"]]
    if not caps or min(caps) >= 0.9 * args.workers:
        return None
    return ("**Busy machine**: `poolbench noise` gave %.2f..%.2f CPUs (of %d workers) and a "
            "1-minute load of %.1f..%.1f before the pairs; the speed verdicts below are only as good "
            "as that.  Re-take on a quiet machine before judging a target." % (
                min(caps), max(caps), args.workers,
                min(l for s in summary for l in s["load"]), max(l for s in summary for l in s["load"])))


def human(n):
    return "%dM" % (n // 1000000) if n >= 1000000 else "%dk" % (n // 1000) if n >= 1000 else str(n)


def write_report(args, summary, path):
    with open(path, "w") as f:
        f.write("# Scale: the thread pool against GLib's GThreadPool\n\n")
        f.write("Host %s, %d workers, %d alternations per size (order flipped each time), %s.\n\n"
                % (socket.gethostname(), args.workers, args.reps, time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                time.gmtime())))
        f.write("| tasks | threads ns/task | GLib ns/task | ratio (paired) | one in flight ns "
                "| load 1 min | capacity (CPUs) | RSS B/future (ours / GLib) |\n")
        f.write("|---|---|---|---|---|---|---|---|\n")
        for s in summary:
            ratio = ("%.2f (%.2f..%.2f)" % (statistics.median(s["ratios"]), min(s["ratios"]),
                                            max(s["ratios"])) if s["ratios"] else "-")
            mem = "%s / %s" % ("%.1f" % s["mem_ours"] if s["mem_ours"] is not None else "-",
                               "%.1f" % s["mem_glib"] if s["mem_glib"] is not None else "-")
            f.write("| %s | %s | %s | %s | %s | %.1f..%.1f | %.2f..%.2f | %s |\n" % (
                human(s["n"]), spread(s["ours"]), spread(s["glib"]) if s["glib"] else "-", ratio,
                spread(s["latency"]) if s["latency"] else "-", min(s["load"]), max(s["load"]),
                min(s["capacity"]), max(s["capacity"]), mem))
        f.write("\nns/task: median (min..max) over the alternations; ratio: median (min..max) of "
                "ours / GLib within each alternation.  One in flight: the median round trip of "
                "`poolbench overhead`'s latency test.  RSS: growth of the resident set per pending "
                "task (`poolbench footprint`, `glib_rss`); GLib keeps no future, only a queue "
                "node.  At small sizes the fixed costs (the first pages of a slab or a "
                "queue block) dominate the division; the targets apply from 100k.\n\n"
                "## Targets\n\n")
        busy = busy_note(args, summary)
        if busy:
            f.write(busy + "\n\n")
        f.write("\n".join(verdicts(summary)) + "\n\n## Commands\n\n```sh\n")
        f.write("poolbench overhead -e threads -w %d -c 0 --json -n N\nglib_pool N %d\n"
                "poolbench footprint -w %d -n N --json\nglib_rss N %d\n```\n"
                % (args.workers, args.workers, args.workers, args.workers))
        f.write("\nRe-take: `make scale` (or `scripts/py.sh scripts/scale.py --sizes %s --reps %d`).\n"
                % (",".join(str(s["n"]) for s in summary), args.reps))


def chart(summary, outdir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("scale: no chart: matplotlib is missing", file=sys.stderr)
        return
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [s["n"] for s in summary]
    for key, label, color in (("ours", "poolbench threads", "#1f77b4"), ("glib", "GLib GThreadPool", "#d62728")):
        pts = [(s["n"], s[key]) for s in summary if s[key]]
        if not pts:
            continue
        med = [statistics.median(v) for _, v in pts]
        err = [[m - min(v) for m, (_, v) in zip(med, pts)], [max(v) - m for m, (_, v) in zip(med, pts)]]
        a.errorbar([n for n, _ in pts], med, yerr=err, marker="o", capsize=3, label=label, color=color)
    a.set_xscale("log")
    values = [v for s in summary for v in s["ours"] + s["glib"]]
    log_y = values and max(values) > 20 * min(values)
    if log_y:
        a.set_yscale("log")
    else:
        a.set_ylim(bottom=0)
    a.set_xlabel("tasks submitted at once")
    a.set_ylabel("ns per empty task (median, min..max)%s" % (", log scale" if log_y else ""))
    a.set_title("Cost per task against batch size")
    a.legend()
    width = 0.38
    idx = range(len(xs))
    a_vals = [s["mem_ours"] or 0 for s in summary]
    g_vals = [s["mem_glib"] or 0 for s in summary]
    b.bar([i - width / 2 for i in idx], a_vals, width, label="poolbench future", color="#1f77b4")
    b.bar([i + width / 2 for i in idx], g_vals, width, label="GLib queue node", color="#d62728")
    b.axhline(MEMORY_TARGET, linestyle=":", color="black", label="target %.0f B" % MEMORY_TARGET)
    b.set_xticks(list(idx))
    b.set_xticklabels([human(n) for n in xs])
    b.set_xlabel("pending tasks")
    b.set_ylabel("RSS growth per pending task, bytes")
    b.set_title("Memory per pending task")
    b.legend()
    fig.tight_layout()
    os.makedirs(os.path.join(outdir, "charts"), exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(outdir, "charts", "scale." + ext))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="folder (default results/scale-HOST-TIME)")
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per program run")
    ap.add_argument("--poolbench", default=os.path.join(ROOT, "build", "poolbench"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if args.reps < 1 or not sizes or min(sizes) < 100 or max(sizes) > 10000000:
        ap.error("--reps must be >= 1 and --sizes within 100..10000000")
    out = args.out or os.path.join(ROOT, "results", "scale-%s-%s" % (
        socket.gethostname(), time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        peers = build_peers(tmp)
        rows = []
        with open(os.path.join(out, "scale.jsonl"), "w") as f:
            for n in sizes:
                for rep in range(args.reps):
                    batch = measure_pair(args, peers, n, rep)
                    batch += measure_memory(args, peers, n) if rep == args.reps - 1 else []
                    for r in batch:
                        f.write(json.dumps(r) + "\n")
                    f.flush()
                    rows += batch
                print("scale: %s tasks done" % human(n), file=sys.stderr)
    summary = summary_rows(rows, sizes)
    report = os.path.join(out, "SCALE.md")
    write_report(args, summary, report)
    chart(summary, out)
    print(report)


if __name__ == "__main__":
    main()
