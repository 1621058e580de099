/*
 * calibrate.c - the driver of `poolbench calibrate`: the table of measures
 * (name, what it means, which function, how the parties are placed, how
 * many iterations), and running them lmbench-style: an untimed warm-up,
 * then the repetitions, each a loop of iterations timed as a whole, summed
 * up by stats.c.  The measures themselves are in calibrate_rtt.c (hand-off
 * round trips, context switch), calibrate_spawn.c (thread create, fork)
 * calibrate_bw.c (bandwidth) and calibrate_mpi.c (MPI ping-pong, in a
 * program of its own under mpirun); the output in calibrate_out.c; the
 * command line in cmd_calibrate.c.
 */
#include "cli.h"
#include "calibrate.h"
#include "calibrate_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    M_MPI_RTT, /* parties: the btl under test; warm-up and reps in one mpirun */
    M_MPI_BW,
} measure_kind;

typedef enum { PIN_NONE, PIN_SAME, PIN_CROSS } measure_pin;

typedef struct {
    const char *name;
    const char *what;
    measure_kind kind;
    measure_pin pin;
    const char *parties; /* who the pair is; for M_MPI_*, the btl */
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
    {"mpi_rtt_8b_tcp",
     "8-byte MPI_Send/MPI_Recv ping-pong between two ranks of mpirun -n 2, "
     "--mca btl tcp,self (loopback TCP on one host); ns per round trip",
     M_MPI_RTT, PIN_NONE, "tcp", 2000, 400, 0, 8},
    {"mpi_rtt_8b_vader",
     "8-byte MPI_Send/MPI_Recv ping-pong between two ranks of mpirun -n 2, "
     "--mca btl vader,self (shared memory); ns per round trip",
     M_MPI_RTT, PIN_NONE, "vader", 2000, 400, 0, 8},
    {"mpi_bw_1mib_tcp",
     "1 MiB messages sent back to back (MPI_Send) from one rank to the other, "
     "--mca btl tcp,self; ns per message (bytes / ns = GB/s)",
     M_MPI_BW, PIN_NONE, "tcp", 200, 40, 0, MIB},
    {"mpi_bw_1mib_vader",
     "1 MiB messages sent back to back (MPI_Send) from one rank to the other, "
     "--mca btl vader,self; ns per message (bytes / ns = GB/s)",
     M_MPI_BW, PIN_NONE, "vader", 200, 40, 0, MIB},
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
    case M_MPI_RTT:
    case M_MPI_BW:
        break; /* mpi_sample: every repetition in one mpirun */
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
    r->bytes = m->kind == M_MPI_RTT ? 0 : m->bytes; /* a round trip is no bandwidth */
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

/* An MPI measure's repetitions into samples, from one mpirun (its
 * warm-up included), bounded by a deadline well above what a loaded
 * machine needs; 1 with r marked skipped and why (no Open MPI, ...). */
static int mpi_sample(const pb_cal_options *opt, const measure_def *m, size_t i,
                      pb_cal_result *r, double *samples)
{
    progress_line(opt, i, sizeof measures / sizeof measures[0], m->name, 1, r->reps);
    int one_cpu = sysconf(_SC_NPROCESSORS_ONLN) < 2;
    const char *hosts = getenv("OMPI_MCA_orte_default_hostfile"); /* make bench-cluster */
    if (hosts && *hosts)
        snprintf(r->pinning, sizeof r->pinning, "2 ranks on the hosts of %.80s", hosts);
    else
        snprintf(r->pinning, sizeof r->pinning, "%s", one_cpu
                 ? "2 ranks, unbound (one PU: --oversubscribe)"
                 : "2 ranks, mpirun --bind-to core (one core each)");
    if (pb_cal_mpi_pingpong(m->parties, m->kind == M_MPI_BW, m->bytes, r->iters, r->reps,
                            opt->quick ? 30 : 60, samples, r->note, sizeof r->note) == 0)
        return 0;
    r->skipped = 1;
    r->reps = 0;
    snprintf(r->pinning, sizeof r->pinning, "-");
    return 1;
}

/* Measures m (the i-th) into r: its summary and notes, or r marked
 * skipped when it needs two cores and there is one, or Open MPI.  0 or
 * -errno. */
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
    int rc = 0;
    if (m->kind == M_MPI_RTT || m->kind == M_MPI_BW) {
        if (mpi_sample(opt, m, i, r, samples))
            return 0;
    } else if ((rc = sample_measure(opt, m, i, plan, r, bytes, samples, err, errlen)) < 0) {
        return rc;
    }
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

const char *pb_cal_measure_name(size_t i)
{
    return i < sizeof measures / sizeof measures[0] ? measures[i].name : NULL;
}

bool pb_cal_only_valid(const char *list)
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
