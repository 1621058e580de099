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
#include "commands.h"

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
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int pb_cmd_advise(int argc, char **argv)
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
    char wl_text[1024] = "", ex_text[64] = "threads,procs";
    const char *kvs[64];
    size_t nkv = 0;
    size_t tasks = 100;
    double util = 1.0;
    unsigned max_workers = 256, reps = 2;
    const char *json_path = NULL;
    uint64_t v;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":W:p:e:n:U:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'W':
            if (strlen(optarg) >= sizeof wl_text)
                return pb_usage_error("advise", "--workload is too long");
            strcpy(wl_text, optarg);
            break;
        case 'p':
            if (nkv == 64)
                return pb_usage_error("advise", "too many -p parameters (at most 64)");
            if (!strchr(optarg, '='))
                return pb_usage_error("advise", "-p takes KEY=VALUE, got '%s'", optarg);
            kvs[nkv++] = optarg;
            break;
        case 'e':
            if (strlen(optarg) >= sizeof ex_text)
                return pb_usage_error("advise", "--executors is too long");
            strcpy(ex_text, optarg);
            break;
        case 'n':
            if (!pb_parse_u64("advise", "--tasks", optarg, 1, 1000000, true, &v))
                return PB_EXIT_USAGE;
            tasks = (size_t)v;
            break;
        case 'U':
            if (!pb_parse_double("advise", "--utilization", optarg, 0.01, 1, &util))
                return PB_EXIT_USAGE;
            break;
        case 'm':
            if (!pb_parse_u64("advise", "--max-workers", optarg, 1, 4096, false, &v))
                return PB_EXIT_USAGE;
            max_workers = (unsigned)v;
            break;
        case 'r':
            if (!pb_parse_u64("advise", "--reps", optarg, 1, 20, false, &v))
                return PB_EXIT_USAGE;
            reps = (unsigned)v;
            break;
        case 'j': json_path = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        case ':': return pb_usage_error("advise", "option %s needs a value", argv[optind - 1]);
        default:
            return pb_usage_error("advise", "unknown option '%s' (see poolbench advise --help)",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pb_usage_error("advise", "unexpected argument '%s'", argv[optind]);
    if (!wl_text[0])
        return pb_usage_error("advise", "--workload is required (accepted: %s)", wl_names());
    ex_kind kinds[3];
    size_t nk = 0;
    char *save = NULL;
    for (char *t = strtok_r(ex_text, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (nk == 3 || ex_kind_parse(t, &kinds[nk]) || kinds[nk] == EX_SEQ)
            return pb_usage_error("advise", "bad executor '%s' in --executors (accepted: threads, procs)", t);
        nk++;
    }
    advice adv[MAX_WL];
    wl_params *params[MAX_WL] = {0};
    size_t nw = 0;
    int rc = 0;
    save = NULL;
    for (char *t = strtok_r(wl_text, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const wl_workload *w = wl_find(t);
        if (!w) {
            rc = pb_usage_error("advise", "unknown workload '%s' (accepted: %s)", t, wl_names());
            goto out;
        }
        if (nw == MAX_WL) {
            rc = pb_usage_error("advise", "--workload lists more than %d workloads", MAX_WL);
            goto out;
        }
        const char *mine[64];
        size_t nmine = 0;
        for (size_t i = 0; i < nkv; i++) {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(strchr(kvs[i], '=') - kvs[i]), kvs[i]);
            if (wl_param_find(w, key))
                mine[nmine++] = kvs[i];
        }
        memset(&adv[nw], 0, sizeof adv[nw]);
        adv[nw].w = w;
        if ((rc = pb_build_params("advise", w, mine, nmine, NULL, &params[nw])))
            goto out;
        char why[512];
        if (wl_requires_isolation(params[nw], why, sizeof why) || pb_needs_timeout(params[nw])) {
            rc = pb_usage_error("advise", "workload '%s': crashing or hanging tasks cannot be "
                                "sized (drop crash_rate/hang_rate)", w->name);
            goto out;
        }
        nw++;
    }
    /* Like sweep: a -p key that none of the listed workloads has is a
     * mistake, not something to ignore. */
    for (size_t i = 0; i < nkv; i++) {
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(strchr(kvs[i], '=') - kvs[i]), kvs[i]);
        bool found = false;
        for (size_t k = 0; k < nw; k++)
            found |= wl_param_find(adv[k].w, key) != NULL;
        if (!found) {
            rc = pb_usage_error("advise", "parameter '%s' belongs to none of the listed workloads", key);
            goto out;
        }
    }
    long ncpu_l = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned ncpu = ncpu_l > 0 ? (unsigned)ncpu_l : 1;
    pb_server srv = {.pid = -1};
    for (size_t i = 0; i < nw && rc == 0; i++)
        if (wl_needs_server(params[i]) && srv.pid < 0 &&
            pb_start_server_if_needed("advise", params[i], &srv))
            rc = 1;
        else if (wl_needs_server(params[i]))
            wl_params_set(params[i], "base_url", pb_server_url(&srv), NULL, 0);
    for (size_t i = 0; i < nw && rc == 0; i++) {
        advice *a = &adv[i];
        wl_params_format(params[i], a->params, sizeof a->params);
        /* W and C from a sequential run: no queue, so blocked is waiting. */
        pb_run_opts o = {.kind = EX_SEQ, .workers = 1, .workload = a->w, .params = params[i],
                         .tasks = tasks, .seed = 1};
        pb_measured m;
        pb_measure(&o, &(pb_measure_opts){.pin = PB_PIN_NONE}, &m);
        if (!m.ok) {
            fprintf(stderr, "poolbench advise: %s: %s\n", a->w->name, m.err);
            rc = 1;
            break;
        }
        a->compute_ms = m.r.cpu_mean_ns / 1e6;
        a->wait_ms = m.r.blocked_mean_ns / 1e6;
        /* A task that uses no measurable CPU (getrusage resolves 1 us)
         * waits "infinitely" relatively: the cap decides. */
        double c = a->compute_ms > 0.001 ? a->compute_ms : 0.001;
        a->ratio = a->wait_ms / c;
        double n = (double)ncpu * util * (1 + a->ratio);
        a->predicted = n < 1 ? 1 : n > max_workers ? max_workers : (unsigned)lround(n);
        /* The check: sizes around the prediction, plus 1 and ncpu. */
        unsigned cand[MAX_CAND];
        size_t nc = 0;
        unsigned raw[] = {1, ncpu, a->predicted / 4, a->predicted / 2, a->predicted,
                          a->predicted * 2};
        for (size_t k = 0; k < sizeof raw / sizeof raw[0]; k++) {
            unsigned x = raw[k] < 1 ? 1 : raw[k] > max_workers ? max_workers : raw[k];
            bool dup = false;
            for (size_t j = 0; j < nc; j++)
                dup |= cand[j] == x;
            if (!dup)
                cand[nc++] = x;
        }
        qsort(cand, nc, sizeof cand[0], cmp_unsigned);
        /* A pool larger than the number of tasks cannot show its worth:
         * the check runs at least 4 tasks per worker of the largest size. */
        size_t check_tasks = tasks > 4 * (size_t)cand[nc - 1] ? tasks : 4 * (size_t)cand[nc - 1];
        o.tasks = check_tasks;
        a->check_tasks = check_tasks;
        for (size_t e = 0; e < nk; e++) {
            o.kind = kinds[e];
            double best = -1;
            for (size_t k = 0; k < nc; k++) {
                o.workers = cand[k];
                if (pb_progress_enabled())
                    fprintf(stderr, "\r\033[Kadvise: %s on %s, %u workers", a->w->name,
                            ex_kind_name(kinds[e]), cand[k]);
                double t = throughput_of(&o, reps);
                if (cand[k] == a->predicted)
                    a->predicted_throughput[kinds[e]] = t;
                /* Prefer fewer workers unless more are clearly (>5%) better. */
                if (isfinite(t) && t > best * 1.05) {
                    best = t;
                    a->measured_best[kinds[e]] = cand[k];
                    a->best_throughput[kinds[e]] = t;
                }
            }
            a->checked[kinds[e]] = best > 0;
        }
        if (pb_progress_enabled())
            fputs("\r\033[K", stderr);
        printf("%s (%s): W = %.3f ms, C = %.3f ms per task, W/C = %.2f\n", a->w->name,
               a->params, a->wait_ms, a->compute_ms, a->ratio);
        printf("  Goetz: N = %u cpus x U %.2f x (1 + W/C) = %u workers%s\n", ncpu, util,
               a->predicted, a->predicted == max_workers ? " (capped by --max-workers)" : "");
        printf("  checked with %zu tasks per run, median of %u runs per size\n", a->check_tasks, reps);
        for (size_t e = 0; e < nk; e++) {
            ex_kind k = kinds[e];
            if (!a->checked[k]) {
                printf("  %-8s check failed (no successful run)\n", ex_kind_name(k));
                continue;
            }
            printf("  %-8s predicted %u (%.1f tasks/s), measured best %u (%.1f tasks/s)%s\n",
                   ex_kind_name(k), a->predicted, a->predicted_throughput[k],
                   a->measured_best[k], a->best_throughput[k],
                   a->measured_best[k] == a->predicted ? ": agree" : "");
        }
        fflush(stdout);
    }
    pb_server_stop(&srv);
    if (rc == 0 && json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            fprintf(stderr, "poolbench advise: cannot write %s\n", json_path);
            rc = 1;
            goto out;
        }
        fputs("[\n", f);
        for (size_t i = 0; i < nw; i++) {
            advice *a = &adv[i];
            fputs("  {\"workload\":", f);
            pb_json_string(f, a->w->name);
            fputs(",\"params\":", f);
            pb_json_string(f, a->params);
            fprintf(f, ",\"ncpu\":%u,\"utilization\":%g,\"wait_ms\":%.6g,\"compute_ms\":%.6g,"
                    "\"wait_compute_ratio\":%.6g,\"tasks\":%zu,\"check_tasks\":%zu,\"reps\":%u,"
                    "\"max_workers\":%u,\"predicted\":{",
                    ncpu, util, a->wait_ms, a->compute_ms, a->ratio, tasks, a->check_tasks, reps,
                    max_workers);
            for (size_t e = 0; e < nk; e++)
                fprintf(f, "%s\"%s\":%u", e ? "," : "", ex_kind_name(kinds[e]), a->predicted);
            fputs("},\"measured_best\":{", f);
            for (size_t e = 0; e < nk; e++)
                fprintf(f, "%s\"%s\":%u", e ? "," : "", ex_kind_name(kinds[e]),
                        a->measured_best[kinds[e]]);
            fputs("},\"measured_best_throughput\":{", f);
            for (size_t e = 0; e < nk; e++)
                fprintf(f, "%s\"%s\":%.6g", e ? "," : "", ex_kind_name(kinds[e]),
                        a->best_throughput[kinds[e]]);
            fputs("},\"predicted_throughput\":{", f);
            for (size_t e = 0; e < nk; e++) {
                double t = a->predicted_throughput[kinds[e]];
                fprintf(f, "%s\"%s\":", e ? "," : "", ex_kind_name(kinds[e]));
                if (isfinite(t) && t > 0)
                    fprintf(f, "%.6g", t);
                else
                    fputs("null", f);
            }
            fprintf(f, "}}%s\n", i + 1 < nw ? "," : "");
        }
        fputs("]\n", f);
        if (fclose(f)) {
            rc = 1;
            fprintf(stderr, "poolbench advise: cannot write %s\n", json_path);
        }
    }
out:
    for (size_t i = 0; i < MAX_WL; i++)
        wl_params_destroy(params[i]);
    return rc;
}
