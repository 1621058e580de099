/*
 * procs_window.c: a worker's window, the tasks the dispatcher has sent
 * ahead to one worker process and whose results it has not read yet (at
 * most cfg.window of them), so that a worker finds its next task waiting
 * when it ends one instead of idling for a round trip.  Run by the
 * dispatcher thread only.
 *
 * The window protocol and its invariants:
 * - Order: frames are written in window order; a worker runs them in that
 *   order, one at a time, and writes each RESULT whole before it reads on
 *   (procs_worker.c).  So results come back in window order, and only the
 *   oldest task of the window can be answered next (anything else is a
 *   protocol violation: the worker is lost).
 * - Exact without a message per task (the board, procs_internal.h): the
 *   worker commits to task seq by swapping the board's cursor from seq-1
 *   to seq, then runs it.  Once the process is reaped and what it wrote
 *   has been read, the cursor c is final: of the window, the tasks
 *   numbered c or below were answered but perhaps c itself, the one that
 *   was running (it alone fails: crash isolation), and those above c never
 *   began (they go back to the queue: never failed for another's crash).
 * - Cancellation: a task sent ahead is RUNNING for the API (executor.h
 *   keeps its promise: ex_future_cancel wins only while PENDING).  On
 *   shutdown(cancel_pending) the dispatcher sets PROCS_REVOKED on the
 *   cursor: the worker's next swap fails and it begins nothing more, so
 *   the tasks above the cursor read at that instant are cancelled, exactly
 *   those it had not begun.
 * - Timeouts: the running task is the cursor's, and its deadline counts
 *   from its own start (begun_ns), never from when its frame was sent.
 * - max_tasks_per_worker counts tasks run: a process is sent at most that
 *   many (assigned; a revoked task is given back), so it runs exactly that
 *   many and is recycled once its window has emptied.
 * - Bounded: at most cfg.window entries per worker; the dispatcher takes
 *   from the queue only what the windows have room for.  And no deeper
 *   than needed: a window covers a hand-off (HANDOFF_NS) with the tasks
 *   queued in it, so with tasks of run time T it holds 1 + HANDOFF_NS / T
 *   (at least 2, at most cfg.window; FIRST_DEPTH before any task has
 *   ended).  Empty tasks fill it; long ones keep it at 2, so a worker
 *   stuck on a long task holds back one task, not cfg.window - 1, while
 *   another worker idles at the end of a run.
 * - Deep enough: the hand-off a window covers may cross CPUs, which the
 *   scheduler decides (the dispatcher beside a worker, or alone on a CPU
 *   while the workers share the other).  Across CPUs every refill waits
 *   for an idle CPU's wake-up, a cross-core round trip (tens of us on a
 *   VM): a window shallower than that round trip's worth of tasks drains
 *   before each refill, and the worker idles once per window.  With
 *   EX_DEFAULT_WINDOW at 8 that made empty tasks 3-4 times dearer on two
 *   CPUs whenever the dispatcher landed apart from both workers (issue
 *   13's bimodal submit cost); the default leaves the depth to the rule
 *   above.
 * - No deadlock (procs_dispatch.c): the dispatcher writes without blocking
 *   and reads every result pipe while it writes; a worker reads a whole
 *   frame before running it and writes its result before reading on, so a
 *   worker that writes is always being read and one that reads is always
 *   being fed.
 * - References: the executor's reference to a future moves from the queue
 *   into its window entry and is released once, after finish or cancel, or
 *   goes back to the queue with the future.  Callbacks never run with
 *   p->lock held.
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Bytes written to one pipe per call before the dispatcher looks at the
 * others (a 64 MiB input does not starve small tasks). */
#define SEND_BUDGET ((size_t)4 << 20)
/* A frame larger than this grows its pipe (ex__pipe_grow). */
#define PIPE_GROW_ABOVE ((size_t)64 << 10)
/* An inline input at least this large goes by vmsplice. */
#define SPLICE_MIN ((size_t)64 << 10)
/* Frames gathered into one writev (two iovecs each). */
#define SEND_FRAMES 32
/* A task whose worker died as it turned to it (reading its input) is
 * dispatched again at most this many times (a task whose input itself
 * gets workers killed, e.g. by the OOM killer, must not loop forever). */
#define REDISPATCH_MAX 3u

/* What a worker would idle between two tasks without a window: the
 * result's way back, the dispatcher's turn and the next frame's way
 * there (a cross-core pipe round trip and some, on a VM). */
#define HANDOFF_NS 50000u
/* The depth before any task has ended (run times unknown): a long first
 * batch holds back at most FIRST_DEPTH - 1 tasks behind each. */
#define FIRST_DEPTH 8u

/* Entry i of w's window, counted from the oldest. */
static procs_sent *win_at(const procs_worker *w, unsigned i)
{
    return &w->win[(w->win_head + i) % w->win_cap];
}

/* How many tasks a window holds now (see the file's comment). */
static unsigned depth(const procs *p, const procs_worker *w)
{
    if (w->win_cap <= 2)
        return w->win_cap;
    if (p->task_ns_avg == 0)
        return w->win_cap < FIRST_DEPTH ? w->win_cap : FIRST_DEPTH;
    uint64_t d = 1 + (HANDOFF_NS + p->task_ns_avg - 1) / p->task_ns_avg;
    return d < 2 ? 2 : d > w->win_cap ? w->win_cap : (unsigned)d;
}

unsigned ex__procs_room(const procs *p, const procs_worker *w)
{
    unsigned deep = depth(p, w);
    if (w->state != W_READY || w->revoked || w->dying || w->win_len >= deep)
        return 0;
    unsigned room = deep - w->win_len;
    unsigned max = p->base.cfg.max_tasks_per_worker;
    if (max && max - w->assigned < room)
        room = max - w->assigned;
    return room;
}

/* ------------------------------------------------------------ sending */

void ex__procs_window_add(procs *p, procs_worker *w, ex_future *f)
{
    procs_sent *e = win_at(w, w->win_len);
    uint64_t now = ex_now_ns();
    e->f = f;
    e->seq = w->next_seq++;
    e->queued_ns = now;
    e->written = 0;
    /* Provisional: the worker's RESULT (or the board) says when it began. */
    f->stats.start_ns = now;
    f->stats.worker = (int)w->index;
    f->stats.worker_pid = atomic_load(&w->pid);

    wire_header h;
    memset(&h, 0, sizeof h);
    h.type = WIRE_TASK;
    h.id = f->id;
    h.fn = (uint64_t)(uintptr_t)f->fn;
    h.len = f->in_len;
    e->in_end = w->shm ? ex__procs_shm_put(w, f, &h) : 0;
    ex__wire_header_encode(&h, e->hdr);
    e->frame_len = WIRE_HEADER_SIZE + (size_t)ex__wire_inline_len(&h);
    if (e->frame_len > PIPE_GROW_ABOVE && !w->task_pipe_big) {
        ex__pipe_grow(w->task_fd);
        w->task_pipe_big = true;
    }
    w->win_len++;
    w->assigned++;
    p->inflight++;
}

/* Whether e's input goes by vmsplice rather than a copy into the pipe. */
static bool spliced(const procs_sent *e)
{
    return e->frame_len - WIRE_HEADER_SIZE >= SPLICE_MIN;
}

/* The unwritten part of entry e as up to two iovecs (header, input; a
 * spliced input is left out). */
static int gather_one(const procs_sent *e, struct iovec *iov)
{
    int n = 0;
    size_t off = e->written;
    size_t inl = e->frame_len - WIRE_HEADER_SIZE;
    if (off < WIRE_HEADER_SIZE) {
        iov[n].iov_base = (void *)(e->hdr + off);
        iov[n++].iov_len = WIRE_HEADER_SIZE - off;
        off = WIRE_HEADER_SIZE;
    }
    if (inl > 0 && !spliced(e)) {
        iov[n].iov_base = (unsigned char *)(uintptr_t)e->f->in +
                          (off - WIRE_HEADER_SIZE);
        iov[n++].iov_len = e->frame_len - off;
    }
    return n;
}

/* The unwritten frames from the oldest, up to SEND_FRAMES, stopping
 * after the header of a spliced input.  A frame takes one or two iovecs:
 * the next one is gathered only while two are left (frames of one entry
 * leave n odd, and a window deeper than SEND_FRAMES fills the array). */
static int gather(const procs_worker *w, struct iovec *iov)
{
    int n = 0;
    for (unsigned i = w->win_sent; i < w->win_len && n + 2 <= 2 * SEND_FRAMES;
         i++) {
        const procs_sent *e = win_at(w, i);
        n += gather_one(e, iov + n);
        if (spliced(e))
            break;
    }
    return n;
}

/* Credits k written bytes to the unwritten frames, oldest first. */
static void credit(procs_worker *w, size_t k)
{
    while (k > 0 && w->win_sent < w->win_len) {
        procs_sent *e = win_at(w, w->win_sent);
        size_t take = e->frame_len - e->written;
        if (take > k)
            take = k;
        e->written += take;
        k -= take;
        if (e->written == e->frame_len)
            w->win_sent++;
    }
}

/* Writes what the pipe takes of the oldest unwritten frame's input
 * (its header is out): vmsplice gives the pipe the input's pages
 * instead of a copy, so the worker's read is the only copy.  The input
 * stays unchanged until the task is final (executor.h), by which time
 * the worker has read it all. */
static ssize_t splice_input(procs_worker *w, const procs_sent *e)
{
    size_t off = e->written - WIRE_HEADER_SIZE;
    struct iovec iov = {
        .iov_base = (unsigned char *)(uintptr_t)e->f->in + off,
        .iov_len = e->frame_len - e->written,
    };
    return vmsplice(w->task_fd, &iov, 1, SPLICE_F_NONBLOCK);
}

int ex__procs_window_send(procs_worker *w)
{
    size_t done = 0;
    while (w->win_sent < w->win_len && done < SEND_BUDGET) {
        struct iovec iov[2 * SEND_FRAMES];
        const procs_sent *e = win_at(w, w->win_sent);
        ssize_t k = spliced(e) && e->written >= WIRE_HEADER_SIZE
                        ? splice_input(w, e)
                        : writev(w->task_fd, iov, gather(w, iov));
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                return 0;
            if (errno == EPIPE)
                ex__procs_consume_sigpipe();
            return EX_EWORKER;
        }
        credit(w, (size_t)k);
        done += (size_t)k;
    }
    return 0;
}

/* --------------------------------------------------------- completing */

int ex__procs_window_check(const procs_worker *w, const wire_header *h)
{
    if (w->win_len == 0 || w->win_sent == 0)
        return EX_EWORKER; /* nothing asked, or asked but not wholly sent */
    return h->id == win_at(w, 0)->f->id ? 0 : EX_EWORKER;
}

/* The RESULT's output into out (empty): the reader's buffer handed over
 * as is (no second copy), or copied out of w's region. */
static int take_output(procs_worker *w, ex_buf *out)
{
    const wire_header *h = &w->reader.hdr;
    if (h->flags & WIRE_F_SHM)
        return ex__procs_shm_take(w, h, out);
    *out = w->reader.payload;
    w->reader.payload = (ex_buf){0};
    return 0;
}

/* A task's run time, in the running mean that sets the windows' depth. */
static void note_run_time(procs *p, const wire_stats *st)
{
    uint64_t t = st->end_ns > st->start_ns ? st->end_ns - st->start_ns : 1;
    if (p->task_ns_avg == 0)
        p->task_ns_avg = t;
    else if (t > p->task_ns_avg)
        p->task_ns_avg += (t - p->task_ns_avg) / 8;
    else
        p->task_ns_avg -= (p->task_ns_avg - t) / 8;
    if (p->task_ns_avg == 0)
        p->task_ns_avg = 1;
}

int ex__procs_window_complete(procs *p, procs_worker *w)
{
    procs_sent *e = win_at(w, 0);
    ex_future *f = e->f;
    const wire_header *h = &w->reader.hdr;
    int err = 0, code = 0;
    ex_buf out = {0};
    int rc = take_output(w, &out);
    if (rc == EX_EWORKER)
        return rc;
    uint64_t now = ex_now_ns();
    if (e->in_end)
        ex__procs_shm_release(w, e->in_end);
    /* The output goes in with the stats: the result fields share the
     * call's storage (ex_internal.h). */
    ex__procs_stats_end(f, now, h, &w->reader.stats, e->queued_ns, &out);
    note_run_time(p, &w->reader.stats);
    if (rc != 0)
        err = rc; /* EX_ENOMEM copying the output out */
    else if (h->flags & WIRE_F_EXERR)
        err = h->status < 0 ? h->status : EX_EWORKER;
    else if (h->status != 0)
        err = EX_ETASK, code = h->status;
    w->win_head = (w->win_head + 1) % w->win_cap;
    w->win_len--;
    w->win_sent--;
    w->completed++;
    p->inflight--;
    ex__count(&p->counts, err ? &p->counts.failed : &p->counts.completed);
    ex__future_finish(f, err, code);
    ex_future_release(f);

    unsigned max = p->base.cfg.max_tasks_per_worker;
    if (max > 0 && w->completed >= max && w->win_len == 0 && !w->dying &&
        w->state == W_READY)
        ex__procs_slot_recycle(p, w, now);
    return 0;
}

/* ------------------------------------------------- revoking, losing */

/* f goes from its window back to PENDING: it never began. */
static void unbegin(procs *p, ex_future *f)
{
    f->stats.start_ns = 0;
    f->stats.worker = -1;
    f->stats.worker_pid = 0;
    ex__count(&p->counts, &p->counts.unbegun);
    ex__future_unbegin(f);
}

void ex__procs_window_revoke(procs *p, procs_worker *w)
{
    w->revoked = true;
    if (w->state == W_READY)
        w->state = W_EXITING; /* deadline 0: the teardown ends it */
    if (w->state == W_STARTING || w->state == W_EMPTY)
        return;
    uint64_t c = atomic_fetch_or(&w->board->cursor, PROCS_REVOKED) &
                 ~PROCS_REVOKED;
    unsigned keep = 0;
    while (keep < w->win_len && win_at(w, keep)->seq <= c)
        keep++;
    /* Frames after the cursor may stay half-written: the process reads
     * on only to find the swap refused, and is ended at the teardown. */
    for (unsigned i = keep; i < w->win_len; i++) {
        ex_future *f = win_at(w, i)->f;
        p->inflight--;
        w->assigned--;
        unbegin(p, f);
        ex__future_cancel_pending(f); /* false: the user won the race */
        ex_future_release(f);
    }
    w->win_len = keep;
    if (w->win_sent > keep)
        w->win_sent = keep;
}

/* The start of the task numbered seq, if the board still holds it (the
 * process is reaped: nothing moves any more). */
static uint64_t board_begun(const procs_worker *w, uint64_t seq)
{
    return atomic_load(&w->board->begun_ns[seq & 1]);
}

void ex__procs_window_take(procs *p, procs_worker *w, ex_future **began,
                           ex_future **never)
{
    uint64_t c = atomic_load(&w->board->cursor) & ~PROCS_REVOKED;
    ex_future **bt = began, **nt = never;
    *began = *never = NULL;
    for (unsigned i = 0; i < w->win_len; i++) {
        procs_sent *e = win_at(w, i);
        ex_future *f = e->f;
        p->inflight--;
        f->next = NULL;
        if (e->seq <= c) {
            if (e->seq == c)
                f->stats.start_ns = board_begun(w, c);
            *bt = f;
            bt = &f->next;
        } else {
            *nt = f;
            nt = &f->next;
        }
    }
    w->win_head = w->win_len = w->win_sent = 0;
}

/* A task lost with its worker: failed with err. */
static void fail_lost(procs *p, ex_future *f, int err)
{
    uint64_t now = ex_now_ns();
    if (f->stats.start_ns == 0 || f->stats.start_ns > now)
        f->stats.start_ns = now;
    ex__procs_stats_end(f, now, NULL, NULL, 0, NULL);
    ex__count(&p->counts, &p->counts.failed);
    ex__future_finish(f, err, 0);
    ex_future_release(f);
}

/* Only the first task the process never began may have had a hand in
 * its death, and only if it was not running another: the worker may have
 * been reading that task's input (e.g. killed by the OOM killer for it).
 * That one is charged a redispatch; the others were never touched. */
void ex__procs_window_settle(procs *p, ex_future *began, ex_future *never,
                             int err)
{
    bool charge = began == NULL;
    while (began) {
        ex_future *f = began;
        began = f->next;
        f->next = NULL;
        fail_lost(p, f, err);
    }
    ex_future *again = NULL, **tail = &again;
    while (never) {
        ex_future *f = never;
        never = f->next;
        f->next = NULL;
        if (charge && f->redispatched >= REDISPATCH_MAX) {
            fail_lost(p, f, err);
            charge = false;
            continue;
        }
        f->redispatched += charge;
        charge = false;
        unbegin(p, f);
        *tail = f;
        tail = &f->next;
    }
    if (again)
        ex__procs_queue_requeue(p, again);
}

/* ----------------------------------------------------------- timeouts */

/* When task c began, read so that it is never paired with another task's
 * start: begun_ns[c & 1] is stored (release) before the swap to c, and
 * overwritten only for c + 2, after the swap to c + 1.  A start read
 * (acquire) from that later store brings the swap to c + 1 with it, so if
 * the cursor still reads c afterwards, the start is c's.  false: the
 * worker moved on meanwhile. */
static bool begun_of(const procs_board *b, uint64_t c, uint64_t *ns)
{
    *ns = atomic_load_explicit(&b->begun_ns[c & 1], memory_order_acquire);
    uint64_t again = atomic_load_explicit(&b->cursor, memory_order_acquire);
    return (again & ~PROCS_REVOKED) == c;
}

uint64_t ex__procs_window_deadline(const procs *p, const procs_worker *w,
                                   uint64_t now, bool *kill)
{
    int64_t t = p->base.cfg.timeout_ns;
    *kill = false;
    if (t <= 0 || w->win_len == 0 || w->dying || !w->board)
        return 0;
    uint64_t c = atomic_load_explicit(&w->board->cursor,
                                      memory_order_acquire) & ~PROCS_REVOKED;
    uint64_t ns;
    /* Below the oldest unanswered task: the process runs nothing now (it
     * reads, or waits for, that task); any deadline is T away at least. */
    if (c < win_at(w, 0)->seq || !begun_of(w->board, c, &ns))
        return now + (uint64_t)t;
    *kill = true;
    return ns + (uint64_t)t;
}
