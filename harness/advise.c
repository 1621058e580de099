/*
 * advise.c: `poolbench advise`, the pool size this workload wants.
 *
 * Goetz's formula (Java Concurrency in Practice, 8.2):
 *     N = Ncpu x U x (1 + W / C)
 * with U the target CPU utilisation and W / C the ratio of the time a task
 * waits (blocked: I/O, sleep) to the time it computes.  W and C are
 * measured, not guessed: a sequential run gives every task's CPU time and
 * its blocked time (latency - wait - CPU, with no queue in the way).  The
 * prediction is then checked against a short measured sweep of pool sizes
 * around it, and both are printed.
 */
#include "cli.h"
#include "json.h"
#include "commands.h"
#include "stats.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WL 32
#define MAX_CAND 12

static const char usage[] =
    "usage: poolbench advise --workload NAME[,NAME...] [options]\n"
    "\n"
    "Measures the workload's wait/compute ratio W/C on a sequential run and\n"
    "prints the pool size of Goetz's formula N = Ncpu x U x (1 + W/C) for each\n"
    "executor, then checks it against a short sweep of pool sizes and prints\n"
    "the measured best beside it.\n"
    "\n"
    "  -W, --workload LIST    workload(s) to advise on\n"
    "  -p, --param KEY=VALUE  workload parameter (repeatable; for every\n"
    "                         listed workload that has KEY)\n"
    "  -e, --executors LIST   threads,procs (default both)\n"
    "  -n, --tasks N          tasks per run (default 100)\n"
    "  -U, --utilization U    target CPU utilisation, 0 < U <= 1 (default 1)\n"
    "      --max-workers N    cap on the prediction and the check, 1..4096\n"
    "                         (default 256)\n"
    "  -r, --reps N           repetitions per checked size, 1..20 (default 2)\n"
    "      --json FILE        also write the results as a JSON array to FILE\n"
    "  -h, --help             this text\n";

typedef struct advice {
    const wl_workload *w;
    char params[1024];
    double wait_ms, compute_ms, ratio;
    unsigned predicted;
    unsigned measured_best[3];
    double best_throughput[3];
    double predicted_throughput[3];
    bool checked[3];
    size_t check_tasks;
} advice;

/* The command line, parsed. */
typedef struct advise_opts {
    char wl_text[1024], ex_text[64];
    const char *kvs[64];
    size_t nkv;
    size_t tasks;
    double util;
    unsigned max_workers, reps, ncpu;
    const char *json_path;
    ex_kind kinds[3];
    size_t nk;
} advise_opts;

/* What the run works on: one advice per listed workload, its parameters. */
typedef struct advise_set {
    advice adv[MAX_WL];
    wl_params *params[MAX_WL];
    size_t nw;
} advise_set;

static int cmp_unsigned(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

/* Median throughput of reps runs, or NAN if none succeeded. */
static double throughput_of(pb_run_opts *o, unsigned reps)
{
    double v[20];
    size_t n = 0;
    for (unsigned i = 0; i < reps; i++) {
        pb_measured m;
        pb_measure(o, &(pb_measure_opts){.pin = PB_PIN_NONE}, &m);
        if (m.ok)
            v[n++] = m.r.throughput;
        else
            fprintf(stderr, "poolbench advise: %s: %s\n", o->workload->name, m.err);
    }
    if (n == 0)
        return NAN;
    pb_sort(v, n);
    return pb_median_sorted(v, n);
}

/* One option into *a: 0, or the exit status of a usage error. */
static int parse_option(int ch, const char *arg, advise_opts *a)
{
    uint64_t v;
    switch (ch) {
    case 'W':
        if (strlen(arg) >= sizeof a->wl_text)
            return pb_usage_error("advise", "--workload is too long");
        strcpy(a->wl_text, arg);
        return 0;
    case 'p':
        if (a->nkv == 64)
            return pb_usage_error("advise", "too many -p parameters (at most 64)");
        if (!strchr(arg, '='))
            return pb_usage_error("advise", "-p takes KEY=VALUE, got '%s'", arg);
        a->kvs[a->nkv++] = arg;
        return 0;
    case 'e':
        if (strlen(arg) >= sizeof a->ex_text)
            return pb_usage_error("advise", "--executors is too long");
        strcpy(a->ex_text, arg);
        return 0;
    case 'n':
        if (!pb_parse_u64("advise", "--tasks", arg, 1, 1000000, true, &v))
            return PB_EXIT_USAGE;
        a->tasks = (size_t)v;
        return 0;
    case 'U':
        if (!pb_parse_double("advise", "--utilization", arg, 0.01, 1, &a->util))
            return PB_EXIT_USAGE;
        return 0;
    case 'm':
        if (!pb_parse_u64("advise", "--max-workers", arg, 1, 4096, false, &v))
            return PB_EXIT_USAGE;
        a->max_workers = (unsigned)v;
        return 0;
    case 'r':
        if (!pb_parse_u64("advise", "--reps", arg, 1, 20, false, &v))
            return PB_EXIT_USAGE;
        a->reps = (unsigned)v;
        return 0;
    default: /* 'j' */
        a->json_path = arg;
        return 0;
    }
}

/* --executors: threads and/or procs. */
static int parse_executors(advise_opts *a)
{
    char *save = NULL;
    for (char *t = strtok_r(a->ex_text, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (a->nk == 3 || ex_kind_parse(t, &a->kinds[a->nk]) || a->kinds[a->nk] == EX_SEQ)
            return pb_usage_error("advise",
                                  "bad executor '%s' in --executors (accepted: threads, procs)", t);
        a->nk++;
    }
    return 0;
}

/* The command line into *a: 0 to go on, -1 after --help, or the exit
 * status of a usage error. */
static int parse_cli(int argc, char **argv, advise_opts *a)
{
    static const struct option opts[] = {
        {"workload", required_argument, NULL, 'W'},
        {"param", required_argument, NULL, 'p'},
        {"executors", required_argument, NULL, 'e'},
        {"tasks", required_argument, NULL, 'n'},
        {"utilization", required_argument, NULL, 'U'},
        {"max-workers", required_argument, NULL, 'm'},
        {"reps", required_argument, NULL, 'r'},
        {"json", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    *a = (advise_opts){.ex_text = "threads,procs", .tasks = 100, .util = 1.0,
                       .max_workers = 256, .reps = 2};
    int ch, rc;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":W:p:e:n:U:r:h", opts, NULL)) != -1) {
        if (ch == 'h') {
            fputs(usage, stdout);
            return -1;
        }
        if (ch == ':')
            return pb_usage_error("advise", "option %s needs a value", argv[optind - 1]);
        if (ch == '?')
            return pb_usage_error("advise", "unknown option '%s' (see poolbench advise --help)",
                                  argv[optind - 1]);
        if ((rc = parse_option(ch, optarg, a)))
            return rc;
    }
    if (optind < argc)
        return pb_usage_error("advise", "unexpected argument '%s'", argv[optind]);
    if (!a->wl_text[0])
        return pb_usage_error("advise", "--workload is required (accepted: %s)", wl_names());
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    a->ncpu = ncpu > 0 ? (unsigned)ncpu : 1;
    return parse_executors(a);
}

/* The key of a KEY=VALUE parameter. */
static void param_key(const char *kv, char *key, size_t size)
{
    snprintf(key, size, "%.*s", (int)(strchr(kv, '=') - kv), kv);
}

/* Workload w's parameters from the -p options that name one of its keys. */
static int add_workload(const advise_opts *a, const wl_workload *w, advise_set *s)
{
    const char *mine[64];
    size_t nmine = 0;
    for (size_t i = 0; i < a->nkv; i++) {
        char key[128];
        param_key(a->kvs[i], key, sizeof key);
        if (wl_param_find(w, key))
            mine[nmine++] = a->kvs[i];
    }
    advice *adv = &s->adv[s->nw];
    memset(adv, 0, sizeof *adv);
    adv->w = w;
    int rc = pb_build_params("advise", w, mine, nmine, NULL, &s->params[s->nw]);
    if (rc)
        return rc;
    char why[512];
    if (wl_requires_isolation(s->params[s->nw], why, sizeof why) ||
        pb_needs_timeout(s->params[s->nw]))
        return pb_usage_error("advise", "workload '%s': crashing or hanging tasks cannot be "
                              "sized (drop crash_rate/hang_rate)", w->name);
    s->nw++;
    return 0;
}

/* --workload's list into s; like sweep, a -p key that none of the listed
 * workloads has is a mistake, not something to ignore. */
static int build_workloads(advise_opts *a, advise_set *s)
{
    char *save = NULL;
    int rc;
    for (char *t = strtok_r(a->wl_text, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const wl_workload *w = wl_find(t);
        if (!w)
            return pb_usage_error("advise", "unknown workload '%s' (accepted: %s)", t, wl_names());
        if (s->nw == MAX_WL)
            return pb_usage_error("advise", "--workload lists more than %d workloads", MAX_WL);
        if ((rc = add_workload(a, w, s)))
            return rc;
    }
    for (size_t i = 0; i < a->nkv; i++) {
        char key[128];
        param_key(a->kvs[i], key, sizeof key);
        bool found = false;
        for (size_t k = 0; k < s->nw; k++)
            found |= wl_param_find(s->adv[k].w, key) != NULL;
        if (!found)
            return pb_usage_error("advise", "parameter '%s' belongs to none of the listed workloads",
                                  key);
    }
    return 0;
}

/* One loopback server for every workload that needs one; 0 or 1. */
static int start_server(advise_set *s, pb_server *srv)
{
    for (size_t i = 0; i < s->nw; i++) {
        if (!wl_needs_server(s->params[i]))
            continue;
        if (srv->pid < 0 && pb_start_server_if_needed("advise", s->params[i], srv))
            return 1;
        wl_params_set(s->params[i], "base_url", pb_server_url(srv), NULL, 0);
    }
    return 0;
}

/* W and C from a sequential run (no queue, so blocked is waiting), and
 * Goetz's N from them; false when the run failed. */
static bool predict(const advise_opts *a, advice *adv, pb_run_opts *o)
{
    pb_measured m;
    pb_measure(o, &(pb_measure_opts){.pin = PB_PIN_NONE}, &m);
    if (!m.ok) {
        fprintf(stderr, "poolbench advise: %s: %s\n", adv->w->name, m.err);
        return false;
    }
    adv->compute_ms = m.r.cpu_mean_ns / 1e6;
    adv->wait_ms = m.r.blocked_mean_ns / 1e6;
    /* A task that uses no measurable CPU (getrusage resolves 1 us)
     * waits "infinitely" relatively: the cap decides. */
    double c = adv->compute_ms > 0.001 ? adv->compute_ms : 0.001;
    adv->ratio = adv->wait_ms / c;
    double n = (double)a->ncpu * a->util * (1 + adv->ratio);
    adv->predicted = n < 1 ? 1 : n > a->max_workers ? a->max_workers : (unsigned)lround(n);
    return true;
}

/* The sizes the check measures: around the prediction, plus 1 and ncpu,
 * sorted, each once. */
static size_t candidates(const advise_opts *a, unsigned predicted, unsigned cand[MAX_CAND])
{
    size_t nc = 0;
    unsigned raw[] = {1, a->ncpu, predicted / 4, predicted / 2, predicted, predicted * 2};
    for (size_t k = 0; k < sizeof raw / sizeof raw[0]; k++) {
        unsigned x = raw[k] < 1 ? 1 : raw[k] > a->max_workers ? a->max_workers : raw[k];
        bool dup = false;
        for (size_t j = 0; j < nc; j++)
            dup |= cand[j] == x;
        if (!dup)
            cand[nc++] = x;
    }
    qsort(cand, nc, sizeof cand[0], cmp_unsigned);
    return nc;
}

/* The check on one executor: the measured best of the candidate sizes. */
static void check_executor(const advise_opts *a, advice *adv, pb_run_opts *o, ex_kind kind,
                           const unsigned *cand, size_t nc)
{
    o->kind = kind;
    double best = -1;
    for (size_t k = 0; k < nc; k++) {
        o->workers = cand[k];
        if (pb_progress_enabled())
            fprintf(stderr, "\r\033[Kadvise: %s on %s, %u workers", adv->w->name,
                    ex_kind_name(kind), cand[k]);
        double t = throughput_of(o, a->reps);
        if (cand[k] == adv->predicted)
            adv->predicted_throughput[kind] = t;
        /* Prefer fewer workers unless more are clearly (>5%) better. */
        if (isfinite(t) && t > best * 1.05) {
            best = t;
            adv->measured_best[kind] = cand[k];
            adv->best_throughput[kind] = t;
        }
    }
    adv->checked[kind] = best > 0;
}

static void print_advice(const advise_opts *a, const advice *adv)
{
    printf("%s (%s): W = %.3f ms, C = %.3f ms per task, W/C = %.2f\n", adv->w->name,
           adv->params, adv->wait_ms, adv->compute_ms, adv->ratio);
    printf("  Goetz: N = %u cpus x U %.2f x (1 + W/C) = %u workers%s\n", a->ncpu, a->util,
           adv->predicted, adv->predicted == a->max_workers ? " (capped by --max-workers)" : "");
    printf("  checked with %zu tasks per run, median of %u runs per size\n", adv->check_tasks,
           a->reps);
    for (size_t e = 0; e < a->nk; e++) {
        ex_kind k = a->kinds[e];
        if (!adv->checked[k]) {
            printf("  %-8s check failed (no successful run)\n", ex_kind_name(k));
            continue;
        }
        printf("  %-8s predicted %u (%.1f tasks/s), measured best %u (%.1f tasks/s)%s\n",
               ex_kind_name(k), adv->predicted, adv->predicted_throughput[k],
               adv->measured_best[k], adv->best_throughput[k],
               adv->measured_best[k] == adv->predicted ? ": agree" : "");
    }
    fflush(stdout);
}

/* Prediction, check and its lines for one workload; 0 or 1. */
static int advise_one(const advise_opts *a, advice *adv, wl_params *params)
{
    wl_params_format(params, adv->params, sizeof adv->params);
    pb_run_opts o = {.kind = EX_SEQ, .workers = 1, .workload = adv->w, .params = params,
                     .tasks = a->tasks, .seed = 1};
    if (!predict(a, adv, &o))
        return 1;
    unsigned cand[MAX_CAND] = {0};
    size_t nc = candidates(a, adv->predicted, cand);
    /* A pool larger than the number of tasks cannot show its worth:
     * the check runs at least 4 tasks per worker of the largest size. */
    size_t floor_ = 4 * (size_t)cand[nc - 1];
    o.tasks = adv->check_tasks = a->tasks > floor_ ? a->tasks : floor_;
    for (size_t e = 0; e < a->nk; e++)
        check_executor(a, adv, &o, a->kinds[e], cand, nc);
    if (pb_progress_enabled())
        fputs("\r\033[K", stderr);
    print_advice(a, adv);
    return 0;
}

/* "name":{"threads":v,"procs":v}: one value per executor, unsigned or a
 * throughput (null when there is none). */
static int json_per_kind(json_t *j, const char *name, const advise_opts *a, const unsigned *u,
                         const double *t)
{
    json_t *per = json_object();
    int rc = 0;
    for (size_t e = 0; e < a->nk; e++) {
        ex_kind k = a->kinds[e];
        if (u)
            rc |= pb_json_int(per, ex_kind_name(k), u[k]);
        else if (isfinite(t[k]) && t[k] > 0)
            rc |= pb_json_num(per, ex_kind_name(k), t[k], "%.6g");
        else
            rc |= pb_json_null(per, ex_kind_name(k));
    }
    return rc | pb_json_set(j, name, per);
}

static json_t *json_advice(const advise_opts *a, const advice *adv)
{
    unsigned predicted[3] = {adv->predicted, adv->predicted, adv->predicted};
    json_t *j = json_object();
    int rc = pb_json_str(j, "workload", adv->w->name);
    rc |= pb_json_str(j, "params", adv->params);
    rc |= pb_json_int(j, "ncpu", a->ncpu);
    rc |= pb_json_num(j, "utilization", a->util, "%g");
    rc |= pb_json_num(j, "wait_ms", adv->wait_ms, "%.6g");
    rc |= pb_json_num(j, "compute_ms", adv->compute_ms, "%.6g");
    rc |= pb_json_num(j, "wait_compute_ratio", adv->ratio, "%.6g");
    rc |= pb_json_int(j, "tasks", (long long)a->tasks);
    rc |= pb_json_int(j, "check_tasks", (long long)adv->check_tasks);
    rc |= pb_json_int(j, "reps", a->reps);
    rc |= pb_json_int(j, "max_workers", a->max_workers);
    rc |= json_per_kind(j, "predicted", a, predicted, NULL);
    rc |= json_per_kind(j, "measured_best", a, adv->measured_best, NULL);
    rc |= json_per_kind(j, "measured_best_throughput", a, NULL, adv->best_throughput);
    rc |= json_per_kind(j, "predicted_throughput", a, NULL, adv->predicted_throughput);
    if (rc) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* --json FILE: the results as a JSON array; 0 or 1. */
static int write_json(const advise_opts *a, const advise_set *s)
{
    json_t *all = json_array();
    int rc = all ? 0 : -1;
    for (size_t i = 0; i < s->nw && rc == 0; i++)
        rc = json_array_append_new(all, json_advice(a, &s->adv[i]));
    FILE *f = rc == 0 ? fopen(a->json_path, "w") : NULL;
    if (f)
        rc = pb_json_finish(f, all, rc, 2);
    else
        json_decref(all);
    if (!f || fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "poolbench advise: cannot write %s\n", a->json_path);
        return 1;
    }
    return 0;
}

int pb_cmd_advise(int argc, char **argv)
{
    advise_opts a;
    int rc = parse_cli(argc, argv, &a);
    if (rc)
        return rc < 0 ? 0 : rc;
    advise_set s = {.nw = 0};
    pb_server srv = {.pid = -1};
    rc = build_workloads(&a, &s);
    if (rc == 0)
        rc = start_server(&s, &srv);
    for (size_t i = 0; i < s.nw && rc == 0; i++)
        rc = advise_one(&a, &s.adv[i], s.params[i]);
    pb_server_stop(&srv);
    if (rc == 0 && a.json_path)
        rc = write_json(&a, &s);
    for (size_t i = 0; i < MAX_WL; i++)
        wl_params_destroy(s.params[i]);
    return rc;
}
