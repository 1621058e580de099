"""py_executors.py: the peer figures for `poolbench overhead` from Python's
concurrent.futures: ThreadPoolExecutor and ProcessPoolExecutor running
empty tasks.  Throughput: submit N, then wait for all; latency: one task
in flight at a time (median).  Standard library only; any python3.
"""
import argparse
import concurrent.futures as cf
import json
import statistics
import time


def empty():
    return None


def measure(kind, workers, n):
    cls = cf.ThreadPoolExecutor if kind == "thread" else cf.ProcessPoolExecutor
    with cls(max_workers=workers) as ex:
        cf.wait([ex.submit(empty) for _ in range(min(n, 1000))])  # start the workers
        t0 = time.perf_counter()
        cf.wait([ex.submit(empty) for _ in range(n)])
        t1 = time.perf_counter()
        lat = []
        for _ in range(max(100, n // 10)):
            s = time.perf_counter()
            ex.submit(empty).result()
            lat.append(time.perf_counter() - s)
    return {"peer": "python %sPoolExecutor" % kind.capitalize(), "workers": workers, "tasks": n,
            "throughput_ns_per_task": round((t1 - t0) / n * 1e9, 1),
            "latency_median_ns": round(statistics.median(lat) * 1e9)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kinds", default="thread,process",
                    help="comma-separated: thread, process (default both)")
    args = ap.parse_args()
    if args.tasks < 1 or args.workers < 1:
        ap.error("--tasks and --workers must be >= 1")
    kinds = [k for k in args.kinds.split(",") if k]
    if not kinds or any(k not in ("thread", "process") for k in kinds):
        ap.error("--kinds takes thread and/or process")
    for kind in kinds:
        print(json.dumps(measure(kind, args.workers, args.tasks)), flush=True)


if __name__ == "__main__":
    main()
