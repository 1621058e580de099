/*
 * group.c: waiting on many futures at once: ex_wait (FIRST_COMPLETED,
 * FIRST_FAILED, ALL_COMPLETED) and the as_completed iterator.
 *
 * ALL_COMPLETED needs no registration: it waits for each future in turn,
 * the last one first (in a FIFO pool it ends last, so by then the others
 * are final and one wake-up serves them all), and costs the tasks nothing.
 * The others count the futures already final without taking any lock,
 * then register one ex_waiter with each of the others: a link each (an
 * early listener, listen.c), allocated once per call, not per completion.
 * Each is counted as it becomes final, and for as_completed its index is
 * appended to waiter->order, so the iterator yields completions in the
 * order they happened.  Lock order: future, then waiter; never the other
 * way round.
 */
#include "ex_internal.h"

#include <stdlib.h>

typedef struct group {
    struct ex_waiter w;
    struct ex_waiter_link *links; /* one per future not final at init */
    size_t nlinks;
    ex_future **fs;
    bool own_fs;    /* fs is a copy (as_completed), else the caller's */
    size_t yielded; /* as_completed: how many of w.order were returned */
} group;

struct ex_as_completed {
    group g;
};

static bool final_state(ex_state s)
{
    return s == EX_DONE || s == EX_FAILED || s == EX_CANCELLED;
}

void ex__waiter_count(struct ex_waiter *w, size_t i, ex_state s)
{
    if (w->order)
        w->order[w->nfinal] = i;
    w->nfinal++;
    if (s == EX_FAILED)
        w->nfailed++;
}

/* The group's fields; with_order: the completion order array and a copy
 * of fs (as_completed's fs must outlive its creation, ex_wait's only the
 * call).  0 or EX_ENOMEM; group_free frees what it allocated either way. */
static int group_alloc(group *g, ex_future *const *fs, size_t n,
                       bool with_order)
{
    g->w.n = n;
    g->w.nfinal = g->w.nfailed = 0;
    g->w.wake_nfinal = 1;
    g->w.wake_on_fail = false;
    g->w.order = NULL;
    g->yielded = 0;
    g->links = NULL;
    g->nlinks = 0;
    g->own_fs = with_order;
    g->fs = (ex_future **)fs;
    if (!with_order)
        return EX_OK;
    g->w.order = calloc(n ? n : 1, sizeof *g->w.order);
    g->fs = calloc(n ? n : 1, sizeof *g->fs);
    if (!g->w.order || !g->fs)
        return EX_ENOMEM;
    for (size_t i = 0; i < n; i++)
        g->fs[i] = fs[i];
    return EX_OK;
}

static void group_free(group *g)
{
    free(g->w.order);
    free(g->links);
    if (g->own_fs)
        free(g->fs);
}

/* First pass, lock-free: a future already final needs no registration (a
 * final state never changes), and nobody else touches w yet.  The others
 * get a link each (usually few: grown as needed).  0 or EX_ENOMEM. */
static int group_collect(group *g, ex_future *const *fs, size_t n)
{
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        ex_state s = ex_future_state(fs[i]);
        if (final_state(s)) {
            ex__waiter_count(&g->w, i, s);
            continue;
        }
        if (g->nlinks == cap) {
            cap = cap ? 2 * cap : 16;
            struct ex_waiter_link *l = realloc(g->links, cap * sizeof *l);
            if (!l)
                return EX_ENOMEM;
            g->links = l;
        }
        g->links[g->nlinks].waiter = &g->w;
        g->links[g->nlinks++].index = i;
    }
    return EX_OK;
}

/* A future a group waits on became final (under its lock). */
static void link_fired(ex_future *f, struct ex__listener *node)
{
    struct ex_waiter_link *l = (struct ex_waiter_link *)node;
    struct ex_waiter *w = l->waiter;
    ex_state s = ex_future_state(f);
    pthread_mutex_lock(&w->lock);
    ex__waiter_count(w, l->index, s);
    if (w->nfinal >= w->wake_nfinal || (s == EX_FAILED && w->wake_on_fail))
        pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Second pass: register with the others (a future that became final
 * since is counted now); from the first registration on, completions
 * update w under its lock. */
static void group_register(group *g, ex_future *const *fs)
{
    for (size_t j = 0; j < g->nlinks; j++) {
        struct ex_waiter_link *l = &g->links[j];
        l->node.fn = link_fired;
        l->node.early = true;
        l->listening = ex__future_listen(fs[l->index], &l->node);
        if (!l->listening) {
            pthread_mutex_lock(&g->w.lock);
            ex__waiter_count(&g->w, l->index, ex_future_state(fs[l->index]));
            pthread_mutex_unlock(&g->w.lock);
        }
    }
}

static int group_init(group *g, ex_future *const *fs, size_t n, bool with_order)
{
    if (group_alloc(g, fs, n, with_order) != EX_OK ||
        group_collect(g, fs, n) != EX_OK ||
        pthread_mutex_init(&g->w.lock, NULL) != 0) {
        group_free(g);
        return EX_ENOMEM;
    }
    ex__cond_init(&g->w.cond);
    group_register(g, fs);
    return EX_OK;
}

static void group_fini(group *g)
{
    for (size_t j = 0; j < g->nlinks; j++)
        if (g->links[j].listening)
            ex__future_unlisten(g->fs[g->links[j].index], &g->links[j].node);
    pthread_cond_destroy(&g->w.cond);
    pthread_mutex_destroy(&g->w.lock);
    group_free(g);
}

static bool condition_met(const struct ex_waiter *w, ex_wait_mode mode)
{
    switch (mode) {
    case EX_FIRST_COMPLETED: return w->nfinal >= 1 || w->n == 0;
    case EX_FIRST_FAILED: return w->nfailed >= 1 || w->nfinal == w->n;
    case EX_ALL_COMPLETED: return w->nfinal == w->n;
    }
    return true;
}

/* What is left of the time to an absolute deadline (EX_FOREVER stays). */
static int64_t time_left(int64_t dl)
{
    if (dl < 0)
        return EX_FOREVER;
    int64_t now = (int64_t)ex_now_ns();
    return dl > now ? dl - now : 0;
}

/* ALL_COMPLETED: each in turn, the last first. */
static int wait_all(ex_future *const *fs, size_t n, int64_t timeout_ns,
                    size_t *ndone)
{
    int64_t dl = ex__deadline(timeout_ns);
    int rc = EX_OK;
    for (size_t i = n; i-- > 0;)
        if (ex_future_wait(fs[i], time_left(dl)) != EX_OK) {
            rc = EX_ETIMEDOUT;
            break;
        }
    if (ndone) {
        size_t done = n;
        if (rc != EX_OK)
            for (size_t i = done = 0; i < n; i++)
                done += final_state(ex_future_state(fs[i]));
        *ndone = done;
    }
    return rc;
}

int ex_wait(ex_future *const *fs, size_t n, ex_wait_mode mode,
            int64_t timeout_ns, size_t *ndone)
{
    if ((!fs && n) || mode > EX_ALL_COMPLETED)
        return EX_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return EX_EINVAL;
    if (mode == EX_ALL_COMPLETED)
        return wait_all(fs, n, timeout_ns, ndone);
    group g;
    int rc = group_init(&g, fs, n, false);
    if (rc)
        return rc;
    int64_t dl = ex__deadline(timeout_ns);
    pthread_mutex_lock(&g.w.lock);
    g.w.wake_nfinal = mode == EX_FIRST_COMPLETED ? 1 : n;
    g.w.wake_on_fail = mode == EX_FIRST_FAILED;
    while (!condition_met(&g.w, mode)) {
        if (timeout_ns == 0 ||
            (ex__cond_wait_until(&g.w.cond, &g.w.lock, dl) != 0 &&
             !condition_met(&g.w, mode))) {
            rc = EX_ETIMEDOUT;
            break;
        }
    }
    size_t done = g.w.nfinal;
    pthread_mutex_unlock(&g.w.lock);
    group_fini(&g);
    if (ndone)
        *ndone = done;
    return rc;
}

int ex_as_completed_create(ex_future *const *fs, size_t n, ex_as_completed **out)
{
    if (!out || (!fs && n))
        return EX_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return EX_EINVAL;
    ex_as_completed *it = malloc(sizeof *it);
    if (!it)
        return EX_ENOMEM;
    int rc = group_init(&it->g, fs, n, true);
    if (rc) {
        free(it);
        return rc;
    }
    *out = it;
    return EX_OK;
}

int ex_as_completed_next(ex_as_completed *it, ex_future **f, int64_t timeout_ns)
{
    if (!it || !f)
        return EX_EINVAL;
    group *g = &it->g;
    *f = NULL;
    int64_t dl = ex__deadline(timeout_ns);
    int rc = EX_OK;
    pthread_mutex_lock(&g->w.lock);
    if (g->yielded == g->w.n)
        goto out;
    g->w.wake_nfinal = g->yielded + 1;
    while (g->yielded == g->w.nfinal) {
        if (timeout_ns == 0 ||
            (ex__cond_wait_until(&g->w.cond, &g->w.lock, dl) != 0 &&
             g->yielded == g->w.nfinal)) {
            rc = EX_ETIMEDOUT;
            goto out;
        }
    }
    *f = g->fs[g->w.order[g->yielded++]];
out:
    pthread_mutex_unlock(&g->w.lock);
    return rc;
}

void ex_as_completed_destroy(ex_as_completed *it)
{
    if (!it)
        return;
    group_fini(&it->g);
    free(it);
}
