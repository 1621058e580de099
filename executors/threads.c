/*
 * threads.c: the pthread pool backend.
 *
 * Submitting takes no lock and, on an unbounded queue, writes nothing that
 * the workers write too: the queue is an intrusive multi-producer,
 * single-consumer list (D. Vyukov's: a producer swaps itself in as the
 * tail, then links the previous tail to itself), linked through
 * ex_future.qnext, so submitting allocates nothing beyond the future and a
 * submitter never waits for a worker.  Workers take turns as the consumer
 * under pop_lock, which submitters never touch.  With queue_capacity > 0,
 * `queued` counts futures accepted and not yet taken: a submitter reserves
 * its place in it with a compare-and-swap, and on_full decides what
 * happens when it is full.  Chained submissions (force) may overshoot the
 * bound: they come from workers, which must never block on their own
 * queue.
 *
 * Empty: the stub is the only node (head and tail both point at it).
 * Lock-free readers use that as a hint; decisions that must not miss a
 * task (a worker going to sleep or leaving) check it under pop_lock, where
 * head and tail agree but for a producer between its two steps, whose swap
 * already shows in the tail.
 *
 * Sleeping and waking (lock: the mutex `lock`, only on these slow paths):
 *   - At most one idle worker polls the queue (spin_ns); the others sleep
 *     on work_cv.  A second poller would only take a CPU from the
 *     submitter or from the worker that runs.
 *   - A submitter wakes a sleeper only when nobody polls.  It swaps the
 *     tail before it reads `idle`; a worker counts itself in `idle` before
 *     it checks the queue (all sequentially consistent), so one of the two
 *     always sees the other, and the wake itself happens under `lock`,
 *     which the sleeper holds from its check to its wait.
 *   - A worker that takes a task and sees more queued, with sleepers and
 *     no poller, wakes one: the submitter does not pay for that.
 *   - room_cv is the same handshake between a worker that frees a place
 *     and a submitter blocked on a full queue.
 *
 * Shutdown: `stopping` refuses new submissions.  A submitter checks it
 * once before it swaps the tail (the cheap refusal) and once after (the
 * one that counts: stop() sets it before it looks at the queue, so each
 * side sees the other).  One that finds it set only then has its future
 * in the queue already: it fails that future with EX_ESHUTDOWN before
 * linking it, so whoever meets it in the queue (a worker, the drain, or
 * destroy) just drops it.  A worker leaves once the pool is closed and
 * the queue is empty (checked under `lock` and pop_lock).  A forced
 * submission pushes under `lock` while a worker lives, so it is never
 * stranded.
 *
 * A submitter touches the pool only before it links its future: until
 * then no worker can run that task, so none can leave, and a shutdown and
 * destroy racing the submission cannot free the pool under it.
 *
 * No globals: two pools never share anything.  No lock is held while a
 * task or a callback runs (callbacks may submit to this very pool).
 */
#include "ex_internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct threads_ex {
    ex_executor base;
    /* Producers' end of the queue, on its own cache line. */
    _Alignas(64) _Atomic(ex_future *) tail;
    /* Consumer's end: head and stub belong to whoever holds pop_lock
     * (head is atomic only for the lock-free emptiness hint). */
    _Alignas(64) pthread_mutex_t pop_lock;
    _Atomic(ex_future *) head;
    ex_future stub;
    /* Read at every submission, written once: a line of their own. */
    _Alignas(64) atomic_bool stopping;
    atomic_bool closed;       /* no submission can come any more */
    _Alignas(64) atomic_size_t queued;  /* bounded queues: accepted, not yet taken */
    atomic_uint idle;         /* workers asleep (or about to be) on work_cv */
    atomic_uint spinning;     /* workers polling the queue (0 or 1) */
    atomic_uint room_waiters; /* submitters waiting on room_cv */
    pthread_mutex_t lock;
    pthread_cond_t work_cv;   /* queue non-empty, or closed */
    pthread_cond_t room_cv;   /* bounded queue has room, or stopping */
    pthread_cond_t start_cv;  /* a worker finished starting */
    unsigned started;         /* workers that finished worker_init */
    atomic_uint live;         /* workers not yet exited (written under
                                 lock, read by the gauges without it) */
    pthread_mutex_t join_lock; /* held for the whole join: a second
                                  shutdown(wait) or destroy waits too */
    bool joined;
    pthread_t *threads;
    unsigned nthreads;        /* threads actually created */
    /* The gauges' run counts, one cache line per worker, each written by
     * its worker alone (ex_internal.h). */
    ex__run_counts *counts;
    /* A remote backend's proxy (ex__threads_new_proxy), or NULL. */
    ex__proxy_fn proxy;
    void *proxy_ctx;
} threads_ex;

typedef struct worker_arg {
    threads_ex *t;
    unsigned index;
} worker_arg;

/* The producer's first step (any thread): f becomes the tail and the
 * previous tail is returned.  f is in the queue but not reachable from
 * the head until queue_link. */
static ex_future *queue_swap(threads_ex *t, ex_future *f)
{
    atomic_store_explicit(&f->qnext, NULL, memory_order_relaxed);
    return atomic_exchange_explicit(&t->tail, f, memory_order_seq_cst);
}

/* The second step: f becomes reachable.  After it, f's task may run and
 * end at any time. */
static void queue_link(ex_future *prev, ex_future *f)
{
    atomic_store_explicit(&prev->qnext, f, memory_order_release);
}

static void queue_push(threads_ex *t, ex_future *f)
{
    queue_link(queue_swap(t, f), f);
}

/* Under pop_lock.  Returns the oldest future, or NULL when the queue is
 * empty or a producer is between its two steps (then *busy is set). */
static ex_future *queue_pop(threads_ex *t, bool *busy)
{
    *busy = false;
    ex_future *head = atomic_load_explicit(&t->head, memory_order_relaxed);
    ex_future *next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    if (head == &t->stub) {
        if (!next)
            return NULL;
        head = next;
        next = atomic_load_explicit(&head->qnext, memory_order_acquire);
    }
    if (!next && head != atomic_load_explicit(&t->tail, memory_order_acquire)) {
        *busy = true;
    } else if (!next) {
        /* head is the last one: put the stub behind it so it can leave. */
        queue_push(t, &t->stub);
        if (!(next = atomic_load_explicit(&head->qnext, memory_order_acquire)))
            *busy = true;
    }
    atomic_store_explicit(&t->head, next ? next : head, memory_order_relaxed);
    if (next) { /* the next pop reads all of it (written long ago) */
        __builtin_prefetch(next);
        __builtin_prefetch((char *)next + sizeof *next - 1);
    }
    return next ? head : NULL;
}

/* Whether the queue may hold a task, without a lock: false only when both
 * ends were at the stub.  Exact under pop_lock.  The head's side first:
 * the tail's line is the producers', and a consumer that read it at every
 * task would pull it away from the submitter at every task. */
static bool queue_nonempty(const threads_ex *t)
{
    const ex_future *head = atomic_load_explicit(&t->head, memory_order_relaxed);
    if (head != &t->stub || atomic_load_explicit(&head->qnext, memory_order_acquire))
        return true;
    return atomic_load_explicit(&t->tail, memory_order_seq_cst) != &t->stub;
}

static bool has_work(const void *arg)
{
    return queue_nonempty(arg);
}

/* Under pop_lock: whether the queue is empty with no push in progress. */
static bool queue_empty_locked(threads_ex *t)
{
    return !queue_nonempty(t);
}

/* Takes the oldest queued future, or NULL if the queue is empty.  A
 * producer caught between its two steps is waited for. */
static ex_future *take(threads_ex *t)
{
    for (;;) {
        if (!queue_nonempty(t))
            return NULL;
        bool busy;
        pthread_mutex_lock(&t->pop_lock);
        ex_future *f = queue_pop(t, &busy);
        pthread_mutex_unlock(&t->pop_lock);
        if (f) {
            if (t->base.cfg.queue_capacity)
                atomic_fetch_sub_explicit(&t->queued, 1, memory_order_seq_cst);
            return f;
        }
        if (!busy)
            return NULL;
        /* Swapped in but not linked yet: the producer may be waiting for
         * this CPU. */
        sched_yield();
    }
}

static void signal_locked(threads_ex *t, pthread_cond_t *cv)
{
    pthread_mutex_lock(&t->lock);
    pthread_cond_signal(cv);
    pthread_mutex_unlock(&t->lock);
}

/* After a push: wake a sleeper unless a worker is polling. */
static void wake_for(threads_ex *t)
{
    if (atomic_load_explicit(&t->idle, memory_order_seq_cst) &&
        !atomic_load_explicit(&t->spinning, memory_order_seq_cst))
        signal_locked(t, &t->work_cv);
}

/* Polls for work for up to spin_ns; true if some came. */
static bool spin_for_work(threads_ex *t)
{
    return ex__spin_until(has_work, t, t->base.cfg.spin_ns, true);
}

/* worker_start and the initializer, then counted as started (start()
 * waits for every worker); a failure breaks the executor. */
static void worker_started(threads_ex *t, unsigned index)
{
    int failed = ex__worker_init(&t->base.cfg, index);
    pthread_mutex_lock(&t->lock);
    if (failed)
        atomic_store(&t->base.broken, true);
    t->started++;
    pthread_cond_broadcast(&t->start_cv);
    pthread_mutex_unlock(&t->lock);
}

/* Runs a task taken from the queue, first waking whoever its place or the
 * rest of the queue concerns. */
static void worker_run(threads_ex *t, ex_future *f, unsigned index,
                       ex_probe *chain)
{
    if (t->base.cfg.queue_capacity &&
        atomic_load_explicit(&t->room_waiters, memory_order_seq_cst))
        signal_locked(t, &t->room_cv);
    /* More work and nobody looking for it: wake a sleeper. */
    if (queue_nonempty(t))
        wake_for(t);
    if (ex__future_begin(f)) {
        ex__count(chain->counts, &chain->counts->begun);
        if (t->proxy)
            t->proxy(t->proxy_ctx, index, f, chain);
        else
            ex__run_chained(f, (int)index, chain);
    }
    ex_future_release(f); /* the executor's reference */
}

/* After shutdown closed the pool: whether the queue is drained, checked
 * under the lock (then this worker is no longer live and leaves). */
static bool worker_drained(threads_ex *t)
{
    pthread_mutex_lock(&t->lock);
    pthread_mutex_lock(&t->pop_lock);
    bool drained = queue_empty_locked(t);
    pthread_mutex_unlock(&t->pop_lock);
    if (drained)
        atomic_fetch_sub_explicit(&t->live, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
    return drained;
}

/* Sleeps on work_cv unless work or the close came meanwhile (counted in
 * idle first: see the handshake at the top of the file). */
static void worker_sleep(threads_ex *t)
{
    pthread_mutex_lock(&t->lock);
    atomic_fetch_add_explicit(&t->idle, 1, memory_order_seq_cst);
    pthread_mutex_lock(&t->pop_lock);
    bool empty = queue_empty_locked(t);
    pthread_mutex_unlock(&t->pop_lock);
    if (empty && !atomic_load_explicit(&t->closed, memory_order_seq_cst))
        pthread_cond_wait(&t->work_cv, &t->lock);
    atomic_fetch_sub_explicit(&t->idle, 1, memory_order_relaxed);
    pthread_mutex_unlock(&t->lock);
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    threads_ex *t = wa->t;
    unsigned index = wa->index;
    free(wa);
    worker_started(t, index);
    ex_probe chain;
    ex__probe_init(&chain, &t->base.cfg);
    chain.counts = &t->counts[index];
    bool spun = false; /* the last poll found nothing: sleep now */
    for (;;) {
        ex_future *f = take(t);
        if (f) {
            spun = false;
            worker_run(t, f, index, &chain);
            continue;
        }
        if (atomic_load_explicit(&t->closed, memory_order_acquire)) {
            if (worker_drained(t))
                break;
            continue;
        }
        unsigned none = 0;
        if (!spun && t->base.cfg.spin_ns > 0 &&
            atomic_compare_exchange_strong(&t->spinning, &none, 1)) {
            spun = !spin_for_work(t);
            atomic_store(&t->spinning, 0);
            continue;
        }
        spun = false;
        chain.valid = false; /* it sleeps: the next task starts afresh */
        worker_sleep(t);
    }
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
        atomic_fetch_add_explicit(&t->live, 1, memory_order_relaxed);
        pthread_mutex_unlock(&t->lock);
        if (pthread_create(&t->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            pthread_mutex_lock(&t->lock);
            atomic_fetch_sub_explicit(&t->live, 1, memory_order_relaxed);
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

static int threads_inside(ex_executor *ex)
{
    return on_worker((threads_ex *)ex) ? EX__INSIDE_THREAD : EX__OUTSIDE;
}

/* A forced (chained) submission: accepted while a worker lives (counted
 * submitted by ex_future_then). */
static int submit_forced(threads_ex *t, ex_future *f)
{
    pthread_mutex_lock(&t->lock);
    if (atomic_load_explicit(&t->live, memory_order_relaxed) == 0) {
        pthread_mutex_unlock(&t->lock);
        return EX_ESHUTDOWN;
    }
    if (t->base.cfg.queue_capacity)
        atomic_fetch_add_explicit(&t->queued, 1, memory_order_seq_cst);
    queue_push(t, f);
    if (atomic_load_explicit(&t->idle, memory_order_seq_cst))
        pthread_cond_signal(&t->work_cv);
    pthread_mutex_unlock(&t->lock);
    return EX_OK;
}

/* Reserves a place in a bounded queue.  EX_OK (reserved), EX_EFULL
 * (reject), 1 (caller-runs: run it here), or EX_ESHUTDOWN. */
static int reserve(threads_ex *t, size_t cap)
{
    for (;;) {
        size_t q = atomic_load_explicit(&t->queued, memory_order_relaxed);
        if (q < cap) {
            if (atomic_compare_exchange_weak_explicit(&t->queued, &q, q + 1,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed))
                return EX_OK;
            continue;
        }
        switch (t->base.cfg.on_full) {
        case EX_ON_FULL_REJECT:
            return EX_EFULL;
        case EX_ON_FULL_CALLER_RUNS:
            return 1;
        case EX_ON_FULL_BLOCK:
            /* Only workers make room: a worker (a task or a callback
             * submitting to its own pool) that waited could wait forever,
             * so it overshoots the bound instead. */
            if (on_worker(t)) {
                atomic_fetch_add_explicit(&t->queued, 1, memory_order_seq_cst);
                return EX_OK;
            }
            pthread_mutex_lock(&t->lock);
            atomic_fetch_add_explicit(&t->room_waiters, 1, memory_order_seq_cst);
            while (atomic_load_explicit(&t->queued, memory_order_seq_cst) >= cap &&
                   !atomic_load(&t->stopping))
                pthread_cond_wait(&t->room_cv, &t->lock);
            atomic_fetch_sub_explicit(&t->room_waiters, 1, memory_order_relaxed);
            pthread_mutex_unlock(&t->lock);
            if (atomic_load(&t->stopping))
                return EX_ESHUTDOWN;
            break;
        }
    }
}

/* Both steps of the push, with the shutdown check that counts and the
 * wake-up in between (see the top of the file): EX_OK, or EX_ESHUTDOWN
 * with f failed in the queue, holding a reference of its own there.
 * Accepted, f counts as submitted before the link lets a worker begin it,
 * on a line only submitters write (from the creating thread, a load and a
 * store). */
static int push_checked(threads_ex *t, ex_future *f)
{
    ex_future *prev = queue_swap(t, f);
    bool late = atomic_load_explicit(&t->stopping, memory_order_seq_cst);
    if (late) {
        ex__future_finish(f, EX_ESHUTDOWN, 0);
        ex_future_retain(f); /* the queue's: the caller drops its two */
    } else {
        ex__count_submitted(&t->base);
        /* Woken before the link: it waits for it in take(). */
        if (atomic_load_explicit(&t->idle, memory_order_seq_cst) &&
            !atomic_load_explicit(&t->spinning, memory_order_seq_cst))
            signal_locked(t, &t->work_cv);
    }
    queue_link(prev, f);
    return late ? EX_ESHUTDOWN : EX_OK;
}

static int threads_submit(ex_executor *ex, ex_future *f, bool force)
{
    threads_ex *t = (threads_ex *)ex;
    if (force)
        return submit_forced(t, f);
    if (atomic_load_explicit(&t->stopping, memory_order_acquire))
        return EX_ESHUTDOWN;
    size_t cap = ex->cfg.queue_capacity;
    int rc = cap ? reserve(t, cap) : EX_OK;
    if (rc == EX_OK)
        return push_checked(t, f);
    if (rc == 1) {
        ex__run_counts *in = ex__caller_counts(ex);
        ex__count_submitted(ex);
        ex__gauge_add(&ex->gauges.caller_ran);
        if (ex__future_begin(f)) {
            ex__count(in, &in->begun);
            ex__run_inline(f, EX_WORKER_CALLER, in);
        }
        ex_future_release(f);
        return EX_OK;
    }
    return rc;
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

/* Refuses new submissions and waits out those already past the check;
 * returns the queue's futures when cancel_pending, then closes. */
static ex_future *stop(threads_ex *t, bool cancel_pending)
{
    atomic_store_explicit(&t->stopping, true, memory_order_seq_cst);
    pthread_mutex_lock(&t->lock);
    pthread_cond_broadcast(&t->room_cv);
    pthread_mutex_unlock(&t->lock);
    ex_future *drained = NULL, **tail = &drained;
    if (cancel_pending) {
        ex_future *f;
        while ((f = take(t))) {
            f->next = NULL;
            *tail = f;
            tail = &f->next;
        }
    }
    pthread_mutex_lock(&t->lock);
    atomic_store_explicit(&t->closed, true, memory_order_seq_cst);
    pthread_cond_broadcast(&t->work_cv);
    pthread_cond_broadcast(&t->room_cv);
    pthread_mutex_unlock(&t->lock);
    return drained;
}

static int threads_shutdown(ex_executor *ex, bool wait, bool cancel_pending)
{
    threads_ex *t = (threads_ex *)ex;
    ex_future *drained = stop(t, cancel_pending);
    /* Cancel outside the locks: callbacks may run and may submit. */
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
    stop(t, false);
    join_all(t);
    /* Workers drain the queue before exiting: what is left are futures
     * whose submission lost the race with shutdown (already failed). */
    ex_future *f;
    while ((f = take(t)))
        ex_future_release(f);
    free(t->threads);
    free(t->counts);
    pthread_cond_destroy(&t->start_cv);
    pthread_cond_destroy(&t->room_cv);
    pthread_cond_destroy(&t->work_cv);
    pthread_mutex_destroy(&t->join_lock);
    pthread_mutex_destroy(&t->pop_lock);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static pid_t threads_worker_pid(ex_executor *ex, unsigned index)
{
    (void)ex;
    (void)index;
    return 0;
}

static const ex__run_counts *threads_run_counts(const ex_executor *ex, unsigned *n)
{
    const threads_ex *t = (const threads_ex *)ex;
    *n = ex->workers;
    return t->counts;
}

static unsigned threads_workers_alive(const ex_executor *ex)
{
    return atomic_load_explicit(&((threads_ex *)ex)->live, memory_order_relaxed);
}

const ex_vtable ex__threads_vtable = {
    .name = "threads",
    .start = threads_start,
    .submit = threads_submit,
    .shutdown = threads_shutdown,
    .destroy = threads_destroy,
    .worker_pid = threads_worker_pid,
    .inside = threads_inside,
    .run_counts = threads_run_counts,
    .workers_alive = threads_workers_alive,
};

int ex__threads_new(const ex_config *cfg, ex_executor **out)
{
    unsigned workers = cfg->max_workers ? cfg->max_workers : ex_default_workers();
    threads_ex *t = ex__executor_alloc(sizeof *t);
    ex__run_counts *counts = aligned_alloc(64, workers * sizeof *counts);
    if (!t || !counts) {
        free(t);
        free(counts);
        return EX_ENOMEM;
    }
    memset(counts, 0, workers * sizeof *counts);
    t->counts = counts;
    t->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    t->pop_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    t->join_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    t->work_cv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    t->room_cv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    t->start_cv = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    atomic_init(&t->head, &t->stub);
    atomic_init(&t->tail, &t->stub);
    t->base.vt = &ex__threads_vtable;
    t->base.cfg = *cfg;
    t->base.workers = workers;
    *out = &t->base;
    return EX_OK;
}

int ex__threads_new_proxy(const ex_config *cfg, const ex_vtable *vt,
                          ex__proxy_fn run, void *ctx, ex_executor **out)
{
    int rc = ex__threads_new(cfg, out);
    if (rc)
        return rc;
    threads_ex *t = (threads_ex *)*out;
    t->base.vt = vt;
    t->proxy = run;
    t->proxy_ctx = ctx;
    return EX_OK;
}

void *ex__threads_proxy_ctx(ex_executor *ex)
{
    return ((threads_ex *)ex)->proxy_ctx;
}
