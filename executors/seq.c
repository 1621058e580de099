/*
 * seq.c: the sequential backend, the baseline every speedup is measured
 * against.  Same API and the same per-task measurements as the pools, but
 * each task runs inside ex_submit, in the caller's thread (worker 0).
 *
 * Tasks in progress are listed (a node on each submitter's stack) so that
 * ex_shutdown(wait) can wait for them and a task or callback calling
 * ex_destroy / ex_shutdown(wait) on its own executor is told EX_EINVAL
 * instead of freeing it under itself.
 */
#include "ex_internal.h"

#include <stdlib.h>

typedef struct seq_ex {
    ex_executor base;
    /* Set up once and only read afterwards: tasks run in whichever thread
     * submits (several may, e.g. chains from another pool), so each run
     * takes its own copy, never chained (the caller's own work between
     * submits is no part of any task), and with switch detection starts
     * from an exact reading taken in that thread. */
    ex_probe probe;
    ex_tlist running; /* threads running a task of this executor */
} seq_ex;

static int seq_start(ex_executor *ex)
{
    ex__probe_init(&((seq_ex *)ex)->probe, &ex->cfg);
    if (ex__worker_init(&ex->cfg, 0))
        atomic_store(&ex->broken, true);
    return EX_OK;
}

/* Nothing is queued, so there is nothing to bound; a chained task
 * (force) was counted submitted by ex_future_then. */
static int seq_submit(ex_executor *ex, ex_future *f, bool force)
{
    if (atomic_load(&ex->broken))
        return EX_EBROKEN;
    seq_ex *s = (seq_ex *)ex;
    if (!force)
        ex__count_submitted(ex);
    ex_probe probe = s->probe;
    probe.valid = false;
    probe.counts = ex__caller_counts(ex);
    ex_tnode me;
    ex__tlist_enter(&s->running, &me);
    if (ex__future_begin(f)) {
        ex__count(probe.counts, &probe.counts->begun);
        ex__run_chained(f, 0, &probe);
    }
    /* The task may have shut the executor down, never destroyed it
     * (ex_destroy refuses while this node is listed). */
    ex__tlist_leave(&s->running, &me);
    ex_future_release(f); /* the executor's reference */
    return EX_OK;
}

/* Nothing is ever pending; wait: until the tasks other threads run end. */
static int seq_shutdown(ex_executor *ex, bool wait, bool cancel_pending)
{
    (void)cancel_pending;
    if (wait)
        ex__tlist_wait_empty(&((seq_ex *)ex)->running);
    return EX_OK;
}

static int seq_inside(ex_executor *ex)
{
    return ex__tlist_has_self(&((seq_ex *)ex)->running) ? EX__INSIDE_THREAD
                                                         : EX__OUTSIDE;
}

static void seq_destroy(ex_executor *ex)
{
    ex__tlist_fini(&((seq_ex *)ex)->running);
    free(ex);
}

static pid_t seq_worker_pid(ex_executor *ex, unsigned index)
{
    (void)ex;
    (void)index;
    return 0;
}

/* Its tasks run in the caller: creator_counts and inline_counts alone. */
static const ex__run_counts *seq_run_counts(const ex_executor *ex, unsigned *n)
{
    (void)ex;
    *n = 0;
    return NULL;
}

/* The caller's thread stands for the worker until ex_shutdown. */
static unsigned seq_workers_alive(const ex_executor *ex)
{
    return atomic_load(&((ex_executor *)ex)->shut) ? 0 : 1;
}

const ex_vtable ex__seq_vtable = {
    .name = "seq",
    .start = seq_start,
    .submit = seq_submit,
    .shutdown = seq_shutdown,
    .destroy = seq_destroy,
    .worker_pid = seq_worker_pid,
    .inside = seq_inside,
    .run_counts = seq_run_counts,
    .workers_alive = seq_workers_alive,
};

int ex__seq_new(const ex_config *cfg, ex_executor **out)
{
    seq_ex *s = ex__executor_alloc(sizeof *s);
    if (!s)
        return EX_ENOMEM;
    if (ex__tlist_init(&s->running) != 0) {
        free(s);
        return EX_ENOMEM;
    }
    s->base.vt = &ex__seq_vtable;
    s->base.cfg = *cfg;
    s->base.workers = 1;
    *out = &s->base;
    return EX_OK;
}
