/*
 * threads.c: the pthread pool backend.
 *
 * N workers share one FIFO queue under one mutex.  The queue is intrusive
 * (linked through ex_future.next), so submitting allocates nothing beyond
 * the future; when queue_capacity > 0 it is bounded by a counter and
 * on_full decides what a submitter does when it is full.  Chained
 * submissions (force) may overshoot the bound: they come from workers,
 * which must never block on their own queue.
 *
 * Invariants:
 *   - `lock` is never held while a task or a callback runs (callbacks may
 *     submit to this very pool).
 *   - A worker exits only when `stopping` is set AND the queue is empty,
 *     checked under `lock`; the last one to exit sets live = 0, after which
 *     forced submissions fail with EX_ESHUTDOWN instead of being stranded.
 *   - Workers are signalled only when one is idle, and submitters only when
 *     one waits for room, so the hot path makes no futile futex calls.
 * No globals: two pools never share anything.
 */
#include "ex_internal.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct threads_ex {
    ex_executor base;
    pthread_mutex_t lock;
    pthread_cond_t work_cv;   /* queue non-empty, or stopping */
    pthread_cond_t room_cv;   /* bounded queue has room, or stopping */
    pthread_cond_t start_cv;  /* a worker finished starting */
    ex_future *head, *tail;
    size_t queued;
    atomic_size_t queued_hint; /* = queued, readable without the lock */
    unsigned idle;            /* workers waiting on work_cv */
    unsigned room_waiters;    /* submitters waiting on room_cv */
    unsigned started;         /* workers that finished worker_init */
    unsigned live;            /* workers not yet exited */
    bool stopping;
    pthread_mutex_t join_lock; /* held for the whole join: a second
                                  shutdown(wait) or destroy waits too */
    bool joined;
    pthread_t *threads;
    unsigned nthreads;        /* threads actually created */
} threads_ex;

typedef struct worker_arg {
    threads_ex *t;
    unsigned index;
} worker_arg;

static void queue_push(threads_ex *t, ex_future *f)
{
    f->next = NULL;
    if (t->tail)
        t->tail->next = f;
    else
        t->head = f;
    t->tail = f;
    t->queued++;
    atomic_store_explicit(&t->queued_hint, t->queued, memory_order_relaxed);
}

static ex_future *queue_pop(threads_ex *t)
{
    ex_future *f = t->head;
    t->head = f->next;
    if (!t->head)
        t->tail = NULL;
    t->queued--;
    atomic_store_explicit(&t->queued_hint, t->queued, memory_order_relaxed);
    f->next = NULL;
    return f;
}

/* Polls for work for up to spin_ns without the lock; true if some came.
 * Called and returns with t->lock held. */
static bool spin_for_work(threads_ex *t)
{
    if (t->base.cfg.spin_ns <= 0)
        return false;
    pthread_mutex_unlock(&t->lock);
    bool got = ex__spin_until_nonzero(&t->queued_hint, t->base.cfg.spin_ns);
    pthread_mutex_lock(&t->lock);
    return got;
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    threads_ex *t = wa->t;
    unsigned index = wa->index;
    free(wa);

    int failed = ex__worker_init(&t->base.cfg, index);
    pthread_mutex_lock(&t->lock);
    if (failed)
        atomic_store(&t->base.broken, true);
    t->started++;
    pthread_cond_broadcast(&t->start_cv);
    ex_probe chain;
    ex__probe_init(&chain, t->base.cfg.measure_cpu);
    for (;;) {
        if (!t->head && !t->stopping && spin_for_work(t) && t->head)
            goto take;
        while (!t->head && !t->stopping) {
            chain.valid = false; /* it sleeps: the next task starts afresh */
            t->idle++;
            pthread_cond_wait(&t->work_cv, &t->lock);
            t->idle--;
        }
        if (!t->head)
            break; /* stopping and drained */
    take:;
        ex_future *f = queue_pop(t);
        if (t->room_waiters)
            pthread_cond_signal(&t->room_cv);
        pthread_mutex_unlock(&t->lock);
        if (ex__future_begin(f))
            ex__run_chained(f, (int)index, &chain);
        ex_future_release(f); /* the executor's reference */
        pthread_mutex_lock(&t->lock);
    }
    t->live--;
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static int threads_start(ex_executor *ex)
{
    threads_ex *t = (threads_ex *)ex;
    t->threads = calloc(ex->workers, sizeof *t->threads);
    if (!t->threads)
        return EX_ENOMEM;
    int rc = EX_OK;
    for (unsigned i = 0; i < ex->workers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            rc = EX_ENOMEM;
            break;
        }
        wa->t = t;
        wa->index = i;
        pthread_mutex_lock(&t->lock);
        t->live++;
        pthread_mutex_unlock(&t->lock);
        if (pthread_create(&t->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            pthread_mutex_lock(&t->lock);
            t->live--;
            pthread_mutex_unlock(&t->lock);
            rc = EX_ESYS;
            break;
        }
        t->nthreads++;
    }
    /* Confirm every created worker is up (worker_start ran) before use. */
    pthread_mutex_lock(&t->lock);
    while (t->started < t->nthreads)
        pthread_cond_wait(&t->start_cv, &t->lock);
    pthread_mutex_unlock(&t->lock);
    return rc; /* on error ex_create calls destroy, which joins them */
}

/* Whether the calling thread is one of t's workers (a callback or task
 * calling back into its own pool). */
static bool on_worker(const threads_ex *t)
{
    pthread_t self = pthread_self();
    for (unsigned i = 0; i < t->nthreads; i++)
        if (pthread_equal(self, t->threads[i]))
            return true;
    return false;
}

static int threads_submit(ex_executor *ex, ex_future *f, bool force)
{
    threads_ex *t = (threads_ex *)ex;
    pthread_mutex_lock(&t->lock);
    if (t->stopping && (!force || t->live == 0)) {
        pthread_mutex_unlock(&t->lock);
        return EX_ESHUTDOWN;
    }
    size_t cap = ex->cfg.queue_capacity;
    if (!force && cap && t->queued >= cap) {
        switch (ex->cfg.on_full) {
        case EX_ON_FULL_REJECT:
            pthread_mutex_unlock(&t->lock);
            return EX_EFULL;
        case EX_ON_FULL_CALLER_RUNS:
            pthread_mutex_unlock(&t->lock);
            if (ex__future_begin(f))
                ex__run_inline(f, EX_WORKER_CALLER);
            ex_future_release(f);
            return EX_OK;
        case EX_ON_FULL_BLOCK:
            /* Only workers make room: a worker (a task or a callback
             * submitting to its own pool) that waited could wait forever,
             * so it overshoots the bound instead. */
            if (on_worker(t))
                break;
            t->room_waiters++;
            while (t->queued >= cap && !t->stopping)
                pthread_cond_wait(&t->room_cv, &t->lock);
            t->room_waiters--;
            if (t->stopping) {
                pthread_mutex_unlock(&t->lock);
                return EX_ESHUTDOWN;
            }
            break;
        }
    }
    queue_push(t, f);
    if (t->idle)
        pthread_cond_signal(&t->work_cv);
    pthread_mutex_unlock(&t->lock);
    return EX_OK;
}

/* Joins every worker once.  join_lock is held across the joins, so a
 * concurrent shutdown(wait=1) or destroy returns only after they end. */
static void join_all(threads_ex *t)
{
    pthread_mutex_lock(&t->join_lock);
    if (!t->joined) {
        for (unsigned i = 0; i < t->nthreads; i++)
            pthread_join(t->threads[i], NULL);
        t->joined = true;
    }
    pthread_mutex_unlock(&t->join_lock);
}

static int threads_shutdown(ex_executor *ex, bool wait, bool cancel_pending)
{
    threads_ex *t = (threads_ex *)ex;
    ex_future *drained = NULL;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    if (cancel_pending) {
        drained = t->head;
        t->head = t->tail = NULL;
        t->queued = 0;
        atomic_store_explicit(&t->queued_hint, 0, memory_order_relaxed);
    }
    pthread_cond_broadcast(&t->work_cv);
    pthread_cond_broadcast(&t->room_cv);
    pthread_mutex_unlock(&t->lock);
    /* Cancel outside the lock: callbacks may run and may submit. */
    while (drained) {
        ex_future *next = drained->next;
        ex__future_cancel_pending(drained);
        ex_future_release(drained);
        drained = next;
    }
    if (wait) {
        /* A worker cannot wait for itself: the pool stops, it does not join. */
        if (on_worker(t))
            return EX_EINVAL;
        join_all(t);
    }
    return EX_OK;
}

static void threads_destroy(ex_executor *ex)
{
    threads_ex *t = (threads_ex *)ex;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_broadcast(&t->work_cv);
    pthread_mutex_unlock(&t->lock);
    join_all(t);
    /* Workers drain the queue before exiting, so it is empty here. */
    free(t->threads);
    pthread_cond_destroy(&t->start_cv);
    pthread_cond_destroy(&t->room_cv);
    pthread_cond_destroy(&t->work_cv);
    pthread_mutex_destroy(&t->join_lock);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static pid_t threads_worker_pid(ex_executor *ex, unsigned index)
{
    (void)ex;
    (void)index;
    return 0;
}

const ex_vtable ex_threads_vtable = {
    .name = "threads",
    .start = threads_start,
    .submit = threads_submit,
    .shutdown = threads_shutdown,
    .destroy = threads_destroy,
    .worker_pid = threads_worker_pid,
};

int ex_threads_new(const ex_config *cfg, ex_executor **out)
{
    threads_ex *t = calloc(1, sizeof *t);
    if (!t)
        return EX_ENOMEM;
    if (pthread_mutex_init(&t->lock, NULL)) {
        free(t);
        return EX_ESYS;
    }
    if (pthread_mutex_init(&t->join_lock, NULL)) {
        pthread_mutex_destroy(&t->lock);
        free(t);
        return EX_ESYS;
    }
    if (pthread_cond_init(&t->work_cv, NULL) || pthread_cond_init(&t->room_cv, NULL) ||
        pthread_cond_init(&t->start_cv, NULL)) {
        pthread_mutex_destroy(&t->join_lock);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return EX_ESYS;
    }
    t->base.vt = &ex_threads_vtable;
    t->base.cfg = *cfg;
    t->base.workers = cfg->max_workers ? cfg->max_workers : ex_default_workers();
    *out = &t->base;
    return EX_OK;
}
