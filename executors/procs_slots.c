/*
 * procs_slots.c: the life of a worker slot of the process pool, run by the
 * dispatcher thread (and by start() for the first workers): a process is
 * spawned into the slot, lost (death, kill, timeout, garbage on its pipe)
 * or recycled, and replaced.
 *
 * Invariants:
 * - A lost process is killed and reaped first, then what it wrote is read
 *   (a RESULT or INIT_FAIL already in the pipe counts), and only then is
 *   its window settled from the board, which no longer moves: the task it
 *   was running fails with EX_EWORKER (EX_ETIMEDOUT past cfg.timeout_ns),
 *   and the tasks it never began go back to PENDING at the front of the
 *   queue (procs_window.c).
 * - Rule against respawn loops: a process lost before completing any task
 *   and without failing one it had begun (worker_start, initializer,
 *   INIT_FAIL, killed idle) breaks the executor instead of being replaced:
 *   queued futures then fail with EX_EBROKEN.
 * - The replacement is counted, or the executor marked broken, before any
 *   task fails or start() returns, so whoever sees either also sees that.
 * - No pid reuse: a slot's pid is unreaped until the fork server is asked
 *   to reap it, after the SIGKILL (procs_forkserver.c).  A recycled worker
 *   gets an EXIT frame, never just EOF: a child the application forked may
 *   hold a copy of the task pipe.
 * - A new process starts with a clean board and an empty window; after
 *   shutdown(cancel_pending) (revoked_all) no process is replaced.
 * - Futures: the executor's reference travels queue -> window -> released
 *   exactly once, after ex__future_finish or a cancel; never with p->lock
 *   held (callbacks may submit to this executor).
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* A recycled worker gets this long to exit on its own before SIGKILL (a
 * task may have left a grandchild holding its result pipe open). */
#define EXIT_GRACE_NS (1000000000ull)

void ex__procs_startup_report(procs *p, procs_worker *w)
{
    if (!w->in_startup)
        return;
    w->in_startup = false;
    if (--p->starting == 0) {
        pthread_mutex_lock(&p->lock);
        p->startup_done = true;
        pthread_cond_broadcast(&p->started);
        pthread_mutex_unlock(&p->lock);
    }
}

void ex__procs_stats_end(ex_future *f, uint64_t now, const wire_header *h,
                         const wire_stats *st, uint64_t queued_ns, ex_buf *out)
{
    ex_task_stats s = {.start_ns = f->stats.start_ns, .end_ns = now,
                       .worker = f->stats.worker,
                       .worker_pid = f->stats.worker_pid, .cpu = -1};
    if (st) {
        s.flags = EX_STATS_CPU;
        if (h->flags & WIRE_F_CPU_OVER_WALL)
            s.flags |= EX_STATS_CPU_OVER_WALL;
        if (h->flags & WIRE_F_CPU_UNDER_ZERO)
            s.flags |= EX_STATS_CPU_UNDER_ZERO;
        /* The worker's own start: a task waiting in a window has not
         * begun. */
        if (st->start_ns >= f->stats.submit_ns && st->start_ns <= now)
            s.start_ns = st->start_ns;
        s.cpu_ns = st->cpu_ns;
        s.nvcsw = st->nvcsw;
        s.nivcsw = st->nivcsw;
        s.cpu = st->cpu;
        s.worker_pid = st->pid;
        /* Sending: from when its frame was queued, or the worker turned
         * to it after the task before, whichever came last, to its input
         * read. */
        uint64_t from = queued_ns > st->read_begin_ns ? queued_ns : st->read_begin_ns;
        s.ipc_send_ns = st->input_done_ns > from ? st->input_done_ns - from : 0;
        s.ipc_recv_ns = now > st->output_start_ns ? now - st->output_start_ns : 0;
    }
    /* The task is over (no redispatch follows): its call gives way to
     * its result.  No lock: the dispatcher owns the RUNNING future, and
     * its final state (stored with release) publishes the result. */
    ex__future_record(f, &s, out);
}

/* A slot ready for a new process: an empty window, a clean board, no
 * frame half-read. */
static void slot_clear(procs_worker *w)
{
    w->deadline_ns = 0;
    w->win_head = w->win_len = w->win_sent = 0;
    w->completed = w->assigned = 0;
    w->next_seq = 1;
    w->revoked = w->dying = w->task_pipe_big = false;
    atomic_store(&w->board->cursor, 0);
    atomic_store(&w->board->begun_ns[0], 0);
    atomic_store(&w->board->begun_ns[1], 0);
    atomic_store(&w->board->out_done, 0);
    atomic_store(&w->board->shm_mapped, 0);
    ex__wire_reader_reset(&w->reader);
}

/* Closes the slot's fds and forgets its (reaped, or no longer ours)
 * process. */
static void slot_retire(procs_worker *w)
{
    ex__close(&w->task_fd);
    ex__close(&w->result_fd);
    ex__close(&w->pidfd);
    ex__procs_shm_detach(w);
    atomic_store(&w->pid, 0);
    w->state = W_EMPTY;
    w->gen++;
}

/* Kills and reaps the slot's process (its fds stay open to be read).
 * With the fork server gone its workers were SIGKILLed by their PDEATHSIG
 * and belong to init, which may reap them at any time: the pid must not
 * be touched then, so the pidfd alone says when it is gone.  Blocks
 * briefly. */
static void slot_kill(procs *p, procs_worker *w)
{
    pid_t pid = atomic_load(&w->pid);
    if (!p->fs_dead) {
        ex__procs_fs_kill(p, pid);
        if (!p->fs_dead)
            return;
    }
    if (w->pidfd >= 0) {
        struct pollfd pf = {.fd = w->pidfd, .events = POLLIN};
        while (poll(&pf, 1, 1000) < 0 && errno == EINTR)
            ;
    }
}

int ex__procs_slot_spawn(procs *p, procs_worker *w)
{
    pid_t pid = 0;
    int fds[FS_NFDS] = {-1, -1, -1};
    slot_clear(w); /* the board too, before the new process can use it */
    int rc = ex__procs_fs_spawn(p, w->index, &pid, fds);
    if (rc != 0)
        return rc;
    w->task_fd = fds[FS_TASK_FD];
    w->result_fd = fds[FS_RESULT_FD];
    atomic_store(&w->pid, pid);
    /* The pid is unreaped until we ask (no-reuse invariant), so this
     * pidfd is this worker's.  Without one (no kernel support, or under
     * valgrind), death shows as EOF only: asked once per pool. */
    if (!p->no_pidfd && (w->pidfd = ex__pidfd_open(pid)) < 0 &&
        errno == ENOSYS)
        p->no_pidfd = true;
    w->gen++;
    w->state = W_STARTING;
    /* Without its region the worker uses the pipes alone. */
    if (fds[FS_SHM_FD] >= 0 && ex__procs_shm_attach(p, w, fds[FS_SHM_FD]) != 0)
        ex__close(&fds[FS_SHM_FD]);
    if (ex__set_nonblock(w->task_fd) != 0 ||
        ex__set_nonblock(w->result_fd) != 0) {
        slot_kill(p, w);
        slot_retire(w);
        return EX_ESYS;
    }
    return 0;
}

static void slot_respawn(procs *p, procs_worker *w)
{
    if (atomic_load(&p->base.broken) || p->revoked_all)
        return;
    if (ex__procs_slot_spawn(p, w) != 0) {
        /* An executor that cannot keep its workers is broken. */
        ex__procs_set_broken(p);
        return;
    }
    atomic_fetch_add(&p->base.replaced, 1);
}

/* Reads what a reaped process wrote before it died. */
static void slot_drain(procs *p, procs_worker *w)
{
    if (w->result_fd < 0)
        return;
    while (ex__procs_read_some(p, w, SIZE_MAX) > 0)
        ;
}

void ex__procs_slot_lost(procs *p, procs_worker *w, int err)
{
    if (w->dying)
        return; /* already being lost (a read inside the loss) */
    w->dying = true;
    bool exiting = w->state == W_EXITING;
    slot_kill(p, w);
    slot_drain(p, w);
    ex_future *began, *never;
    ex__procs_window_take(p, w, &began, &never);
    bool blameless = !began && w->completed == 0 && !exiting;
    bool in_startup = w->in_startup;
    w->in_startup = false;
    slot_retire(w);
    /* Replace (or break) before failing a task or ending start(), so that
     * whoever sees either also sees the replacement counted or the
     * executor broken. */
    if (blameless)
        ex__procs_set_broken(p);
    else
        slot_respawn(p, w);
    if (in_startup) {
        w->in_startup = true;
        ex__procs_startup_report(p, w);
    }
    ex__procs_window_settle(p, began, never, err);
}

/* The EXIT frame, then our end of the task pipe closed.  The frame, not
 * EOF, is what the worker obeys: a child the application forked may hold
 * a copy of our end, and EOF would wait for it.  The pipe is empty (the
 * worker read every frame of its window before it answered the last), so
 * the header goes in at once, or the worker is gone; either way its pidfd
 * (or EOF) brings it to ex__procs_slot_lost as W_EXITING, or the grace
 * deadline does. */
void ex__procs_slot_recycle(procs *p, procs_worker *w, uint64_t now)
{
    (void)p;
    wire_header h;
    memset(&h, 0, sizeof h);
    h.type = WIRE_EXIT;
    unsigned char hdr[WIRE_HEADER_SIZE];
    ex__wire_header_encode(&h, hdr);
    ssize_t k;
    while ((k = write(w->task_fd, hdr, sizeof hdr)) < 0 && errno == EINTR)
        ;
    if (k < 0 && errno == EPIPE)
        ex__procs_consume_sigpipe();
    ex__close(&w->task_fd);
    w->state = W_EXITING;
    w->deadline_ns = now + EXIT_GRACE_NS;
}
