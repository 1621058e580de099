/*
 * timeline.h: the executor's gauges over a run.  A sampler thread reads
 * ex_executor_stats every interval (it never blocks the pool: the gauges
 * are counters read without a lock) and keeps each reading with its time
 * since the run's start; the harness writes them beside the run's rows
 * (timeline.csv, results/README.md) and draws queue depth and tasks in
 * flight over time from them.
 */
#ifndef POOLBENCH_TIMELINE_H
#define POOLBENCH_TIMELINE_H

#include "executor.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pb_sample {
    double t_s;           /* since the run's start (its first submit) */
    ex_pool_stats g;      /* the gauges then */
} pb_sample;

typedef struct pb_sampler pb_sampler;

/* Starts sampling ex every interval_ms (>= 1) from now; t0 is the run's
 * start (ex_now_ns).  0, or EX_ENOMEM / EX_EINVAL. */
int pb_sampler_start(ex_executor *ex, unsigned interval_ms, uint64_t t0, pb_sampler **out);

/* Takes a last sample, stops the thread and hands over the samples
 * (allocated, the caller frees; NULL and 0 when none). */
void pb_sampler_stop(pb_sampler *s, pb_sample **samples, size_t *n);

/* The CSV columns of a sample (pb_timeline_csv), without a newline. */
#define PB_TIMELINE_COLUMNS \
    "t_s,queued,running,completed,failed,cancelled,rejected,caller_ran,workers_alive"

/* Appends one CSV line per sample to *buf (grown with realloc; *len its
 * length), each line starting with prefix (e.g. "id,1,7," or "").  0 or
 * -1 (out of memory; *buf keeps what was formatted). */
int pb_timeline_csv(const pb_sample *v, size_t n, const char *prefix, char **buf, size_t *len);

#endif
