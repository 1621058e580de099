/*
 * sweep.h - what the two halves of `poolbench sweep` share: the parsed
 * command line (sweep.c) and the execution of the plan it describes
 * (sweep_exec.c).  Private to those two files.
 */
#ifndef PB_SWEEP_H
#define PB_SWEEP_H

#include "executor.h"
#include "pin.h"
#include "plan.h"
#include "run.h"
#include "server_proc.h"
#include "workload.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SWEEP_MAX_LIST 64
#define SWEEP_MAX_VARY 4

typedef struct sweep_vary {
    const char *key;
    char *values[SWEEP_MAX_LIST];
    size_t n;
} sweep_vary;

typedef struct sweep_cli {
    ex_kind executors[3];
    size_t nexecutors;
    pb_py_kind py[3];          /* Python's executors (pyexec.h) */
    size_t npy;
    unsigned workers[SWEEP_MAX_LIST];
    size_t nworkers;
    const wl_workload *workloads[SWEEP_MAX_LIST];
    size_t nworkloads;
    pb_pin_policy pins[3];
    size_t npins;
    const char *cpus;
    const char *fixed[SWEEP_MAX_LIST];
    size_t nfixed;
    sweep_vary vary[SWEEP_MAX_VARY];
    size_t nvary;
    unsigned reps, warmup;
    size_t tasks;              /* the floor: a run has at least this many */
    uint64_t seed;
    int64_t timeout_ns;
    unsigned window;           /* procs: tasks in flight per worker (0 = default) */
    ex_transport transport;    /* procs: how payloads travel */
    /* The load dimensions, each a list; every combination that makes sense
     * is a configuration (sweep_exec.c). */
    size_t queues[SWEEP_MAX_LIST];     /* queue capacity, 0 = unbounded */
    size_t nqueues;
    ex_on_full on_fulls[3];
    size_t non_fulls;
    double rates[SWEEP_MAX_LIST];      /* tasks/s, 0 = all at once */
    size_t nrates;
    pb_arrival arrival;                /* of the rates above 0 */
    size_t chunksizes[SWEEP_MAX_LIST]; /* 0 = ex_submit, >= 1 = ex_map */
    size_t nchunks;
    unsigned sample_ms;                /* gauges into timeline.csv, 0 = off */
    const char *out;
    const char *url;
    bool quiet;
    bool no_baseline;
    pb_rule rule;              /* --min-rounds, --min-time */
    unsigned warmup_rounds;    /* in-run warm-up, in rounds of the pool */
    double probe_ms;           /* capacity probe before each measured run */
    bool grouped;              /* --order grouped */
    uint64_t order_seed;
} sweep_cli;

/* The number of combinations of the varied keys that w has, and applying
 * the idx-th one to p (0, or -1 with err). */
size_t pb_sweep_combos(const sweep_cli *c, const wl_workload *w);
int pb_sweep_set_combo(const sweep_cli *c, const wl_workload *w, wl_params *p, size_t idx,
                       char *err, size_t errlen);

/* Runs the sweep c describes, base[k] being workload k's validated fixed
 * parameters and srv the loopback server (pid -1 when none): every
 * configuration is sized by the rule with unrecorded pilot runs, then its
 * repetitions run in c's order, each appended to c->out's runs.csv and
 * runs.jsonl as it finishes; summary.csv gets a row per configuration at
 * the end.  Stops early when *interrupted becomes non-zero.  Returns 0, 1
 * (a run or a write failed) or 130 (interrupted).  Blocks for the sweep. */
int pb_sweep_execute(const sweep_cli *c, wl_params *const *base, const pb_server *srv,
                     volatile sig_atomic_t *interrupted);

#endif /* PB_SWEEP_H */
