"""procs_targets.py: the process pool's targets of issue 13, each measured
back to back with what it is compared against, alternated (>= 5 rounds),
with the load average and a short CPU-capacity check beside every round,
so that a figure taken on a shared machine can be judged (and re-taken in a
quiet phase with the same command):

  submit   empty task via ex_submit (poolbench overhead, throughput ns/task)
           against Python's ProcessPoolExecutor (scripts/peers/py_executors.py);
           targets <= 5 us and >= 30x cheaper
  latency  one task in flight (overhead's latency median) against the
           calibrated cross-core pipe round trip (poolbench calibrate);
           target <= 1.3x
  sha256   procs over shared memory, 2 workers, against seq (256 KiB
           buffers; wall times of poolbench run); target >= 1.7x
  64mib    a 64 MiB round trip over shared memory (poolbench transport:
           2 x 64 MiB / round trip); target >= 2 GB/s

Usage: scripts/py.sh scripts/procs_targets.py [--rounds 5] [--only submit,latency]
       [--jsonl FILE]
Standard library only.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "peers"))


def pb():
    return os.environ.get("POOLBENCH", os.path.join(ROOT, "build", "poolbench"))


def run_json_lines(args):
    out = subprocess.run([pb()] + args, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def capacity(seconds=0.3):
    """CPUs' worth of time two spinning processes got over `seconds` of
    wall time (2.0 on an idle 2-CPU machine)."""
    script = ("import time\nt=time.perf_counter()\n"
              "while time.perf_counter()-t<%f: pass\n"
              "print(time.process_time())" % seconds)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
             for _ in range(os.cpu_count() or 1)]
    cpu = sum(float(p.communicate()[0]) for p in procs)
    return round(cpu / (time.perf_counter() - t0), 2)


def conditions():
    return {"load1": round(os.getloadavg()[0], 2), "capacity_cpus": capacity()}


def m_submit(tasks):
    ours = run_json_lines(["overhead", "-e", "procs", "-w", "2", "-n", str(tasks), "-c", "0", "--json"])[0]
    import py_executors
    peer = py_executors.measure("process", 2, max(2000, tasks // 10))
    return {"procs_ns": ours["throughput_ns_per_task"],
            "python_ns": peer["throughput_ns_per_task"],
            "cheaper_x": round(peer["throughput_ns_per_task"] / ours["throughput_ns_per_task"], 1),
            "procs_latency_ns": ours["latency_median_ns"]}


def m_latency(tasks):
    ours = run_json_lines(["overhead", "-e", "procs", "-w", "2", "-n", str(tasks), "-c", "0", "--json"])[0]
    cal = json.loads(subprocess.run([pb(), "calibrate", "--only", "pipe_rtt_cross_core", "--reps", "5"],
                                    check=True, capture_output=True, text=True).stdout)
    rtt = cal["measures"][0]["median"]
    return {"procs_latency_ns": ours["latency_median_ns"], "pipe_rtt_cross_core_ns": rtt,
            "ratio": round(ours["latency_median_ns"] / rtt, 2) if rtt else None}


def wall(args):
    return run_json_lines(["run", "--json"] + args)[0]["wall_s"]


def m_sha256(tasks):
    base = ["-W", "sha256", "-n", str(tasks)]
    seq = wall(base + ["-e", "seq", "-w", "1"])
    shm = wall(base + ["-e", "procs", "-w", "2", "--transport", "shm"])
    pipe = wall(base + ["-e", "procs", "-w", "2", "--transport", "pipe"])
    thr = wall(base + ["-e", "threads", "-w", "2"])
    return {"seq_s": seq, "procs_shm_s": shm, "procs_pipe_s": pipe, "threads_s": thr,
            "speedup_shm": round(seq / shm, 2), "speedup_pipe": round(seq / pipe, 2),
            "speedup_threads": round(seq / thr, 2)}


def m_64mib(_tasks):
    rows = run_json_lines(["transport", "--sizes", "64M", "--reps", "5", "--json"])
    out = {}
    for r in rows:
        key = r["executor"] + ("_" + r["transport"] if r["transport"] else "")
        out[key + "_gbps"] = round(r["gbps_both_ways_median"], 2)
    return out


MEASURES = {"submit": (m_submit, 20000), "latency": (m_latency, 20000),
            "sha256": (m_sha256, 40), "64mib": (m_64mib, 0)}


def summarize(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default=",".join(MEASURES))
    ap.add_argument("--jsonl", help="also append every round here")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n]
    for n in names:
        if n not in MEASURES:
            ap.error("unknown measure %r (accepted: %s)" % (n, ", ".join(MEASURES)))
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    results = {n: [] for n in names}
    for r in range(args.rounds):
        for n in names:
            fn, tasks = MEASURES[n]
            row = dict(conditions(), measure=n, round=r + 1)
            row.update(fn(tasks))
            results[n].append(row)
            print(json.dumps(row), flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps(row) + "\n")
    for n in names:
        keys = [k for k in results[n][0] if k not in ("measure", "round")]
        summary = {k: summarize(results[n], k) for k in keys}
        print(json.dumps({"summary": n, **{k: v for k, v in summary.items() if v}}), flush=True)


if __name__ == "__main__":
    main()
