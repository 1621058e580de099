/*
 * procs_worker.c: a worker process of the process pool, from its fork by
 * the fork server to its _exit: worker_start and the initializer, then
 * TASK frames in, RESULT frames out, on two blocking pipes.
 *
 * Invariants:
 * - No deadlock with the master: a worker reads the whole TASK frame before
 *   it writes a byte of its RESULT, and writes nothing else unsolicited
 *   (one READY or INIT_FAIL at start, then exactly one RESULT per TASK).
 *   The master never blocks on a write and reads every result pipe while
 *   it writes (procs_dispatch.c), so a worker that is writing is always
 *   being read and a worker that is reading is always being fed.
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

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* A worker frees its reused buffers after a task above this size. */
#define WORKER_KEEP_BYTES ((size_t)4 << 20)

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

/* worker_start and the initializer, then READY (or INIT_FAIL and exit). */
static void worker_hello(const procs *p, unsigned index, int out_fd)
{
    unsigned char hb[WIRE_HEADER_SIZE];
    wire_header h;
    memset(&h, 0, sizeof h);
    int rc = ex__worker_init(&p->base.cfg, index);
    ex__procs_flush_stdio();
    h.type = rc == 0 ? WIRE_READY : WIRE_INIT_FAIL;
    h.status = rc;
    h.id = (uint64_t)getpid();
    ex__wire_header_encode(&h, hb);
    if (ex__write_full(out_fd, hb, WIRE_HEADER_SIZE) != 0 || rc != 0)
        _exit(rc != 0 ? 0 : 1);
}

/* The next TASK frame, whole: header into *h, input into *in.  _exits on
 * EXIT, EOF (the parent closed the task pipe; stdio was flushed after
 * the last task) or anything malformed. */
static void read_task(const procs *p, int in_fd, wire_header *h, ex_buf *in)
{
    unsigned char hb[WIRE_HEADER_SIZE];
    int rc = ex__read_full(in_fd, hb, WIRE_HEADER_SIZE);
    if (rc == EX__EOF)
        _exit(0);
    if (rc != 0 ||
        ex__wire_header_decode(hb, WIRE_HEADER_SIZE, p->max_payload, h) != 0)
        _exit(1);
    if (h->type == WIRE_EXIT)
        _exit(0);
    if (h->type != WIRE_TASK)
        _exit(1);
    in->len = 0;
    if (h->len > 0) {
        if (ex_buf_reserve(in, (size_t)h->len) != 0 ||
            ex__read_full(in_fd, in->data, (size_t)h->len) != 0)
            _exit(1);
        in->len = (size_t)h->len;
    }
}

/* Runs the task measured with exact readings; fills st (all but
 * output_start_ns) and returns its status; *over_wall: the CPU reading
 * was cut to the wall time (exact readings never go below zero). */
static int run_task(const wire_header *h, const ex_buf *in, ex_buf *out,
                    wire_stats *st, bool *over_wall)
{
    memset(st, 0, sizeof *st);
    st->input_done_ns = ex_now_ns();
    st->pid = getpid();
    ex_task_fn fn = (ex_task_fn)(uintptr_t)h->fn;
    ex_mark m0, m1;
    out->len = 0;
    ex__mark_exact(&m0);
    int status = fn(in->len ? (const void *)in->data : (const void *)"",
                    in->len, out);
    ex__mark_exact(&m1);
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
    *over_wall = ts.flags & EX_STATS_CPU_OVER_WALL;
    return status;
}

/* The RESULT frame for task h: header, stats block, output.  _exits if
 * the parent is gone. */
static void send_result(const procs *p, int out_fd, const wire_header *h,
                        int status, bool over_wall, wire_stats *st,
                        const ex_buf *out)
{
    unsigned char hb[WIRE_HEADER_SIZE + WIRE_STATS_SIZE];
    wire_header r;
    memset(&r, 0, sizeof r);
    r.type = WIRE_RESULT;
    r.flags = over_wall ? WIRE_F_CPU_OVER_WALL : 0;
    r.id = h->id;
    r.fn = h->fn;
    r.status = status;
    r.len = out->len;
    if (out->len > p->max_payload) {
        /* The parent would reject the frame: report instead. */
        r.flags |= WIRE_F_EXERR;
        r.status = EX_EINVAL;
        r.len = 0;
    }
    st->output_start_ns = ex_now_ns();
    ex__wire_header_encode(&r, hb);
    ex__wire_stats_encode(st, hb + WIRE_HEADER_SIZE);
    struct iovec iov[2] = {
        {.iov_base = hb, .iov_len = sizeof hb},
        {.iov_base = out->data, .iov_len = (size_t)r.len},
    };
    if (ex__writev_full(out_fd, iov, 2) != 0)
        _exit(1);
}

_Noreturn void ex__procs_worker_main(const procs *p, unsigned index,
                                     int in_fd, int out_fd, pid_t fs_pid)
{
    worker_setup(fs_pid);
    worker_hello(p, index, out_fd);
    ex_buf in = {0}, out = {0};
    for (;;) {
        wire_header h = {0};
        wire_stats st;
        bool over_wall;
        read_task(p, in_fd, &h, &in);
        int status = run_task(&h, &in, &out, &st, &over_wall);
        send_result(p, out_fd, &h, status, over_wall, &st, &out);
        if (in.cap > WORKER_KEEP_BYTES)
            ex_buf_free(&in);
        if (out.cap > WORKER_KEEP_BYTES)
            ex_buf_free(&out);
    }
}
