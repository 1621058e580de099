/*
 * overhead.c: `poolbench overhead`, the per-task cost of an empty task on
 * each backend, two ways: throughput (submit N, then wait for all: the
 * amortised cost per task when the queue is full) and latency (one task in
 * flight at a time: submit, wait, repeat: the full hand-off round trip).
 * Futures and per-task stats are included: this is what a user pays.
 */
#include "cli.h"
#include "json.h"
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

int pb_overhead_register(void)
{
    return ex_task_register("pb.overhead.empty", empty_task);
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
    "  -e, --executors LIST  comma-separated: seq,threads,procs,mpi (default\n"
    "                        seq,threads,procs)\n"
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

enum { CPU_ON, CPU_EXACT, CPU_OFF };
static const char *const mode_name[] = {"on", "exact", "off"};

/* The command line, parsed, and the runs it asks for: each executor with
 * per-task CPU stats, then seq and threads with exact readings
 * (--exact-cpu) and without CPU stats (--no-cpu-stats). */
typedef struct overhead_opts {
    char kinds_text[64];
    unsigned workers;
    size_t tasks, nlat, chunksize;
    bool json, also_no_cpu, also_exact;
    size_t nruns;
    ex_kind kind_of[9];
    int mode_of[9];
} overhead_opts;

/* One option into *o: 0, or the exit status of a usage error. */
static int parse_option(int ch, const char *arg, overhead_opts *o)
{
    uint64_t v;
    switch (ch) {
    case 'e':
        if (strlen(arg) >= sizeof o->kinds_text)
            return pb_usage_error("overhead", "--executors is too long: '%s'", arg);
        strcpy(o->kinds_text, arg);
        return 0;
    case 'w':
        if (!pb_parse_u64("overhead", "--workers", arg, 1, 256, false, &v))
            return PB_EXIT_USAGE;
        o->workers = (unsigned)v;
        return 0;
    case 'n':
        if (!pb_parse_u64("overhead", "--tasks", arg, 100, 10000000, true, &v))
            return PB_EXIT_USAGE;
        o->tasks = (size_t)v;
        return 0;
    case 'c':
        if (!pb_parse_u64("overhead", "--chunksize", arg, 0, 1000000, false, &v))
            return PB_EXIT_USAGE;
        o->chunksize = (size_t)v;
        return 0;
    case 'j': o->json = true; return 0;
    case 'C': o->also_no_cpu = true; return 0;
    default: /* 'X' */ o->also_exact = true; return 0;
    }
}

/* --executors into the list of runs. */
static int plan_runs(overhead_opts *o)
{
    ex_kind kinds[4];
    size_t nk = 0;
    char *save = NULL;
    for (char *tok = strtok_r(o->kinds_text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (nk == 4 || ex_kind_parse(tok, &kinds[nk]))
            return pb_usage_error("overhead", "unknown executor '%s' in --executors (accepted: "
                                  "seq, threads, procs, mpi)", tok);
        const char *why;
        if (kinds[nk] == EX_MPI && !ex_mpi_available(&why))
            return pb_usage_error("overhead", "the mpi executor is unavailable: %s", why);
        nk++;
    }
    for (size_t k = 0; k < nk; k++) {
        o->kind_of[o->nruns] = kinds[k];
        o->mode_of[o->nruns++] = CPU_ON;
    }
    for (int m = CPU_EXACT; m <= CPU_OFF; m++)
        for (size_t k = 0; k < nk; k++)
            if ((kinds[k] == EX_SEQ || kinds[k] == EX_THREADS) &&
                (m == CPU_EXACT ? o->also_exact : o->also_no_cpu)) {
                o->kind_of[o->nruns] = kinds[k];
                o->mode_of[o->nruns++] = m;
            }
    return 0;
}

/* The command line into *o: 0 to go on, -1 after --help, or the exit
 * status of a usage error. */
static int parse_cli(int argc, char **argv, overhead_opts *o)
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
    *o = (overhead_opts){.kinds_text = "seq,threads,procs", .workers = 2, .tasks = 100000,
                         .chunksize = 64};
    int ch, rc;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":e:w:n:c:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return -1;
        }
        if (ch == ':')
            return pb_usage_error("overhead", "option %s needs a value", argv[optind - 1]);
        if (ch == '?')
            return pb_usage_error("overhead", "unknown option '%s' (see poolbench overhead --help)",
                                  argv[optind - 1]);
        if ((rc = parse_option(ch, optarg, o)))
            return rc;
    }
    if (optind < argc)
        return pb_usage_error("overhead", "unexpected argument '%s'", argv[optind]);
    o->nlat = o->tasks / 10 < 100 ? 100 : o->tasks / 10;
    return plan_runs(o);
}

/* One run as a JSON object on one line; figures: throughput ns per task,
 * latency median and p95, map ns per task.  0 or -1. */
static int print_json(const overhead_opts *o, ex_kind kind, unsigned w, int mode,
                      const double figures[4])
{
    json_t *j = json_object();
    int rc = pb_json_str(j, "executor", ex_kind_name(kind));
    rc |= pb_json_int(j, "workers", w);
    rc |= pb_json_bool(j, "cpu_stats", mode != CPU_OFF);
    rc |= pb_json_bool(j, "exact_cpu", mode == CPU_EXACT);
    rc |= pb_json_bool(j, "cpu_switch_detection", ex_cpu_switch_detection());
    rc |= pb_json_int(j, "tasks", (long long)o->tasks);
    rc |= pb_json_num(j, "throughput_ns_per_task", figures[0], "%.1f");
    rc |= pb_json_num(j, "latency_median_ns", figures[1], "%.0f");
    rc |= pb_json_num(j, "latency_p95_ns", figures[2], "%.0f");
    rc |= pb_json_int(j, "latency_samples", (long long)o->nlat);
    rc |= pb_json_int(j, "map_chunksize", (long long)o->chunksize);
    rc |= pb_json_num(j, "map_ns_per_task", figures[3], "%.1f");
    return pb_json_finish(stdout, j, rc, 0);
}

/* Run k of the plan: create, warm up, measure, destroy, print; 0 or 1. */
static int run_one(const overhead_opts *o, size_t k)
{
    ex_kind kind = o->kind_of[k];
    int mode = o->mode_of[k];
    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = o->workers;
    cfg.measure_cpu = mode != CPU_OFF;
    cfg.exact_cpu = mode == CPU_EXACT;
    ex_executor *ex;
    int rc = ex_create(&cfg, &ex);
    if (rc) {
        fprintf(stderr, "poolbench overhead: cannot create %s: %s\n", ex_kind_name(kind),
                ex_strerror(rc));
        return 1;
    }
    /* Warm up with a round of the same size: it faults in the memory the
     * futures need (the executor keeps it for reuse) and wakes every
     * worker, so the figure is the steady per-task cost. */
    measure_throughput(ex, o->tasks);
    double tput = measure_throughput(ex, o->tasks);
    double p95 = 0;
    double lat = measure_latency(ex, o->nlat, &p95);
    double chunked = o->chunksize ? measure_map(ex, o->tasks, o->chunksize) : -1;
    unsigned w = ex_workers(ex);
    ex_destroy(ex);
    if (tput < 0 || lat < 0) {
        fprintf(stderr, "poolbench overhead: %s: a submit failed\n", ex_kind_name(kind));
        return 1;
    }
    if (o->json && print_json(o, kind, w, mode, (double[]){tput, lat, p95, chunked}) != 0)
        return 1;
    if (!o->json)
        printf("%-8s %7u %9s %20.1f %20.0f %14.0f %18.1f\n", ex_kind_name(kind), w,
               mode_name[mode], tput, lat, p95, chunked);
    fflush(stdout);
    return 0;
}

int pb_cmd_overhead(int argc, char **argv)
{
    overhead_opts o;
    int rc = parse_cli(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!o.json)
        printf("%-8s %7s %9s %20s %20s %14s %18s\n", "executor", "workers", "cpu stats",
               "throughput ns/task", "latency median ns", "latency p95 ns", "map chunked ns/task");
    for (size_t k = 0; k < o.nruns; k++)
        if (run_one(&o, k))
            return 1;
    if (!o.json)
        printf("cpu stats \"on\": %s\n",
               ex_cpu_switch_detection()
                   ? "thread clock read only after a possible context switch (rseq detection)"
                   : "thread clock read at every task (no rseq switch detection here)");
    return 0;
}
