/*
 * procs_dispatch.c: the dispatcher thread of the process pool.  Each turn
 * it takes from the queue what the workers' windows have room for, adds
 * each task to the window of the least loaded worker and writes every
 * window's new frames in one writev, then polls: result pipes (frames in,
 * read in batches), task pipes with a frame still to send (POLLOUT),
 * pidfds (deaths), the wake-up eventfd, the fork server's socket, and the
 * nearest task deadline (timeouts).  The loop is split as CPython splits
 * its process-pool manager loop: take a batch (procs.c), dispatch it
 * (run_batch), wait (poll_wait), and handle what came (poll_handle,
 * check_timeouts).  What a window is and why it stays exact under
 * crashes, timeouts, recycling and cancellation: procs_window.c.
 *
 * Invariants:
 * - No deadlock between master and worker: the master's pipe ends are
 *   O_NONBLOCK and it never blocks on a write: it keeps per-window write
 *   cursors and waits for POLLOUT, and it polls every result pipe while it
 *   writes.  A worker reads a whole TASK frame before it runs it and writes
 *   its RESULT whole before it reads on (procs_worker.c).  So a worker that
 *   is writing is always being read, and a worker that is reading is
 *   always being fed.
 * - Fairness: at most IO_BUDGET bytes move through one pipe before the
 *   dispatcher looks at the others (a 64 MiB transfer does not starve
 *   small tasks).
 * - SIGPIPE: the process-wide disposition is never touched.  The
 *   dispatcher runs with every signal blocked (the application's signals
 *   go to its own threads); a write to a dead worker's pipe fails with
 *   EPIPE and the thread-directed SIGPIPE it raised stays pending here
 *   until sigtimedwait consumes it.
 * - A poll entry names its slot's process generation: an event for a
 *   process the slot no longer holds is ignored.  A lost worker's result
 *   pipe is read after it was reaped and before its window is settled, so
 *   a frame sent just before dying counts.
 * - Shutdown: the dispatcher leaves its loop once shutdown was asked, the
 *   queue is empty, no task is taken and every window is empty; after a
 *   batch failed on a broken pool it always looks again (nothing else
 *   would wake it).  With cancel_pending it first revokes every window.
 *   It then closes the workers' fds and stops the fork server.
 * - ex__future_finish and cancels run callbacks, which may submit to this
 *   executor: they are never called with p->lock held.
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes the dispatcher moves through one pipe before it looks at the
 * others again (fairness between a 64 MiB transfer and small tasks). */
#define IO_BUDGET ((size_t)4 << 20)

/* What a poll entry watches. */
enum { PK_WAKE, PK_CTL, PK_RESULT, PK_TASK, PK_DEATH };

void ex__procs_consume_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    (void)sigtimedwait(&set, NULL, &zero);
}

/* ------------------------------------------------------ handing out */

/* The worker with room for an input of len bytes whose window is the
 * shortest (the lowest index among equals), or NULL. */
static procs_worker *pick_worker(procs *p, size_t len)
{
    procs_worker *best = NULL;
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if (ex__procs_room(p, w) > 0 && ex__procs_shm_fits(w, len) &&
            (!best || w->win_len < best->win_len))
            best = w;
    }
    return best;
}

/* f's input length, if f is still PENDING: a queued future is its user's
 * too, and a cancel turns its call fields into its result's
 * (ex_internal.h), so they are read under its lock (nested in no other
 * here).  false: f is final already (cancelled in the queue: run_batch
 * drops it). */
static bool pending_len(ex_future *f, size_t *len)
{
    ex__future_lock(f);
    bool pending = ex_future_state(f) == EX_PENDING;
    if (pending)
        *len = f->in_len;
    ex__future_unlock(f);
    return pending;
}

static unsigned total_room(procs *p)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->base.workers; i++)
        n += ex__procs_room(p, &p->w[i]);
    return n;
}

/* A future of a broken pool's batch: failed with EX_EBROKEN (ending now). */
static void fail_broken(procs *p, ex_future *f)
{
    ex__count(&p->counts, &p->counts.failed); /* begun by queue_begin */
    ex__future_finish(f, EX_EBROKEN, 0);
    ex_future_release(f);
}

/* Writes every window's unwritten frames: one writev per worker. */
static void send_all(procs *p)
{
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if (w->win_sent < w->win_len && !w->dying &&
            ex__procs_window_send(w) != 0)
            ex__procs_slot_lost(p, w, EX_EWORKER);
    }
}

/* Adds a batch to the workers' windows and sends it, or fails it when
 * broken.  Returns whether to look at the queue again before sleeping: a
 * task was dropped while a window keeps room, or a broken batch was
 * failed (its callbacks may have queued more, and a shutdown may be
 * waiting with no wake-up left for the poll: that used to hang it). */
static bool run_batch(procs *p, ex_future *batch, bool broken)
{
    bool again = broken && batch;
    while (batch) {
        procs_worker *w = NULL;
        size_t len = 0;
        bool pending = pending_len(batch, &len);
        if (pending && !broken && !(w = pick_worker(p, len))) {
            /* A window lost its worker meanwhile, or this input waits
             * for room in a region: the rest goes back to the front,
             * still PENDING (or cancelled: then look again, the
             * dispatcher may be done). */
            again |= ex__procs_queue_requeue(p, batch);
            break;
        }
        ex_future *f = batch;
        batch = f->next;
        f->next = NULL;
        if (!pending || !ex__procs_queue_begin(p, f)) {
            ex_future_release(f); /* cancelled in the queue */
            again = true;
        } else if (broken) {
            fail_broken(p, f);
        } else {
            ex__procs_window_add(p, w, f);
        }
    }
    send_all(p);
    return again;
}

/* shutdown(cancel_pending): every window gives back what its worker has
 * not begun, and no worker is replaced any more. */
static void revoke_all(procs *p)
{
    p->revoked_all = true;
    for (unsigned i = 0; i < p->base.workers; i++)
        if (!p->w[i].dying)
            ex__procs_window_revoke(p, &p->w[i]);
    pthread_mutex_lock(&p->lock);
    p->revoke_done = true;
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->lock);
}

/* ------------------------------------------------- receiving results */

/* A whole frame from w is in w->reader: 0, EX_EWORKER (protocol), or 1
 * when w was lost for it (INIT_FAIL). */
static int frame_done(procs *p, procs_worker *w)
{
    const wire_header *h = &w->reader.hdr;
    int rc = 0;
    switch (h->type) {
    case WIRE_READY:
        if (w->state != W_STARTING)
            return EX_EWORKER;
        w->state = W_READY;
        ex__procs_shm_ready(w, h->flags & WIRE_F_SHM);
        ex__procs_startup_report(p, w);
        break;
    case WIRE_INIT_FAIL:
        if (w->state != W_STARTING)
            return EX_EWORKER;
        if (w->dying)
            break;
        /* Not a respawn candidate: the slot has completed nothing. */
        ex__wire_reader_reset(&w->reader);
        ex__procs_slot_lost(p, w, EX_EBROKEN);
        return 1;
    case WIRE_RESULT:
        rc = ex__procs_window_check(w, h);
        if (rc == 0)
            rc = ex__procs_window_complete(p, w);
        break;
    default:
        return EX_EWORKER;
    }
    ex__wire_reader_reset(&w->reader);
    return rc;
}

/* Feeds n bytes of p->scratch to w's reader, handling every whole frame
 * among them (results come in batches).  0, -1 (a bad frame), or 1: w was
 * lost meanwhile (the rest is its garbage). */
static int feed_frames(procs *p, procs_worker *w, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t used = 0;
        int rc = ex__wire_reader_feed(&w->reader, p->scratch + off, n - off,
                                      &used);
        off += used;
        if (rc == WIRE_MORE)
            return 0;
        if (rc < 0)
            return -1;
        rc = frame_done(p, w);
        if (rc != 0)
            return rc == 1 ? 1 : -1;
    }
    return 0;
}

/* One read(2) from w's result pipe and the frames it completes.  The
 * bytes read, 0 at EOF, -1 with errno, -2 for a bad frame, -3 when w was
 * lost meanwhile. */
static ssize_t read_chunk(procs *p, procs_worker *w)
{
    void *dst;
    size_t room = ex__wire_reader_direct(&w->reader, &dst);
    if (room > 0) {
        /* Inside a payload: read straight into its buffer.  (Huge pages
         * asked for as it grows made a 64 MiB result 3 times slower:
         * realloc moves it by mremap, and the pages split.) */
        ssize_t k = read(w->result_fd, dst, room);
        if (k <= 0)
            return k;
        int rc = ex__wire_reader_advance(&w->reader, (size_t)k);
        if (rc == WIRE_FRAME)
            rc = frame_done(p, w);
        return rc == 1 ? -3 : rc < 0 || rc == EX_EWORKER ? -2 : k;
    }
    ssize_t k = read(w->result_fd, p->scratch, PROCS_SCRATCH_SIZE);
    if (k <= 0)
        return k;
    int rc = feed_frames(p, w, (size_t)k);
    return rc == 1 ? -3 : rc < 0 ? -2 : k;
}

int ex__procs_read_some(procs *p, procs_worker *w, size_t budget)
{
    size_t done = 0;
    while (done < budget) {
        ssize_t k = read_chunk(p, w);
        if (k == -3)
            return 0;
        if (k == -1 && errno == EINTR)
            continue;
        if (k == -1 && errno == EAGAIN)
            return 0;
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 1;
}

/* ------------------------------------------------------------ polling */

static int poll_add(procs *p, int n, int fd, short events, procs_worker *w,
                    int kind)
{
    p->pfd[n].fd = fd;
    p->pfd[n].events = events;
    p->pfd[n].revents = 0;
    p->owner[n].w = w;
    p->owner[n].gen = w ? w->gen : 0;
    p->owner[n].kind = kind;
    return n + 1;
}

/* When w must be looked at again (0: only on I/O): its running task's
 * deadline, a later look at its window, or a recycled worker's grace. */
static uint64_t worker_deadline(const procs *p, const procs_worker *w,
                                uint64_t now)
{
    bool kill;
    uint64_t d = ex__procs_window_deadline(p, w, now, &kill);
    if (w->state == W_EXITING && w->win_len == 0 && w->deadline_ns &&
        (d == 0 || w->deadline_ns < d))
        d = w->deadline_ns;
    return d;
}

/* Fills the poll set; returns its size and the nearest deadline (0:
 * none). */
static int poll_build(procs *p, uint64_t *deadline)
{
    int n = 0;
    uint64_t now = ex_now_ns();
    n = poll_add(p, n, p->wake_fd, POLLIN, NULL, PK_WAKE);
    if (!p->fs_dead)
        n = poll_add(p, n, p->ctl_fd, POLLIN, NULL, PK_CTL);
    *deadline = 0;
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if (w->result_fd >= 0)
            n = poll_add(p, n, w->result_fd, POLLIN, w, PK_RESULT);
        if (w->task_fd >= 0 && w->win_sent < w->win_len)
            n = poll_add(p, n, w->task_fd, POLLOUT, w, PK_TASK);
        /* After the result pipe: a frame sent before death is read first. */
        if (w->pidfd >= 0)
            n = poll_add(p, n, w->pidfd, POLLIN, w, PK_DEATH);
        uint64_t d = worker_deadline(p, w, now);
        if (d && (*deadline == 0 || d < *deadline))
            *deadline = d;
    }
    return n;
}

/* ppoll over n entries until I/O or the deadline (0: none). */
static int poll_wait(procs *p, int n, uint64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline) {
        uint64_t now = ex_now_ns();
        uint64_t left = deadline > now ? deadline - now : 0;
        ts.tv_sec = (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        tsp = &ts;
    }
    int r = ppoll(p->pfd, (nfds_t)n, tsp, NULL);
    if (r < 0 && errno != EINTR) {
        /* Cannot happen with valid arguments; avoid a hot loop anyway. */
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return r;
}

/* Handles poll entry i, which has events. */
static void poll_handle(procs *p, int i)
{
    procs_worker *w = p->owner[i].w;
    if (w && w->gen != p->owner[i].gen)
        return; /* the slot changed process meanwhile */
    switch (p->owner[i].kind) {
    case PK_WAKE: {
        uint64_t v;
        while (read(p->wake_fd, &v, sizeof v) < 0 && errno == EINTR)
            ;
        break;
    }
    case PK_CTL:
        /* The fork server never speaks unasked: it died.  Its workers
         * die with it (PDEATHSIG); no more spawns are possible. */
        ex__procs_fs_lost(p);
        break;
    case PK_RESULT:
        if (ex__procs_read_some(p, w, IO_BUDGET) < 0 && w->gen == p->owner[i].gen)
            ex__procs_slot_lost(p, w, EX_EWORKER);
        break;
    case PK_DEATH:
        /* What it wrote before dying is read first (ex__procs_slot_lost),
         * even when a grandchild its task forked holds the pipe open so
         * that no EOF will ever come. */
        ex__procs_slot_lost(p, w, EX_EWORKER);
        break;
    case PK_TASK:
        if (!w->dying && ex__procs_window_send(w) != 0)
            ex__procs_slot_lost(p, w, EX_EWORKER);
        break;
    }
}

/* Whether w's running task is past its deadline.  Its result may be in
 * the pipe already: that is read first, and the deadline looked at again
 * (the task may have finished, and another begun). */
static bool timed_out(procs *p, procs_worker *w, uint64_t now)
{
    bool kill;
    uint64_t d = ex__procs_window_deadline(p, w, now, &kill);
    if (!kill || now < d)
        return false;
    unsigned gen = w->gen;
    if (ex__procs_read_some(p, w, SIZE_MAX) < 0 && w->gen == gen) {
        ex__procs_slot_lost(p, w, EX_EWORKER);
        return false;
    }
    if (w->gen != gen)
        return false;
    d = ex__procs_window_deadline(p, w, now, &kill);
    return kill && now >= d;
}

/* Timeouts: kill the worker, fail only its running task (those behind it
 * in its window run again); a recycled worker past its grace holds none. */
static void check_timeouts(procs *p)
{
    uint64_t now = ex_now_ns();
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if (w->dying)
            continue;
        if (timed_out(p, w, now))
            ex__procs_slot_lost(p, w, EX_ETIMEDOUT);
        else if (w->state == W_EXITING && w->win_len == 0 && w->deadline_ns &&
                 now >= w->deadline_ns)
            ex__procs_slot_lost(p, w, EX_ETIMEDOUT);
    }
}

/* Waits for I/O or the nearest task deadline, and handles what came. */
static void poll_once(procs *p)
{
    uint64_t deadline;
    int n = poll_build(p, &deadline);
    int r = poll_wait(p, n, deadline);
    for (int i = 0; r > 0 && i < n; i++)
        if (p->pfd[i].revents)
            poll_handle(p, i);
    check_timeouts(p);
}

/* ----------------------------------------------------------- the loop */

void ex__procs_teardown(procs *p)
{
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        ex__close(&w->task_fd);
        ex__close(&w->result_fd);
        ex__close(&w->pidfd);
        ex__procs_shm_detach(w);
        atomic_store(&w->pid, 0);
        w->state = W_EMPTY;
    }
    ex__procs_fs_stop(p);
}

void *ex__procs_dispatcher_main(void *arg)
{
    procs *p = arg;
    for (;;) {
        bool broken = atomic_load(&p->base.broken), stop, cancel_all;
        ex_future *batch = ex__procs_queue_take(p, total_room(p), broken,
                                                &stop, &cancel_all);
        if (stop)
            break;
        bool revoking = cancel_all && !p->revoked_all;
        if (revoking)
            revoke_all(p); /* then look again: the windows may be empty */
        if (!run_batch(p, batch, broken) && !revoking)
            poll_once(p);
    }
    ex__procs_teardown(p);
    return NULL;
}
