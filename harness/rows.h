/*
 * rows.h: the results files of a sweep.  runs.csv and runs.jsonl get one
 * row per measured run, summary.csv one row per configuration.  Each row is
 * formatted in memory and written with a single write() to a file opened
 * O_APPEND, so a sweep that is interrupted, or killed with SIGKILL, leaves
 * every finished row and never a torn line.  The columns are documented in
 * results/README.md; PB_SCHEMA_VERSION changes when they do.
 */
#ifndef POOLBENCH_ROWS_H
#define POOLBENCH_ROWS_H

#include "noise.h"
#include "plan.h"
#include "run.h"

#define PB_SCHEMA_VERSION 6

typedef struct pb_row_meta {
    const char *host;
    const char *timestamp;   /* UTC, ISO 8601 */
    const char *config_id;   /* workload|params|executor|workers|pin */
    const char *pin;
    const char *cpus;        /* "" when all */
    const char *pinning;     /* the binding obtained, described */
    unsigned rep;
    double baseline_throughput; /* median seq throughput, this workload+params */
    const char *baseline_digest;
    pb_rule rule;            /* the steady-state rule the run was sized by */
    const char *order;       /* "interleaved" or "grouped" */
    uint64_t order_seed;
    size_t sequence;         /* position among the sweep's measured runs */
    const pb_noise *noise;   /* NULL: not measured */
} pb_row_meta;

typedef struct pb_rows pb_rows;

/* Opens (creating with a header, or appending to a file with the same
 * header) DIR/runs.csv, DIR/runs.jsonl, DIR/summary.csv and DIR/timeline.csv.  0, or -1
 * with a message in err. */
int pb_rows_open(const char *dir, pb_rows **out, char *err, size_t errlen);
void pb_rows_close(pb_rows *rows);

/* Appends one measured run to runs.csv and runs.jsonl.  0 or -1 (errno). */
int pb_rows_add_run(pb_rows *rows, const pb_run_opts *o, const pb_run_result *r,
                    const pb_row_meta *m);

/* Appends the run's gauge samples (r->samples) to timeline.csv, in one
 * write: the run is config_id's repetition rep, the sweep's run number
 * sequence.  0 (nothing to write is fine) or -1 (errno). */
int pb_rows_add_timeline(pb_rows *rows, const char *config_id, unsigned rep, size_t sequence,
                         const pb_run_result *r);

typedef struct pb_config_summary {
    const char *config_id;
    const pb_run_opts *o;
    const char *pin;
    size_t n;
    size_t tasks;               /* per run (the rule's size) */
    double wall_median_s, wall_ci_low_s, wall_ci_high_s, ci_level, wall_cv;
    const char *outlier_reps;   /* "2;5" */
    double throughput_median, speedup_median, efficiency_median;
    double latency_p95_median_ms;
    const char *warning;        /* "" when the spread is fine */
} pb_config_summary;

int pb_rows_add_summary(pb_rows *rows, const pb_config_summary *s);

#endif
