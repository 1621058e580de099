/*
 * procs_slots.c: the life of a worker slot of the process pool, run by the
 * dispatcher thread (and by start() for the first workers): a process is
 * spawned into the slot, lost (death, kill, timeout, garbage on its pipe)
 * or recycled, and replaced.
 *
 * Invariants:
 * - A lost worker fails only the task it held, with EX_EWORKER
 *   (EX_ETIMEDOUT past cfg.timeout_ns), after what it wrote before dying
 *   was read (a RESULT or INIT_FAIL already in the pipe counts).
 * - A task it provably never started (its frame not fully written, or
 *   bytes of it unread in the task pipe: a worker reads the whole frame
 *   before it runs anything) goes back to PENDING at the front of the
 *   queue instead, REDISPATCH_MAX times at most.
 * - Rule against respawn loops: a worker lost holding no started task
 *   before completing any (worker_start, initializer, INIT_FAIL, killed
 *   idle) breaks the executor instead of being replaced: queued futures
 *   then fail with EX_EBROKEN.
 * - The replacement is counted, or the executor marked broken, before the
 *   task fails or start() returns, so whoever sees either also sees that.
 * - No pid reuse: a slot's pid is unreaped until the fork server is asked
 *   to reap it, after the SIGKILL (procs_forkserver.c).  A recycled worker
 *   gets an EXIT frame, never just EOF: a child the application forked may
 *   hold a copy of the task pipe.
 * - Futures: the executor's reference travels queue -> slot (w->task) and
 *   is released exactly once, after ex__future_finish or a cancel; never
 *   with p->lock held (callbacks may submit to this executor).
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* A recycled worker gets this long to exit on its own before SIGKILL (a
 * task may have left a grandchild holding its result pipe open). */
#define EXIT_GRACE_NS (1000000000ull)
/* A task whose worker died before reading it is dispatched again at most
 * this many times (a task whose input itself gets workers killed, e.g. by
 * the OOM killer, must not loop forever). */
#define REDISPATCH_MAX 3u

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
                         const wire_stats *st)
{
    ex_task_stats s = {.start_ns = f->stats.start_ns, .end_ns = now,
                       .worker = f->stats.worker,
                       .worker_pid = f->stats.worker_pid, .cpu = -1};
    if (st) {
        s.flags = EX_STATS_CPU;
        if (h->flags & WIRE_F_CPU_OVER_WALL)
            s.flags |= EX_STATS_CPU_OVER_WALL;
        s.cpu_ns = st->cpu_ns;
        s.nvcsw = st->nvcsw;
        s.nivcsw = st->nivcsw;
        s.cpu = st->cpu;
        s.worker_pid = st->pid;
        s.ipc_send_ns = st->input_done_ns > s.start_ns ? st->input_done_ns - s.start_ns : 0;
        s.ipc_recv_ns = now > st->output_start_ns ? now - st->output_start_ns : 0;
    }
    /* The task is over (no redispatch follows): its call gives way to
     * its result. */
    ex__future_record(f, &s, NULL);
}

/* A slot ready for a new process: no frame half-sent or half-read. */
static void slot_clear(procs_worker *w)
{
    w->iov_cnt = 0;
    w->deadline_ns = 0;
    ex__wire_reader_reset(&w->reader);
}

/* Kills (if alive) and reaps the slot's process and closes its fds.
 * Blocks briefly: the fork server waits for the killed process. */
static void slot_retire(procs *p, procs_worker *w)
{
    ex__close(&w->task_fd);
    ex__close(&w->result_fd);
    ex__close(&w->pidfd);
    ex__procs_fs_kill(p, atomic_load(&w->pid));
    /* With the fork server gone its workers were SIGKILLed by their
     * PDEATHSIG and belong to init, which may reap them at any time: then
     * the pid must not be touched at all. */
    atomic_store(&w->pid, 0);
    w->state = W_EMPTY;
    w->gen++;
    slot_clear(w);
}

int ex__procs_slot_spawn(procs *p, procs_worker *w)
{
    pid_t pid = 0;
    int fds[2] = {-1, -1};
    int rc = ex__procs_fs_spawn(p, w->index, &pid, fds);
    if (rc != 0)
        return rc;
    w->task_fd = fds[0];
    w->result_fd = fds[1];
    atomic_store(&w->pid, pid);
    /* The pid is unreaped until we ask (no-reuse invariant), so this
     * pidfd is this worker's.  Without one (no kernel support, or under
     * valgrind), death shows as EOF only: asked once per pool. */
    if (!p->no_pidfd && (w->pidfd = ex__pidfd_open(pid)) < 0 &&
        errno == ENOSYS)
        p->no_pidfd = true;
    w->gen++;
    if (ex__set_nonblock(w->task_fd) != 0 ||
        ex__set_nonblock(w->result_fd) != 0) {
        slot_retire(p, w);
        return EX_ESYS;
    }
    w->state = W_STARTING;
    w->completed = 0;
    w->task = NULL;
    slot_clear(w);
    return 0;
}

static void slot_respawn(procs *p, procs_worker *w)
{
    if (atomic_load(&p->base.broken))
        return;
    if (ex__procs_slot_spawn(p, w) != 0) {
        /* An executor that cannot keep its workers is broken. */
        ex__procs_set_broken(p);
        return;
    }
    atomic_fetch_add(&p->base.replaced, 1);
}

/* Whether w's task provably never started: a worker reads the whole TASK
 * frame before it runs anything, so a frame not fully written yet, or
 * bytes of it still unread in the task pipe (FIONREAD works on either end
 * of a pipe), mean it never ran.  Asked before the pipe is closed. */
static bool task_never_started(const procs_worker *w)
{
    if (w->iov_cnt > 0)
        return true;
    int unread = 0;
    return w->task_fd >= 0 && ioctl(w->task_fd, FIONREAD, &unread) == 0 &&
           unread > 0;
}

/* f's worker died before reading it: f goes back to PENDING at the front
 * of the queue (or is cancelled, if shutdown(cancel_pending) came). */
static void task_redispatch(procs *p, ex_future *f)
{
    ex__future_lock(f);
    f->redispatched++;
    f->stats.start_ns = 0;
    f->stats.worker = -1;
    f->stats.worker_pid = 0;
    ex__future_unlock(f);
    ex__future_unbegin(f);
    f->next = NULL;
    ex__procs_queue_requeue(p, f);
}

/* The task a lost worker held: run again, or failed with err. */
static void task_lost(procs *p, ex_future *f, bool again, int err)
{
    p->inflight--;
    if (again) {
        task_redispatch(p, f);
        return;
    }
    ex__procs_stats_end(f, ex_now_ns(), NULL, NULL);
    ex__future_finish(f, err, 0);
    ex_future_release(f);
}

void ex__procs_slot_lost(procs *p, procs_worker *w, int err)
{
    ex_future *f = w->task;
    bool recycled = w->state == W_EXITING;
    bool again = f && f->redispatched < REDISPATCH_MAX && task_never_started(w);
    bool blameless = (f == NULL || again) && w->completed == 0 && !recycled;
    bool in_startup = w->in_startup;
    w->task = NULL;
    w->in_startup = false;
    slot_retire(p, w);
    /* Replace (or break) before failing the task or ending start(), so
     * that whoever sees either also sees the replacement counted or the
     * executor broken. */
    if (blameless)
        ex__procs_set_broken(p);
    else
        slot_respawn(p, w);
    if (in_startup) {
        w->in_startup = true;
        ex__procs_startup_report(p, w);
    }
    if (f)
        task_lost(p, f, again, err);
}

void ex__procs_slot_died(procs *p, procs_worker *w)
{
    /* What it wrote before dying is still in the result pipe (a RESULT,
     * an INIT_FAIL): read that first.  Then it is lost, even when a
     * grandchild its task forked holds the pipe open so that no EOF will
     * ever come. */
    unsigned gen = w->gen;
    while (w->gen == gen && w->result_fd >= 0 && ex__procs_read(p, w) > 0)
        ;
    if (w->gen == gen)
        ex__procs_slot_lost(p, w, EX_EWORKER);
}

/* The EXIT frame, then our end of the task pipe closed.  The frame, not
 * EOF, is what the worker obeys: a child the application forked may hold
 * a copy of our end, and EOF would wait for it.  The pipe is empty (the
 * worker read its whole task before it answered), so the 40 bytes go in
 * at once, or the worker is gone; either way its pidfd (or EOF) brings it
 * to ex__procs_slot_lost as W_EXITING, or the grace deadline does. */
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
