/*
 * procs_dispatch.c: the dispatcher thread of the process pool.  Each turn
 * it takes a batch from the queue (one task per idle worker) and starts
 * sending it, then polls: result pipes (frames in), task pipes with a
 * frame still to send (POLLOUT), pidfds (deaths), the wake-up eventfd,
 * the fork server's socket, and the nearest task deadline (timeouts).
 * The loop is split as CPython splits its process-pool manager loop:
 * take a batch (procs.c), dispatch it (run_batch), wait (poll_wait), and
 * handle what came (poll_handle, check_timeouts).
 *
 * Invariants:
 * - No deadlock between master and worker: the master's pipe ends are
 *   O_NONBLOCK and it never blocks on a write: it keeps a per-worker write
 *   cursor (w->iov) and waits for POLLOUT, and it polls every result pipe
 *   while it writes.  A worker reads its whole TASK before it writes its
 *   RESULT (procs_worker.c).  So a worker that is writing is always being
 *   read, and a worker that is reading is always being fed.
 * - Fairness: at most IO_BUDGET bytes move through one pipe before the
 *   dispatcher looks at the others (a 64 MiB transfer does not starve
 *   small tasks).
 * - SIGPIPE: the process-wide disposition is never touched.  The
 *   dispatcher runs with every signal blocked (the application's signals
 *   go to its own threads); a write to a dead worker's pipe fails with
 *   EPIPE and the thread-directed SIGPIPE it raised stays pending here
 *   until sigtimedwait consumes it.
 * - A poll entry names its slot's process generation: an event for a
 *   process the slot no longer holds is ignored.  On a worker's death the
 *   result pipe is read before its pidfd is believed, so a frame sent just
 *   before dying counts.
 * - Shutdown: the dispatcher leaves its loop once shutdown was asked, the
 *   queue is empty, no task is taken and no worker is busy; after a batch
 *   failed on a broken pool it always looks again (nothing else would wake
 *   it).  It then closes the workers' fds and stops the fork server.
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

/* ------------------------------------------------------ sending a task */

/* Writes as much of w's pending TASK frame as the pipe takes now, up to
 * IO_BUDGET.  Never blocks.  0, or EX_EWORKER if the worker is gone. */
static int send_some(procs_worker *w)
{
    struct iovec *iov = w->iov + w->iov_first;
    int cnt = w->iov_cnt;
    size_t done = 0;
    int rc = 0;
    while (cnt > 0 && done < IO_BUDGET) {
        ssize_t k = writev(w->task_fd, iov, cnt);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            if (errno == EPIPE)
                ex__procs_consume_sigpipe();
            rc = EX_EWORKER;
            break;
        }
        done += (size_t)k;
        ex__iov_consume(&iov, &cnt, (size_t)k);
    }
    w->iov_first = (int)(iov - w->iov);
    w->iov_cnt = cnt;
    return rc;
}

/* Sends f to the idle worker w.  f is RUNNING. */
static void dispatch(procs *p, procs_worker *w, ex_future *f)
{
    uint64_t now = ex_now_ns();
    ex__future_lock(f);
    f->stats.start_ns = now;
    f->stats.worker = (int)w->index;
    f->stats.worker_pid = atomic_load(&w->pid);
    ex__future_unlock(f);

    wire_header h;
    memset(&h, 0, sizeof h);
    h.type = WIRE_TASK;
    h.id = f->id;
    h.fn = (uint64_t)(uintptr_t)f->fn;
    h.len = f->in_len;
    ex__wire_header_encode(&h, w->hdr);
    w->iov[0].iov_base = w->hdr;
    w->iov[0].iov_len = WIRE_HEADER_SIZE;
    w->iov[1].iov_base = (void *)f->in;
    w->iov[1].iov_len = f->in_len;
    w->iov_first = 0;
    w->iov_cnt = 2;

    w->task = f;
    w->state = W_BUSY;
    w->deadline_ns = p->base.cfg.timeout_ns > 0
                         ? now + (uint64_t)p->base.cfg.timeout_ns : 0;
    p->inflight++;
    if (send_some(w) != 0)
        ex__procs_slot_lost(p, w, EX_EWORKER);
}

static procs_worker *idle_worker(procs *p)
{
    for (unsigned i = 0; i < p->base.workers; i++)
        if (p->w[i].state == W_IDLE)
            return &p->w[i];
    return NULL;
}

static unsigned count_idle(procs *p)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->base.workers; i++)
        n += p->w[i].state == W_IDLE;
    return n;
}

/* A future of a broken pool's batch: failed with EX_EBROKEN (ending now). */
static void fail_broken(ex_future *f)
{
    ex__future_finish(f, EX_EBROKEN, 0);
    ex_future_release(f);
}

/* Dispatches a batch to idle workers, or fails it when broken.  Returns
 * whether to look at the queue again before sleeping: a task was dropped
 * while a worker stays idle, or a broken batch was failed (its callbacks
 * may have queued more, and a shutdown may be waiting with no wake-up
 * left for the poll: that used to hang it). */
static bool run_batch(procs *p, ex_future *batch, bool broken)
{
    bool again = broken && batch;
    while (batch) {
        procs_worker *w = NULL;
        if (!broken && !(w = idle_worker(p))) {
            /* A dispatch failed and its worker is being replaced: the
             * rest goes back to the front, still PENDING. */
            ex__procs_queue_requeue(p, batch);
            break;
        }
        ex_future *f = batch;
        batch = f->next;
        f->next = NULL;
        if (!ex__procs_queue_begin(p, f)) {
            ex_future_release(f);
            again = true;
        } else if (broken) {
            fail_broken(f);
        } else {
            dispatch(p, w, f);
        }
    }
    return again;
}

/* ------------------------------------------------- receiving a result */

/* A RESULT for the task w holds: publish it. */
static void task_complete(procs *p, procs_worker *w)
{
    uint64_t now = ex_now_ns();
    ex_future *f = w->task;
    const wire_header *h = &w->reader.hdr;
    ex__procs_stats_end(f, now, h, &w->reader.stats);

    /* Hand the payload buffer to the future as is: no second copy. */
    f->out_data = w->reader.payload.data;
    f->out_len = w->reader.payload.len;
    w->reader.payload = (ex_buf){0};

    int err, code = 0;
    if (h->flags & WIRE_F_EXERR) {
        err = h->status < 0 ? h->status : EX_EWORKER;
    } else {
        err = h->status == 0 ? 0 : EX_ETASK;
        code = h->status;
    }
    w->task = NULL;
    w->state = W_IDLE;
    w->deadline_ns = 0;
    w->completed++;
    ex__future_finish(f, err, code);
    ex_future_release(f);
    p->inflight--;

    unsigned max = p->base.cfg.max_tasks_per_worker;
    if (max > 0 && w->completed >= max)
        ex__procs_slot_recycle(p, w, now);
}

/* A whole frame from w is in w->reader.  0, or EX_EWORKER (protocol). */
static int handle_frame(procs *p, procs_worker *w)
{
    const wire_header *h = &w->reader.hdr;
    int rc = 0;
    switch (h->type) {
    case WIRE_READY:
        if (w->state != W_STARTING)
            return EX_EWORKER;
        w->state = W_IDLE;
        ex__procs_startup_report(p, w);
        break;
    case WIRE_INIT_FAIL:
        if (w->state != W_STARTING)
            return EX_EWORKER;
        /* Not a respawn candidate: the slot has completed nothing. */
        ex__procs_slot_lost(p, w, EX_EBROKEN);
        return 0;
    case WIRE_RESULT:
        if (w->state != W_BUSY || w->iov_cnt > 0 || h->id != w->task->id)
            return EX_EWORKER;
        task_complete(p, w);
        break;
    default:
        rc = EX_EWORKER;
        break;
    }
    ex__wire_reader_reset(&w->reader);
    return rc;
}

/* One read(2) from w's result pipe into its frame reader: the bytes read
 * (or 0 at EOF, -1 with errno), and the reader's verdict in *rc. */
static ssize_t read_once(procs *p, procs_worker *w, int *rc)
{
    void *dst;
    size_t room = ex__wire_reader_direct(&w->reader, &dst);
    ssize_t k;
    *rc = 0;
    if (room > 0) {
        /* Inside a payload: read straight into its buffer. */
        k = read(w->result_fd, dst, room);
        if (k > 0)
            *rc = ex__wire_reader_advance(&w->reader, (size_t)k);
        return k;
    }
    k = read(w->result_fd, p->scratch, PROCS_SCRATCH_SIZE);
    size_t used = 0;
    if (k > 0)
        *rc = ex__wire_reader_feed(&w->reader, p->scratch, (size_t)k, &used);
    /* A worker sends one frame per request: bytes after it are a
     * protocol violation. */
    if (*rc == WIRE_FRAME && used < (size_t)k)
        *rc = WIRE_ELEN;
    return k;
}

int ex__procs_read(procs *p, procs_worker *w)
{
    size_t done = 0;
    while (done < IO_BUDGET) {
        int rc;
        ssize_t k = read_once(p, w, &rc);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return 0;
        if (k <= 0 || rc < 0) {
            ex__procs_slot_lost(p, w, EX_EWORKER);
            return -1;
        }
        done += (size_t)k;
        if (rc == WIRE_FRAME) {
            if (handle_frame(p, w) != 0) {
                ex__procs_slot_lost(p, w, EX_EWORKER);
                return -1;
            }
            return 1;
        }
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

/* Fills the poll set; returns its size and the nearest deadline of a busy
 * or exiting worker (0: none). */
static int poll_build(procs *p, uint64_t *deadline)
{
    int n = 0;
    n = poll_add(p, n, p->wake_fd, POLLIN, NULL, PK_WAKE);
    if (!p->fs_dead)
        n = poll_add(p, n, p->ctl_fd, POLLIN, NULL, PK_CTL);
    *deadline = 0;
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if (w->result_fd >= 0)
            n = poll_add(p, n, w->result_fd, POLLIN, w, PK_RESULT);
        if (w->state == W_BUSY && w->iov_cnt > 0)
            n = poll_add(p, n, w->task_fd, POLLOUT, w, PK_TASK);
        /* After the result pipe: a frame sent before death is read first. */
        if (w->pidfd >= 0)
            n = poll_add(p, n, w->pidfd, POLLIN, w, PK_DEATH);
        if ((w->state == W_BUSY || w->state == W_EXITING) &&
            w->deadline_ns && (*deadline == 0 || w->deadline_ns < *deadline))
            *deadline = w->deadline_ns;
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
        (void)ex__procs_read(p, w);
        break;
    case PK_DEATH:
        ex__procs_slot_died(p, w);
        break;
    case PK_TASK:
        if (w->state == W_BUSY && send_some(w) != 0)
            ex__procs_slot_lost(p, w, EX_EWORKER);
        break;
    }
}

/* Timeouts: kill the worker, fail only its task (a recycled worker past
 * its grace holds none). */
static void check_timeouts(procs *p)
{
    uint64_t now = ex_now_ns();
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if ((w->state == W_BUSY || w->state == W_EXITING) &&
            w->deadline_ns && now >= w->deadline_ns)
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
        atomic_store(&w->pid, 0);
        w->state = W_EMPTY;
    }
    ex__procs_fs_stop(p);
}

void *ex__procs_dispatcher_main(void *arg)
{
    procs *p = arg;
    for (;;) {
        bool broken = atomic_load(&p->base.broken), stop;
        ex_future *batch = ex__procs_queue_take(p, count_idle(p), broken,
                                                &stop);
        if (stop)
            break;
        if (!run_batch(p, batch, broken))
            poll_once(p);
    }
    ex__procs_teardown(p);
    return NULL;
}
