/*
 * future.c: the future state machine.
 *
 *   PENDING -> RUNNING -> DONE | FAILED
 *   PENDING -> CANCELLED          (ex_future_cancel, shutdown, chain)
 *   PENDING -> FAILED             (executor broken or shut before it ran)
 *   RUNNING -> PENDING            (procs: its worker died before reading it)
 *
 * Every transition to a final state happens here, under f->lock, and is
 * followed, in this order, by: waking ex_future_wait callers, notifying
 * group waiters (ex_wait, as_completed), then running the callbacks in the
 * order they were added.  PENDING -> RUNNING is a lock-free compare-and-swap
 * because nobody waits for it; cancel uses the same CAS, so exactly one of
 * "start" and "cancel" wins.
 *
 * Publication: error, task_code and the output are written before the
 * final state is stored (release); lock-free readers load the state with
 * acquire and only then read them, so a final state is never seen with
 * its error or output missing.
 *
 * Invariant: a callback added while the completer is still running the
 * callback list is appended to that list (not run at once), so callbacks run
 * strictly in the order added, even across threads.
 */
#include "ex_internal.h"

#include <stdlib.h>
#include <string.h>

struct ex_callback {
    struct ex_callback *next;
    ex_done_fn fn;
    void *arg;
};

static bool state_final(ex_state s)
{
    return s == EX_DONE || s == EX_FAILED || s == EX_CANCELLED;
}

struct ex_fcache {
    pthread_mutex_t lock;
    ex_future *free;    /* linked through next */
    size_t nfree;
    size_t outstanding; /* handed out and not yet released */
    bool closed;        /* the executor is gone */
};

ex_fcache *ex__fcache_new(void)
{
    ex_fcache *c = calloc(1, sizeof *c);
    if (c)
        c->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    return c;
}

static void fcache_free(ex_fcache *c, ex_future *list)
{
    while (list) {
        ex_future *next = list->next;
        free(list);
        list = next;
    }
    if (c) {
        pthread_mutex_destroy(&c->lock);
        free(c);
    }
}

/* Gives back one handed-out future (f, or NULL when allocating it failed). */
static void fcache_put(ex_fcache *c, ex_future *f)
{
    pthread_mutex_lock(&c->lock);
    c->outstanding--;
    if (f && !c->closed && c->nfree < EX_FCACHE_MAX) {
        f->next = c->free;
        c->free = f;
        c->nfree++;
        f = NULL;
    }
    bool gone = c->closed && c->outstanding == 0;
    pthread_mutex_unlock(&c->lock);
    free(f);
    if (gone)
        fcache_free(c, NULL); /* closed: its list was freed then */
}

void ex__fcache_close(ex_fcache *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    ex_future *list = c->free;
    c->free = NULL;
    c->nfree = 0;
    bool gone = c->outstanding == 0;
    pthread_mutex_unlock(&c->lock);
    fcache_free(gone ? c : NULL, list);
}

int ex__future_new(ex_fcache *c, ex_task_fn fn, const void *in, size_t len,
                   ex_future **out)
{
    pthread_mutex_lock(&c->lock);
    ex_future *f = c->free;
    if (f) {
        c->free = f->next;
        c->nfree--;
    }
    c->outstanding++;
    pthread_mutex_unlock(&c->lock);
    if (f) {
        memset(f, 0, sizeof *f);
    } else if (!(f = calloc(1, sizeof *f))) {
        fcache_put(c, NULL);
        return EX_ENOMEM;
    }
    f->home = c;
    /* Static initialisers: nothing to fail, no library call per task. */
    f->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    ex__cond_init(&f->cond);
    atomic_init(&f->refs, 2); /* the caller's and the executor's */
    atomic_init(&f->state, EX_PENDING);
    f->fn = fn;
    f->in = in;
    f->in_len = len;
    f->callbacks_tail = &f->callbacks;
    f->stats.worker = -1;
    f->stats.cpu = -1;
    f->stats.submit_ns = ex_now_ns();
    *out = f;
    return EX_OK;
}

bool ex__future_begin(ex_future *f)
{
    ex_state expect = EX_PENDING;
    return atomic_compare_exchange_strong_explicit(
        &f->state, &expect, EX_RUNNING, memory_order_acq_rel,
        memory_order_acquire);
}

bool ex__future_unbegin(ex_future *f)
{
    ex_state expect = EX_RUNNING;
    return atomic_compare_exchange_strong_explicit(
        &f->state, &expect, EX_PENDING, memory_order_acq_rel,
        memory_order_acquire);
}

/* Counts f, final in state s, in every group waiting on it (ex_wait,
 * as_completed), and wakes the waiter when it can make progress.  Called
 * with f->lock held. */
static void notify_waiters(ex_future *f, ex_state s)
{
    for (struct ex_waiter_link *l = f->waiters; l; l = l->next) {
        struct ex_waiter *w = l->waiter;
        pthread_mutex_lock(&w->lock);
        ex__waiter_count(w, l->index, s);
        if (w->nfinal >= w->wake_nfinal || (s == EX_FAILED && w->wake_on_fail))
            pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
}

/* Runs the callbacks in the order added, without f->lock (they may do
 * anything), including those added while they run.  Called and returns
 * with f->lock held; whether any ran. */
static bool run_callbacks_locked(ex_future *f)
{
    bool ran = false;
    f->running_callbacks = true;
    while (f->callbacks) {
        ran = true;
        struct ex_callback *cb = f->callbacks;
        f->callbacks = NULL;
        f->callbacks_tail = &f->callbacks;
        pthread_mutex_unlock(&f->lock);
        while (cb) {
            struct ex_callback *next = cb->next;
            cb->fn(f, cb->arg);
            free(cb);
            cb = next;
        }
        pthread_mutex_lock(&f->lock);
    }
    f->running_callbacks = false;
    return ran;
}

/* Called with f->lock held and the final state stored; returns unlocked,
 * and whether any callback ran. */
static bool complete_locked(ex_future *f)
{
    ex_state s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (f->cond_waiters)
        pthread_cond_broadcast(&f->cond);
    notify_waiters(f, s);
    bool ran = run_callbacks_locked(f);
    ex_future *parent = f->parent;
    f->parent = NULL;
    pthread_mutex_unlock(&f->lock);
    /* The chained input (parent's output) is no longer needed. */
    if (parent)
        ex_future_release(parent);
    return ran;
}

bool ex__future_finish(ex_future *f, int error, int task_code)
{
    pthread_mutex_lock(&f->lock);
    ex_state s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (state_final(s)) {
        pthread_mutex_unlock(&f->lock);
        return false;
    }
    f->error = error;
    f->task_code = error == EX_ETASK ? task_code : 0;
    ex_state to = error == 0 ? EX_DONE
                  : error == EX_ECANCELLED ? EX_CANCELLED : EX_FAILED;
    atomic_store_explicit(&f->state, to, memory_order_release);
    return complete_locked(f);
}

/* Readers that see a final state read error and task_code without the
 * lock (acquire on state), so they are written before the state is
 * published (release).  Cancel races the lock-free start
 * (ex__future_begin) on one CAS, so it writes them first and takes them
 * back if start won: nobody reads them while the state is not final, and
 * the task's own final transition needs this lock, which we hold.  The
 * stats are read under the lock (ex_future_stats), so end_ns can wait for
 * the CAS (a worker that won writes its own). */
bool ex__future_cancel_pending(ex_future *f)
{
    pthread_mutex_lock(&f->lock);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != EX_PENDING) {
        pthread_mutex_unlock(&f->lock);
        return false;
    }
    f->error = EX_ECANCELLED;
    f->task_code = 0;
    ex_state expect = EX_PENDING;
    if (!atomic_compare_exchange_strong_explicit(
            &f->state, &expect, EX_CANCELLED, memory_order_acq_rel,
            memory_order_acquire)) {
        f->error = 0;
        pthread_mutex_unlock(&f->lock);
        return false;
    }
    f->stats.end_ns = ex_now_ns();
    complete_locked(f);
    return true;
}

int ex_future_cancel(ex_future *f)
{
    if (!f)
        return EX_EINVAL;
    return ex__future_cancel_pending(f) ? EX_OK : EX_EINVAL;
}

int ex_future_wait(ex_future *f, int64_t timeout_ns)
{
    if (!f)
        return EX_EINVAL;
    if (state_final(atomic_load_explicit(&f->state, memory_order_acquire)))
        return EX_OK;
    if (timeout_ns == 0)
        return EX_ETIMEDOUT;
    int64_t dl = ex__deadline(timeout_ns);
    if (f->spin_ns > 0) {
        /* A short poll first: a futex sleep and wake costs more than most
         * short tasks on a VM. */
        int64_t spin = timeout_ns > 0 && timeout_ns < f->spin_ns ? timeout_ns : f->spin_ns;
        uint64_t until = ex_now_ns() + (uint64_t)spin;
        while (ex_now_ns() < until)
            for (int i = 0; i < 64; i++) {
                if (state_final(atomic_load_explicit(&f->state, memory_order_acquire)))
                    return EX_OK;
                ex__cpu_relax();
            }
    }
    int rc = EX_OK;
    pthread_mutex_lock(&f->lock);
    f->cond_waiters++;
    while (!state_final(atomic_load_explicit(&f->state, memory_order_relaxed))) {
        if (ex__cond_wait_until(&f->cond, &f->lock, dl) != 0 &&
            !state_final(atomic_load_explicit(&f->state, memory_order_relaxed))) {
            rc = EX_ETIMEDOUT;
            break;
        }
    }
    f->cond_waiters--;
    pthread_mutex_unlock(&f->lock);
    return rc;
}

int ex_future_result(ex_future *f, const void **out, size_t *len,
                     int64_t timeout_ns)
{
    int rc = ex_future_wait(f, timeout_ns);
    if (rc)
        return rc;
    if (atomic_load_explicit(&f->state, memory_order_acquire) != EX_DONE)
        return f->error;
    if (out)
        *out = f->out.data;
    if (len)
        *len = f->out.len;
    return EX_OK;
}

ex_state ex_future_state(ex_future *f)
{
    return f ? atomic_load_explicit(&f->state, memory_order_acquire) : EX_PENDING;
}

int ex_future_error(ex_future *f)
{
    if (!f)
        return EX_EINVAL;
    if (!state_final(atomic_load_explicit(&f->state, memory_order_acquire)))
        return 0;
    return f->error;
}

int ex_future_task_code(ex_future *f)
{
    if (!f || !state_final(atomic_load_explicit(&f->state, memory_order_acquire)))
        return 0;
    return f->task_code;
}

int ex_future_on_done(ex_future *f, ex_done_fn cb, void *arg)
{
    if (!f || !cb)
        return EX_EINVAL;
    pthread_mutex_lock(&f->lock);
    if (!state_final(atomic_load_explicit(&f->state, memory_order_relaxed)) ||
        f->running_callbacks) {
        struct ex_callback *node = malloc(sizeof *node);
        if (!node) {
            pthread_mutex_unlock(&f->lock);
            return EX_ENOMEM;
        }
        node->next = NULL;
        node->fn = cb;
        node->arg = arg;
        *f->callbacks_tail = node;
        f->callbacks_tail = &node->next;
        pthread_mutex_unlock(&f->lock);
        return EX_OK;
    }
    pthread_mutex_unlock(&f->lock);
    cb(f, arg);
    return EX_OK;
}

/* The callback behind ex_future_then: parent is final; submit or propagate.
 * `next` carries the executor's reference until a backend takes it. */
static void then_fire(ex_future *parent, void *arg)
{
    ex_future *next = arg;
    ex_executor *ex = next->then_ex;
    ex_state s = atomic_load_explicit(&parent->state, memory_order_acquire);
    if (s == EX_DONE) {
        next->in = parent->out.data;
        next->in_len = parent->out.len;
        next->stats.submit_ns = ex_now_ns();
        int rc = atomic_load(&ex->broken) ? EX_EBROKEN
                                          : ex->vt->submit(ex, next, true);
        if (rc == EX_OK)
            return; /* the backend owns the reference now */
        ex__future_finish(next, rc, 0);
    } else if (s == EX_CANCELLED) {
        ex__future_cancel_pending(next);
    } else {
        ex__future_finish(next, parent->error, parent->task_code);
    }
    ex_future_release(next);
}

int ex_future_then(ex_future *f, ex_executor *ex, ex_task_fn fn,
                   ex_future **next)
{
    if (!f || !ex || !fn || !next)
        return EX_EINVAL;
    *next = NULL;
    if (atomic_load(&ex->shut))
        return EX_ESHUTDOWN;
    ex_future *n;
    int rc = ex__future_new(ex->fcache, fn, NULL, 0, &n);
    if (rc)
        return rc;
    ex_future_retain(f);
    n->parent = f;
    n->then_ex = ex;
    *next = n; /* set before the callback can run (seq runs it inline) */
    rc = ex_future_on_done(f, then_fire, n);
    if (rc) {
        *next = NULL;
        ex_future_release(n);
        ex_future_release(n);
        return rc;
    }
    return EX_OK;
}

int ex_future_stats(ex_future *f, ex_task_stats *out)
{
    if (!f || !out)
        return EX_EINVAL;
    /* The worker writes the stats without the lock while the task runs;
     * they are complete, and published by the final state, once it is
     * final. */
    if (!state_final(atomic_load_explicit(&f->state, memory_order_acquire)))
        return EX_EINVAL;
    pthread_mutex_lock(&f->lock);
    *out = f->stats;
    pthread_mutex_unlock(&f->lock);
    return EX_OK;
}

void ex_future_retain(ex_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void ex_future_release(ex_future *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: nobody else can reach f. */
    struct ex_callback *cb = f->callbacks;
    while (cb) {
        struct ex_callback *next = cb->next;
        free(cb);
        cb = next;
    }
    if (f->parent)
        ex_future_release(f->parent);
    ex_buf_free(&f->out);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    fcache_put(f->home, f);
}
