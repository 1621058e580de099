/*
 * run.h: one measured run, the unit every other part of the harness is
 * built from: a workload instance, an executor, all tasks submitted, every
 * future collected, and the numbers that describe it (throughput, latency
 * percentiles, the wait / CPU / blocked split, CPU utilisation, resource
 * usage, errors by code and the digest that proves what was computed).
 */
#ifndef POOLBENCH_RUN_H
#define POOLBENCH_RUN_H

#include "arrival.h"
#include "executor.h"
#include "timeline.h"
#include "workload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>

#define PB_MAX_ERROR_KINDS 16

/* A Python executor (pyexec.h) instead of the C one named by kind. */
typedef enum { PB_PY_NONE = 0, PB_PY_SEQ, PB_PY_THREADS, PB_PY_PROCS } pb_py_kind;

typedef struct pb_run_opts {
    ex_kind kind;
    unsigned workers;
    const wl_workload *workload;
    const wl_params *params;   /* complete (base_url filled if needed) */
    size_t tasks;
    uint64_t seed;
    size_t queue_capacity;     /* 0 = unbounded */
    ex_on_full on_full;        /* what a full bounded queue does to a submit */
    /* How tasks arrive (arrival.h): BATCH submits all at once; FIXED and
     * POISSON at `rate` tasks per second, open loop, seeded by seed, with
     * every latency and queue wait taken from the task's intended arrival. */
    pb_arrival arrival;
    double rate;
    /* 0: one ex_submit per task.  >= 1: the tasks go through ex_map with
     * this chunksize (BATCH arrivals, one-stage workloads); latency is then
     * the run's start to the result's return, in input order, and the
     * wait / CPU / blocked split is not measured. */
    size_t chunksize;
    /* The executor's gauges (ex_executor_stats) sampled every sample_ms
     * into r->samples while the run goes on (0 = not sampled). */
    unsigned sample_ms;
    /* A stall injected in the submitter: it sleeps stall_ns after
     * submitting task stall_at (0 ns = none).  For tests, and to show what
     * latency from the intended arrival is for. */
    size_t stall_at;
    uint64_t stall_ns;
    unsigned max_tasks_per_worker;
    int64_t timeout_ns;        /* procs per-task timeout, 0 = none */
    unsigned procs_window;     /* procs tasks in flight per worker (0 =
                                  EX_DEFAULT_WINDOW) */
    ex_transport transport;    /* procs payload transport */
    /* mpi: the Open MPI transport asked for ("tcp": OMPI_MCA_btl=tcp,self,
     * "sm": vader,tcp,self: shared memory where Open MPI can use it, i.e.
     * within one job, not between the broker and the workers it spawned),
     * or NULL: inherited from the environment. */
    const char *mpi_btl;
    int (*worker_start)(unsigned index, void *arg); /* pinning hook */
    void *worker_start_arg;
    bool progress;             /* a progress line on stderr */
    const char *label;         /* for the progress line */
    /* The HTTP server the tasks talk to: "loopback SCHED_FIFO", "loopback
     * normal" (pb_server), "external" (--url) or NULL (none). */
    const char *server;
    /* Tasks run before the clock starts, results discarded (the warm-up
     * round: workers' connections and caches; sweep uses one round, i.e.
     * workers).  0 = none. */
    size_t warmup_tasks;
    /* The digest covers the first digest_tasks outputs (0 = all): a sweep
     * sets it to the shortest run of a workload so that every run of it is
     * checked against the same outputs. */
    size_t digest_tasks;
    /* Called with phase 0 right before the executor is created and phase 1
     * right after it is destroyed, in pb_run's thread: the window over
     * which user_s and sys_s are measured (the sweep samples the machine's
     * noise there, noise.h).  A Python run (pyexec.h) calls it before the
     * runner process starts and after it is reaped.  NULL: none. */
    void (*window)(void *arg, int phase);
    void *window_arg;
    /* Python's executor of the same model instead (pyexec.h), or NONE. */
    pb_py_kind py;
} pb_run_opts;

typedef struct pb_error_count {
    int status;                /* EX_E* */
    int task_code;             /* for EX_ETASK */
    size_t count;
} pb_error_count;

typedef struct pb_run_result {
    double wall_s;             /* first submit -> last task final */
    double startup_s;          /* ex_create (workers started) */
    size_t warmup_tasks;       /* the warm-up round that ran (not in wall_s) */
    double warmup_s;           /* its wall time */
    size_t digest_tasks;       /* outputs the digest covers (the first ones) */
    double throughput;         /* tasks taken (not rejected) / wall_s */
    size_t tasks, tasks_ok, tasks_failed, check_failed;
    /* Submits refused by a full queue (on_full = reject): never accepted,
     * so neither ok nor failed.  caller_ran: tasks a full queue made the
     * submitter run itself (on_full = caller-runs), from the gauges. */
    size_t tasks_rejected;
    uint64_t caller_ran;
    /* The rate at which the submitter issued the tasks (tasks per second,
     * first submit to last): the offered rate unless the submitter fell
     * behind (a blocking queue, too little CPU).  0 for one task. */
    double achieved_rate;
    /* Open loop: how far behind its schedule the submitter was at worst
     * (ns; 0 = it kept it): the stall a blocking queue or the scheduler
     * imposed, which latency from the intended arrival includes. */
    double submit_lag_max_ns;
    pb_error_count errors[PB_MAX_ERROR_KINDS];
    size_t nerrors;
    size_t errors_other;       /* failures beyond PB_MAX_ERROR_KINDS kinds */
    char digest[WL_DIGEST_HEX_LEN + 1];
    /* Per-task, over every task that ran (ns). */
    double lat_p50_ns, lat_p95_ns, lat_p99_ns, lat_mean_ns, lat_max_ns;
    double wait_mean_ns, cpu_mean_ns, blocked_mean_ns;
    double task_cpu_s;         /* sum of task CPU */
    /* Tasks whose raw CPU reading exceeded their wall time and was cut to
     * it (EX_STATS_CPU_OVER_WALL): nonzero only where the thread clock and
     * the monotonic clock disagree.  And tasks read below zero CPU and set
     * to 0 (EX_STATS_CPU_UNDER_ZERO: interrupt or steal time just before an
     * estimated start, with switch detection). */
    size_t cpu_over_wall, cpu_under_zero;
    double ipc_mean_ns;        /* procs: pipe transfer both ways, mean */
    /* Process-level, measured around the run (self + reaped children). */
    double user_s, sys_s;
    /* The CPU seconds of the run's process tree between the two window
     * calls (pb_run_opts.window): user_s + sys_s for a C run; for a Python
     * run also the runner's interpreter start-up and input building, which
     * user_s and sys_s (the pool's life, as in C) leave out. */
    double window_cpu_s;
    double cpu_util;           /* task CPU / (wall x cores) */
    long peak_rss_kb;          /* this process */
    long peak_rss_children_kb; /* the largest reaped worker/child */
    long nvcsw, nivcsw;        /* process-wide, self + children */
    unsigned cores;            /* online CPUs the utilisation divides by */
    uint64_t workers_replaced;
    size_t distinct_cpus;      /* CPUs tasks ran on */
    /* The binding obtained, as observed: for each worker index, the CPUs
     * its tasks started on ("w0:0 w1:1", CPUs 0..63, first 64 workers). */
    char cpus_observed[512];
    /* Per-task latencies (ns), allocated, n = tasks that ran; NULL if not
     * asked for. */
    double *latencies;
    size_t nlatencies;
    /* The gauges over time (pb_run_opts.sample_ms), allocated, or NULL. */
    pb_sample *samples;
    size_t nsamples;
} pb_run_result;

/* Runs one configuration.  0, or a negative EX_E* with a one-line message
 * in err (a bad configuration, or a failure of the harness itself; failing
 * tasks are not errors: they are counted in the result).  Blocks. */
int pb_run(const pb_run_opts *o, pb_run_result *r, bool keep_latencies,
           char *err, size_t errlen);

void pb_run_result_free(pb_run_result *r);

/* What pyexec.c shares with pb_run, which builds a result from another
 * process's records.  pb_run_account: task i ended with status (EX_E*,
 * task_code for EX_ETASK) and, when 0, output out: checked with wl_check,
 * counted in r (ok, failed, check failed, errors by kind) and added to d.
 * pb_run_set_latencies: sorts the n task latencies (ns) and sets the
 * percentiles and the maximum. */
void pb_run_account(pb_run_result *r, wl_ctx *ctx, wl_digest *d, size_t i, int status,
                    int task_code, const void *out, size_t len);
void pb_run_set_latencies(pb_run_result *r, double *lat, size_t n);

/* The measurement window of a run (pb_run_opts.window): begin calls
 * o->window(0) and then snapshots this process's and its reaped
 * children's usage; end snapshots and then calls o->window(1).
 * pb_usage_cpu_s: the user + system seconds between two snapshots. */
typedef struct pb_usage {
    struct rusage self, kids;
} pb_usage;
void pb_window_begin(const pb_run_opts *o, pb_usage *u);
void pb_window_end(const pb_run_opts *o, pb_usage *u);
double pb_usage_cpu_s(const pb_usage *a, const pb_usage *b);
/* The same split into user and system seconds. */
void pb_usage_times(const pb_usage *a, const pb_usage *b, double *user_s, double *sys_s);

/* Names an error kind: "EX_EWORKER", or "EX_ETASK:500". */
void pb_error_name(const pb_error_count *e, char *buf, size_t len);

/* Writes the result as one JSON object on one line to f (json.h).  0, or
 * -1 when memory ran out or the write failed. */
int pb_run_json(const pb_run_opts *o, const pb_run_result *r, FILE *f, const char *pinning);

/* The procs window a run used (its executor's default for 0), or 0 for
 * the other executors; and "pipe" / "shm", or "" for them. */
unsigned pb_run_window(const pb_run_opts *o);
const char *pb_run_transport(const pb_run_opts *o);

#endif
