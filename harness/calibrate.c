/*
 * calibrate.c - `poolbench calibrate`: pipe and condition-variable round
 * trips, context switch, thread create, fork, measured lmbench-style.
 *
 * Each measurement function runs one repetition and cleans up after itself
 * whatever happens: children are reaped (a child that cannot be told to stop
 * gets SIGKILL), threads are joined, fds closed, the caller's affinity
 * restored. Writing to a pipe whose reader died would raise SIGPIPE in the
 * whole process; the pipe measures block SIGPIPE in the calling thread for
 * their duration and consume any SIGPIPE they caused, so that a library
 * function never changes the process's signal dispositions.
 */
#include "cli.h"
#include "calibrate.h"
#include "calibrate_int.h"

#include "executor.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */


int pb_cal__write_byte(int fd, unsigned char b)
{
    for (;;) {
        ssize_t w = write(fd, &b, 1);
        if (w == 1)
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        return w < 0 ? -errno : -EIO;
    }
}

/* 0 on a byte, -EPIPE on end of file, or -errno. */
int pb_cal__read_byte(int fd, unsigned char *b)
{
    for (;;) {
        ssize_t r = read(fd, b, 1);
        if (r == 1)
            return 0;
        if (r == 0)
            return -EPIPE;
        if (errno == EINTR)
            continue;
        return -errno;
    }
}

void pb_cal__close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Waits for pid; returns its exit status (0..255), or -ECHILD etc., or
 * 128 + signal if it was killed. */
int pb_cal__reap(pid_t pid)
{
    int status;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (w < 0)
        return -errno;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

int pb_cal__sigpipe_block(sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    if (sigpending(&pending) != 0)
        return -errno;
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    int rc = pthread_sigmask(SIG_BLOCK, &set, &g->old);
    return -rc;
}

void pb_cal__sigpipe_unblock(sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    if (!g->was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Binds the calling thread as worker `index` of plan, after saving its
 * affinity in *saved (NULL plan: nothing to do). */
int pb_cal__pin_self(const pb_pin_plan *plan, unsigned index, pb_pin_saved **saved)
{
    *saved = NULL;
    if (!plan)
        return 0;
    int rc = pb_pin_thread_save(saved);
    if (rc < 0)
        return rc;
    rc = pb_pin_worker_start(index, (void *)plan);
    if (rc < 0) {
        pb_pin_thread_restore(*saved);
        *saved = NULL;
    }
    return rc;
}

int pb_cal__unpin_self(pb_pin_saved *saved)
{
    return pb_pin_thread_restore(saved);
}

/* ------------------------------------------------------------ pair plans */

int pb_cal_pair_plan(int cross, const char *cpus, pb_pin_plan **out,
                     char *err, size_t errlen)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    pb_pin_plan *all;
    /* The topology restricted to cpus: its cores are the usable ones. */
    int rc = pb_pin_plan_create(PB_PIN_COMPACT, cpus, 1, 0, &all, err, errlen);
    if (rc < 0)
        return rc;
    hwloc_topology_t topo = pb_pin_plan_topology(all);
    int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    int a = -1, b = -1;
    if (ncores >= 1) {
        hwloc_obj_t c0 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, 0);
        a = c0 ? hwloc_bitmap_first(c0->cpuset) : -1;
        if (ncores >= 2) {
            hwloc_obj_t c1 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, 1);
            b = c1 ? hwloc_bitmap_first(c1->cpuset) : -1;
        }
    } else {
        /* No core objects (some platforms): treat PUs as cores. */
        hwloc_obj_t p0 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, 0);
        hwloc_obj_t p1 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, 1);
        a = p0 ? (int)p0->os_index : -1;
        b = p1 ? (int)p1->os_index : -1;
        ncores = p1 ? 2 : 1;
    }
    pb_pin_plan_destroy(all);
    if (a < 0) {
        pb_set_err(err, errlen, "hwloc found no PU");
        return -EIO;
    }
    char pair[32];
    if (cross) {
        if (b < 0) {
            pb_set_err(err, errlen, "needs two cores; %s %d",
                    cpus && *cpus ? "--cpus covers" : "this machine has",
                    ncores);
            return -ENODEV;
        }
        snprintf(pair, sizeof pair, "%d,%d", a, b);
    } else {
        snprintf(pair, sizeof pair, "%d", a);
    }
    return pb_pin_plan_create(PB_PIN_COMPACT, pair, 2, 0, out, err, errlen);
}

static void describe_pair(const pb_pin_plan *pair, const char *parties,
                          char *buf, size_t len)
{
    if (!pair) {
        snprintf(buf, len, "none (unbound)");
        return;
    }
    int a = pb_pin_cpu_of(pair, 0), b = pb_pin_cpu_of(pair, 1);
    if (a == b)
        snprintf(buf, len, "both %s on PU%d (same PU)", parties, a);
    else
        snprintf(buf, len, "%s on PU%d and PU%d (different cores)", parties, a, b);
}

/* ------------------------------------------------------------ pipe rtt */

/* The child of pb_cal_pipe_rtt: echoes bytes until EOF. Never returns. */
static void __attribute__((noreturn))
echo_child(const pb_pin_plan *pair, int in_fd, int out_fd)
{
    if (pair && pb_pin_worker_start(1, (void *)pair) != 0)
        _exit(2);
    unsigned char b;
    for (;;) {
        int rc = pb_cal__read_byte(in_fd, &b);
        if (rc == -EPIPE)
            _exit(0); /* the parent closed its end: done */
        if (rc < 0)
            _exit(3);
        if (pb_cal__write_byte(out_fd, b) < 0)
            _exit(4);
    }
}

int pb_cal_pipe_rtt(const pb_pin_plan *pair, unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    int p2c[2] = {-1, -1}, c2p[2] = {-1, -1};
    sigpipe_guard guard;
    int rc = pb_cal__sigpipe_block(&guard);
    if (rc < 0)
        return rc;
    if (pipe2(p2c, O_CLOEXEC) != 0 || pipe2(c2p, O_CLOEXEC) != 0) {
        rc = -errno;
        pb_cal__close_fd(&p2c[0]);
        pb_cal__close_fd(&p2c[1]);
        pb_cal__sigpipe_unblock(&guard);
        return rc;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        pb_cal__close_fd(&p2c[0]);
        pb_cal__close_fd(&p2c[1]);
        pb_cal__close_fd(&c2p[0]);
        pb_cal__close_fd(&c2p[1]);
        pb_cal__sigpipe_unblock(&guard);
        return rc;
    }
    if (pid == 0) {
        close(p2c[1]);
        close(c2p[0]);
        echo_child(pair, p2c[0], c2p[1]);
    }
    pb_cal__close_fd(&p2c[0]);
    pb_cal__close_fd(&c2p[1]);

    pb_pin_saved *saved = NULL;
    rc = pb_cal__pin_self(pair, 0, &saved);
    unsigned char b = 0;
    /* One untimed round trip: the child is up and pinned after it. */
    if (rc == 0 && (rc = pb_cal__write_byte(p2c[1], b)) == 0)
        rc = pb_cal__read_byte(c2p[0], &b);
    uint64_t t0 = ex_now_ns(), t1;
    for (unsigned i = 0; rc == 0 && i < iters; i++) {
        rc = pb_cal__write_byte(p2c[1], (unsigned char)i);
        if (rc == 0)
            rc = pb_cal__read_byte(c2p[0], &b);
    }
    t1 = ex_now_ns();
    int urc = pb_cal__unpin_self(saved);

    /* EOF tells the child to exit; if it is stuck elsewhere, kill it. */
    pb_cal__close_fd(&p2c[1]);
    pb_cal__close_fd(&c2p[0]);
    if (rc < 0)
        kill(pid, SIGKILL);
    int st = pb_cal__reap(pid);
    pb_cal__sigpipe_unblock(&guard);
    /* A child that exited on its own (exit 2: it could not pin) explains
     * the broken pipe the parent saw. */
    if (st != 0 && (rc == 0 || (rc == -EPIPE && st > 0 && st < 128)))
        rc = st < 0 ? st : -ECHILD;
    if (rc == 0)
        rc = urc;
    if (rc == 0)
        *ns = (double)(t1 - t0) / (double)iters;
    return rc;
}

int pb_cal_pipe_syscall_pair(unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    int rc = 0;
    unsigned char b = 0;
    uint64_t t0 = ex_now_ns();
    for (unsigned i = 0; rc == 0 && i < iters; i++) {
        rc = pb_cal__write_byte(p[1], (unsigned char)i);
        if (rc == 0)
            rc = pb_cal__read_byte(p[0], &b);
    }
    uint64_t t1 = ex_now_ns();
    close(p[0]);
    close(p[1]);
    if (rc == 0)
        *ns = (double)(t1 - t0) / (double)iters;
    return rc;
}

int pb_cal_context_switch(const pb_pin_plan *same, unsigned iters, double *ns)
{
    if (iters == 0 || !ns || !same)
        return -EINVAL;
    /* The baseline runs pinned like party 0, as the minimum of four short
     * runs: its cost is fixed and noise (preemption on a loaded machine)
     * only adds to it, and an inflated baseline would push the difference
     * towards zero or below. */
    pb_pin_saved *saved;
    double self = 0.0, rtt;
    int rc = pb_cal__pin_self(same, 0, &saved);
    if (rc < 0)
        return rc;
    unsigned chunk = iters / 4 ? iters / 4 : 1;
    for (int k = 0; rc == 0 && k < 4; k++) {
        double one;
        rc = pb_cal_pipe_syscall_pair(chunk, &one);
        if (rc == 0 && (k == 0 || one < self))
            self = one;
    }
    int urc = pb_cal__unpin_self(saved);
    if (rc == 0)
        rc = urc;
    if (rc == 0)
        rc = pb_cal_pipe_rtt(same, iters, &rtt);
    if (rc == 0)
        *ns = (rtt - 2.0 * self) / 2.0;
    return rc;
}

/* ------------------------------------------------------------ condvar rtt */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t to_a, to_b;
    int turn;   /* 1: B's move, 0: A's move */
    int stop;
    int pin_rc; /* B's pinning result, valid once B has answered once */
    const pb_pin_plan *pair;
} condvar_pingpong;

static void *condvar_b(void *arg)
{
    condvar_pingpong *pp = arg;
    int rc = pp->pair ? pb_pin_worker_start(1, (void *)pp->pair) : 0;
    pthread_mutex_lock(&pp->lock);
    pp->pin_rc = rc;
    for (;;) {
        while (pp->turn != 1 && !pp->stop)
            pthread_cond_wait(&pp->to_b, &pp->lock);
        if (pp->stop)
            break;
        pp->turn = 0;
        pthread_cond_signal(&pp->to_a);
    }
    pthread_mutex_unlock(&pp->lock);
    return NULL;
}

int pb_cal_condvar_rtt(const pb_pin_plan *pair, unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    condvar_pingpong pp;
    memset(&pp, 0, sizeof pp);
    pp.pair = pair;
    int rc;
    if ((rc = pthread_mutex_init(&pp.lock, NULL)) != 0)
        return -rc;
    if ((rc = pthread_cond_init(&pp.to_a, NULL)) != 0) {
        pthread_mutex_destroy(&pp.lock);
        return -rc;
    }
    if ((rc = pthread_cond_init(&pp.to_b, NULL)) != 0) {
        pthread_cond_destroy(&pp.to_a);
        pthread_mutex_destroy(&pp.lock);
        return -rc;
    }
    pb_pin_saved *saved = NULL;
    pthread_t tb;
    rc = pb_cal__pin_self(pair, 0, &saved);
    if (rc == 0) {
        rc = -pthread_create(&tb, NULL, condvar_b, &pp);
        if (rc < 0)
            pb_cal__unpin_self(saved);
    }
    if (rc < 0) {
        pthread_cond_destroy(&pp.to_b);
        pthread_cond_destroy(&pp.to_a);
        pthread_mutex_destroy(&pp.lock);
        return rc;
    }

    uint64_t t0 = 0, t1 = 0;
    pthread_mutex_lock(&pp.lock);
    /* Round 0 is the untimed warm-up: B is up (and pinned) after it. */
    for (unsigned i = 0; i <= iters; i++) {
        if (i == 1)
            t0 = ex_now_ns();
        pp.turn = 1;
        pthread_cond_signal(&pp.to_b);
        while (pp.turn != 0)
            pthread_cond_wait(&pp.to_a, &pp.lock);
        if (i == 0 && pp.pin_rc != 0)
            break;
    }
    t1 = ex_now_ns();
    rc = pp.pin_rc;
    pp.stop = 1;
    pthread_cond_signal(&pp.to_b);
    pthread_mutex_unlock(&pp.lock);

    int jrc = pthread_join(tb, NULL);
    int urc = pb_cal__unpin_self(saved);
    pthread_cond_destroy(&pp.to_b);
    pthread_cond_destroy(&pp.to_a);
    pthread_mutex_destroy(&pp.lock);
    if (rc == 0 && jrc != 0)
        rc = -jrc;
    if (rc == 0)
        rc = urc;
    if (rc == 0)
        *ns = (double)(t1 - t0) / (double)iters;
    return rc;
}

/* ------------------------------------------------------------ create, fork */

static void *empty_thread(void *arg)
{
    return arg;
}

int pb_cal_thread_create(unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    uint64_t t0 = ex_now_ns();
    for (unsigned i = 0; i < iters; i++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, empty_thread, NULL);
        if (rc != 0)
            return -rc;
        rc = pthread_join(t, NULL);
        if (rc != 0)
            return -rc;
    }
    *ns = (double)(ex_now_ns() - t0) / (double)iters;
    return 0;
}

int pb_cal_fork_wait(unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    uint64_t t0 = ex_now_ns();
    for (unsigned i = 0; i < iters; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return -errno;
        if (pid == 0)
            _exit(0);
        int st = pb_cal__reap(pid);
        if (st != 0)
            return st < 0 ? st : -ECHILD;
    }
    *ns = (double)(ex_now_ns() - t0) / (double)iters;
    return 0;
}

int pb_cal_ballast(size_t bytes, void **out)
{
    if (!out || bytes == 0)
        return -EINVAL;
    *out = NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
#ifdef MADV_NOHUGEPAGE
    /* 4 KiB pages: fork copies one page-table entry per page, as for a
     * heap of small objects. EINVAL means no THP support: fine. */
    if (madvise(p, bytes, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
        int rc = -errno;
        munmap(p, bytes);
        return rc;
    }
#endif
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    for (size_t off = 0; off < bytes; off += (size_t)page)
        ((volatile unsigned char *)p)[off] = 1;
    *out = p;
    return 0;
}

void pb_cal_ballast_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

/* ------------------------------------------------------------ the driver */

typedef enum {
    M_PIPE_RTT,
    M_CONDVAR_RTT,
    M_PIPE_SELF,
    M_CTX_SWITCH,
    M_THREAD_CREATE,
    M_FORK_WAIT,
    M_MEMCPY_BW,
    M_PIPE_BW,
} measure_kind;

typedef enum { PIN_NONE, PIN_SAME, PIN_CROSS } measure_pin;

typedef struct {
    const char *name;
    const char *what;
    measure_kind kind;
    measure_pin pin;
    const char *parties;
    unsigned iters, quick_iters;
    size_t ballast; /* SIZE_MAX: the big one (opt->big_fork_bytes) */
    size_t bytes;   /* bandwidth measures: bytes per operation */
} measure_def;

#define MIB ((size_t)1 << 20)

static const measure_def measures[] = {
    {"pipe_rtt_same_pu",
     "1-byte ping-pong over two pipes between two processes; ns per round trip",
     M_PIPE_RTT, PIN_SAME, "processes", 2000, 400, 0, 0},
    {"pipe_rtt_cross_core",
     "1-byte ping-pong over two pipes between two processes; ns per round trip",
     M_PIPE_RTT, PIN_CROSS, "processes", 2000, 400, 0, 0},
    {"condvar_rtt_same_pu",
     "mutex + condition-variable hand-off between two threads; ns per round trip",
     M_CONDVAR_RTT, PIN_SAME, "threads", 2000, 400, 0, 0},
    {"condvar_rtt_cross_core",
     "mutex + condition-variable hand-off between two threads; ns per round trip",
     M_CONDVAR_RTT, PIN_CROSS, "threads", 2000, 400, 0, 0},
    {"pipe_syscall_pair",
     "write + read of 1 byte on one pipe by one thread (no switch); ns per pair",
     M_PIPE_SELF, PIN_NONE, NULL, 20000, 4000, 0, 0},
    {"context_switch",
     "(pipe round trip between two processes on one PU - 2 x write+read) / 2; "
     "ns per switch",
     M_CTX_SWITCH, PIN_SAME, "processes", 2000, 400, 0, 0},
    {"memcpy_bw_1mib",
     "memcpy of 1 MiB between two warm buffers; ns per copy (bytes / ns = GB/s)",
     M_MEMCPY_BW, PIN_NONE, NULL, 2000, 400, 0, MIB},
    {"memcpy_bw_64mib",
     "memcpy of 64 MiB between two warm buffers; ns per copy (bytes / ns = GB/s)",
     M_MEMCPY_BW, PIN_NONE, NULL, 16, 4, 0, 64 * MIB},
    {"pipe_bw_64kib",
     "64 KiB written into a pipe (as large as allowed) and read by another "
     "process (both unbound, as the pool's workers), back to back; ns per "
     "transfer (bytes / ns = GB/s)",
     M_PIPE_BW, PIN_NONE, NULL, 4000, 800, 0, 64 << 10},
    {"pipe_bw_1mib",
     "1 MiB written into a pipe (as large as allowed) and read by another "
     "process (both unbound, as the pool's workers), back to back; ns per "
     "transfer (bytes / ns = GB/s)",
     M_PIPE_BW, PIN_NONE, NULL, 256, 64, 0, MIB},
    {"pipe_bw_64mib",
     "64 MiB written into a pipe (as large as allowed) and read by another "
     "process (both unbound, as the pool's workers), back to back; ns per "
     "transfer (bytes / ns = GB/s)",
     M_PIPE_BW, PIN_NONE, NULL, 4, 2, 0, 64 * MIB},
    {"thread_create_join",
     "pthread_create + pthread_join of a thread that returns at once; ns per pair",
     M_THREAD_CREATE, PIN_NONE, NULL, 500, 100, 0, 0},
    {"fork_wait_1mib",
     "fork + child _exit(0) + waitpid with 1 MiB of touched heap; ns per fork",
     M_FORK_WAIT, PIN_NONE, NULL, 100, 20, MIB, 0},
    {"fork_wait_256mib",
     "fork + child _exit(0) + waitpid with 256 MiB of touched heap (4 KiB pages); "
     "ns per fork",
     M_FORK_WAIT, PIN_NONE, NULL, 20, 4, SIZE_MAX, 0},
};

_Static_assert(sizeof measures / sizeof measures[0] == PB_CAL_NMEASURES,
               "PB_CAL_NMEASURES too small");

static int run_once(const measure_def *m, const pb_pin_plan *plan,
                    unsigned iters, double *ns)
{
    switch (m->kind) {
    case M_PIPE_RTT:
        return pb_cal_pipe_rtt(plan, iters, ns);
    case M_CONDVAR_RTT:
        return pb_cal_condvar_rtt(plan, iters, ns);
    case M_PIPE_SELF:
        return pb_cal_pipe_syscall_pair(iters, ns);
    case M_CTX_SWITCH:
        return pb_cal_context_switch(plan, iters, ns);
    case M_THREAD_CREATE:
        return pb_cal_thread_create(iters, ns);
    case M_FORK_WAIT:
        return pb_cal_fork_wait(iters, ns);
    case M_MEMCPY_BW:
        return pb_cal_memcpy_bw(m->bytes, iters, ns);
    case M_PIPE_BW:
        return pb_cal_pipe_bw(plan, m->bytes, iters, ns);
    }
    return -EINVAL;
}

/* Whether name is in the comma-separated list only (NULL: every one). */
static bool measure_wanted(const char *only, const char *name)
{
    if (!only)
        return true;
    size_t len = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += len)
        if ((p == only || p[-1] == ',') && (p[len] == ',' || p[len] == 0))
            return true;
    return false;
}

static void progress_line(const pb_cal_options *opt, size_t i, size_t n,
                          const char *name, unsigned rep, unsigned reps)
{
    if (!opt->progress)
        return;
    if (!name)
        fprintf(stderr, "\r%-72s\r", "");
    else
        fprintf(stderr, "\rcalibrate [%zu/%zu] %-24s rep %u/%u   ", i + 1, n,
                name, rep, reps);
    fflush(stderr);
}

/* The two pair plans: same (one PU) and cross (two cores; NULL with a
 * note in cross_note when there is one core).  0 or -errno with err. */
static int make_pair_plans(const char *cpus, pb_pin_plan **same, pb_pin_plan **cross,
                           char *cross_note, size_t notelen, char *err, size_t errlen)
{
    *same = *cross = NULL;
    int rc = pb_cal_pair_plan(0, cpus, same, err, errlen);
    if (rc < 0)
        return rc;
    rc = pb_cal_pair_plan(1, cpus, cross, cross_note, notelen);
    if (rc < 0 && rc != -ENODEV) {
        pb_set_err(err, errlen, "%s", cross_note);
        pb_pin_plan_destroy(*same);
        *same = NULL;
        return rc;
    }
    return 0;
}

/* r's name, what, reps and iterations from m and the options. */
static void result_init(pb_cal_result *r, const measure_def *m, const pb_cal_options *opt,
                        unsigned reps)
{
    memset(r, 0, sizeof *r);
    r->name = m->name;
    r->what = m->what;
    r->bytes = m->bytes;
    r->reps = reps;
    r->iters = opt->iters ? opt->iters : (opt->quick ? m->quick_iters : m->iters);
}

/* The untimed warm-up (page faults, lazy binding, caches) then the timed
 * repetitions into samples, with the ballast mapped meanwhile.  0 or
 * -errno with err. */
static int sample_measure(const pb_cal_options *opt, const measure_def *m, size_t i,
                          const pb_pin_plan *plan, const pb_cal_result *r, size_t ballast_bytes,
                          double *samples, char *err, size_t errlen)
{
    const size_t nm = sizeof measures / sizeof measures[0];
    void *ballast = NULL;
    int rc = 0;
    if (ballast_bytes && (rc = pb_cal_ballast(ballast_bytes, &ballast)) < 0) {
        pb_set_err(err, errlen, "%s: cannot map %zu bytes of ballast: %s",
                   m->name, ballast_bytes, strerror(-rc));
        return rc;
    }
    double ns;
    unsigned warm = r->iters / 4 ? r->iters / 4 : 1;
    progress_line(opt, i, nm, m->name, 0, r->reps);
    rc = run_once(m, plan, warm, &ns);
    for (unsigned k = 0; rc == 0 && k < r->reps; k++) {
        progress_line(opt, i, nm, m->name, k + 1, r->reps);
        rc = run_once(m, plan, r->iters, &samples[k]);
    }
    pb_cal_ballast_free(ballast, ballast_bytes);
    if (rc < 0)
        pb_set_err(err, errlen, "%s: %s", m->name, strerror(-rc));
    return rc;
}

/* Measures m (the i-th) into r: its summary and notes, or r marked
 * skipped when it needs two cores and there is one.  0 or -errno. */
static int measure_one(const pb_cal_options *opt, const measure_def *m, size_t i,
                       const pb_pin_plan *same, const pb_pin_plan *cross,
                       const char *cross_note, double *samples, pb_cal_result *r,
                       char *err, size_t errlen)
{
    if (m->pin == PIN_CROSS && !cross) {
        r->skipped = 1;
        r->reps = 0;
        snprintf(r->pinning, sizeof r->pinning, "-");
        snprintf(r->note, sizeof r->note, "skipped: %s", cross_note);
        return 0;
    }
    const pb_pin_plan *plan = m->pin == PIN_SAME ? same : m->pin == PIN_CROSS ? cross : NULL;
    if (m->pin == PIN_NONE)
        snprintf(r->pinning, sizeof r->pinning, "none (unbound)");
    else
        describe_pair(plan, m->parties, r->pinning, sizeof r->pinning);
    size_t big = opt->big_fork_bytes ? opt->big_fork_bytes : 256 * MIB;
    size_t bytes = m->ballast == SIZE_MAX ? big : m->ballast;
    int rc = sample_measure(opt, m, i, plan, r, bytes, samples, err, errlen);
    if (rc < 0)
        return rc;
    if ((rc = pb_summarize(samples, r->reps, &r->s)) < 0) {
        pb_set_err(err, errlen, "%s: summary: %s", m->name, strerror(-rc));
        return rc;
    }
    char warn[160];
    if (pb_spread_warning(&r->s, 0, warn, sizeof warn))
        snprintf(r->note, sizeof r->note, "%s", warn);
    if (m->ballast == SIZE_MAX && bytes != 256 * MIB) {
        size_t used = strlen(r->note);
        snprintf(r->note + used, sizeof r->note - used,
                 "%sballast %zu bytes instead of 256 MiB", used ? "; " : "", bytes);
    }
    return 0;
}

int pb_calibrate_run(const pb_cal_options *opt, pb_cal_result *results,
                     size_t *n, char *err, size_t errlen)
{
    if (!opt || !results || !n)
        return -EINVAL;
    *n = 0;
    unsigned reps = opt->reps ? opt->reps : (opt->quick ? 5 : 11);
    pb_pin_plan *same, *cross;
    char cross_note[160] = "";
    int rc = make_pair_plans(opt->cpus, &same, &cross, cross_note, sizeof cross_note,
                             err, errlen);
    if (rc < 0)
        return rc;
    double *samples = calloc(reps, sizeof *samples);
    if (!samples) {
        pb_set_err(err, errlen, "out of memory");
        rc = -ENOMEM;
    }
    for (size_t i = 0; samples && i < sizeof measures / sizeof measures[0] && rc == 0; i++) {
        if (!measure_wanted(opt->only, measures[i].name))
            continue;
        pb_cal_result *r = &results[(*n)++];
        result_init(r, &measures[i], opt, reps);
        rc = measure_one(opt, &measures[i], i, same, cross, cross_note, samples, r, err, errlen);
    }
    progress_line(opt, 0, 0, NULL, 0, 0);
    free(samples);
    pb_pin_plan_destroy(same);
    pb_pin_plan_destroy(cross);
    return rc;
}

/* ------------------------------------------------------------ output */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* ns values with 0.1 ns resolution; ratios (cv, ci_level) with 4 digits. */
static void json_number(FILE *f, double v, int ratio)
{
    if (!isfinite(v))
        fputs("null", f);
    else if (ratio)
        fprintf(f, "%.4g", v);
    else
        fprintf(f, "%.1f", v);
}

int pb_cal_write_json(FILE *f, const pb_cal_options *opt,
                      const pb_cal_result *results, size_t n)
{
    char host[256] = "unknown";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = 0;
    char stamp[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    long npus = sysconf(_SC_NPROCESSORS_ONLN);

    fprintf(f, "{\n  \"schema_version\": %d,\n  \"kind\": \"poolbench-calibrate\",\n",
            PB_CAL_SCHEMA_VERSION);
    fputs("  \"hostname\": ", f);
    json_string(f, host);
    fputs(",\n  \"timestamp_utc\": ", f);
    json_string(f, stamp);
    fprintf(f, ",\n  \"poolbench_version\": \"%s\",\n  \"online_cpus\": %ld,\n"
            "  \"quick\": %s,\n  \"cpus\": ", EX_VERSION, npus,
            opt && opt->quick ? "true" : "false");
    json_string(f, opt && opt->cpus ? opt->cpus : "");
    fputs(",\n", f);
    fputs("  \"measures\": [", f);
    for (size_t i = 0; i < n; i++) {
        const pb_cal_result *r = &results[i];
        fputs(i ? ",\n    {" : "\n    {", f);
        fputs("\"name\": ", f);
        json_string(f, r->name);
        fputs(", \"unit\": \"ns\", \"skipped\": ", f);
        fputs(r->skipped ? "true" : "false", f);
        const struct { const char *k; double v; int ratio; } nums[] = {
            {"median", r->s.median, 0}, {"p5", r->s.p5, 0},
            {"p95", r->s.p95, 0},       {"min", r->s.min, 0},
            {"max", r->s.max, 0},       {"mean", r->s.mean, 0},
            {"stddev", r->s.stddev, 0}, {"cv", r->s.cv, 1},
            {"ci_low", r->s.ci_low, 0}, {"ci_high", r->s.ci_high, 0},
            {"ci_level", r->s.ci_level, 1},
        };
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
            fprintf(f, ", \"%s\": ", nums[k].k);
            if (r->skipped)
                fputs("null", f);
            else
                json_number(f, nums[k].v, nums[k].ratio);
        }
        fprintf(f, ", \"noutliers\": %zu, \"reps\": %u, \"iters\": %u, \"bytes\": %zu",
                r->skipped ? (size_t)0 : r->s.noutliers, r->reps, r->iters, r->bytes);
        fputs(", \"pinning\": ", f);
        json_string(f, r->pinning);
        fputs(", \"what\": ", f);
        json_string(f, r->what);
        fputs(", \"note\": ", f);
        json_string(f, r->note);
        fputc('}', f);
    }
    fputs("\n  ]\n}\n", f);
    if (fflush(f) != 0 || ferror(f))
        return -EIO;
    return 0;
}

static const char *fmt_ns(double ns, char *buf, size_t len)
{
    if (!isfinite(ns))
        snprintf(buf, len, "-");
    else if (fabs(ns) < 1e3)
        snprintf(buf, len, "%.0f ns", ns);
    else if (fabs(ns) < 1e6)
        snprintf(buf, len, "%.2f us", ns / 1e3);
    else
        snprintf(buf, len, "%.2f ms", ns / 1e6);
    return buf;
}

void pb_cal_write_table(FILE *f, const pb_cal_result *results, size_t n)
{
    fprintf(f, "%-24s %10s %10s %10s %10s %5s %6s  %s\n", "measure", "median",
            "p5", "p95", "min", "reps", "iters", "pinning");
    for (size_t i = 0; i < n; i++) {
        const pb_cal_result *r = &results[i];
        char a[32], b[32], c[32], d[32];
        if (r->skipped) {
            fprintf(f, "%-24s %10s %10s %10s %10s %5s %6s  %s\n", r->name, "-",
                    "-", "-", "-", "-", "-", r->note);
            continue;
        }
        char bw[32] = "";
        if (r->bytes && r->s.median > 0)
            snprintf(bw, sizeof bw, " (%.2f GB/s)", (double)r->bytes / r->s.median);
        fprintf(f, "%-24s %10s %10s %10s %10s %5u %6u  %s%s\n", r->name,
                fmt_ns(r->s.median, a, sizeof a), fmt_ns(r->s.p5, b, sizeof b),
                fmt_ns(r->s.p95, c, sizeof c), fmt_ns(r->s.min, d, sizeof d),
                r->reps, r->iters, r->pinning, bw);
    }
    for (size_t i = 0; i < n; i++)
        if (!results[i].skipped && results[i].note[0])
            fprintf(f, "note: %s: %s\n", results[i].name, results[i].note);
}

/* ------------------------------------------------------------ the CLI */

#define CAL_USAGE                                                              \
    "usage: poolbench calibrate [--reps N] [--iters N] [--json FILE] [--cpus LIST]\n" \
    "                           [--only LIST] [--quick] [--table]\n"                        \
    "  Measures this machine's limits, each the median of N repetitions:\n"    \
    "  pipe and condition-variable round trips (on one PU and across two\n"    \
    "  cores), context switch, pthread create+join, fork+wait at 1 MiB and\n"  \
    "  256 MiB of heap, memcpy bandwidth (1 MiB, 64 MiB) and the pipe's\n"    \
    "  bandwidth across cores (64 KiB, 1 MiB, 64 MiB). Writes JSON\n"         \
    "  (schema_version 1) to stdout or FILE.\n"                              \
    "  --reps N     repetitions per measure, 1..1000 (default 11; 5 with --quick)\n" \
    "  --iters N    iterations per repetition for every measure, 1..100000000\n" \
    "               (default: per measure, e.g. 2000 round trips, 20 forks)\n" \
    "  --json FILE  write the JSON to FILE (atomically) instead of stdout\n"   \
    "  --cpus LIST  place the parties within these PUs (default: the first\n"  \
    "               two cores)\n"                                              \
    "  --only LIST  these measures only (names as in the JSON, comma-separated)\n" \
    "  --quick      fewer repetitions and iterations: a few seconds instead\n" \
    "               of 10-20 s\n"                         \
    "  --table      print the table on stderr even when it is not a terminal\n" \
    "  --help       this text\n"

#define CAL_ACCEPTED \
    "--reps N, --iters N, --json FILE, --cpus LIST, --only LIST, --quick, --table, --help"


/* Where the JSON goes: stdout, or a temporary file next to `path` that is
 * renamed over it once complete, so a reader never sees half a file. It is
 * created before measuring: an unwritable destination fails at once. */
typedef struct {
    const char *path; /* NULL: stdout */
    char *tmp;
    FILE *f;
} json_output;

static int json_output_open(json_output *o, const char *path)
{
    memset(o, 0, sizeof *o);
    if (!path || strcmp(path, "-") == 0) {
        o->f = stdout;
        return 0;
    }
    o->path = path;
    size_t len = strlen(path) + 32;
    o->tmp = malloc(len);
    if (!o->tmp) {
        fprintf(stderr, "poolbench calibrate: out of memory\n");
        return -1;
    }
    snprintf(o->tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || !(o->f = fdopen(fd, "w"))) {
        fprintf(stderr, "poolbench calibrate: cannot create %s: %s\n", o->tmp,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(o->tmp);
        }
        free(o->tmp);
        o->tmp = NULL;
        return -1;
    }
    return 0;
}

/* Writes (results != NULL) and commits, or discards (results == NULL). */
static int json_output_close(json_output *o, const pb_cal_options *opt,
                             const pb_cal_result *results, size_t n)
{
    int rc = 0;
    if (results)
        rc = pb_cal_write_json(o->f, opt, results, n);
    if (!o->path) {
        if (rc < 0)
            fprintf(stderr, "poolbench calibrate: writing stdout: %s\n",
                    strerror(errno));
        return rc < 0 ? -1 : 0;
    }
    if (results && rc == 0 && fsync(fileno(o->f)) != 0)
        rc = -errno;
    if (fclose(o->f) != 0 && rc == 0)
        rc = -errno;
    if (results && rc == 0 && rename(o->tmp, o->path) != 0)
        rc = -errno;
    if (rc < 0)
        fprintf(stderr, "poolbench calibrate: cannot write %s: %s\n", o->path,
                strerror(-rc));
    if (rc < 0 || !results)
        unlink(o->tmp);
    free(o->tmp);
    return rc < 0 ? -1 : 0;
}

/* Every name of the list is a measure's. */
static bool only_valid(const char *list)
{
    char buf[512];
    if (!*list || strlen(list) >= sizeof buf)
        return false;
    strcpy(buf, list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bool found = false;
        for (size_t i = 0; i < sizeof measures / sizeof measures[0]; i++)
            found |= strcmp(measures[i].name, t) == 0;
        if (!found)
            return false;
    }
    return true;
}

typedef struct cal_cli {
    pb_cal_options opt;
    const char *json;   /* --json: a path, "-" or NULL for stdout */
    bool table;
} cal_cli;

/* One option: 0, -1 (--help printed) or the exit status after one
 * message. */
static int parse_option(int ch, const char *arg, char **argv, cal_cli *c)
{
    uint64_t v;
    switch (ch) {
    case 'Q': c->opt.quick = 1; return 0;
    case 'T': c->table = true; return 0;
    case 'r':
        if (!pb_parse_u64("calibrate", "--reps", arg, 1, 1000, false, &v))
            return PB_EXIT_USAGE;
        c->opt.reps = (unsigned)v;
        return 0;
    case 'i':
        if (!pb_parse_u64("calibrate", "--iters", arg, 1, 100000000, false, &v))
            return PB_EXIT_USAGE;
        c->opt.iters = (unsigned)v;
        return 0;
    case 'c': c->opt.cpus = arg; return 0;
    case 'o':
        if (!only_valid(arg))
            return pb_usage_error("calibrate", "--only: '%s' names no measure (accepted: "
                                  "measure names, comma-separated, as in the JSON)", arg);
        c->opt.only = arg;
        return 0;
    case 'j':
        if (!*arg)
            return pb_usage_error("calibrate", "--json: empty value (accepted: a file path, "
                                  "or - for stdout)");
        c->json = arg;
        return 0;
    case 'h': fputs(CAL_USAGE, stdout); return -1;
    case ':':
        return pb_usage_error("calibrate", "option %s needs a value (accepted: %s)",
                              argv[optind - 1], CAL_ACCEPTED);
    default:
        return pb_usage_error("calibrate", "unknown option '%s' (accepted: %s)",
                              argv[optind - 1], CAL_ACCEPTED);
    }
}

/* The command line into c; a bad --cpus list is a usage error found
 * before measuring.  0, -1 (--help) or the exit status. */
static int parse_cli(int argc, char **argv, cal_cli *c)
{
    static const struct option opts[] = {
        {"reps", required_argument, NULL, 'r'},
        {"iters", required_argument, NULL, 'i'},
        {"json", required_argument, NULL, 'j'},
        {"cpus", required_argument, NULL, 'c'},
        {"only", required_argument, NULL, 'o'},
        {"quick", no_argument, NULL, 'Q'},
        {"table", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    int ch, rc;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
        if ((rc = parse_option(ch, optarg, argv, c)))
            return rc;
    if (optind < argc)
        return pb_usage_error("calibrate", "unexpected argument '%s' (accepted: %s)",
                              argv[optind], CAL_ACCEPTED);
    if (c->opt.cpus) {
        pb_pin_plan *probe;
        char perr[256];
        int prc = pb_cal_pair_plan(0, c->opt.cpus, &probe, perr, sizeof perr);
        if (prc < 0) {
            fprintf(stderr, "poolbench calibrate: --cpus: %s\n", perr);
            return prc == -EINVAL ? PB_EXIT_USAGE : 1;
        }
        pb_pin_plan_destroy(probe);
    }
    return 0;
}

int pb_calibrate_main(int argc, char **argv)
{
    cal_cli c;
    int rc = parse_cli(argc, argv, &c);
    if (rc)
        return rc < 0 ? 0 : rc;
    json_output out;
    if (json_output_open(&out, c.json) < 0)
        return 1;
    int tty = isatty(STDERR_FILENO);
    c.opt.progress = tty;
    pb_cal_result results[PB_CAL_NMEASURES];
    size_t n = 0;
    char err[256] = "";
    rc = pb_calibrate_run(&c.opt, results, &n, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "poolbench calibrate: %s\n", err);
        json_output_close(&out, &c.opt, NULL, 0);
        return 1;
    }
    if (c.table || tty)
        pb_cal_write_table(stderr, results, n);
    return json_output_close(&out, &c.opt, results, n) < 0 ? 1 : 0;
}
