/*
 * noise.c - load, steal, iowait, other processes and available CPUs around
 * a measured run (see noise.h).  The sweep's run process calls
 * pb_noise_before() just before a run and brackets the run with the
 * window functions (through pb_run_opts.window), so every runs.csv row says
 * what the machine was doing meanwhile.
 */
#include "noise.h"

#include "executor.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads a small procfs file whole into buf (NUL-terminated).  0 or -errno. */
static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    return 0;
}

int pb_proc_stat_parse(const char *text, pb_cpu_ticks *t, long *procs_running)
{
    const char *cpu = strncmp(text, "cpu ", 4) == 0 ? text : strstr(text, "\ncpu ");
    if (!cpu)
        return -EINVAL;
    if (*cpu == '\n')
        cpu++;
    memset(t, 0, sizeof *t);
    /* Old kernels stop after iowait..softirq; steal came in 2.6.11. */
    int n = sscanf(cpu + 4, "%llu %llu %llu %llu %llu %llu %llu %llu", &t->user, &t->nice,
                   &t->system, &t->idle, &t->iowait, &t->irq, &t->softirq, &t->steal);
    if (n < 4)
        return -EINVAL;
    if (procs_running) {
        const char *p = strstr(text, "\nprocs_running ");
        if (!p || sscanf(p + 15, "%ld", procs_running) != 1)
            return -EINVAL;
    }
    return 0;
}

int pb_proc_stat_read(pb_cpu_ticks *t, long *procs_running)
{
    /* procs_running comes after a line per CPU and the "intr" line (one
     * counter per interrupt, several KiB): 64 KiB covers hundreds of CPUs,
     * hence a heap buffer. */
    size_t len = 1 << 16;
    char *buf = malloc(len);
    if (!buf)
        return -ENOMEM;
    int rc = read_small("/proc/stat", buf, len);
    if (rc == 0)
        rc = pb_proc_stat_parse(buf, t, procs_running);
    free(buf);
    return rc;
}

unsigned long long pb_ticks_busy(const pb_cpu_ticks *t)
{
    return t->user + t->nice + t->system + t->irq + t->softirq;
}

unsigned long long pb_ticks_total(const pb_cpu_ticks *t)
{
    return pb_ticks_busy(t) + t->idle + t->iowait + t->steal;
}

double pb_process_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof buf))
        return NAN;
    /* The command name is in parentheses and may hold spaces or ')': the
     * fields that follow start after the last ')'. Field 3 is the state;
     * utime and stime are fields 14 and 15. */
    const char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                     &stime) != 2)
        return NAN;
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)(utime + stime) / (double)hz : NAN;
}

/* ------------------------------------------------------------ the probe */

typedef struct spinner {
    pthread_t thread;
    uint64_t deadline_ns;
    double cpu_s;
} spinner;

static double thread_cpu_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
        return NAN;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *spin(void *arg)
{
    spinner *s = arg;
    double c0 = thread_cpu_s();
    while (ex_now_ns() < s->deadline_ns) {
    }
    s->cpu_s = thread_cpu_s() - c0;
    return NULL;
}

double pb_capacity_probe(double ms)
{
    cpu_set_t set;
    int ncpu = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (ncpu <= 0 || !(ms > 0))
        return NAN;
    spinner *s = calloc((size_t)ncpu, sizeof *s);
    if (!s)
        return NAN;
    /* One deadline for all: a thread that starts late because no CPU was
     * free spins less, which is exactly the capacity that was missing. */
    uint64_t t0 = ex_now_ns();
    int started = 0;
    for (; started < ncpu; started++) {
        s[started].deadline_ns = t0 + (uint64_t)(ms * 1e6);
        if (pthread_create(&s[started].thread, NULL, spin, &s[started]))
            break;
    }
    double sum = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(s[i].thread, NULL);
        sum += s[i].cpu_s;
    }
    free(s);
    return started == ncpu ? sum / (ms / 1e3) : NAN;
}

/* -------------------------------------------------------------- records */

static double loadavg_1m(void)
{
    char buf[256];
    double v;
    if (read_small("/proc/loadavg", buf, sizeof buf) || sscanf(buf, "%lf", &v) != 1)
        return NAN;
    return v;
}

void pb_noise_before(pb_noise *n, double probe_ms)
{
    n->window_s = n->steal_pct = n->iowait_pct = n->others_cpu_s = NAN;
    n->loadavg_1m = loadavg_1m();
    pb_cpu_ticks t;
    if (pb_proc_stat_read(&t, &n->procs_running))
        n->procs_running = -1;
    n->capacity_cpus = probe_ms > 0 ? pb_capacity_probe(probe_ms) : NAN;
}

void pb_noise_window_begin(pb_noise_window *w, pid_t server_pid)
{
    w->server_pid = server_pid;
    w->server_cpu0 = server_pid > 0 ? pb_process_cpu_s(server_pid) : 0;
    w->ok = pb_proc_stat_read(&w->t0, NULL) == 0;
    w->ns0 = ex_now_ns();
}

void pb_noise_window_end(pb_noise_window *w)
{
    w->ns1 = ex_now_ns();
    w->ok = w->ok && pb_proc_stat_read(&w->t1, NULL) == 0;
    w->server_cpu1 = w->server_pid > 0 ? pb_process_cpu_s(w->server_pid) : 0;
}

/* b - a, or 0 when the counter went backwards: the kernel's iowait (and,
 * on some kernels, idle) counters can decrease slightly between reads. */
static unsigned long long ticks_since(unsigned long long a, unsigned long long b)
{
    return b > a ? b - a : 0;
}

/* The per-field increase from a to b, each clamped at 0. */
static pb_cpu_ticks ticks_delta(const pb_cpu_ticks *a, const pb_cpu_ticks *b)
{
    return (pb_cpu_ticks){
        .user = ticks_since(a->user, b->user), .nice = ticks_since(a->nice, b->nice),
        .system = ticks_since(a->system, b->system), .idle = ticks_since(a->idle, b->idle),
        .iowait = ticks_since(a->iowait, b->iowait), .irq = ticks_since(a->irq, b->irq),
        .softirq = ticks_since(a->softirq, b->softirq), .steal = ticks_since(a->steal, b->steal),
    };
}

void pb_noise_account(const pb_noise_window *w, double own_cpu_s, pb_noise *n)
{
    if (!w->ok)
        return;
    n->window_s = (double)(w->ns1 - w->ns0) / 1e9;
    pb_cpu_ticks d = ticks_delta(&w->t0, &w->t1);
    double total = (double)pb_ticks_total(&d);
    if (total > 0) {
        n->steal_pct = 100.0 * (double)d.steal / total;
        n->iowait_pct = 100.0 * (double)d.iowait / total;
    }
    /* The loopback server is part of the run, not a competitor (a server
     * that vanished mid-run counts as zero). */
    double server = w->server_cpu1 - w->server_cpu0;
    if (!isfinite(server))
        server = 0;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz > 0) {
        double busy = (double)pb_ticks_busy(&d) / (double)hz;
        n->others_cpu_s = busy - own_cpu_s - server;
    }
}
