/*
 * reentry.c: what ex_shutdown and ex_destroy do when the caller is part of
 * the executor itself, so that neither can crash, join itself or hang.
 *
 * Three ways to be "inside":
 *   - the calling thread is one of the executor's own (a threads worker,
 *     the procs dispatcher, a seq task in progress: vt->inside says so),
 *     running a task or a callback;
 *   - the caller is a process-pool worker, holding only a fork-time copy
 *     of the executor (vt->inside says EX__INSIDE_COPY): nothing in that
 *     copy may be touched;
 *   - the calling thread is inside ex_shutdown on this executor, running
 *     the callbacks of the futures it cancels: freeing the executor there
 *     would pull it from under that ex_shutdown.  ex_shutdown registers
 *     its thread here for the length of the call (a node on its stack).
 *
 * Invariant: ex_destroy frees the executor only once no thread is inside
 * ex_shutdown (it waits for them), and never from inside.
 */
#include "ex_internal.h"

int ex__calls_init(ex_executor *ex)
{
    ex->calls = NULL;
    if (pthread_mutex_init(&ex->calls_lock, NULL) != 0)
        return EX_ENOMEM;
    if (pthread_cond_init(&ex->calls_cv, NULL) != 0) {
        pthread_mutex_destroy(&ex->calls_lock);
        return EX_ENOMEM;
    }
    return EX_OK;
}

void ex__calls_fini(ex_executor *ex)
{
    pthread_cond_destroy(&ex->calls_cv);
    pthread_mutex_destroy(&ex->calls_lock);
}

void ex__calls_enter(ex_executor *ex, ex_call *c)
{
    c->thread = pthread_self();
    pthread_mutex_lock(&ex->calls_lock);
    c->next = ex->calls;
    ex->calls = c;
    pthread_mutex_unlock(&ex->calls_lock);
}

void ex__calls_leave(ex_executor *ex, ex_call *c)
{
    pthread_mutex_lock(&ex->calls_lock);
    for (ex_call **pp = &ex->calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (!ex->calls)
        pthread_cond_broadcast(&ex->calls_cv);
    pthread_mutex_unlock(&ex->calls_lock);
}

/* With calls_lock held: whether this thread is inside ex_shutdown. */
static bool self_registered(const ex_executor *ex)
{
    pthread_t self = pthread_self();
    for (const ex_call *c = ex->calls; c; c = c->next)
        if (pthread_equal(c->thread, self))
            return true;
    return false;
}

int ex__caller_inside(ex_executor *ex)
{
    int where = ex->vt->inside(ex);
    if (where != EX__OUTSIDE)
        return where;
    pthread_mutex_lock(&ex->calls_lock);
    if (self_registered(ex))
        where = EX__INSIDE_THREAD;
    pthread_mutex_unlock(&ex->calls_lock);
    return where;
}

int ex__destroy_gate(ex_executor *ex)
{
    int where = ex->vt->inside(ex);
    if (where == EX__INSIDE_COPY)
        return EX_EINVAL;
    pthread_mutex_lock(&ex->calls_lock);
    if (where == EX__INSIDE_THREAD || self_registered(ex)) {
        pthread_mutex_unlock(&ex->calls_lock);
        return EX__INSIDE_THREAD;
    }
    /* Another thread's ex_shutdown may still be running callbacks. */
    while (ex->calls)
        pthread_cond_wait(&ex->calls_cv, &ex->calls_lock);
    pthread_mutex_unlock(&ex->calls_lock);
    return EX_OK;
}
