/*
 * calibrate.h - `poolbench calibrate`: this machine's physical limits,
 * lmbench-style, so that executor overheads can be read against them.
 *
 * Each measure is a loop of `iters` operations timed as a whole (one
 * repetition = total / iters ns per operation), repeated `reps` times after
 * one untimed warm-up; the reported figure is the median of the
 * repetitions, with p5, p95, min and a 95% interval (stats.h).
 *
 * Measures (all in ns per operation):
 *   pipe_rtt_same_pu / _cross_core   1-byte ping-pong over two pipes between
 *                                    two processes, on one PU / two cores
 *   condvar_rtt_same_pu / _cross_core  mutex + condition-variable hand-off
 *                                    round trip between two threads
 *   pipe_syscall_pair                write + read of 1 byte on a pipe by one
 *                                    thread (no switch: the baseline)
 *   context_switch                   (pipe_rtt on one PU - 2 pipe_syscall_pair)
 *                                    / 2, as lmbench's lat_ctx
 *   thread_create_join               pthread_create + pthread_join, empty body
 *   fork_wait_1mib / _256mib         fork, child _exit(0), waitpid, with that
 *                                    much touched heap (4 KiB pages) in the parent
 *   memcpy_bw_1mib / _64mib          memcpy between two warm buffers of that size
 *                                    (ns per copy; `bytes` gives the bandwidth)
 *   pipe_bw_64kib / _1mib / _64mib   that many bytes written into a pipe (made
 *                                    as large as the system allows) and read by
 *                                    another process, both unbound as the
 *                                    pool's workers are, back to back: ns per
 *                                    transfer at the pipe's best streaming
 *                                    rate (calibrate_bw.c)
 *   mpi_rtt_8b_tcp / _vader          8-byte MPI_Send/MPI_Recv ping-pong between
 *                                    two ranks of `mpirun -n 2`, btl tcp,self
 *                                    or vader,self (shared memory); ns per
 *                                    round trip (calibrate_mpi.c)
 *   mpi_bw_1mib_tcp / _vader         1 MiB messages sent back to back from one
 *                                    rank to the other; ns per message
 *                                    (skipped, with the reason, without
 *                                    Open MPI or its mpi_pingpong program)
 *
 * The measurement functions below fork or start threads: every child is
 * reaped and every thread joined before they return, even on error, and
 * the calling thread's CPU affinity is restored. They block for the length
 * of the measurement. Errors are negative errno values.
 */
#ifndef PB_CALIBRATE_H
#define PB_CALIBRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "pin.h"
#include "stats.h"

#define PB_CAL_SCHEMA_VERSION 1

/* ------------------------------------------------ one repetition each */

/* A "pair" plan places the two parties: worker 0 is the calling thread,
 * worker 1 the other thread or process. NULL = both unpinned.
 * pb_cal_pair_plan() builds one over the PUs in `cpus` (a CPU list as for
 * pb_cpuset_parse; NULL = all): cross = 0 puts both on the first PU of the
 * first core, cross = 1 on the first PUs of the first two cores, and
 * returns -ENODEV (with a note in err) when there is only one core; -EINVAL
 * for a bad list. Blocks while hwloc reads the machine. */
int pb_cal_pair_plan(int cross, const char *cpus, pb_pin_plan **out,
                     char *err, size_t errlen);

/* ns per 1-byte pipe round trip between this process and a forked child. */
int pb_cal_pipe_rtt(const pb_pin_plan *pair, unsigned iters, double *ns);
/* ns per mutex + condvar hand-off round trip between this thread and
 * another. */
int pb_cal_condvar_rtt(const pb_pin_plan *pair, unsigned iters, double *ns);
/* ns per write + read of 1 byte on one pipe by the calling thread. */
int pb_cal_pipe_syscall_pair(unsigned iters, double *ns);
/* ns per context switch: pipe round trip between two processes on one PU
 * (`same` must place both on one PU) minus two write + read pairs, halved;
 * the pair's cost is the minimum of four short runs on the same PU, since
 * noise only inflates it. A difference <= 0 (switches nearly free, or a
 * very noisy run) is reported as measured. */
int pb_cal_context_switch(const pb_pin_plan *same, unsigned iters, double *ns);
/* ns per pthread_create + pthread_join of a thread that returns at once. */
int pb_cal_thread_create(unsigned iters, double *ns);
/* ns per fork + child _exit(0) + waitpid, at the caller's current RSS. */
int pb_cal_fork_wait(unsigned iters, double *ns);
/* ns per memcpy of `bytes` between two warm buffers (calibrate_bw.c). */
int pb_cal_memcpy_bw(size_t bytes, unsigned iters, double *ns);
/* ns per transfer of `bytes` through a pipe to a forked child (pair: where
 * each runs, NULL = unbound), iters transfers back to back, the pipe as
 * large as the system allows (F_SETPIPE_SZ up to pipe-max-size). */
int pb_cal_pipe_bw(const pb_pin_plan *pair, size_t bytes, unsigned iters,
                   double *ns);

/* The MPI measures (calibrate_mpi.c): `mpirun -n 2 --mca btl BTL,self
 * mpi_pingpong` (bw = 0: rtt, ping-pong of bytes; 1: bw, messages of bytes
 * back to back), reps samples of ns per operation after its own warm-up,
 * killed past timeout_s.  0 with samples filled, or 1 with "skipped: why"
 * in note: Open MPI not installed, mpi_pingpong not built, mpirun failed or
 * timed out (never an error of the calibration).  No process is left
 * behind.  Blocks for the measurement. */
int pb_cal_mpi_pingpong(const char *btl, int bw, size_t bytes, unsigned iters,
                        unsigned reps, double timeout_s, double *samples,
                        char *note, size_t notelen);
/* Where the mpi_pingpong program is: $POOLBENCH_MPI_PINGPONG, else
 * ../lib/poolbench/ from the running binary (make install), else beside it
 * (the build tree).  0, or -ENOENT (the last path tried is in out). */
int pb_cal_mpi_pingpong_path(char *out, size_t len);

/* Maps and touches `bytes` of anonymous memory with transparent huge pages
 * disabled for it (the pages a heap of small objects has), so that fork
 * has that many page-table entries to copy. Free with pb_cal_ballast_free.
 * Blocks while the pages are touched. */
int pb_cal_ballast(size_t bytes, void **out);
void pb_cal_ballast_free(void *p, size_t bytes);

/* ------------------------------------------------ the whole calibration */

typedef struct pb_cal_options {
    unsigned reps;       /* repetitions per measure (0: 11, or 5 with quick) */
    unsigned iters;      /* iterations per repetition for every measure
                            (0: each measure's own default) */
    int quick;           /* a few seconds instead of 10-20 s */
    size_t big_fork_bytes; /* ballast of the large fork measure
                              (0: 256 MiB); tests make it small */
    int progress;        /* a progress line on stderr */
    const char *cpus;    /* measure on these PUs only (NULL: all) */
    const char *only;    /* these measures only, comma-separated names
                            (NULL: all; results get only those) */
} pb_cal_options;

typedef struct pb_cal_result {
    const char *name;    /* e.g. "pipe_rtt_same_pu" (static storage) */
    const char *what;    /* one sentence: what one operation is */
    char pinning[128];   /* where the parties ran */
    char note[192];      /* why it was skipped, or the spread warning */
    int skipped;         /* 1: not measured on this machine (see note) */
    unsigned reps, iters;
    size_t bytes;        /* bytes moved per operation (bandwidth measures;
                            0 for the others) */
    pb_summary s;        /* over the reps, ns per operation */
} pb_cal_result;

/* The number of measures pb_calibrate_run() reports (skipped included). */
#define PB_CAL_NMEASURES 18

/* Runs every measure. results must hold PB_CAL_NMEASURES entries; *n gets
 * the number filled. Returns 0, or a negative errno from the first measure
 * that failed (with its name and the reason in err). Blocks for the whole
 * calibration. */
int pb_calibrate_run(const pb_cal_options *opt, pb_cal_result *results,
                     size_t *n, char *err, size_t errlen);

/* The name of measure i, in the order they run (the JSON's "name"); NULL
 * for i >= PB_CAL_NMEASURES. */
const char *pb_cal_measure_name(size_t i);

/* Whether every name of the comma-separated list is a measure's (the
 * names of the JSON); false for an empty list. */
bool pb_cal_only_valid(const char *list);

/* Writes the results as one JSON object (schema_version, hostname,
 * timestamp, options, machine PU/core counts, and "measures": name, what,
 * unit "ns", median, p5, p95, min, max, mean, stddev, cv, ci_low, ci_high,
 * ci_level, noutliers, reps, iters, pinning, note, skipped). Returns 0 or
 * -EIO. */
int pb_cal_write_json(FILE *f, const pb_cal_options *opt,
                      const pb_cal_result *results, size_t n);

/* A human-readable table of the results. Does not block beyond the write. */
void pb_cal_write_table(FILE *f, const pb_cal_result *results, size_t n);

/* The `poolbench calibrate` subcommand: argv[0] is "calibrate"; options
 * --reps N (1..1000), --iters N (1..100000000), --json FILE (written
 * atomically; default stdout), --cpus LIST (pin the parties within these
 * PUs), --only LIST (these measures only), --quick, --table (always print the table on stderr; it is printed
 * anyway when stderr is a terminal), --help.
 * Returns 0, 1 if a measure failed, 2 for bad usage (one line on stderr).
 * Blocks for the whole calibration (10-20 s; a few seconds with --quick). */
int pb_cmd_calibrate(int argc, char **argv);

#endif /* PB_CALIBRATE_H */
