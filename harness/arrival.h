/*
 * arrival.h: when each task of a run arrives.  A run either submits every
 * task at once (a batch job: the queue holds them all and the latency
 * percentiles include that wait by construction), or opens the load at a
 * fixed rate: tasks arrive at intended times that do not depend on how
 * fast the pool serves them (an open loop, as wrk2 does), with fixed
 * intervals or Poisson arrivals (exponential intervals from a seeded
 * generator, the same schedule on every machine).  Latency is then taken
 * from each task's intended arrival, not from the moment the submitter got
 * round to it, so that a stall of the submitter (a blocking queue, a
 * descheduled thread) shows in the percentiles instead of hiding in them
 * (coordinated omission).
 */
#ifndef POOLBENCH_ARRIVAL_H
#define POOLBENCH_ARRIVAL_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PB_ARRIVAL_BATCH = 0, /* all at once (rate 0) */
    PB_ARRIVAL_FIXED,     /* one every 1/rate seconds */
    PB_ARRIVAL_POISSON    /* exponential intervals of mean 1/rate */
} pb_arrival;

/* "batch", "fixed" or "poisson". */
const char *pb_arrival_name(pb_arrival a);

/* 0, or -1 for a name that is none of the above. */
int pb_arrival_parse(const char *name, pb_arrival *out);

/* Fills at[0..n) with the intended arrival of each task in ns after the
 * run's start: nondecreasing, at[0] = 0, mean interval 1e9 / rate.  BATCH
 * gives all zeros.  The same (a, rate, seed, n) give the same schedule.
 * 0, or -1 when rate is not finite and positive for FIXED and POISSON. */
int pb_arrival_schedule(pb_arrival a, double rate, uint64_t seed, size_t n, uint64_t *at);

#endif
