#!/usr/bin/env python3
# needs: json
"""procs_targets.py: the process pool's targets of issue 13, each measured
back to back with what it is compared against, alternated over rounds (at
least 5), with the machine's state beside every measure (`poolbench noise`:
CPUs a parallel spin got, load, runnable processes, steal), so that a
figure taken on a shared machine can be judged, and re-taken in a quiet
phase with the same command:

  submit   empty task via ex_submit, 2 workers (poolbench overhead -e procs:
           submit N, wait for all, ns per task) against Python's
           ProcessPoolExecutor (scripts/peers/py_executors.py, as
           `make peers` runs it); targets <= 5 us and >= 30x cheaper
  latency  one task in flight (overhead's latency median) against the
           cross-core pipe round trip (poolbench calibrate --only
           pipe_rtt_cross_core); target <= 1.3x
  sha256   256 KiB buffers, procs over shared memory at 2 workers against
           seq (wall times of poolbench run; procs over pipes and threads
           beside them); target >= 1.7x
  64mib    a 64 MiB round trip over shared memory (poolbench transport:
           2 x 64 MiB / round trip, interleaved with pipes, threads and
           seq); target >= 2 GB/s

Within a round the pair's order alternates (ours first in odd rounds, the
peer first in even ones), so that a drift in the machine's load does not
always favour the same side.  Every round is printed as one JSON line (and
appended to --jsonl); a summary line per measure gives the median, min and
max of each figure over the rounds.  Nothing is dropped.

Usage: scripts/py.sh scripts/procs_targets.py [--rounds 5]
       [--only submit,latency,sha256,64mib] [--jsonl FILE]
Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER = os.path.join(HERE, "peers", "py_executors.py")


def pb():
    return os.environ.get("POOLBENCH", os.path.join(ROOT, "build", "poolbench"))


def run_json_lines(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def noise():
    """The machine's state now (poolbench noise: a 200 ms parallel spin)."""
    n = run_json_lines([pb(), "noise", "--json"])[0]
    return {"capacity_cpus": n["capacity_cpus"], "load1": n["loadavg_1m"],
            "procs_running": n["procs_running"], "steal_pct": n["steal_pct"],
            "others_cpu_s": n["others_cpu_s"]}


def pair(rnd, ours, peer):
    """Runs ours() and peer() back to back, ours first in odd rounds."""
    if rnd % 2:
        a = ours()
        return a, peer()
    b = peer()
    return ours(), b


def overhead(tasks):
    return run_json_lines([pb(), "overhead", "-e", "procs", "-w", "2", "-n", str(tasks),
                           "-c", "0", "--json"])[0]


def python_procs(tasks):
    # The peer as `make peers` runs it (scripts/peers/run.sh): its own
    # interpreter, 2 workers; only the process pool's line is kept.
    rows = run_json_lines([sys.executable, PEER, "--workers", "2", "--tasks", str(tasks),
                           "--kinds", "process"])
    return [r for r in rows if "Process" in r["peer"]][0]


def m_submit(rnd, tasks):
    ours, peer = pair(rnd, lambda: overhead(tasks), lambda: python_procs(max(2000, tasks // 10)))
    return {"procs_ns": ours["throughput_ns_per_task"],
            "python_ns": peer["throughput_ns_per_task"],
            "cheaper_x": round(peer["throughput_ns_per_task"] / ours["throughput_ns_per_task"], 1)}


def pipe_rtt():
    cal = json.loads(subprocess.run([pb(), "calibrate", "--only", "pipe_rtt_cross_core",
                                     "--reps", "5"],
                                    check=True, capture_output=True, text=True).stdout)
    return cal["measures"][0]["median"]


def m_latency(rnd, tasks):
    ours, rtt = pair(rnd, lambda: overhead(tasks), pipe_rtt)
    lat = ours["latency_median_ns"]
    return {"procs_latency_ns": lat, "pipe_rtt_cross_core_ns": round(rtt),
            "ratio": round(lat / rtt, 2) if rtt else None}


def wall(args):
    return run_json_lines([pb(), "run", "--json"] + args)[0]["wall_s"]


def m_sha256(rnd, tasks):
    base = ["-W", "sha256", "-p", "bytes=262144", "-n", str(tasks)]
    seq, shm = pair(rnd, lambda: wall(base + ["-e", "seq", "-w", "1"]),
                    lambda: wall(base + ["-e", "procs", "-w", "2", "--transport", "shm"]))
    pipe = wall(base + ["-e", "procs", "-w", "2", "--transport", "pipe"])
    thr = wall(base + ["-e", "threads", "-w", "2"])
    return {"seq_s": seq, "procs_shm_s": shm, "procs_pipe_s": pipe, "threads_s": thr,
            "speedup_shm": round(seq / shm, 2), "speedup_pipe": round(seq / pipe, 2),
            "speedup_threads": round(seq / thr, 2)}


def m_64mib(_rnd, _tasks):
    rows = run_json_lines([pb(), "transport", "--sizes", "64M", "--reps", "5", "--json"])
    out = {}
    for r in rows:
        key = r["executor"] + ("_" + r["transport"] if r["transport"] else "")
        out[key + "_gbps"] = round(r["gbps_both_ways_median"], 2)
    return out


MEASURES = {"submit": (m_submit, 20000), "latency": (m_latency, 20000),
            "sha256": (m_sha256, 120), "64mib": (m_64mib, 0)}


def summarize(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "n": len(vals)}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default=",".join(MEASURES))
    ap.add_argument("--jsonl", help="also append every round and summary here")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in MEASURES:
            ap.error("unknown measure %r (accepted: %s)" % (n, ", ".join(MEASURES)))
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")

    def emit(obj):
        print(json.dumps(obj), flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(obj) + "\n")

    results = {n: [] for n in names}
    for r in range(1, args.rounds + 1):
        for n in names:
            fn, tasks = MEASURES[n]
            row = {"measure": n, "round": r}
            row.update({"before_" + k: v for k, v in noise().items()})
            row.update(fn(r, tasks))
            row.update({"after_" + k: v for k, v in noise().items()})
            results[n].append(row)
            emit(row)
    for n in names:
        keys = [k for k in results[n][0] if k not in ("measure", "round")]
        summary = {k: summarize(results[n], k) for k in keys}
        emit({"summary": n, "rounds": len(results[n]), **{k: v for k, v in summary.items() if v}})


if __name__ == "__main__":
    main()
