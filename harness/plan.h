/*
 * plan.h - how long a measured run is and in which order a sweep's runs
 * happen: the two decisions that keep a verdict from depending on run
 * length or on when the machine had a slow phase.
 *
 * The steady-state rule (pb_rule): every run has at least min_rounds
 * rounds of the pool (tasks >= min_rounds x workers) and lasts at least
 * min_time_s seconds of measured time, the way Google Benchmark's
 * --benchmark_min_time and pyperf's calibration size theirs.  A pool of N
 * workers whose first round opens connections and starts in lock-step
 * shows its steady rate only once those first rounds are a small part of
 * the run; the sweep sizes each configuration with unrecorded pilot runs
 * (pb_rule_rescale) before any repetition is recorded.
 *
 * The order (pb_shuffle): repetitions are interleaved, rep 1 of every
 * configuration, then rep 2, ..., each round in an order shuffled from a
 * recorded seed, so that a slow phase of the machine is spread over all
 * configurations instead of landing on one.
 *
 * Pure functions; nothing here blocks or allocates.
 */
#ifndef PB_PLAN_H
#define PB_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest run the harness accepts (sweep and run --tasks). */
#define PB_MAX_TASKS 10000000u

/* The rule when none is given (sweep --min-rounds, --min-time).  Half a
 * second, as Google Benchmark's min_time: measured on a 2-CPU VM, a run
 * pays a fixed few ms (waking idle workers, the last round's tail), which
 * 512 workers sleeping 20 ms still showed at 20 rounds (0.4 s: -1.7%
 * against 200 rounds, beyond a 0.5% run-to-run spread) and no longer at 50
 * (1 s). */
#define PB_RULE_DEFAULT_ROUNDS 10u
#define PB_RULE_DEFAULT_TIME_S 0.5

/* Pilot runs aim this much above min_time_s, so that a repetition a
 * little faster than its pilot still meets the rule. */
#define PB_RULE_MARGIN 1.1

typedef struct pb_rule {
    unsigned min_rounds;  /* 0 or 1: no floor beyond one task */
    double min_time_s;    /* <= 0: no time floor (no pilot runs) */
} pb_rule;

/* Rounds of a pool of workers over tasks: ceil(tasks / workers). */
size_t pb_rounds(size_t tasks, unsigned workers);

/* The first size to try: max(tasks, min_rounds x workers), at most
 * PB_MAX_TASKS. */
size_t pb_rule_floor(const pb_rule *r, size_t tasks, unsigned workers);

/* The size of the next pilot after one of `tasks` took wall_s (below
 * min_time_s): scaled to PB_RULE_MARGIN x min_time_s, by at most 100x per
 * step and at least one round more, rounded up to whole rounds, at most
 * PB_MAX_TASKS. */
size_t pb_rule_rescale(const pb_rule *r, size_t tasks, unsigned workers, double wall_s);

/* Whether a run of tasks on workers that took wall_s meets the rule. */
bool pb_rule_met(const pb_rule *r, size_t tasks, unsigned workers, double wall_s);

/* A 64-bit generator state from a seed (splitmix64), and its next value. */
uint64_t pb_rng_next(uint64_t *state);

/* Shuffles v[0..n) in place (Fisher-Yates) with the generator state: the
 * same state gives the same permutation on every machine. */
void pb_shuffle(size_t *v, size_t n, uint64_t *state);

#endif /* PB_PLAN_H */
