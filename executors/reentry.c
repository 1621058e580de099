/*
 * reentry.c: what ex_shutdown and ex_destroy do when the caller is part of
 * the executor itself, so that neither can crash, join itself or hang; and
 * the thread list both it and seq.c keep.
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
 *     would pull it from under that ex_shutdown.  ex_shutdown lists its
 *     thread in ex->shutdown_calls for the length of the call.
 *
 * Invariant: ex_destroy frees the executor only once no thread is inside
 * ex_shutdown (it waits for them), and never from inside.
 */
#include "ex_internal.h"

int ex__tlist_init(ex_tlist *l)
{
    l->head = NULL;
    if (pthread_mutex_init(&l->lock, NULL) != 0)
        return EX_ENOMEM;
    if (ex__cond_init(&l->empty) != 0) {
        pthread_mutex_destroy(&l->lock);
        return EX_ENOMEM;
    }
    return EX_OK;
}

void ex__tlist_fini(ex_tlist *l)
{
    pthread_cond_destroy(&l->empty);
    pthread_mutex_destroy(&l->lock);
}

void ex__tlist_enter(ex_tlist *l, ex_tnode *n)
{
    n->thread = pthread_self();
    pthread_mutex_lock(&l->lock);
    n->next = l->head;
    l->head = n;
    pthread_mutex_unlock(&l->lock);
}

void ex__tlist_leave(ex_tlist *l, ex_tnode *n)
{
    pthread_mutex_lock(&l->lock);
    for (ex_tnode **pp = &l->head; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    if (!l->head)
        pthread_cond_broadcast(&l->empty);
    pthread_mutex_unlock(&l->lock);
}

bool ex__tlist_has_self(ex_tlist *l)
{
    pthread_t self = pthread_self();
    bool found = false;
    pthread_mutex_lock(&l->lock);
    for (const ex_tnode *n = l->head; n && !found; n = n->next)
        found = pthread_equal(n->thread, self);
    pthread_mutex_unlock(&l->lock);
    return found;
}

void ex__tlist_wait_empty(ex_tlist *l)
{
    pthread_mutex_lock(&l->lock);
    while (l->head)
        pthread_cond_wait(&l->empty, &l->lock);
    pthread_mutex_unlock(&l->lock);
}

int ex__caller_inside(ex_executor *ex)
{
    int where = ex->vt->inside(ex);
    if (where == EX__OUTSIDE && ex__tlist_has_self(&ex->shutdown_calls))
        where = EX__INSIDE_THREAD;
    return where;
}

int ex__destroy_gate(ex_executor *ex)
{
    int where = ex__caller_inside(ex);
    if (where == EX__INSIDE_COPY)
        return EX_EINVAL;
    if (where == EX__INSIDE_THREAD)
        return EX__INSIDE_THREAD;
    /* Another thread's ex_shutdown may still be running callbacks.  This
     * thread is not listed (checked above) and cannot be while here. */
    ex__tlist_wait_empty(&ex->shutdown_calls);
    return EX_OK;
}
