/*
 * plan.c - the steady-state rule and the shuffled order (see plan.h).
 */
#include "plan.h"

#include <math.h>

size_t pb_rounds(size_t tasks, unsigned workers)
{
    return workers ? (tasks + workers - 1) / workers : tasks;
}

static size_t cap(double v)
{
    return v >= (double)PB_MAX_TASKS ? PB_MAX_TASKS : (size_t)v;
}

size_t pb_rule_floor(const pb_rule *r, size_t tasks, unsigned workers)
{
    size_t floor_ = cap((double)r->min_rounds * (double)workers);
    size_t n = tasks > floor_ ? tasks : floor_;
    return n < PB_MAX_TASKS ? n : PB_MAX_TASKS;
}

size_t pb_rule_rescale(const pb_rule *r, size_t tasks, unsigned workers, double wall_s)
{
    double w = workers ? (double)workers : 1.0;
    double factor = wall_s > 0 ? PB_RULE_MARGIN * r->min_time_s / wall_s : 100.0;
    if (!(factor <= 100.0))
        factor = 100.0; /* a pilot of almost nothing says little: grow in steps */
    double want = ceil((double)tasks * factor);
    if (want < (double)tasks + w)
        want = (double)tasks + w;
    /* Whole rounds: a last, partial round would leave workers idle and
     * make the rate depend on the remainder. */
    want = ceil(want / w) * w;
    return cap(want);
}

bool pb_rule_met(const pb_rule *r, size_t tasks, unsigned workers, double wall_s)
{
    return pb_rounds(tasks, workers) >= r->min_rounds && wall_s >= r->min_time_s;
}

uint64_t pb_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void pb_shuffle(size_t *v, size_t n, uint64_t *state)
{
    for (size_t i = n; i > 1; i--) {
        /* The modulo bias is below 2^-40 for any n a sweep can have. */
        size_t j = (size_t)(pb_rng_next(state) % i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}
