/*
 * arrival.c: the arrival schedules of arrival.h.
 */
#include "arrival.h"

#include "plan.h"

#include <math.h>
#include <string.h>

static const char *const names[] = {"batch", "fixed", "poisson"};

const char *pb_arrival_name(pb_arrival a)
{
    return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "?";
}

int pb_arrival_parse(const char *name, pb_arrival *out)
{
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (pb_arrival)i;
            return 0;
        }
    return -1;
}

/* A uniform double in (0, 1]: 53 random bits, never 0 (log(0) below). */
static double unit_open(uint64_t *state)
{
    return (double)((pb_rng_next(state) >> 11) + 1) * 0x1.0p-53;
}

int pb_arrival_schedule(pb_arrival a, double rate, uint64_t seed, size_t n, uint64_t *at)
{
    if (a == PB_ARRIVAL_BATCH) {
        memset(at, 0, n * sizeof *at);
        return 0;
    }
    if (!isfinite(rate) || rate <= 0 || (a != PB_ARRIVAL_FIXED && a != PB_ARRIVAL_POISSON))
        return -1;
    double mean_ns = 1e9 / rate, t = 0;
    uint64_t state = seed;
    for (size_t i = 0; i < n; i++) {
        at[i] = (uint64_t)llround(t);
        t += a == PB_ARRIVAL_FIXED ? mean_ns : -log(unit_open(&state)) * mean_ns;
    }
    return 0;
}
