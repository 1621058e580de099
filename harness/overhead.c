/*
 * overhead.c: `poolbench overhead`, the per-task cost of an empty task on
 * each backend, two ways: throughput (submit N, then wait for all: the
 * amortised cost per task when the queue is full) and latency (one task in
 * flight at a time: submit, wait, repeat: the full hand-off round trip).
 * Futures and per-task stats are included: this is what a user pays.
 */
#include "cli.h"
#include "commands.h"
#include "executor.h"
#include "stats.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int empty_task(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    return 0;
}

/* Returns ns per task, or a negative value on error. */
static double measure_throughput(ex_executor *ex, size_t n)
{
    ex_future **fs = calloc(n, sizeof *fs);
    if (!fs)
        return -1;
    uint64_t t0 = ex_now_ns();
    size_t k = 0;
    for (; k < n; k++)
        if (ex_submit(ex, empty_task, NULL, 0, &fs[k]))
            break;
    ex_wait(fs, k, EX_ALL_COMPLETED, EX_FOREVER, NULL);
    uint64_t t1 = ex_now_ns();
    for (size_t i = 0; i < k; i++)
        ex_future_release(fs[i]);
    free(fs);
    return k == n ? (double)(t1 - t0) / (double)n : -1;
}

/* ns per task through ex_map with this chunksize (inputs are NULL). */
static double measure_map(ex_executor *ex, size_t n, size_t chunk)
{
    const void **ins = calloc(n, sizeof *ins);
    size_t *lens = calloc(n, sizeof *lens);
    ex_map *m = NULL;
    double r = -1;
    if (!ins || !lens)
        goto out;
    uint64_t t0 = ex_now_ns();
    if (ex_map_create_array(ex, empty_task, ins, lens, n, chunk, 0, &m))
        goto out;
    size_t idx, got = 0;
    int st;
    while (ex_map_next(m, &idx, &st, NULL, NULL, NULL, EX_FOREVER) == 0)
        got += st == 0;
    uint64_t t1 = ex_now_ns();
    if (got == n)
        r = (double)(t1 - t0) / (double)n;
out:
    ex_map_destroy(m);
    free(ins);
    free(lens);
    return r;
}

/* Median round trip of one task in flight, ns, and its p95: stats.c's
 * median and percentile, as everywhere else in poolbench. */
static double measure_latency(ex_executor *ex, size_t n, double *p95)
{
    double *v = calloc(n, sizeof *v);
    if (!v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        ex_future *f;
        uint64_t t0 = ex_now_ns();
        if (ex_submit(ex, empty_task, NULL, 0, &f)) {
            free(v);
            return -1;
        }
        ex_future_wait(f, EX_FOREVER);
        v[i] = (double)(ex_now_ns() - t0);
        ex_future_release(f);
    }
    pb_summary s;
    int rc = pb_summarize(v, n, &s);
    free(v);
    if (rc)
        return -1;
    *p95 = s.p95;
    return s.median;
}

static const char usage[] =
    "usage: poolbench overhead [options]\n"
    "\n"
    "Per-task cost of an empty task on each executor: throughput (submit N,\n"
    "wait for all) and latency (one task in flight, median and p95).\n"
    "\n"
    "  -e, --executors LIST  comma-separated: seq,threads,procs (default all)\n"
    "  -w, --workers N       pool size, 1..256 (default 2)\n"
    "  -n, --tasks N         tasks for the throughput test (default 100000;\n"
    "                        the latency test runs N/10, at least 100)\n"
    "  -c, --chunksize N     also ex_map with this chunksize: the per-task cost\n"
    "                        when tasks are batched per hand-off (default 64,\n"
    "                        0 = skip)\n"
    "      --no-cpu-stats    also measure seq and threads with per-task CPU\n"
    "                        time and context switches off (measure_cpu)\n"
    "      --exact-cpu       also measure seq and threads reading the thread\n"
    "                        clock at every task boundary (exact_cpu), even\n"
    "                        when rseq shows the thread was never switched out\n"
    "\n"
    "Each figure follows a warm-up round of the same size, so it is the\n"
    "steady cost, with the executor's futures already in memory.\n"
    "      --json            one JSON object per executor and line\n"
    "  -h, --help            this text\n";

int pb_cmd_overhead(int argc, char **argv)
{
    static const struct option opts[] = {
        {"executors", required_argument, NULL, 'e'},
        {"workers", required_argument, NULL, 'w'},
        {"tasks", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"no-cpu-stats", no_argument, NULL, 'C'},
        {"exact-cpu", no_argument, NULL, 'X'},
        {"chunksize", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    char kinds_text[64] = "seq,threads,procs";
    unsigned workers = 2;
    size_t tasks = 100000;
    bool json = false, also_no_cpu = false, also_exact = false;
    size_t chunksize = 64;
    uint64_t v;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":e:w:n:c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'e':
            if (strlen(optarg) >= sizeof kinds_text)
                return pb_usage_error("overhead", "--executors is too long: '%s'", optarg);
            strcpy(kinds_text, optarg);
            break;
        case 'w':
            if (!pb_parse_u64("overhead", "--workers", optarg, 1, 256, false, &v))
                return PB_EXIT_USAGE;
            workers = (unsigned)v;
            break;
        case 'n':
            if (!pb_parse_u64("overhead", "--tasks", optarg, 100, 10000000, true, &v))
                return PB_EXIT_USAGE;
            tasks = (size_t)v;
            break;
        case 'j': json = true; break;
        case 'C': also_no_cpu = true; break;
        case 'X': also_exact = true; break;
        case 'c':
            if (!pb_parse_u64("overhead", "--chunksize", optarg, 0, 1000000, false, &v))
                return PB_EXIT_USAGE;
            chunksize = (size_t)v;
            break;
        case 'h': fputs(usage, stdout); return 0;
        case ':': return pb_usage_error("overhead", "option %s needs a value", argv[optind - 1]);
        default:
            return pb_usage_error("overhead", "unknown option '%s' (see poolbench overhead --help)",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pb_usage_error("overhead", "unexpected argument '%s'", argv[optind]);
    ex_kind kinds[3];
    size_t nk = 0;
    char *save = NULL;
    for (char *tok = strtok_r(kinds_text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (nk == 3 || ex_kind_parse(tok, &kinds[nk]))
            return pb_usage_error("overhead", "unknown executor '%s' in --executors (accepted: seq, threads, procs)", tok);
        nk++;
    }
    if (!json)
        printf("%-8s %7s %9s %20s %20s %14s %18s\n", "executor", "workers", "cpu stats",
               "throughput ns/task", "latency median ns", "latency p95 ns", "map chunked ns/task");
    size_t nlat = tasks / 10 < 100 ? 100 : tasks / 10;
    /* Each executor with per-task CPU stats, then seq and threads with
     * exact readings (--exact-cpu) and without CPU stats (--no-cpu-stats). */
    enum { CPU_ON, CPU_EXACT, CPU_OFF };
    static const char *const mode_name[] = {"on", "exact", "off"};
    size_t nruns = nk;
    int mode_of[9];
    ex_kind kind_of[9];
    for (size_t k = 0; k < nk; k++) {
        kind_of[k] = kinds[k];
        mode_of[k] = CPU_ON;
    }
    for (int m = CPU_EXACT; m <= CPU_OFF; m++)
        for (size_t k = 0; k < nk; k++)
            if (kinds[k] != EX_PROCS && (m == CPU_EXACT ? also_exact : also_no_cpu)) {
                kind_of[nruns] = kinds[k];
                mode_of[nruns++] = m;
            }
    for (size_t k = 0; k < nruns; k++) {
        ex_config cfg;
        ex_config_init(&cfg, kind_of[k]);
        cfg.max_workers = workers;
        cfg.measure_cpu = mode_of[k] != CPU_OFF;
        cfg.exact_cpu = mode_of[k] == CPU_EXACT;
        ex_executor *ex;
        int rc = ex_create(&cfg, &ex);
        if (rc) {
            fprintf(stderr, "poolbench overhead: cannot create %s: %s\n", ex_kind_name(kind_of[k]),
                    ex_strerror(rc));
            return 1;
        }
        /* Warm up with a round of the same size: it faults in the memory
         * the futures need (the executor keeps it for reuse) and wakes
         * every worker, so the figure is the steady per-task cost. */
        measure_throughput(ex, tasks);
        double tput = measure_throughput(ex, tasks);
        double p95 = 0;
        double lat = measure_latency(ex, nlat, &p95);
        double chunked = chunksize ? measure_map(ex, tasks, chunksize) : -1;
        unsigned w = ex_workers(ex);
        ex_destroy(ex);
        if (tput < 0 || lat < 0) {
            fprintf(stderr, "poolbench overhead: %s: a submit failed\n", ex_kind_name(kind_of[k]));
            return 1;
        }
        if (json)
            printf("{\"executor\":\"%s\",\"workers\":%u,\"cpu_stats\":%s,\"exact_cpu\":%s,"
                   "\"cpu_switch_detection\":%s,\"tasks\":%zu,"
                   "\"throughput_ns_per_task\":%.1f,\"latency_median_ns\":%.0f,"
                   "\"latency_p95_ns\":%.0f,\"latency_samples\":%zu,\"map_chunksize\":%zu,"
                   "\"map_ns_per_task\":%.1f}\n",
                   ex_kind_name(kind_of[k]), w, mode_of[k] != CPU_OFF ? "true" : "false",
                   mode_of[k] == CPU_EXACT ? "true" : "false",
                   ex_cpu_switch_detection() ? "true" : "false", tasks, tput, lat,
                   p95, nlat, chunksize, chunked);
        else
            printf("%-8s %7u %9s %20.1f %20.0f %14.0f %18.1f\n", ex_kind_name(kind_of[k]), w,
                   mode_name[mode_of[k]], tput, lat, p95, chunked);
        fflush(stdout);
    }
    if (!json)
        printf("cpu stats \"on\": %s\n",
               ex_cpu_switch_detection()
                   ? "thread clock read only after a possible context switch (rseq detection)"
                   : "thread clock read at every task (no rseq switch detection here)");
    return 0;
}
