/*
 * timeline.c: the gauge sampler of timeline.h.  One thread, one clock
 * (absolute deadlines, so that a late wake-up does not shift every later
 * sample), one growing array; the run's thread only starts and stops it,
 * and a stop wakes it at once, whatever the interval.
 */
#include "timeline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pb_sampler {
    ex_executor *ex;
    uint64_t t0, interval_ns;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;      /* stop was set */
    bool stop;                /* under lock */
    pb_sample *v;
    size_t n, cap;
    int oom;
};

static void take(pb_sampler *s)
{
    if (s->oom)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        pb_sample *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->oom = 1; /* keep what was sampled */
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    pb_sample *p = &s->v[s->n];
    if (ex_executor_stats(s->ex, &p->g) != 0)
        return;
    p->t_s = (double)(ex_now_ns() - s->t0) / 1e9;
    s->n++;
}

/* Waits until the absolute CLOCK_MONOTONIC time t (ns) or until stopped;
 * whether to go on. */
static bool wait_until(pb_sampler *s, uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    pthread_mutex_lock(&s->lock);
    while (!s->stop && pthread_cond_clockwait(&s->wake, &s->lock, CLOCK_MONOTONIC, &ts) == 0) {
    }
    bool go_on = !s->stop;
    pthread_mutex_unlock(&s->lock);
    return go_on;
}

static void *sampler_main(void *arg)
{
    pb_sampler *s = arg;
    uint64_t next = s->t0;
    do {
        take(s);
        next += s->interval_ns;
    } while (wait_until(s, next));
    return NULL;
}

int pb_sampler_start(ex_executor *ex, unsigned interval_ms, uint64_t t0, pb_sampler **out)
{
    *out = NULL;
    if (!ex || interval_ms == 0)
        return EX_EINVAL;
    pb_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return EX_ENOMEM;
    s->ex = ex;
    s->t0 = t0;
    s->interval_ns = (uint64_t)interval_ms * 1000000u;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return EX_ENOMEM;
    }
    *out = s;
    return 0;
}

void pb_sampler_stop(pb_sampler *s, pb_sample **samples, size_t *n)
{
    *samples = NULL;
    *n = 0;
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    take(s);
    *samples = s->v;
    *n = s->n;
    free(s);
}

int pb_timeline_csv(const pb_sample *v, size_t n, const char *prefix, char **buf, size_t *len)
{
    size_t plen = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        char line[320];
        const ex_pool_stats *g = &v[i].g;
        int k = snprintf(line, sizeof line, "%.6f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%u\n",
                         v[i].t_s, (unsigned long long)g->queued, (unsigned long long)g->running,
                         (unsigned long long)g->completed, (unsigned long long)g->failed,
                         (unsigned long long)g->cancelled, (unsigned long long)g->rejected,
                         (unsigned long long)g->caller_ran, g->workers_alive);
        char *b = realloc(*buf, *len + plen + (size_t)k + 1);
        if (!b)
            return -1;
        memcpy(b + *len, prefix, plen);
        memcpy(b + *len + plen, line, (size_t)k + 1);
        *buf = b;
        *len += plen + (size_t)k;
    }
    return 0;
}
