/*
 * future.c: the future state machine.
 *
 *   PENDING -> RUNNING -> DONE | FAILED
 *   PENDING -> CANCELLED          (ex_future_cancel, shutdown, chain)
 *   PENDING -> FAILED             (executor broken or shut before it ran)
 *   RUNNING -> PENDING            (procs: its worker died before reading it)
 *
 * Everything lives in one 32-bit word (ex_internal.h): the state, the final
 * error, a lock bit and the bits that say who waits.  Every transition
 * happens under that lock, as CPython's futures do under their condition's
 * lock, with two lock-free shortcuts that are the same transitions done in
 * one compare-and-swap: start (PENDING -> RUNNING, only while nobody holds
 * the lock) and finish (RUNNING -> final, only while no bit at all is set:
 * nobody waits, listens or locks).  A final transition is followed, in this
 * order, by: group waiters (early listeners), waking the threads parked on
 * the word, then the callbacks in the order they were added.
 *
 * Cancel takes the lock, checks PENDING and writes the future's end; start
 * cannot slip in between, since it needs the lock free.  So exactly one of
 * "start" and "cancel" wins, and a cancelled future's fields were written
 * by the canceller alone.
 *
 * Publication: task_code and the result fields (output, measurements) are
 * written before the final state is stored with release; readers load the
 * word with acquire and only then read them, so a final state is never
 * seen with its error, output or stats missing.  Nothing is written after.
 *
 * Waiting: a short poll (the executor's spin_ns), then the thread sets
 * PARKED and sleeps on the word (a futex): no mutex, no condition variable
 * per future.  Listeners (callbacks, group waiters, then-chains) are in
 * listen.c.
 */
#include "ex_internal.h"

#include <stdlib.h>
#include <string.h>

/* Polls before parking on the lock: it is held for a few stores. */
#define LOCK_SPINS 128

static bool state_final(ex_state s)
{
    return s == EX_DONE || s == EX_FAILED || s == EX_CANCELLED;
}

static ex_state word_state(uint32_t w)
{
    return (ex_state)(w & EX__W_STATE);
}

static bool word_final(uint32_t w)
{
    return state_final(word_state(w));
}

/* EX_E* codes are -1..-10; a value outside a byte (a corrupt worker
 * status) is kept as EX_ESYS. */
static uint32_t error_bits(int error)
{
    if (error > 0 || error < -255)
        error = EX_ESYS;
    return (uint32_t)-error << EX__W_ERROR_SHIFT;
}

static int word_error(uint32_t w)
{
    return -(int)((w >> EX__W_ERROR_SHIFT) & 0xffu);
}

static uint32_t load_word(ex_future *f, memory_order mo)
{
    return atomic_load_explicit(&f->word, mo);
}

/* ------------------------------------------------------------- the lock */

void ex__future_lock(ex_future *f)
{
    uint32_t w = load_word(f, memory_order_relaxed);
    for (unsigned spins = 0;;) {
        if (!(w & EX__W_LOCKED)) {
            if (atomic_compare_exchange_weak_explicit(&f->word, &w, w | EX__W_LOCKED,
                                                      memory_order_acquire,
                                                      memory_order_relaxed))
                return;
            continue;
        }
        if (spins < LOCK_SPINS) {
            spins++;
            ex__cpu_relax();
            w = load_word(f, memory_order_relaxed);
            continue;
        }
        if (!(w & EX__W_PARKED) &&
            !atomic_compare_exchange_weak_explicit(&f->word, &w, w | EX__W_PARKED,
                                                   memory_order_relaxed,
                                                   memory_order_relaxed))
            continue;
        ex__park(&f->word, w | EX__W_PARKED, -1);
        w = load_word(f, memory_order_relaxed);
    }
}

/* Wakes every parked thread, whether it waits for the lock or for a final
 * state: those still waiting park again.  Contention on one future is
 * rare, so waking all is cheaper than telling them apart.  Acquire too: a
 * waiter that parked while the lock was held (a release, see
 * park_until_final) then happens before what follows, the callbacks. */
void ex__future_unlock(ex_future *f)
{
    uint32_t old = atomic_fetch_and_explicit(&f->word, ~(EX__W_LOCKED | EX__W_PARKED),
                                             memory_order_acq_rel);
    if (old & EX__W_PARKED)
        ex__unpark_all(&f->word);
}

/* Under the lock: the state (and error) become s, keeping the other bits
 * (a waiter may set PARKED meanwhile). */
static void set_state_locked(ex_future *f, ex_state s, int error)
{
    uint32_t w = load_word(f, memory_order_relaxed), to;
    do
        to = (w & ~(EX__W_STATE | (0xffu << EX__W_ERROR_SHIFT))) | (uint32_t)s |
             (error ? error_bits(error) : 0);
    while (!atomic_compare_exchange_weak_explicit(&f->word, &w, to, memory_order_release,
                                                  memory_order_relaxed));
}

/* --------------------------------------------------------------- create */

int ex__future_new(ex_fcache *c, ex_task_fn fn, const void *in, size_t len,
                   ex_future **out)
{
    ex_future *f = ex__fcache_get(c);
    if (!f)
        return EX_ENOMEM;
    atomic_init(&f->word, EX_PENDING);
    atomic_init(&f->refs, 2); /* the caller's and the executor's */
    f->task_code = 0;
    f->cpu = -1;
    f->stats_flags = 0;
    f->stats.submit_ns = ex_now_ns();
    f->stats.start_ns = 0;
    f->stats.worker = -1;
    f->stats.worker_pid = 0;
    f->listeners = NULL;
    f->next = NULL;
    f->fn = fn;
    f->in = in;
    f->in_len = len;
    f->id = 0;
    f->redispatched = 0;
    *out = f;
    return EX_OK;
}

/* --------------------------------------------------------- transitions */

/* from -> to if f is in state from; through the lock if it is held. */
static bool move(ex_future *f, ex_state from, ex_state to)
{
    uint32_t w = load_word(f, memory_order_relaxed);
    while (!(w & EX__W_LOCKED)) {
        if (word_state(w) != from)
            return false;
        if (atomic_compare_exchange_weak_explicit(&f->word, &w,
                                                  (w & ~EX__W_STATE) | (uint32_t)to,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed))
            return true;
    }
    ex__future_lock(f);
    bool ok = word_state(load_word(f, memory_order_relaxed)) == from;
    if (ok)
        set_state_locked(f, to, 0);
    ex__future_unlock(f);
    return ok;
}

bool ex__future_begin(ex_future *f)
{
    return move(f, EX_PENDING, EX_RUNNING);
}

bool ex__future_unbegin(ex_future *f)
{
    return move(f, EX_RUNNING, EX_PENDING);
}

void ex__future_end_call(ex_future *f)
{
    f->out_data = NULL;
    f->out_len = 0;
    f->end_ns = f->cpu_ns = 0;
    f->nvcsw = f->nivcsw = 0;
    f->ipc_send_ns = f->ipc_recv_ns = 0;
    f->stats_flags |= EX__F_RESULT;
}

static uint32_t saturate_u32(int64_t v)
{
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void ex__future_record(ex_future *f, const ex_task_stats *st, ex_buf *out)
{
    if (!(f->stats_flags & EX__F_RESULT))
        ex__future_end_call(f);
    f->stats_flags = EX__F_RESULT | (uint16_t)(st->flags & ~EX__F_RESULT);
    f->stats.start_ns = st->start_ns;
    f->stats.worker = st->worker;
    f->stats.worker_pid = st->worker_pid;
    f->cpu = st->cpu >= INT16_MIN && st->cpu <= INT16_MAX ? (int16_t)st->cpu : -1;
    f->end_ns = st->end_ns;
    f->cpu_ns = st->cpu_ns;
    f->nvcsw = saturate_u32(st->nvcsw);
    f->nivcsw = saturate_u32(st->nivcsw);
    f->ipc_send_ns = st->ipc_send_ns;
    f->ipc_recv_ns = st->ipc_recv_ns;
    if (out) {
        f->out_data = out->data;
        f->out_len = out->len;
        *out = (ex_buf){0};
    }
}

static ex_state final_state_of(int error)
{
    return error == 0 ? EX_DONE : error == EX_ECANCELLED ? EX_CANCELLED : EX_FAILED;
}

/* Under the lock, f not final: f ends now (unless a run was recorded),
 * becomes final, and its listeners run (returns unlocked). */
static bool finish_locked(ex_future *f, int error, int task_code)
{
    if (!(f->stats_flags & EX__F_RESULT)) {
        ex__future_end_call(f);
        f->end_ns = ex_now_ns();
    }
    f->task_code = error == EX_ETASK ? task_code : 0;
    set_state_locked(f, final_state_of(error), error);
    return ex__future_complete_locked(f);
}

bool ex__future_finish(ex_future *f, int error, int task_code)
{
    /* The common case in one CAS: the owner of a RUNNING future with its
     * run recorded, and no bit set (nobody waits, listens or locks).  Only
     * the owner writes a RUNNING future's fields, so reading them is safe
     * once the word says RUNNING. */
    uint32_t w = load_word(f, memory_order_relaxed);
    if (w == EX_RUNNING && (f->stats_flags & EX__F_RESULT)) {
        f->task_code = error == EX_ETASK ? task_code : 0;
        uint32_t to = (uint32_t)final_state_of(error) | (error ? error_bits(error) : 0);
        if (atomic_compare_exchange_strong_explicit(&f->word, &w, to, memory_order_release,
                                                    memory_order_relaxed))
            return false;
    }
    ex__future_lock(f);
    if (word_final(load_word(f, memory_order_relaxed))) {
        ex__future_unlock(f);
        return false;
    }
    return finish_locked(f, error, task_code);
}

/* PENDING -> final without running, counted in the executor's gauges
 * before it is published (unless HELD: a chain its executor never saw). */
static bool end_pending(ex_future *f, int error)
{
    ex__future_lock(f);
    if (word_state(load_word(f, memory_order_relaxed)) != EX_PENDING) {
        ex__future_unlock(f);
        return false;
    }
    struct ex__gauges *g = f->stats_flags & EX__F_HELD ? NULL : ex__fcache_gauges(f);
    if (g)
        ex__gauge_add(final_state_of(error) == EX_CANCELLED ? &g->cancelled
                                                            : &g->failed_unbegun);
    finish_locked(f, error, 0);
    return true;
}

bool ex__future_cancel_pending(ex_future *f)
{
    return end_pending(f, EX_ECANCELLED);
}

bool ex__future_fail_pending(ex_future *f, int error)
{
    return end_pending(f, error ? error : EX_ESYS);
}

int ex_future_cancel(ex_future *f)
{
    if (!f)
        return EX_EINVAL;
    return ex__future_cancel_pending(f) ? EX_OK : EX_EINVAL;
}

/* ------------------------------------------------------------- waiting */

static bool is_final(const void *arg)
{
    return word_final(atomic_load_explicit(&((ex_future *)arg)->word, memory_order_acquire));
}

/* Sleeps on the word until f is final or dl passes.  Setting PARKED is a
 * release, as taking a mutex to wait on a condition variable would be:
 * what the waiter did before happens before the completion that wakes it
 * (which reads the word to take the lock). */
static int park_until_final(ex_future *f, int64_t dl)
{
    uint32_t w = load_word(f, memory_order_acquire);
    while (!word_final(w)) {
        if (!(w & EX__W_PARKED)) {
            if (!atomic_compare_exchange_weak_explicit(&f->word, &w, w | EX__W_PARKED,
                                                       memory_order_acq_rel,
                                                       memory_order_acquire))
                continue;
            w |= EX__W_PARKED;
        }
        if (ex__park(&f->word, w, dl) == EX_ETIMEDOUT)
            return is_final(f) ? EX_OK : EX_ETIMEDOUT;
        w = load_word(f, memory_order_acquire);
    }
    return EX_OK;
}

int ex_future_wait(ex_future *f, int64_t timeout_ns)
{
    if (!f)
        return EX_EINVAL;
    if (is_final(f))
        return EX_OK;
    if (timeout_ns == 0)
        return EX_ETIMEDOUT;
    int64_t dl = ex__deadline(timeout_ns);
    /* A short poll first: a futex sleep and wake costs more than most
     * short tasks on a VM.  Without yielding: a yield on a shared CPU can
     * cost more than the hand-off it waits for. */
    int64_t spin = ex__fcache_spin_ns(f);
    if (spin > 0) {
        if (timeout_ns > 0 && timeout_ns < spin)
            spin = timeout_ns;
        if (ex__spin_until(is_final, f, spin, false))
            return EX_OK;
    }
    return park_until_final(f, dl);
}

int ex_future_result(ex_future *f, const void **out, size_t *len,
                     int64_t timeout_ns)
{
    int rc = ex_future_wait(f, timeout_ns);
    if (rc)
        return rc;
    uint32_t w = load_word(f, memory_order_acquire);
    if (word_state(w) != EX_DONE)
        return word_error(w);
    if (out)
        *out = f->out_data;
    if (len)
        *len = f->out_len;
    return EX_OK;
}

/* ------------------------------------------------------------- reading */

ex_state ex_future_state(ex_future *f)
{
    return f ? word_state(load_word(f, memory_order_acquire)) : EX_PENDING;
}

int ex_future_error(ex_future *f)
{
    if (!f)
        return EX_EINVAL;
    uint32_t w = load_word(f, memory_order_acquire);
    return word_final(w) ? word_error(w) : 0;
}

int ex_future_task_code(ex_future *f)
{
    if (!f || !is_final(f))
        return 0;
    return f->task_code;
}

int ex_future_stats(ex_future *f, ex_task_stats *out)
{
    if (!f || !out)
        return EX_EINVAL;
    /* Written by whoever made f final, before the state was published;
     * never after. */
    if (!is_final(f))
        return EX_EINVAL;
    memset(out, 0, sizeof *out);
    out->flags = f->stats_flags & ~(EX__F_RESULT | EX__F_HELD);
    out->submit_ns = f->stats.submit_ns;
    out->start_ns = f->stats.start_ns;
    out->end_ns = f->end_ns;
    out->cpu_ns = f->cpu_ns;
    out->nvcsw = f->nvcsw;
    out->nivcsw = f->nivcsw;
    out->worker = f->stats.worker;
    out->cpu = f->cpu;
    out->worker_pid = f->stats.worker_pid;
    out->ipc_send_ns = f->ipc_send_ns;
    out->ipc_recv_ns = f->ipc_recv_ns;
    return EX_OK;
}

/* ---------------------------------------------------------- references */

void ex_future_retain(ex_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void ex_future_release(ex_future *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: nobody else can reach f.  It is final (the executor
     * holds its reference until then), so no listener is left, or it was
     * never queued (a refused submission): then it has no result. */
    if (f->stats_flags & EX__F_RESULT)
        free(f->out_data);
    ex__fcache_put(f);
}
