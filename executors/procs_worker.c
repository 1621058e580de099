/*
 * procs_worker.c: a worker process of the process pool, from its fork by
 * the fork server to its _exit: worker_start and the initializer, then
 * TASK frames in, RESULT frames out, on two blocking pipes (and, with
 * EX_TRANSPORT_SHM, its region for the payloads).
 *
 * Invariants:
 * - No deadlock with the master: a worker reads a whole TASK frame before
 *   it runs it, and writes its whole RESULT before it reads on; it writes
 *   nothing else unsolicited (one READY or INIT_FAIL at start, then
 *   exactly one RESULT per task it begins).  The master never blocks on a
 *   write and reads every result pipe while it writes (procs_dispatch.c),
 *   so a worker that is writing is always being read and a worker that
 *   is reading is always being fed.  Frames sent ahead (the window) are
 *   read ahead too, several in one read(2), but run one at a time, in
 *   order.
 * - It begins a task only by swapping the board's cursor from the task
 *   before's number to this one's (procs_window.c): when the parent has
 *   revoked the window the swap fails and the worker leaves at once,
 *   having begun nothing more.  The task's start is stored on the board
 *   first, for its deadline.
 * - It obeys an EXIT frame or EOF on the task pipe by leaving at once; a
 *   write to a dead parent fails with EPIPE (SIGPIPE is ignored here, in
 *   our own process) and it leaves too.  PR_SET_PDEATHSIG kills it with
 *   the fork server, which is single-threaded, so that death is the
 *   process's.
 * - stdout and stderr are flushed after every task, before its result is
 *   sent: what a task printed reaches its fd before its result does, and
 *   is not lost when the worker leaves with _exit.
 * - A result above the payload cap is not sent (the parent would reject
 *   the frame and lose the worker): EX_EINVAL is reported instead.
 * - The function pointer in a TASK frame is valid here: the worker is a
 *   fork of the same executable image.
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* A worker keeps its reused buffers up to this size, or twice its
 * largest payload of the last RECENT tasks if more (steady 64 MiB
 * payloads then fault no fresh pages in; a burst of them is forgotten
 * after RECENT small tasks), at most WORKER_KEEP_MAX. */
#define WORKER_KEEP_BYTES ((size_t)4 << 20)
#define WORKER_KEEP_MAX ((size_t)256 << 20)
#define RECENT 16
/* An inline output larger than this grows the result pipe. */
#define PIPE_GROW_ABOVE ((size_t)64 << 10)
/* Frames are read ahead into a buffer of this size (an input up to it
 * is run from there, in place). */
#define WORKER_READ_SIZE ((size_t)64 << 10)

/* A worker's state across its tasks. */
typedef struct worker_ctx {
    const procs *p;
    int in_fd, out_fd;
    procs_board *board;
    procs_wregion *shm;    /* its region, NULL without one */
    unsigned char *rbuf;   /* WORKER_READ_SIZE bytes read ahead */
    size_t pos, end;       /* the unparsed part of rbuf */
    ex_buf in;             /* an inline input larger than rbuf */
    ex_buf heap;           /* reused output storage outside the region */
    uint64_t seq;          /* the last task begun */
    ex_probe probe;        /* CPU measurements across tasks */
    size_t recent[RECENT]; /* payload sizes of the last tasks */
    unsigned nrecent;
    bool pipe_big;         /* the result pipe was grown */
} worker_ctx;

/* stdout and stderr only, as Python's multiprocessing does: fflush(NULL)
 * would lock every FILE of the application, including one another thread
 * of the creator may hold (blocked reading stdin) at ex_create. */
void ex__procs_flush_stdio(void)
{
    fflush(stdout);
    fflush(stderr);
}

/* SIGPIPE ignored, death with the fork server.  _exits on failure. */
static void worker_setup(pid_t fs_pid)
{
    /* A write to a dead parent fails with EPIPE and we _exit. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        _exit(1);
    /* The fork server is single-threaded: its death is the process's. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(1);
    if (getppid() != fs_pid)
        _exit(1);
}

/* worker_start and the initializer, then READY (saying whether the
 * region is mapped here) or INIT_FAIL and exit. */
static void worker_hello(const worker_ctx *c, unsigned index)
{
    unsigned char hb[WIRE_HEADER_SIZE];
    wire_header h;
    memset(&h, 0, sizeof h);
    int rc = ex__worker_init(&c->p->base.cfg, index);
    ex__procs_flush_stdio();
    h.type = rc == 0 ? WIRE_READY : WIRE_INIT_FAIL;
    h.flags = rc == 0 && c->shm ? WIRE_F_SHM : 0;
    h.status = rc;
    h.id = (uint64_t)getpid();
    ex__wire_header_encode(&h, hb);
    if (ex__write_full(c->out_fd, hb, WIRE_HEADER_SIZE) != 0 || rc != 0)
        _exit(rc != 0 ? 0 : 1);
}

/* ------------------------------------------------------------ reading */

/* Until need (<= WORKER_READ_SIZE) unparsed bytes are buffered.  _exits
 * at EOF (the parent closed the task pipe; stdio was flushed after the
 * last task), cleanly between frames, or on an error. */
static void fill(worker_ctx *c, size_t need)
{
    if (c->pos + need > WORKER_READ_SIZE) {
        memmove(c->rbuf, c->rbuf + c->pos, c->end - c->pos);
        c->end -= c->pos;
        c->pos = 0;
    }
    while (c->end - c->pos < need) {
        ssize_t k = read(c->in_fd, c->rbuf + c->end, WORKER_READ_SIZE - c->end);
        if (k > 0)
            c->end += (size_t)k;
        else if (k == 0)
            _exit(c->end == c->pos ? 0 : 1);
        else if (errno != EINTR)
            _exit(1);
    }
}

/* An inline input larger than the read buffer: what is buffered, then
 * the rest straight into c->in. */
static const void *read_big(worker_ctx *c, size_t len)
{
    size_t have = c->end - c->pos;
    c->in.len = 0;
    if (ex_buf_append(&c->in, c->rbuf + c->pos, have) != 0 ||
        ex_buf_reserve(&c->in, len - have) != 0 ||
        ex__read_full(c->in_fd, c->in.data + have, len - have) != 0)
        _exit(1);
    c->in.len = len;
    c->pos = c->end = 0;
    return c->in.data;
}

/* The next TASK frame, whole: header into *h, its input (in the read
 * buffer, c->in or the region) into *data.  _exits on EXIT, EOF or
 * anything malformed. */
static const void *read_task(worker_ctx *c, wire_header *h, wire_stats *st)
{
    st->read_begin_ns = ex_now_ns();
    fill(c, WIRE_HEADER_SIZE);
    if (ex__wire_header_decode(c->rbuf + c->pos, WIRE_HEADER_SIZE,
                               c->p->max_payload, h) != 0)
        _exit(1);
    c->pos += WIRE_HEADER_SIZE;
    if (h->type == WIRE_EXIT)
        _exit(0);
    if (h->type != WIRE_TASK)
        _exit(1);
    const void *data = "";
    size_t len = (size_t)h->len;
    if (h->flags & WIRE_F_SHM) {
        if (!c->shm || !(data = ex__procs_shm_winput(c->shm, h)))
            _exit(1);
    } else if (len > WORKER_READ_SIZE) {
        data = read_big(c, len);
    } else if (len > 0) {
        fill(c, len);
        data = c->rbuf + c->pos;
        c->pos += len;
    }
    st->input_done_ns = ex_now_ns();
    return data;
}

/* ------------------------------------------------------------ running */

/* Commits to the next task (the board's cursor) and takes its start
 * reading; _exits, beginning nothing, if the window was revoked. */
static void begin_task(worker_ctx *c, ex_mark *start)
{
    uint64_t seq = c->seq + 1, expect = c->seq;
    ex__probe_mark(&c->probe, start);
    atomic_store_explicit(&c->board->begun_ns[seq & 1], start->start_ns,
                          memory_order_release);
    if (!atomic_compare_exchange_strong(&c->board->cursor, &expect, seq)) {
        ex__procs_flush_stdio();
        _exit(0);
    }
    c->seq = seq;
}

/* Runs the task; fills st (all but output_start_ns and the read times)
 * and returns its status; *flags gets the RESULT's CPU flags. */
static int run_task(worker_ctx *c, const wire_header *h, const void *in,
                    ex_buf *out, wire_stats *st, uint16_t *flags)
{
    ex_task_fn fn = (ex_task_fn)(uintptr_t)h->fn;
    ex_mark m0, m1;
    begin_task(c, &m0);
    int status = fn(in, (size_t)h->len, out);
    ex__probe_mark(&c->probe, &m1);
    ex_task_stats ts = {0};
    ex__stats_measure(&ts, &m0, &m1);
    /* Printed output first, as the file's comment says. */
    ex__procs_flush_stdio();
    st->start_ns = ts.start_ns;
    st->end_ns = ts.end_ns;
    st->cpu = sched_getcpu();
    st->cpu_ns = ts.cpu_ns;
    st->nvcsw = ts.nvcsw;
    st->nivcsw = ts.nivcsw;
    st->pid = c->probe.pid;
    *flags = (ts.flags & EX_STATS_CPU_OVER_WALL ? WIRE_F_CPU_OVER_WALL : 0) |
             (ts.flags & EX_STATS_CPU_UNDER_ZERO ? WIRE_F_CPU_UNDER_ZERO : 0);
    return status;
}

/* The RESULT frame for task h: header, stats block, and the output inline
 * unless it stays in the region.  _exits if the parent is gone. */
static void send_result(worker_ctx *c, const wire_header *h, int status,
                        uint16_t flags, wire_stats *st, ex_buf *out,
                        bool lent)
{
    unsigned char hb[WIRE_HEADER_SIZE + WIRE_STATS_SIZE];
    wire_header r;
    memset(&r, 0, sizeof r);
    r.type = WIRE_RESULT;
    r.flags = flags;
    r.id = h->id;
    r.fn = h->fn;
    r.status = status;
    r.len = out->len;
    if (out->len > c->p->max_payload) {
        /* The parent would reject the frame: report instead. */
        r.flags |= WIRE_F_EXERR;
        r.status = EX_EINVAL;
        r.len = 0;
    }
    if (lent)
        ex__procs_shm_wpublish(c->shm, out, &r);
    if (ex__wire_inline_len(&r) > PIPE_GROW_ABOVE && !c->pipe_big) {
        ex__pipe_grow(c->out_fd);
        c->pipe_big = true;
    }
    st->output_start_ns = ex_now_ns();
    ex__wire_header_encode(&r, hb);
    ex__wire_stats_encode(st, hb + WIRE_HEADER_SIZE);
    struct iovec iov[2] = {
        {.iov_base = hb, .iov_len = sizeof hb},
        {.iov_base = out->data, .iov_len = (size_t)ex__wire_inline_len(&r)},
    };
    if (ex__writev_full(c->out_fd, iov, 2) != 0)
        _exit(1);
}

/* How large a buffer the worker keeps, after a task that moved len bytes
 * (see WORKER_KEEP_BYTES). */
static size_t keep_limit(worker_ctx *c, size_t len)
{
    c->recent[c->nrecent++ % RECENT] = len;
    size_t keep = WORKER_KEEP_BYTES;
    for (unsigned i = 0; i < RECENT; i++)
        if (2 * c->recent[i] > keep)
            keep = 2 * c->recent[i];
    return keep < WORKER_KEEP_MAX ? keep : WORKER_KEEP_MAX;
}

/* One task: read, run, answer; then the buffers for the next.  The
 * output goes to the region's lent room when there is one (the task
 * writes it in place), else to the reused heap buffer. */
static void worker_step(worker_ctx *c)
{
    wire_header h = {0};
    wire_stats st;
    memset(&st, 0, sizeof st);
    const void *in = read_task(c, &h, &st);
    ex_buf out = {0};
    void *lent = NULL;
    if (c->shm && ex__procs_shm_wlend(c->shm, &out)) {
        lent = out.data;
    } else {
        out = c->heap;
        c->heap = (ex_buf){0};
        out.len = 0;
    }
    uint16_t flags;
    int status = run_task(c, &h, in, &out, &st, &flags);
    send_result(c, &h, status, flags, &st, &out, lent != NULL);
    if (lent && out.data == lent)
        out = (ex_buf){0}; /* the region's: not ours to free */
    size_t keep = keep_limit(c, h.len > out.len ? (size_t)h.len : out.len);
    if (out.cap > keep || c->heap.cap)
        ex_buf_free(&out);
    else
        c->heap = out;
    if (c->in.cap > keep)
        ex_buf_free(&c->in);
}

_Noreturn void ex__procs_worker_main(const procs *p, unsigned index,
                                     int in_fd, int out_fd, int shm_fd,
                                     pid_t fs_pid)
{
    worker_setup(fs_pid);
    worker_ctx c;
    memset(&c, 0, sizeof c);
    c.p = p;
    c.in_fd = in_fd;
    c.out_fd = out_fd;
    c.board = &p->boards[index];
    c.shm = shm_fd >= 0 ? ex__procs_shm_wmap(p, shm_fd, c.board) : NULL;
    c.rbuf = malloc(WORKER_READ_SIZE);
    if (!c.rbuf)
        _exit(1);
    /* Always measured (the pipe costs far more than a reading), with
     * switch detection unless exact_cpu. */
    ex_config mc = p->base.cfg;
    mc.measure_cpu = true;
    ex__probe_init(&c.probe, &mc);
    worker_hello(&c, index);
    for (;;)
        worker_step(&c);
}
