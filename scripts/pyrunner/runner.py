"""runner.py: Python's executors as poolbench executors.

    /usr/bin/python3 scripts/pyrunner/runner.py --workload primes \
        --executor py-threads --workers 2 --tasks 20 --seed 1 \
        -p span=200000 -p start=0 [--warmup-tasks N] [--digest-tasks N] \
        [--inflight N] [--deadline-s S] [--binary]

Builds the workload's inputs from the seed exactly as the C harness does
(inputs.py), runs them on py-seq (a loop in the main thread), py-threads
(concurrent.futures.ThreadPoolExecutor) or py-procs (ProcessPoolExecutor,
fork start method: the children see a fork-time snapshot, as poolbench's
procs workers do), and reports every task: submit, start and end
(time.monotonic_ns, the CLOCK_MONOTONIC the harness reads), CPU in the
worker (time.thread_time_ns), the worker and CPU it ran on, and its output.
`poolbench run -e py-threads` starts this script (harness/pyexec.c) and
turns the records into the same result and runs.csv row as a C run: the
harness checks each output with wl_check and digests it with wl_digest, and
compares that digest with the one this script computes (the same records).

The pool is started before the clock, as ex_create starts C workers: every
worker runs one empty task (threads meet at a barrier so that all of them
exist).  Then the warm-up round, as pb_run's: --warmup-tasks tasks of the
workload (inputs 0, 1, ... cycling over the run's) run to completion, their
results discarded, so that what workers open lazily (an HTTP connection per
thread, the task's code and data in the caches) is open before the clock
starts.  The clock runs from the first submit until every future is done.
All tasks are submitted at once, or at most --inflight at a time.  The
digest covers the first --digest-tasks outputs (default all), as the
harness's does in a sweep (pb_run_opts.digest_tasks).

Failures are counted, never fatal: a task's own error keeps its code
(EX_ETASK); a worker process that dies breaks a ProcessPoolExecutor, and
every task not finished then fails with BrokenProcessPool (EX_EBROKEN);
past --deadline-s the unfinished tasks fail with EX_ETIMEDOUT, the records
are written, and the script exits without waiting for its workers (the
harness kills its process group).

--binary writes the records for the harness (the format is in pyexec.c and
write_binary below); without it a readable summary.  Bad usage: a message
on stderr and exit status 2.  Standard library only.
"""
import argparse
import concurrent.futures as cf
import functools
import hashlib
import multiprocessing
import os
import resource
import struct
import sys
import threading
import time
import traceback

import inputs
import tasks

EXECUTORS = ("py-seq", "py-threads", "py-procs")
# executor.h's statuses.
EX_OK, EX_ETIMEDOUT, EX_ECANCELLED, EX_EBROKEN = 0, -1, -2, -5
EX_ETASK, EX_ENOMEM, EX_ESYS = -7, -9, -10
CODE_PYTHON_EXCEPTION = 904  # an exception the task does not map to a code
TASK_REC = struct.Struct("<4sQiiQQQQQiiQ")
END_REC = struct.Struct("<4sQQQQQQQQQQQQ64s")


# ------------------------------------------------------------ the worker

_sched_getcpu = None


def _cpu():
    """The CPU this thread runs on (sched_getcpu through ctypes), or -1."""
    global _sched_getcpu
    if _sched_getcpu is None:
        try:
            import ctypes
            _sched_getcpu = ctypes.CDLL(None, use_errno=True).sched_getcpu
        except (OSError, AttributeError):
            _sched_getcpu = False
    return _sched_getcpu() if _sched_getcpu else -1


def run_task(workload, data):
    """One task in a worker: its output and where and how long it ran."""
    fn = tasks.TASKS[workload]
    start = time.monotonic_ns()
    c0 = time.thread_time_ns()
    status, code, out = EX_OK, 0, b""
    try:
        out = bytes(fn(data))
    except tasks.TaskError as e:
        status, code = EX_ETASK, e.code
    except MemoryError:
        status, code = EX_ETASK, tasks.CODE_ENOMEM
    except Exception:  # a bug: counted, and shown once per worker
        status, code = EX_ETASK, CODE_PYTHON_EXCEPTION
        if not getattr(run_task, "shown", False):
            run_task.shown = True
            traceback.print_exc(file=sys.stderr)
    c1 = time.thread_time_ns()
    end = time.monotonic_ns()
    return (status, code, start, end, c1 - c0, os.getpid(), threading.get_ident(), _cpu(), out)


def _worker_init():
    """In each py-procs worker: die with the runner (PR_SET_PDEATHSIG), so
    that no worker outlives a killed run."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))
    except (OSError, AttributeError):
        pass


def _warm(barrier):
    if barrier is not None:
        barrier.wait(timeout=30)
    return os.getpid()


# ---------------------------------------------------------------- a run

class Run:
    """The per-task records of one run, in input order."""

    def __init__(self, n):
        self.n = n
        self.submit = [0] * n
        self.done = [0] * n
        self.result = [None] * n          # run_task's tuple
        self.failure = [None] * n         # (status, code) when no result
        self.startup_ns = 0
        self.warmup_tasks = self.warmup_ns = 0
        self.t0 = self.t1 = 0
        self.digest_tasks = n


def run_seq(args, data, run):
    w0 = time.monotonic_ns()
    for k in range(args.warmup_tasks):
        run_task(args.workload, data[k % len(data)])
    run.warmup_tasks, run.warmup_ns = args.warmup_tasks, time.monotonic_ns() - w0
    run.t0 = time.monotonic_ns()
    for i, d in enumerate(data):
        run.submit[i] = time.monotonic_ns()
        run.result[i] = run_task(args.workload, d)
        run.done[i] = time.monotonic_ns()
    run.t1 = time.monotonic_ns()


def make_pool(args):
    """The pool, started and warm (each worker ran one task)."""
    if args.executor == "py-threads":
        pool = cf.ThreadPoolExecutor(max_workers=args.workers)
        barrier = threading.Barrier(args.workers)
    else:
        pool = cf.ProcessPoolExecutor(max_workers=args.workers,
                                      mp_context=multiprocessing.get_context("fork"),
                                      initializer=_worker_init)
        barrier = None
    cf.wait([pool.submit(_warm, barrier) for _ in range(args.workers)])
    return pool


def warm_up(args, data, pool, run):
    """The warm-up round on the started pool (results discarded); best
    effort, as pb_run's: a pool that breaks ends it, and run.warmup_tasks
    says how many were submitted."""
    w0 = time.monotonic_ns()
    futures = []
    try:
        for k in range(args.warmup_tasks):
            futures.append(pool.submit(run_task, args.workload, data[k % len(data)]))
    except Exception:  # a broken pool: the measured run will say so
        pass
    cf.wait(futures)
    run.warmup_tasks, run.warmup_ns = len(futures), time.monotonic_ns() - w0


def _failure_of(exc):
    if isinstance(exc, cf.process.BrokenProcessPool):
        return EX_EBROKEN, 0
    if isinstance(exc, cf.CancelledError):
        return EX_ECANCELLED, 0
    if isinstance(exc, MemoryError):
        return EX_ENOMEM, 0
    return EX_ESYS, 0


def run_pool(args, data, run):
    c0 = time.monotonic_ns()
    pool = make_pool(args)
    run.startup_ns = time.monotonic_ns() - c0
    warm_up(args, data, pool, run)
    futures = {}
    # --inflight: a slot per task in flight, freed by its done callback.
    slots = threading.Semaphore(args.inflight) if args.inflight else None

    def done(i, _future):
        run.done[i] = time.monotonic_ns()
        if slots:
            slots.release()

    run.t0 = time.monotonic_ns()
    deadline = run.t0 + int(args.deadline_s * 1e9) if args.deadline_s else None
    for i, d in enumerate(data):
        if slots:
            slots.acquire()
        run.submit[i] = time.monotonic_ns()
        try:
            f = pool.submit(run_task, args.workload, d)
        except Exception as e:  # the pool broke before this submit
            run.failure[i] = _failure_of(e)
            run.done[i] = run.submit[i]
            if slots:
                slots.release()
            continue
        f.add_done_callback(functools.partial(done, i))
        futures[i] = f
    left = None if deadline is None else max(0.0, (deadline - time.monotonic_ns()) / 1e9)
    _, not_done = cf.wait(list(futures.values()), timeout=left)
    run.t1 = time.monotonic_ns()
    for i, f in futures.items():
        if f in not_done:
            run.failure[i] = (EX_ETIMEDOUT, 0)
        elif f.exception() is not None:
            run.failure[i] = _failure_of(f.exception())
        else:
            run.result[i] = f.result()
    if not_done:  # hung tasks: no waiting for them (the harness ends the group)
        return pool, False
    pool.shutdown(wait=True)
    return pool, True


# --------------------------------------------------------------- output

def digest(run):
    """wl_digest over the first run.digest_tasks records in input order
    (workload.h)."""
    total = hashlib.sha256()
    for i in range(min(run.n, run.digest_tasks)):
        res, fail = run.result[i], run.failure[i]
        if res is not None and res[0] == EX_OK:
            out = res[-1]
            rec = hashlib.sha256(struct.pack("<QQ", i, len(out)) + out).digest()
        elif res is not None or fail is not None:
            status, code = (res[0], res[1]) if res is not None else fail
            rec = hashlib.sha256(struct.pack("<Q4sii", i, b"fail", status, code)).digest()
        else:
            rec = struct.pack("<Q7s", i, b"missing").ljust(32, b"\0")
        total.update(rec)
    return total.hexdigest()


def _usage_numbers(r0, k0, r1, k1):
    return (int((r1.ru_utime - r0.ru_utime + k1.ru_utime - k0.ru_utime) * 1e6),
            int((r1.ru_stime - r0.ru_stime + k1.ru_stime - k0.ru_stime) * 1e6),
            r1.ru_maxrss, k1.ru_maxrss,
            r1.ru_nvcsw - r0.ru_nvcsw + k1.ru_nvcsw - k0.ru_nvcsw,
            r1.ru_nivcsw - r0.ru_nivcsw + k1.ru_nivcsw - k0.ru_nivcsw)


def write_binary(run, usage, hexdigest, out):
    """Per task: TASK_REC (magic PBT1, index, status, code, submit, start,
    worker end, done, CPU ns, worker, CPU, output length) then the output;
    start = 0 for a task that never ran.  Last: END_REC (PBE1, startup ns,
    t0, t1, user us, sys us, max RSS KiB, largest child's, voluntary and
    involuntary switches, workers seen, warm-up tasks, warm-up ns, digest)."""
    workers = {}
    for i in range(run.n):
        res = run.result[i]
        if res is not None:
            status, code, start, end, cpu, pid, tid, cpu_id, data = res
            worker = workers.setdefault((pid, tid), len(workers))
        else:
            status, code = run.failure[i] or (EX_ETIMEDOUT, 0)
            start = end = cpu = 0
            worker, cpu_id, data = -1, -1, b""
        out.write(TASK_REC.pack(b"PBT1", i, status, code, run.submit[i], start, end,
                                run.done[i], cpu, worker, cpu_id, len(data)))
        out.write(data)
    out.write(END_REC.pack(b"PBE2", run.startup_ns, run.t0, run.t1, *usage,
                           len(workers), run.warmup_tasks, run.warmup_ns, hexdigest.encode()))
    out.flush()


def write_summary(args, run, usage, hexdigest):
    ok = sum(1 for r in run.result if r is not None and r[0] == EX_OK)
    wall = (run.t1 - run.t0) / 1e9
    print("workload    %s, %s, %d workers, %d tasks, seed %d"
          % (args.workload, args.executor, args.workers, run.n, args.seed))
    print("wall        %.4f s (+ %.4f s to start the workers, %.4f s for a warm-up of %d tasks)"
          % (wall, run.startup_ns / 1e9, run.warmup_ns / 1e9, run.warmup_tasks))
    print("tasks       %d ok, %d failed" % (ok, run.n - ok))
    print("rusage      user %.3f s, sys %.3f s, peak RSS %d KiB (largest child %d KiB)"
          % (usage[0] / 1e6, usage[1] / 1e6, usage[2], usage[3]))
    print("digest      %s" % hexdigest)


# ------------------------------------------------------------------ CLI

def parse_args(argv):
    ap = argparse.ArgumentParser(prog="pyrunner", description=__doc__.split("\n\n")[0])
    ap.add_argument("-W", "--workload", required=True, choices=sorted(tasks.TASKS))
    ap.add_argument("-e", "--executor", required=True, choices=EXECUTORS)
    ap.add_argument("-w", "--workers", type=int, default=1)
    ap.add_argument("-n", "--tasks", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--warmup-tasks", type=int, default=0,
                    help="tasks run before the clock starts, results discarded")
    ap.add_argument("--digest-tasks", type=int, default=0,
                    help="the digest covers the first N outputs (0 = all)")
    ap.add_argument("--inflight", type=int, default=0,
                    help="at most this many tasks in flight (0 = submit all)")
    ap.add_argument("--deadline-s", type=float, default=0.0,
                    help="unfinished tasks fail with EX_ETIMEDOUT past this (0 = none)")
    ap.add_argument("--binary", action="store_true", help="records for the harness on stdout")
    args = ap.parse_args(argv)
    if not 1 <= args.workers <= 4096:
        ap.error("--workers must be in [1, 4096], got %d" % args.workers)
    if not 1 <= args.tasks <= 10_000_000:
        ap.error("--tasks must be in [1, 10000000], got %d" % args.tasks)
    if not 0 <= args.seed < 1 << 64:
        ap.error("--seed must be in [0, 2^64), got %d" % args.seed)
    if args.inflight < 0 or not 0 <= args.deadline_s < 1e7:
        ap.error("--inflight must be >= 0 and --deadline-s in [0, 1e7)")
    if not 0 <= args.warmup_tasks <= 10_000_000 or not 0 <= args.digest_tasks <= 10_000_000:
        ap.error("--warmup-tasks and --digest-tasks must be in [0, 10000000]")
    pairs = []
    for kv in args.param:
        key, eq, value = kv.partition("=")
        if not eq or not key:
            ap.error("-p takes KEY=VALUE, got '%s'" % kv)
        pairs.append((key, value))
    args.params = inputs.Params(args.workload, pairs)
    return args


def main(argv):
    args = parse_args(argv)
    try:
        data, files = inputs.build_inputs(args.workload, args.params, args.tasks, args.seed)
    except inputs.UsageError as e:
        print("pyrunner: %s" % e, file=sys.stderr)
        return 2
    run = Run(args.tasks)
    if args.digest_tasks:
        run.digest_tasks = min(args.digest_tasks, args.tasks)
    clean = True
    try:
        r0, k0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        if args.executor == "py-seq":
            run_seq(args, data, run)
        else:
            _, clean = run_pool(args, data, run)
        r1, k1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        files.close()
    usage = _usage_numbers(r0, k0, r1, k1)
    hexdigest = digest(run)
    if args.binary:
        write_binary(run, usage, hexdigest, sys.stdout.buffer)
    else:
        write_summary(args, run, usage, hexdigest)
        sys.stdout.flush()
    if not clean:
        os._exit(0)  # hung workers: leave them to the process group's end
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
