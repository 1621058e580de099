/*
 * noise.h - what else the machine was doing while a run was measured.
 *
 * A benchmark on a shared or virtual machine measures the machine as much
 * as the code.  These functions put that on record for every run, so that a
 * report can say which runs to distrust instead of averaging them away:
 *
 *  - just before the run: the 1-minute load average and procs_running
 *    (/proc/loadavg, /proc/stat), and the CPUs actually available, measured
 *    by spinning one thread per allowed CPU for a few milliseconds (on this
 *    kind of VM a vCPU can come and go while steal stays 0, so only a
 *    measurement shows it);
 *  - over the run (pb_noise_window_begin/end around it): the share of CPU
 *    time stolen by the hypervisor and spent waiting for I/O, and the CPU
 *    time other processes used (everything busy in /proc/stat minus the
 *    run's own process tree and its HTTP server).
 *
 * /proc/stat counts in clock ticks (USER_HZ, usually 100 per second per
 * CPU), so the over-the-run figures have that resolution.  Nothing here
 * allocates except the probe's threads; the readers block only on procfs.
 */
#ifndef PB_NOISE_H
#define PB_NOISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The aggregate "cpu" line of /proc/stat, in clock ticks. */
typedef struct pb_cpu_ticks {
    unsigned long long user, nice, system, idle, iowait, irq, softirq, steal;
} pb_cpu_ticks;

/* Parses /proc/stat's text: the first "cpu " line into *t and the
 * "procs_running N" line into *procs_running (may be NULL).  0, or -EINVAL
 * when either line is missing or malformed.  Does not block. */
int pb_proc_stat_parse(const char *text, pb_cpu_ticks *t, long *procs_running);

/* Reads and parses /proc/stat.  0 or a negative errno.  Blocks on procfs. */
int pb_proc_stat_read(pb_cpu_ticks *t, long *procs_running);

/* All ticks, and the busy ones (user, nice, system, irq, softirq). */
unsigned long long pb_ticks_total(const pb_cpu_ticks *t);
unsigned long long pb_ticks_busy(const pb_cpu_ticks *t);

/* The CPUs available to the calling process right now: spins one thread
 * per CPU in its affinity mask for ms milliseconds and returns the sum of
 * the threads' CPU time divided by the elapsed time (2.0 on an idle 2-CPU
 * machine, about 1.0 when another process keeps one CPU busy or a vCPU is
 * not scheduled).  NAN if a thread cannot be started.  Blocks for ms. */
double pb_capacity_probe(double ms);

/* Everything recorded about one run's surroundings.  NAN (or -1 for
 * procs_running) when not measured. */
typedef struct pb_noise {
    double loadavg_1m;      /* /proc/loadavg, just before the run */
    long procs_running;     /* /proc/stat, just before (the reader counts) */
    double capacity_cpus;   /* pb_capacity_probe just before the run */
    double window_s;        /* the window the figures below cover */
    double steal_pct;       /* stolen ticks / all ticks over the window */
    double iowait_pct;      /* iowait ticks / all ticks over the window */
    double others_cpu_s;    /* busy CPU of other processes over the window */
} pb_noise;

/* Fills the "just before" figures (probe_ms <= 0: no probe) and marks the
 * window figures unmeasured.  Blocks for the probe. */
void pb_noise_before(pb_noise *n, double probe_ms);

/* The over-the-run window: begin and end snapshot /proc/stat and the
 * server's CPU time (server_pid <= 0: none); pb_noise_account then fills
 * steal, iowait and the others' CPU, given the CPU seconds the run itself
 * used over the same window (user + system, its reaped children included,
 * which is what pb_run measures between the same two points).  begin and
 * end block on procfs; account does not block. */
typedef struct pb_noise_window {
    pb_cpu_ticks t0, t1;
    uint64_t ns0, ns1;
    double server_cpu0, server_cpu1;
    pid_t server_pid;
    int ok;
} pb_noise_window;

void pb_noise_window_begin(pb_noise_window *w, pid_t server_pid);
void pb_noise_window_end(pb_noise_window *w);
void pb_noise_account(const pb_noise_window *w, double own_cpu_s, pb_noise *n);

/* A process's user + system CPU seconds from /proc/PID/stat, or NAN. */
double pb_process_cpu_s(pid_t pid);

#endif /* PB_NOISE_H */
