/*
 * procs.c: the fork+pipe process pool (EX_PROCS): its vtable, and the
 * queue its submitters share with the dispatcher thread.
 *
 * Three kinds of process, one dispatcher thread:
 *
 *   parent ── control socket (SOCK_SEQPACKET) ──> FORK SERVER ──fork──> WORKERS
 *     │                                                              ▲   │
 *     ├───── task pipe (TASK/EXIT frames, a window of them) ─────────┘   │
 *     │<──── result pipe (READY/INIT_FAIL/RESULT frames) ────────────────┤
 *     └───── board (MAP_SHARED): which task each worker began, when ─────┤
 *      ····· region (memfd, EX_TRANSPORT_SHM): inputs and outputs ·······┘
 *
 * One file per role (each states its invariants at its top):
 *
 *   procs.c             create, start, submit, shutdown, destroy; the queue
 *   procs_forkserver.c  the fork server, which forks and reaps every worker
 *                       (no worker inherits a lock; no pid is reused)
 *   procs_worker.c      a worker's loop: TASK in, run, RESULT out
 *   procs_dispatch.c    the dispatcher thread: batches, non-blocking sends,
 *                       result frames, deaths, timeouts (why master and
 *                       worker cannot deadlock on the pipes)
 *   procs_window.c      a worker's window: the tasks sent ahead to it, and
 *                       what a crash, timeout, cancel or recycling does to
 *                       each (the window protocol)
 *   procs_slots.c       a worker slot's life: spawn, loss, redispatch,
 *                       respawn or break, recycling
 *   procs_shm.c         the shared-memory transport: a region per worker
 *   procs_internal.h    what they share; frames are wire.c's
 *
 * Invariants of this file:
 * - Submitters touch only the queue and its flags, under p->lock; the
 *   dispatcher owns the worker slots and every fd (procs_internal.h).
 * - The queue holds PENDING futures and the executor's reference to each;
 *   the dispatcher takes them in batches, as many as the windows have room
 *   for (ex__procs_queue_take), and starts each under p->lock
 *   (ex__procs_queue_begin), where shutdown sets cancel_all: once
 *   shutdown(cancel_pending) returned, no task it cancelled can start, and
 *   it returns only after the dispatcher has revoked the windows
 *   (revoke_wait), so that the tasks sent ahead and not begun are
 *   cancelled by then too.
 * - ex__future_finish and cancels run callbacks, which may submit to this
 *   executor: they are never called with p->lock held.
 * - Fds an application child may hold: the application may fork (without
 *   exec) and its child keeps copies of our control socket and task pipes.
 *   So nothing waits for EOF on them: recycling sends an EXIT frame, the
 *   teardown an FS_EXIT message, worker death shows on pidfds, and the
 *   fork server watches the parent's pidfd.
 * - Only the creating process may use the pool: a task calling ex_* on
 *   its own pool holds a fork-time copy (in_child) and gets EX_EINVAL.
 * - shutdown(wait) and destroy join the dispatcher, once, whoever asks
 *   first; the dispatcher itself is never asked to wait (reentry.c).
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ the queue */

void ex__procs_wake(procs *p)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is already nonzero, the dispatcher will wake. */
    while (write(p->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

void ex__procs_set_broken(procs *p)
{
    atomic_store(&p->base.broken, true);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->lock);
}

/* Cancels (PENDING -> CANCELLED) and drops a list of futures. */
static void cancel_list(ex_future *list)
{
    while (list) {
        ex_future *f = list;
        list = f->next;
        f->next = NULL;
        ex__future_cancel_pending(f); /* false: the user cancelled it */
        ex_future_release(f);
    }
}

/* cancel_all is read under the lock where shutdown sets it and drains the
 * queue, so none slips past it. */
bool ex__procs_queue_requeue(procs *p, ex_future *list)
{
    ex_future *last = list;
    size_t n = 1;
    while (last->next) {
        last = last->next;
        n++;
    }
    pthread_mutex_lock(&p->lock);
    bool cancel = p->cancel_all;
    if (!cancel) {
        last->next = p->head;
        if (!p->head)
            p->tail = last;
        p->head = list;
        p->qlen += n;
    }
    pthread_mutex_unlock(&p->lock);
    if (cancel)
        cancel_list(list);
    return cancel;
}

/* Done: shut down, nothing queued, taken or in a window. */
ex_future *ex__procs_queue_take(procs *p, unsigned room, bool broken,
                                bool *stop, bool *cancel_all)
{
    ex_future *batch = NULL, **tail = &batch;
    pthread_mutex_lock(&p->lock);
    p->wake_pending = false;
    *cancel_all = p->cancel_all;
    /* Broken, or cancelling: everything goes, to fail or to be cancelled
     * (the windows take no more, and a chain may still be queued). */
    size_t take = broken || p->cancel_all ? p->qlen
                                          : (room < p->qlen ? room : p->qlen);
    for (size_t i = 0; i < take; i++) {
        ex_future *f = p->head;
        p->head = f->next;
        f->next = NULL;
        *tail = f;
        tail = &f->next;
    }
    if (!p->head)
        p->tail = NULL;
    p->qlen -= take;
    *stop = p->stopping && p->qlen == 0 && take == 0 && p->inflight == 0;
    p->stopped = *stop;
    if (take || *stop)
        pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->lock);
    return batch;
}

/* cancel_all is read under p->lock, where shutdown sets it. */
bool ex__procs_queue_begin(procs *p, ex_future *f)
{
    pthread_mutex_lock(&p->lock);
    bool cancel = p->cancel_all;
    bool began = !cancel && ex__future_begin(f);
    pthread_mutex_unlock(&p->lock);
    if (began)
        ex__count(&p->counts, &p->counts.begun);
    if (cancel)
        ex__future_cancel_pending(f);
    return began;
}

/* --------------------------------------------------------- create, free */

static void procs_free(procs *p)
{
    if (p->w) {
        for (unsigned i = 0; i < p->base.workers; i++) {
            ex__wire_reader_free(&p->w[i].reader);
            free(p->w[i].win);
        }
    }
    if (p->boards)
        munmap(p->boards, p->boards_len);
    ex__close(&p->wake_fd);
    free(p->w);
    free(p->fs_pids);
    free(p->scratch);
    free(p->pfd);
    free(p->owner);
    pthread_cond_destroy(&p->started);
    pthread_cond_destroy(&p->space);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->join_lock);
    free(p);
}

/* The two mutexes and two condition variables, all or none. */
static int procs_init_sync(procs *p)
{
    if (pthread_mutex_init(&p->lock, NULL) != 0)
        return EX_ENOMEM;
    if (pthread_mutex_init(&p->join_lock, NULL) != 0)
        goto no_join_lock;
    if (pthread_cond_init(&p->space, NULL) != 0)
        goto no_space;
    if (pthread_cond_init(&p->started, NULL) != 0)
        goto no_started;
    return 0;
no_started:
    pthread_cond_destroy(&p->space);
no_space:
    pthread_mutex_destroy(&p->join_lock);
no_join_lock:
    pthread_mutex_destroy(&p->lock);
    return EX_ENOMEM;
}

/* The boards, shared with every worker process: mapped before the fork
 * server is forked, so that it and every worker inherit the mapping. */
static int boards_map(procs *p)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = (size_t)p->base.workers * sizeof(procs_board);
    p->boards_len = (len + page - 1) / page * page;
    void *m = mmap(NULL, p->boards_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        p->boards = NULL;
        return EX_ENOMEM;
    }
    p->boards = m; /* zero-filled */
    return 0;
}

/* One slot: its window and its board line; no process yet. */
static int slot_init(procs *p, unsigned i)
{
    procs_worker *w = &p->w[i];
    w->index = i;
    w->state = W_EMPTY;
    atomic_init(&w->pid, 0);
    w->task_fd = w->result_fd = w->pidfd = -1;
    w->board = &p->boards[i];
    w->win_cap = p->window;
    w->win = calloc(p->window, sizeof *w->win);
    ex__wire_reader_init(&w->reader, p->max_payload);
    return w->win ? 0 : EX_ENOMEM;
}

/* The slots, their windows and boards, the fork server's pid table, the
 * scratch buffer and the poll set, all allocated before any fork.  0 or
 * EX_ENOMEM. */
static int procs_alloc(procs *p)
{
    unsigned n = p->base.workers;
    /* Unreaped processes at any time: n workers, plus one being replaced
     * per slot at worst; a little slack. */
    p->fs_cap = (size_t)n * 2 + 4;
    p->w = calloc(n, sizeof *p->w);
    p->fs_pids = calloc(p->fs_cap, sizeof *p->fs_pids);
    p->scratch = malloc(PROCS_SCRATCH_SIZE);
    /* Per worker: result pipe, task pipe, pidfd; plus wake and control. */
    p->pfd = calloc((size_t)n * 3 + 2, sizeof *p->pfd);
    p->owner = calloc((size_t)n * 3 + 2, sizeof *p->owner);
    if (!p->w || !p->fs_pids || !p->scratch || !p->pfd || !p->owner ||
        boards_map(p) != 0)
        return EX_ENOMEM;
    for (unsigned i = 0; i < n; i++)
        if (slot_init(p, i) != 0)
            return EX_ENOMEM;
    return 0;
}

int ex__procs_new(const ex_config *cfg, ex_executor **out)
{
    /* CALLER_RUNS would run the task in the submitter (or, from a
     * callback, in the dispatcher) without isolation or timeout: the one
     * thing this pool exists to give.  Refused rather than half-kept. */
    if (!cfg || !out || cfg->timeout_ns < 0 ||
        cfg->on_full == EX_ON_FULL_CALLER_RUNS ||
        cfg->window > EX_MAX_WINDOW ||
        (cfg->transport != EX_TRANSPORT_PIPE &&
         cfg->transport != EX_TRANSPORT_SHM))
        return EX_EINVAL;
    procs *p = ex__executor_alloc(sizeof *p);
    if (!p)
        return EX_ENOMEM;
    p->base.vt = &ex__procs_vtable;
    p->base.cfg = *cfg;
    p->base.workers = cfg->max_workers ? cfg->max_workers : ex_default_workers();
    atomic_init(&p->base.broken, false);
    atomic_init(&p->base.shut, false);
    atomic_init(&p->base.replaced, 0);
    p->max_payload = ex__wire_max_payload(cfg->max_payload);
    p->window = cfg->window ? cfg->window : EX_DEFAULT_WINDOW;
    p->shm_ring = ex__procs_shm_ring_size(cfg, p->max_payload);
    p->ctl_fd = -1;
    p->wake_fd = -1;
    p->owner_pid = getpid();
    if (procs_init_sync(p) != 0) {
        free(p);
        return EX_ENOMEM;
    }
    if (procs_alloc(p) != 0) {
        procs_free(p);
        return EX_ENOMEM;
    }
    *out = &p->base;
    return 0;
}

/* --------------------------------------------------------------- vtable */

/* The dispatcher, with every signal blocked: the application's signals go
 * to its own threads, and SIGPIPE from a pipe write stays pending on the
 * dispatcher, where it is consumed. */
static int start_dispatcher(procs *p)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->dispatcher, NULL, ex__procs_dispatcher_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        return EX_ESYS;
    }
    p->dispatcher_started = true;
    return 0;
}

static int procs_start(ex_executor *ex)
{
    procs *p = (procs *)ex;
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_fd < 0)
        return EX_ESYS;
    /* Asked here, once, so that every worker inherits the answer instead
     * of testing switch detection (four short sleeps) at each spawn. */
    if (!p->base.cfg.exact_cpu)
        (void)ex_cpu_switch_detection();
    /* The fork server is forked now, before this pool has a thread. */
    if (ex__procs_fs_start(p) != 0)
        return EX_ESYS;
    for (unsigned i = 0; i < p->base.workers; i++) {
        if (ex__procs_slot_spawn(p, &p->w[i]) != 0) {
            ex__procs_teardown(p);
            return EX_ESYS;
        }
        p->w[i].in_startup = true;
        p->starting++;
    }
    if (start_dispatcher(p) != 0) {
        int err = errno;
        ex__procs_teardown(p);
        errno = err;
        return EX_ESYS;
    }
    /* Every worker has sent READY or INIT_FAIL (or died) when this ends. */
    pthread_mutex_lock(&p->lock);
    while (!p->startup_done)
        pthread_cond_wait(&p->started, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* Under p->lock: 0 when f may be queued now, 1 to wait for room, or the
 * error to return. */
static int submit_admit(procs *p, const ex_future *f, bool force)
{
    /* A forced (chained) submission was accepted before the shutdown:
     * it runs as long as the dispatcher does. */
    if (force ? p->stopped || !p->dispatcher_started
              : atomic_load(&p->base.shut) || p->stopping)
        return EX_ESHUTDOWN;
    if (atomic_load(&p->base.broken))
        return EX_EBROKEN;
    if (f->in_len > p->max_payload)
        return EX_EINVAL;
    size_t cap = p->base.cfg.queue_capacity;
    /* Only the dispatcher makes room: a callback running on it that
     * waited for room would wait forever, so it overshoots instead. */
    if (force || cap == 0 || p->qlen < cap ||
        (p->dispatcher_started && pthread_equal(pthread_self(), p->dispatcher) &&
         p->base.cfg.on_full == EX_ON_FULL_BLOCK))
        return 0;
    if (p->base.cfg.on_full == EX_ON_FULL_REJECT)
        return EX_EFULL;
    return 1;
}

static int procs_submit(ex_executor *ex, ex_future *f, bool force)
{
    procs *p = (procs *)ex;
    if (p->in_child)
        return EX_EINVAL; /* a task of this pool: it holds only a copy */
    pthread_mutex_lock(&p->lock);
    /* A chained future is its user's already: a cancel may end it at any
     * time, turning its call fields (in_len, id) into its result's
     * (ex_internal.h).  So they are read and written under its lock,
     * nested in p->lock as in ex__procs_queue_begin; a forced submission
     * never waits for room. */
    if (force)
        ex__future_lock(f);
    int rc;
    if (force && ex_future_state(f) != EX_PENDING)
        rc = EX_ECANCELLED;
    else
        while ((rc = submit_admit(p, f, force)) == 1)
            pthread_cond_wait(&p->space, &p->lock);
    if (rc == 0)
        f->id = ++p->next_id;
    if (rc == 0 && !force) /* a chain was counted by ex_future_then */
        ex__count_submitted(&p->base);
    if (force)
        ex__future_unlock(f);
    if (rc != 0) {
        pthread_mutex_unlock(&p->lock);
        return rc;
    }
    f->next = NULL;
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
    p->qlen++;
    bool wake = !p->wake_pending;
    p->wake_pending = true;
    pthread_mutex_unlock(&p->lock);
    if (wake)
        ex__procs_wake(p);
    return 0;
}

/* Joins the dispatcher once, whoever asks first; later callers wait for the
 * first join to finish. */
static void dispatcher_join(procs *p)
{
    pthread_mutex_lock(&p->join_lock);
    if (p->dispatcher_started && !p->joined) {
        pthread_join(p->dispatcher, NULL);
        p->joined = true;
    }
    pthread_mutex_unlock(&p->join_lock);
}

/* shutdown(cancel_pending) returns once the tasks sent ahead to workers
 * and not begun are cancelled too: the dispatcher revokes the windows
 * (procs_window.c) and says so.  Asked from the dispatcher itself (a
 * callback), it cannot wait for its own next turn: the windows are
 * revoked right after the callback returns. */
static void revoke_wait(procs *p)
{
    if (!p->dispatcher_started || pthread_equal(pthread_self(), p->dispatcher))
        return;
    pthread_mutex_lock(&p->lock);
    while (!p->revoke_done && !p->stopped)
        pthread_cond_wait(&p->space, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static int procs_shutdown(ex_executor *ex, bool wait, bool cancel_pending)
{
    procs *p = (procs *)ex;
    ex_future *cancel = NULL;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->base.shut, true);
    p->stopping = true;
    if (cancel_pending) {
        p->cancel_all = true;
        cancel = p->head;
        p->head = p->tail = NULL;
        p->qlen = 0;
    }
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->lock);

    /* Wake first: the callbacks below may destroy nothing (reentry.c),
     * but they may take long, and the dispatcher can drain meanwhile. */
    if (p->wake_fd >= 0)
        ex__procs_wake(p);
    cancel_list(cancel);
    if (cancel_pending)
        revoke_wait(p);
    if (!wait)
        return 0;
    /* ex_shutdown never asks a wait from the dispatcher (reentry.c). */
    dispatcher_join(p);
    return 0;
}

static void procs_destroy(ex_executor *ex)
{
    procs *p = (procs *)ex;
    procs_shutdown(ex, true, false);
    /* Covers a start() that failed before the dispatcher existed. */
    ex__procs_teardown(p);
    procs_free(p);
}

/* The dispatcher runs callbacks; a worker process holds a copy of p
 * (in_child), and so would a child the application forked: getpid. */
static int procs_inside(ex_executor *ex)
{
    procs *p = (procs *)ex;
    if (p->in_child || getpid() != p->owner_pid)
        return EX__INSIDE_COPY;
    if (p->dispatcher_started && pthread_equal(pthread_self(), p->dispatcher))
        return EX__INSIDE_THREAD;
    return EX__OUTSIDE;
}

static pid_t procs_worker_pid(ex_executor *ex, unsigned index)
{
    procs *p = (procs *)ex;
    if (index >= p->base.workers)
        return 0;
    return atomic_load(&p->w[index].pid);
}

static const ex__run_counts *procs_run_counts(const ex_executor *ex, unsigned *n)
{
    *n = 1;
    return &((const procs *)ex)->counts;
}

/* Slots with a process: pid is set at spawn and cleared once it is
 * reaped (procs_slots.c). */
static unsigned procs_workers_alive(const ex_executor *ex)
{
    procs *p = (procs *)ex;
    unsigned n = 0;
    for (unsigned i = 0; i < p->base.workers; i++)
        n += atomic_load(&p->w[i].pid) != 0;
    return n;
}

const ex_vtable ex__procs_vtable = {
    .name = "procs",
    .start = procs_start,
    .submit = procs_submit,
    .shutdown = procs_shutdown,
    .destroy = procs_destroy,
    .worker_pid = procs_worker_pid,
    .inside = procs_inside,
    .run_counts = procs_run_counts,
    .workers_alive = procs_workers_alive,
};
