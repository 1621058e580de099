/*
 * pyexec.h: Python's concurrent.futures executors as poolbench executors
 * (py-seq, py-threads, py-procs).  The work runs in a Python process
 * (scripts/pyrunner/runner.py, standard library only) that rebuilds the
 * workload's inputs from the same seed, runs them and sends back every
 * task's output and timestamps; pyexec.c turns those into the same
 * pb_run_result a C run gives, checking each output with wl_check and
 * digesting it with wl_digest, so a Python run's digest equals the C runs'.
 */
#ifndef POOLBENCH_PYEXEC_H
#define POOLBENCH_PYEXEC_H

#include "run.h"

#include <stdbool.h>
#include <stddef.h>

/* Every executor name the CLI accepts, for "accepted: ..." messages. */
#define PB_EXECUTOR_NAMES "seq, threads, procs, mpi, py-seq, py-threads, py-procs"

/* "seq", "threads", "procs", or for a Python executor "py-seq",
 * "py-threads", "py-procs".  Does not block. */
const char *pb_executor_name(const pb_run_opts *o);

/* Parses any executor name: sets *kind (for py-*: the C executor of the
 * same model, EX_SEQ / EX_THREADS / EX_PROCS) and *py.  0 or EX_EINVAL. */
int pb_executor_parse(const char *name, ex_kind *kind, pb_py_kind *py);

/* Whether this workload's Python outputs are bit-identical to the C ones
 * (every workload today), and a few words on how the Python task computes
 * them, for `poolbench list` and the report.  Does not block. */
const char *pb_py_note(const wl_workload *w);

/* Why these options cannot run on a Python executor (pinning, a workload
 * that hangs without a timeout, crashes outside py-procs), or NULL.  Does
 * not block. */
const char *pb_py_refusal(const pb_run_opts *o, bool pinned, char *why, size_t len);

/* Runs o on the Python executor o->py (pb_run calls it).  Failing tasks, a
 * dead worker (BrokenProcessPool: EX_EBROKEN for every unfinished task), a
 * runner that dies (EX_EWORKER for the tasks it did not report) and a run
 * past its deadline (EX_ETIMEDOUT) are counted in r; the return is 0, or a
 * negative EX_E* with err when no run happened (no interpreter, the
 * runner refused its input).  Blocks; never longer than the deadline:
 * with o->timeout_ns, timeout x ceil(tasks / workers) plus a minute of
 * grace, otherwise PB_PY_LIMIT_S.
 *
 * As pb_run: the digest covers the first o->digest_tasks outputs (the
 * runner's own digest too), o->window is called around the runner's life
 * (r->window_cpu_s is its whole process tree's CPU), and the runner runs
 * o->warmup_tasks tasks of the workload on the started pool before its
 * clock starts (r->warmup_tasks, r->warmup_s) -- except for work that can
 * hang or crash (pb_needs_timeout, wl_requires_isolation): Python's pools
 * can neither end a hung task nor replace a dead worker, so such a warm-up
 * task would spoil the measured run; those runs have no warm-up round. */
#define PB_PY_LIMIT_S 3600
int pb_py_run(const pb_run_opts *o, pb_run_result *r, bool keep_latencies,
              char *err, size_t errlen);

#endif
