"""mpi_futures.py: the MPI peer of `make peers`: mpi4py.futures'
MPIPoolExecutor (Debian python3-mpi4py, over Open MPI) on the empty task
and on poolbench's primes workload, beside `poolbench overhead` and the
standard library's executors (py_executors.py).

    /usr/bin/python3 scripts/peers/mpi_futures.py [--workers 2] [--tasks 2000]
        [--primes-tasks 16] [--span 2000000] [--reps 3] [--btl tcp,vader]
        [--start spawn,mpiexec] [--timeout-s 180]

Two ways to start, as mpi4py.futures has them, each in a child process with
a deadline (past it the child's process group, mpirun or the singleton's
orted and every worker, is killed):
  spawn    a plain `python3 script`: MPIPoolExecutor(max_workers=W) starts
           W workers with MPI_Comm_spawn (Open MPI needs
           OMPI_MCA_rmaps_base_oversubscribe=1 for a singleton to spawn 2:
           "not enough slots" otherwise);
  mpiexec  `mpiexec -n W+1 python3 -m mpi4py.futures script`: rank 0 runs
           the script, the other W ranks are the pool's workers.
Each with Open MPI's byte transfer layer forced through OMPI_MCA_btl:
tcp,self (the network path) or vader,self (shared memory).  Open MPI 4.1
cannot use vader between a process and the ones it spawned (they are
another job: "BTLs attempted: self"), so spawn + vader fails; the row says
so ("error") instead of a number, and mpiexec + vader is the shared-memory
figure.

One JSON object per line on stdout, as the other peers: per (start, btl)
an "empty" row (throughput: submit N empty tasks then wait for all, per
task, median and range over --reps; latency: one task in flight, median)
and a "primes" row (the same inputs as `poolbench run -W primes -p
span=S -p start=0`, built by scripts/pyrunner/inputs.py, each task
scripts/pyrunner/tasks.py's; wall time over --reps and the speedup against
a sequential loop of the same Python in the same process; the digest is
wl_digest's, checked against the sequential one).  Without mpi4py or
mpiexec: one line on stderr saying why, nothing on stdout, exit 0.  Bad
usage: exit 2.  Open MPI's allow-run-as-root settings are set for the
children here, not required from the user.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "pyrunner"))  # the workers import this too

import inputs  # noqa: E402
import runner  # noqa: E402
import tasks  # noqa: E402

PEER = "mpi4py MPIPoolExecutor"
STARTS = ("spawn", "mpiexec")
BTLS = ("tcp", "vader")


def empty():
    return None


def primes_task(data):
    return tasks.task_primes(data)


# ------------------------------------------------------------ the child

def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def wl_digest(outputs):
    """wl_digest of the outputs in input order (runner.digest's code)."""
    run = types.SimpleNamespace(n=len(outputs), digest_tasks=len(outputs),
                                result=[(runner.EX_OK, out) for out in outputs],
                                failure=[None] * len(outputs))
    return runner.digest(run)


def primes_inputs(args):
    p = inputs.Params("primes", {"span": str(args.span), "start": "0"})
    return inputs.build_primes(p, args.primes_tasks, 1, None)


def measure_empty(ex, args):
    walls, done = [], 0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        futures = [ex.submit(empty) for _ in range(args.tasks)]
        done += sum(1 for f in futures if f.result() is None)
        walls.append((time.perf_counter() - t0) / args.tasks * 1e9)
    lat = []
    for _ in range(max(50, args.tasks // 20)):
        t0 = time.perf_counter()
        ex.submit(empty).result()
        lat.append(time.perf_counter() - t0)
    s = spread(walls)
    return {"workload": "empty", "tasks": args.tasks, "completed": done // args.reps,
            "throughput_ns_per_task": round(s["median"], 1),
            "throughput_ns_per_task_min": round(s["min"], 1),
            "throughput_ns_per_task_max": round(s["max"], 1),
            "latency_median_ns": round(statistics.median(lat) * 1e9)}


def measure_primes(ex, args, data):
    seq_walls, seq_out = [], None
    for _ in range(args.reps):
        t0 = time.perf_counter()
        seq_out = [primes_task(d) for d in data]
        seq_walls.append(time.perf_counter() - t0)
    walls, out = [], None
    for _ in range(args.reps):
        t0 = time.perf_counter()
        out = list(ex.map(primes_task, data))
        walls.append(time.perf_counter() - t0)
    s, q = spread(walls), spread(seq_walls)
    digest = wl_digest(out)
    return {"workload": "primes", "params": {"span": args.span, "start": 0},
            "tasks": len(data), "completed": len(out),
            "wall_s": round(s["median"], 4), "wall_s_min": round(s["min"], 4),
            "wall_s_max": round(s["max"], 4), "seq_wall_s": round(q["median"], 4),
            "speedup": round(q["median"] / s["median"], 3),
            "speedup_min": round(q["min"] / s["max"], 3),
            "speedup_max": round(q["max"] / s["min"], 3),
            "digest": digest, "digest_matches_seq": digest == wl_digest(seq_out)}


def die_on_thread_error(hook):
    """A failed MPI_Comm_spawn raises in mpi4py's manager thread and
    leaves every future pending: end the child at once with the reason."""
    print("mpi4py manager thread: %s: %s" % (hook.exc_type.__name__, hook.exc_value),
          file=sys.stderr, flush=True)
    os._exit(3)


def child(args):
    import threading
    from mpi4py import MPI
    from mpi4py.futures import MPIPoolExecutor
    threading.excepthook = die_on_thread_error
    head = {"peer": PEER, "start": args.child, "btl": os.environ.get("OMPI_MCA_btl", ""),
            "workers": args.workers, "reps": args.reps,
            "mpi": MPI.Get_library_version().splitlines()[0].strip("\0 ")}
    data = primes_inputs(args)
    kw = {"max_workers": args.workers} if args.child == "spawn" else {}
    with MPIPoolExecutor(**kw) as ex:
        for f in [ex.submit(empty) for _ in range(args.workers * 20)]:
            f.result()  # the workers are up and connected
        rows = [measure_empty(ex, args), measure_primes(ex, args, data)]
    for row in rows:
        print(json.dumps(dict(head, **row)), flush=True)


# ----------------------------------------------------------- the driver

TAG = "POOLBENCH_MPI_PEER"


def child_env(btl, tag):
    """The child's environment; every process of its job inherits the tag
    (the singleton's orted leaves the child's session: --set-sid)."""
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_btl=btl + ",self", OMPI_MCA_rmaps_base_oversubscribe="1",
                PYTHONDONTWRITEBYTECODE="1", **{TAG: tag})


def tagged(tag):
    """The pids of the processes whose environment holds TAG=tag."""
    want = ("%s=%s" % (TAG, tag)).encode()
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open("/proc/%s/environ" % name, "rb") as f:
                    if want in f.read().split(b"\0"):
                        pids.append(int(name))
            except OSError:
                pass
    return pids


def reap_tagged(tag, grace_s=10):
    """Waits up to grace_s for the job's processes to end (orted ends its
    workers when the singleton is gone), then kills what is left, by pid.
    How many were killed."""
    deadline = time.monotonic() + grace_s
    while tagged(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = tagged(tag)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(left)


def child_argv(args, start):
    opts = ["--child", start, "--workers", str(args.workers), "--tasks", str(args.tasks),
            "--primes-tasks", str(args.primes_tasks), "--span", str(args.span),
            "--reps", str(args.reps)]
    script = os.path.abspath(__file__)
    if start == "spawn":
        return [sys.executable, script] + opts
    return ["mpiexec", "-n", str(args.workers + 1), "--oversubscribe", "--bind-to", "none",
            sys.executable, "-m", "mpi4py.futures", script] + opts


def run_child(argv, env, timeout_s):
    """(status, stdout, stderr) of argv in a session of its own; past the
    deadline the whole group gets SIGTERM then SIGKILL (status None)."""
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        status = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=3)
        except subprocess.TimeoutExpired:
            out, err = "", ""
        status = None
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever the job left in its group
    except ProcessLookupError:
        pass
    proc.wait()
    return status, out, err


def reason(err):
    lines = [ln.strip() for ln in err.splitlines() if ln.strip() and not ln.startswith("---")]
    for key in ("BTLs attempted", "manager thread", "MPI_ERR", "not enough slots", "Error", "error"):
        hit = [ln for ln in lines if key in ln]
        if hit:
            return hit[-1][:200]
    return lines[-1][:200] if lines else "no output"


def drive(args):
    if shutil.which("mpiexec") is None:
        print("peers: MPIPoolExecutor skipped: Open MPI not installed (openmpi-bin)", file=sys.stderr)
        return 0
    try:
        import importlib
        importlib.import_module("mpi4py.futures")
    except ImportError:
        print("peers: MPIPoolExecutor skipped: mpi4py is not installed for %s (apt-get install "
              "python3-mpi4py)" % sys.executable, file=sys.stderr)
        return 0
    for start in args.start:
        for btl in args.btl:
            tag = "%d-%s-%s" % (os.getpid(), start, btl)
            status, out, err = run_child(child_argv(args, start), child_env(btl, tag), args.timeout_s)
            killed = reap_tagged(tag)
            if killed:
                print("peers: %s %s btl %s,self: killed %d process(es) it left behind"
                      % (PEER, start, btl, killed), file=sys.stderr)
            rows = [ln for ln in out.splitlines() if ln.startswith("{")]
            if status == 0 and len(rows) == 2:
                print("\n".join(rows), flush=True)
                continue
            why = ("killed after %g s" % args.timeout_s if status is None
                   else "exit status %s: %s" % (status, reason(err)))
            if start == "spawn" and btl == "vader" and "BTLs attempted" in why:
                why += " (the spawned workers are another job, which vader does not reach)"
            print("peers: %s %s btl %s,self failed: %s" % (PEER, start, btl, why), file=sys.stderr)
            print(json.dumps({"peer": PEER, "start": start, "btl": btl + ",self",
                              "workers": args.workers, "error": why}), flush=True)
    return 0


def csv_of(choices):
    def parse(text):
        items = [t for t in text.split(",") if t]
        if not items or any(t not in choices for t in items):
            raise argparse.ArgumentTypeError("accepted: %s, comma-separated" % ", ".join(choices))
        return items
    return parse


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="1..64 (default 2)")
    ap.add_argument("--tasks", type=int, default=2000, help="empty tasks per repetition (default 2000)")
    ap.add_argument("--primes-tasks", type=int, default=16, help="primes tasks (default 16)")
    ap.add_argument("--span", type=int, default=2000000, help="primes span (default 2000000, poolbench's)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions, 1..100 (default 3)")
    ap.add_argument("--btl", type=csv_of(BTLS), default=list(BTLS), help="tcp, vader (default both)")
    ap.add_argument("--start", type=csv_of(STARTS), default=list(STARTS),
                    help="spawn, mpiexec (default both)")
    ap.add_argument("--timeout-s", type=float, default=180, help="per child (default 180)")
    ap.add_argument("--child", choices=STARTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    for name, lo, hi in (("workers", 1, 64), ("tasks", 1, 10**7), ("primes_tasks", 1, 10**5),
                         ("span", 1, 10**9), ("reps", 1, 100)):
        if not lo <= getattr(args, name) <= hi:
            ap.error("--%s must be in %d..%d" % (name.replace("_", "-"), lo, hi))
    if not args.timeout_s > 0:
        ap.error("--timeout-s must be > 0")
    if args.child:
        child(args)
        return 0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
