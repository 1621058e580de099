/*
 * listen.c: what runs once a future is final: group waiters (ex_wait,
 * as_completed), callbacks (ex_future_on_done) and then-chains
 * (ex_future_then), all kept as listeners in one list per future.
 *
 * The list is circular and the future points at its last node, so one
 * pointer serves to append (callbacks, in order) and to prepend (group
 * waiters, which go first).  It changes only under the future's lock.
 *
 * Invariant: a callback added while the completer is still running the
 * callback list (EX__W_CALLBACKS) is appended to that list, not run at
 * once, so callbacks run strictly in the order added, even across threads.
 * Early listeners (group waiters) run under the lock, so a group that
 * unlistens (under the same lock) may free its node right after.
 *
 * A then-chain is one allocation with two listeners: one on the parent
 * (submit the next task on its output, or pass its failure on) and one on
 * the next future (drop the parent, whose output was that task's input).
 * Either may run first (the next future can be cancelled before the
 * parent ends); the second frees it.
 */
#include "ex_internal.h"

#include <stddef.h>
#include <stdlib.h>

static bool word_final(uint32_t w)
{
    ex_state s = (ex_state)(w & EX__W_STATE);
    return s == EX_DONE || s == EX_FAILED || s == EX_CANCELLED;
}

static uint32_t load_word(ex_future *f)
{
    return atomic_load_explicit(&f->word, memory_order_acquire);
}

/* ------------------------------------------------------------ the list */

/* Under the lock: early ones become first, the others last. */
static void list_add(ex_future *f, struct ex__listener *l)
{
    struct ex__listener *last = f->listeners;
    if (!last) {
        l->next = l;
        f->listeners = l;
        atomic_fetch_or_explicit(&f->word, EX__W_LISTENERS, memory_order_relaxed);
        return;
    }
    l->next = last->next;
    last->next = l;
    if (!l->early)
        f->listeners = l;
}

/* Under the lock: the whole list, first to last, NULL-terminated. */
static struct ex__listener *list_detach(ex_future *f)
{
    struct ex__listener *last = f->listeners;
    if (!last)
        return NULL;
    struct ex__listener *first = last->next;
    last->next = NULL;
    f->listeners = NULL;
    atomic_fetch_and_explicit(&f->word, ~EX__W_LISTENERS, memory_order_relaxed);
    return first;
}

void ex__future_unlisten(ex_future *f, struct ex__listener *l)
{
    ex__future_lock(f);
    struct ex__listener *last = f->listeners, *prev = last;
    if (last) {
        do {
            struct ex__listener *cur = prev->next;
            if (cur == l) {
                if (cur == prev) { /* the only one */
                    f->listeners = NULL;
                    atomic_fetch_and_explicit(&f->word, ~EX__W_LISTENERS,
                                              memory_order_relaxed);
                } else {
                    prev->next = cur->next;
                    if (cur == last)
                        f->listeners = prev;
                }
                break;
            }
            prev = cur;
        } while (prev != last);
    }
    ex__future_unlock(f);
}

bool ex__future_listen(ex_future *f, struct ex__listener *l)
{
    ex__future_lock(f);
    uint32_t w = atomic_load_explicit(&f->word, memory_order_relaxed);
    bool add = !word_final(w) || (!l->early && (w & EX__W_CALLBACKS));
    if (add)
        list_add(f, l);
    ex__future_unlock(f);
    return add;
}

bool ex__future_callbacks_running(ex_future *f)
{
    ex__future_lock(f);
    bool busy = atomic_load_explicit(&f->word, memory_order_relaxed) & EX__W_CALLBACKS;
    ex__future_unlock(f);
    return busy;
}

/* ---------------------------------------------------------- completion */

/* Under the lock: runs the early listeners of list and returns the
 * others, in order. */
static struct ex__listener *run_early(ex_future *f, struct ex__listener *list)
{
    struct ex__listener *late = NULL, **tail = &late;
    while (list) {
        struct ex__listener *next = list->next;
        if (list->early) {
            list->fn(f, list);
        } else {
            *tail = list;
            tail = &list->next;
        }
        list = next;
    }
    *tail = NULL;
    return late;
}

/* Without the lock: each fn disposes of its own node. */
static void run_late(ex_future *f, struct ex__listener *list)
{
    while (list) {
        struct ex__listener *next = list->next;
        list->fn(f, list);
        list = next;
    }
}

bool ex__future_complete_locked(ex_future *f)
{
    struct ex__listener *late = run_early(f, list_detach(f));
    if (!late) {
        ex__future_unlock(f); /* wakes the parked */
        return false;
    }
    atomic_fetch_or_explicit(&f->word, EX__W_CALLBACKS, memory_order_relaxed);
    do {
        ex__future_unlock(f);
        run_late(f, late);
        ex__future_lock(f);
    } while ((late = run_early(f, list_detach(f))));
    atomic_fetch_and_explicit(&f->word, ~EX__W_CALLBACKS, memory_order_relaxed);
    ex__future_unlock(f);
    return true;
}

/* ----------------------------------------------------------- callbacks */

typedef struct user_callback {
    struct ex__listener node;
    ex_done_fn fn;
    void *arg;
} user_callback;

static void user_callback_run(ex_future *f, struct ex__listener *l)
{
    user_callback *u = (user_callback *)l;
    ex_done_fn fn = u->fn;
    void *arg = u->arg;
    free(u);
    fn(f, arg);
}

int ex_future_on_done(ex_future *f, ex_done_fn cb, void *arg)
{
    if (!f || !cb)
        return EX_EINVAL;
    /* Final, unlocked and no callback running: the completer is through
     * (it sets CALLBACKS before it unlocks, if it has any), so run it now
     * without allocating. */
    uint32_t w = load_word(f);
    if (word_final(w) && !(w & (EX__W_LOCKED | EX__W_CALLBACKS))) {
        cb(f, arg);
        return EX_OK;
    }
    user_callback *u = malloc(sizeof *u);
    if (!u)
        return EX_ENOMEM;
    u->node.fn = user_callback_run;
    u->node.early = false;
    u->fn = cb;
    u->arg = arg;
    if (!ex__future_listen(f, &u->node)) {
        free(u);
        cb(f, arg);
    }
    return EX_OK;
}

/* ---------------------------------------------------------- then-chains */

typedef struct then_link {
    struct ex__listener on_parent; /* in parent's list: then_fire */
    struct ex__listener on_next;   /* in next's list: then_release */
    ex_future *parent;             /* one reference, dropped by on_next */
    ex_future *next;               /* the executor's reference until a
                                      backend takes it (then_fire) */
    ex_executor *ex;
    atomic_uint pending;           /* listeners not yet run */
} then_link;

static void then_link_done(then_link *t)
{
    if (atomic_fetch_sub_explicit(&t->pending, 1, memory_order_acq_rel) == 1)
        free(t);
}

/* next's input is parent's output, if next is still PENDING (a cancel may
 * have ended it: its call fields are its result's now).  From here next
 * is ex's: counted as submitted, and no longer HELD, under the lock a
 * cancel takes (so a cancel from now on counts too). */
static bool then_set_input(ex_future *next, ex_future *parent, ex_executor *ex)
{
    ex__future_lock(next);
    bool pending = (atomic_load_explicit(&next->word, memory_order_relaxed) &
                    EX__W_STATE) == EX_PENDING;
    if (pending) {
        next->in = parent->out_data;
        next->in_len = parent->out_len;
        next->stats.submit_ns = ex_now_ns();
        next->stats_flags &= (uint16_t)~EX__F_HELD;
        ex__count_submitted(ex);
    }
    ex__future_unlock(next);
    return pending;
}

/* parent is final: submit next on its output, or pass its end on. */
static void then_fire(ex_future *parent, struct ex__listener *l)
{
    then_link *t = (then_link *)((char *)l - offsetof(then_link, on_parent));
    ex_future *next = t->next;
    ex_executor *ex = t->ex;
    uint32_t w = load_word(parent);
    ex_state s = (ex_state)(w & EX__W_STATE);
    if (s == EX_DONE) {
        if (then_set_input(next, parent, ex)) {
            int rc = atomic_load(&ex->broken) ? EX_EBROKEN : ex->vt->submit(ex, next, true);
            if (rc == EX_OK) {
                then_link_done(t); /* the backend owns the reference now */
                return;
            }
            /* Refused after it was counted (or cancelled meanwhile). */
            ex__future_fail_pending(next, rc);
        }
    } else if (s == EX_CANCELLED) {
        ex__future_cancel_pending(next);
    } else {
        ex__future_finish(next, ex_future_error(parent), parent->task_code);
    }
    ex_future_release(next);
    then_link_done(t);
}

/* next is final: its input (parent's output) is no longer needed. */
static void then_release(ex_future *next, struct ex__listener *l)
{
    (void)next;
    then_link *t = (then_link *)((char *)l - offsetof(then_link, on_next));
    ex_future_release(t->parent);
    then_link_done(t);
}

int ex_future_then(ex_future *f, ex_executor *ex, ex_task_fn fn,
                   ex_future **next)
{
    if (!f || !ex || !fn || !next)
        return EX_EINVAL;
    *next = NULL;
    if (atomic_load(&ex->shut))
        return EX_ESHUTDOWN;
    then_link *t = malloc(sizeof *t);
    if (!t)
        return EX_ENOMEM;
    ex_future *n;
    int rc = ex__future_new(ex->fcache, fn, NULL, 0, &n);
    if (rc) {
        free(t);
        return rc;
    }
    n->stats_flags |= EX__F_HELD; /* not ex's until f is DONE (then_fire) */
    ex_future_retain(f);
    t->parent = f;
    t->next = n;
    t->ex = ex;
    t->on_parent.fn = then_fire;
    t->on_parent.early = false;
    t->on_next.fn = then_release;
    t->on_next.early = false;
    atomic_init(&t->pending, 2);
    ex__future_listen(n, &t->on_next); /* n is new: always added */
    *next = n; /* set before the chain can run (seq runs it inline) */
    if (!ex__future_listen(f, &t->on_parent))
        then_fire(f, &t->on_parent); /* f was final already */
    return EX_OK;
}
