/*
 * cmd_run.c: `poolbench run` (one configuration, a readable summary or one
 * JSON object) and `poolbench list` (the workloads and their parameters).
 */
#include "cli.h"
#include "commands.h"
#include "pin.h"
#include "pyexec.h"
#include "run.h"
#include "server_proc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char run_usage[] =
    "usage: poolbench run --workload NAME [options]\n"
    "\n"
    "Runs one configuration: builds the workload's inputs, runs them on the\n"
    "executor, checks every output and prints a summary (or one JSON object).\n"
    "\n"
    "  -W, --workload NAME     workload to run (see `poolbench list`)\n"
    "  -e, --executor KIND     seq, threads or procs (default threads), or Python's\n"
    "                          py-seq, py-threads, py-procs (scripts/pyrunner)\n"
    "  -w, --workers N         pool size, 1..4096 (default: online CPUs)\n"
    "  -n, --tasks N           number of tasks, 1..10000000 (default 200)\n"
    "  -p, --param KEY=VALUE   workload parameter (repeatable)\n"
    "      --url URL           http, fetch-hash: fetch this URL instead of the\n"
    "                          embedded loopback server\n"
    "      --seed S            input seed (default 1)\n"
    "      --queue N           bounded queue capacity (default 0 = unbounded)\n"
    "      --timeout-ms N      procs: per-task timeout, the worker is killed\n"
    "      --max-tasks-per-worker N  procs: recycle a worker after N tasks\n"
    "      --window N          procs: tasks in flight per worker, 1..1024\n"
    "                          (default 64; 1 = one at a time)\n"
    "      --transport T       procs: pipe (default) or shm (a shared-memory\n"
    "                          region per worker for the payloads)\n"
    "      --warmup-tasks N    tasks run before the clock starts, results\n"
    "                          discarded (default: one round, = workers)\n"
    "      --json              print one JSON object instead of the summary\n"
    "  -h, --help              this text\n";

typedef struct run_cli {
    pb_run_opts o;
    const char *kvs[64];
    size_t nkv;
    const char *url;
    bool json;
    pb_pin_policy pin;
    const char *cpus;
    bool warmup_set;
} run_cli;

static int parse_run(int argc, char **argv, run_cli *c)
{
    static const struct option opts[] = {
        {"workload", required_argument, NULL, 'W'},
        {"executor", required_argument, NULL, 'e'},
        {"workers", required_argument, NULL, 'w'},
        {"tasks", required_argument, NULL, 'n'},
        {"param", required_argument, NULL, 'p'},
        {"url", required_argument, NULL, 'u'},
        {"seed", required_argument, NULL, 's'},
        {"queue", required_argument, NULL, 'q'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"max-tasks-per-worker", required_argument, NULL, 'm'},
        {"window", required_argument, NULL, PB_OPT_WINDOW},
        {"transport", required_argument, NULL, PB_OPT_TRANSPORT},
        {"warmup-tasks", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'},
        {"pin", required_argument, NULL, 'P'},
        {"cpus", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    char perr[256];
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->o.kind = EX_THREADS;
    c->o.workers = ncpu > 0 ? (unsigned)ncpu : 1;
    c->o.tasks = 200;
    c->o.seed = 1;
    const char *workload = NULL;
    uint64_t v;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":W:e:w:n:p:hj", opts, NULL)) != -1) {
        switch (ch) {
        case 'W': workload = optarg; break;
        case 'e':
            if (pb_executor_parse(optarg, &c->o.kind, &c->o.py))
                return pb_usage_error("run", "unknown executor '%s' (accepted: %s)", optarg,
                                      PB_EXECUTOR_NAMES);
            break;
        case 'w':
            if (!pb_parse_u64("run", "--workers", optarg, 1, 4096, false, &v))
                return PB_EXIT_USAGE;
            c->o.workers = (unsigned)v;
            break;
        case 'n':
            if (!pb_parse_u64("run", "--tasks", optarg, 1, 10000000, true, &v))
                return PB_EXIT_USAGE;
            c->o.tasks = (size_t)v;
            break;
        case 'p':
            if (c->nkv == sizeof c->kvs / sizeof c->kvs[0])
                return pb_usage_error("run", "too many -p parameters (at most 64)");
            c->kvs[c->nkv++] = optarg;
            break;
        case 'u': c->url = optarg; break;
        case 's':
            if (!pb_parse_u64("run", "--seed", optarg, 0, UINT64_MAX, false, &v))
                return PB_EXIT_USAGE;
            c->o.seed = v;
            break;
        case 'q':
            if (!pb_parse_u64("run", "--queue", optarg, 0, 100000000, true, &v))
                return PB_EXIT_USAGE;
            c->o.queue_capacity = (size_t)v;
            break;
        case 't':
            if (!pb_parse_u64("run", "--timeout-ms", optarg, 1, 86400000, false, &v))
                return PB_EXIT_USAGE;
            c->o.timeout_ns = (int64_t)v * 1000000;
            break;
        case 'm':
            if (!pb_parse_u64("run", "--max-tasks-per-worker", optarg, 1, UINT32_MAX, false, &v))
                return PB_EXIT_USAGE;
            c->o.max_tasks_per_worker = (unsigned)v;
            break;
        case PB_OPT_WINDOW:
        case PB_OPT_TRANSPORT:
            if (pb_parse_procs_option("run", ch, optarg, &c->o) != 0)
                return PB_EXIT_USAGE;
            break;
        case 'T':
            if (!pb_parse_u64("run", "--warmup-tasks", optarg, 0, 10000000, true, &v))
                return PB_EXIT_USAGE;
            c->o.warmup_tasks = (size_t)v;
            c->warmup_set = true;
            break;
        case 'j': c->json = true; break;
        case 'P':
            if (pb_pin_policy_parse(optarg, &c->pin, perr, sizeof perr))
                return pb_usage_error("run", "%s", perr);
            break;
        case 'c': c->cpus = optarg; break;
        case 'h': fputs(run_usage, stdout); return -1;
        case ':': return pb_usage_error("run", "option %s needs a value", argv[optind - 1]);
        default:
            return pb_usage_error("run", "unknown option '%s' (see poolbench run --help)",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pb_usage_error("run", "unexpected argument '%s' (see poolbench run --help)", argv[optind]);
    if (!workload)
        return pb_usage_error("run", "--workload is required (accepted: %s)", wl_names());
    c->o.workload = wl_find(workload);
    if (!c->o.workload)
        return pb_usage_error("run", "unknown workload '%s' (accepted: %s)", workload, wl_names());
    if (c->o.py == PB_PY_SEQ)
        c->o.workers = 1; /* a loop in the runner's main thread, as seq */
    if (!c->warmup_set)
        c->o.warmup_tasks = c->o.workers; /* one round, as sweep */
    if ((c->o.timeout_ns || c->o.max_tasks_per_worker) && c->o.kind != EX_PROCS)
        return pb_usage_error("run", "--timeout-ms and --max-tasks-per-worker need --executor procs (--timeout-ms: or py-procs)");
    if ((c->o.procs_window || c->o.transport != EX_TRANSPORT_PIPE) &&
        (c->o.kind != EX_PROCS || c->o.py != PB_PY_NONE))
        return pb_usage_error("run", "--window and --transport need --executor procs");
    return 0;
}

/* Builds the parameter set, with --url; 0 or PB_EXIT_USAGE. */
int pb_build_params(const char *cmd, const wl_workload *w, const char *const *kvs,
                    size_t nkv, const char *url, wl_params **out)
{
    char err[512];
    if (wl_params_parse(w, kvs, nkv, out, err, sizeof err))
        return pb_usage_error(cmd, "%s", err);
    if (url) {
        if (!wl_param_find(w, "url")) {
            wl_params_destroy(*out);
            *out = NULL;
            return pb_usage_error(cmd, "--url applies to the http workloads, not '%s'", w->name);
        }
        if (wl_params_set(*out, "url", url, err, sizeof err)) {
            wl_params_destroy(*out);
            *out = NULL;
            return pb_usage_error(cmd, "%s", err);
        }
    }
    return 0;
}

int pb_pin_attach(pb_run_opts *o, pb_pin_policy pin, const char *cpus, pb_pin_plan **plan,
                  char *desc, size_t desclen, char *err, size_t errlen)
{
    *plan = NULL;
    if (pin == PB_PIN_NONE && !(cpus && *cpus)) {
        snprintf(desc, desclen, "none");
        return 0;
    }
    /* --cpus alone restricts without a policy: spread compactly over them. */
    int rc = pb_pin_plan_create(pin == PB_PIN_NONE ? PB_PIN_COMPACT : pin, cpus, o->workers,
                                o->kind == EX_PROCS, plan, err, errlen);
    if (rc)
        return rc;
    o->worker_start = pb_pin_worker_start;
    o->worker_start_arg = *plan;
    pb_pin_describe(*plan, desc, desclen);
    return 0;
}

int pb_parse_procs_option(const char *cmd, int opt, const char *value,
                          pb_run_opts *o)
{
    uint64_t v;
    if (opt == PB_OPT_TRANSPORT) {
        if (ex_transport_parse(value, &o->transport) != 0)
            return pb_usage_error(cmd, "unknown transport '%s' (accepted: pipe, shm)", value);
        return 0;
    }
    if (!pb_parse_u64(cmd, "--window", value, 1, EX_MAX_WINDOW, false, &v))
        return PB_EXIT_USAGE;
    o->procs_window = (unsigned)v;
    return 0;
}

int pb_needs_timeout(const wl_params *p)
{
    const wl_workload *w = wl_params_workload(p);
    return wl_param_find(w, "hang_rate") && wl_params_double(p, "hang_rate") > 0;
}

const char *pb_server_label(const wl_params *p, const pb_server *srv)
{
    if (srv->pid > 0)
        return srv->realtime ? "loopback SCHED_FIFO" : "loopback normal";
    const wl_workload *w = wl_params_workload(p);
    return wl_param_find(w, "url") && wl_params_string(p, "url")[0] ? "external" : NULL;
}

void pb_server_note(const char *cmd, const pb_server *srv)
{
    if (srv->pid > 0 && !srv->realtime)
        fprintf(stderr, "poolbench %s: note: the loopback server runs at normal priority "
                "(SCHED_FIFO was refused: it needs CAP_SYS_NICE, which root has); with "
                "hundreds of workers it waits behind them and may be the bottleneck\n", cmd);
}

int pb_start_server_if_needed(const char *cmd, wl_params *p, pb_server *srv)
{
    srv->pid = -1;
    if (!wl_needs_server(p))
        return 0;
    int rc = pb_server_start("127.0.0.1", 0, srv);
    if (rc) {
        fprintf(stderr, "poolbench %s: cannot start the loopback HTTP server: %s\n", cmd,
                strerror(-rc));
        return 1;
    }
    pb_server_note(cmd, srv);
    char err[256];
    if (wl_params_set(p, "base_url", pb_server_url(srv), err, sizeof err)) {
        fprintf(stderr, "poolbench %s: %s\n", cmd, err);
        pb_server_stop(srv);
        return 1;
    }
    return 0;
}

static void print_summary(const pb_run_opts *o, const pb_run_result *r)
{
    char params[1024];
    if (wl_params_format(o->params, params, sizeof params))
        params[sizeof params - 1] = 0;
    printf("workload    %s (%s) %s\n", o->workload->name, wl_kind_name(o->workload->kind), params);
    printf("executor    %s, %u workers, %zu tasks, seed %llu\n", pb_executor_name(o),
           o->workers, r->tasks, (unsigned long long)o->seed);
    printf("wall        %.4f s, %zu rounds (+ %.4f s to start the workers, %.4f s for a "
           "warm-up of %zu tasks)\n", r->wall_s, (r->tasks + o->workers - 1) / o->workers,
           r->startup_s, r->warmup_s, r->warmup_tasks);
    printf("throughput  %.1f tasks/s\n", r->throughput);
    printf("tasks       %zu ok, %zu failed", r->tasks_ok, r->tasks_failed);
    for (size_t i = 0; i < r->nerrors; i++) {
        char name[64];
        pb_error_name(&r->errors[i], name, sizeof name);
        printf("%s%s x%zu", i ? ", " : " (", name, r->errors[i].count);
    }
    printf("%s\n", r->nerrors ? ")" : "");
    printf("latency     p50 %.3f ms, p95 %.3f ms, p99 %.3f ms\n", r->lat_p50_ns / 1e6,
           r->lat_p95_ns / 1e6, r->lat_p99_ns / 1e6);
    printf("per task    wait %.3f ms + cpu %.3f ms + blocked %.3f ms (means)\n",
           r->wait_mean_ns / 1e6, r->cpu_mean_ns / 1e6, r->blocked_mean_ns / 1e6);
    if (o->kind == EX_PROCS && o->py != PB_PY_NONE)
        printf("ipc         %.3f ms per task (the result's way back, mean); "
               "%llu workers replaced\n", r->ipc_mean_ns / 1e6,
               (unsigned long long)r->workers_replaced);
    else if (o->kind == EX_PROCS)
        printf("ipc         %.3f ms per task (both ways, mean, %s, window %u); "
               "%llu workers replaced\n", r->ipc_mean_ns / 1e6, pb_run_transport(o),
               pb_run_window(o), (unsigned long long)r->workers_replaced);
    printf("cpu         %.1f%% of %u cores by tasks; user %.3f s, sys %.3f s\n",
           100 * r->cpu_util, r->cores, r->user_s, r->sys_s);
    if (r->cpu_over_wall)
        printf("cpu cut     %zu tasks read more CPU than wall time: the thread clock "
               "disagrees with the monotonic clock here\n", r->cpu_over_wall);
    if (r->cpu_under_zero)
        printf("cpu cut     %zu tasks read below zero CPU after an estimated start "
               "(interrupt or steal time counted as CPU): set to 0\n", r->cpu_under_zero);
    printf("memory      peak RSS %ld KiB (largest child %ld KiB)\n", r->peak_rss_kb,
           r->peak_rss_children_kb);
    printf("switches    %ld voluntary, %ld involuntary\n", r->nvcsw, r->nivcsw);
    if (o->server)
        printf("server      %s\n", o->server);
    printf("digest      %s\n", r->digest);
}

int pb_cmd_run(int argc, char **argv)
{
    run_cli c;
    char perr[512];
    int rc = parse_run(argc, argv, &c);
    if (rc)
        return rc < 0 ? 0 : rc;
    wl_params *params = NULL;
    rc = pb_build_params("run", c.o.workload, c.kvs, c.nkv, c.url, &params);
    if (rc)
        return rc;
    char why[512];
    c.o.params = params;
    if (pb_py_refusal(&c.o, c.pin != PB_PIN_NONE || c.cpus, why, sizeof why) ||
        (c.o.kind != EX_PROCS && wl_requires_isolation(params, why, sizeof why))) {
        wl_params_destroy(params);
        return pb_usage_error("run", "%s", why);
    }
    if (pb_needs_timeout(params) && !c.o.timeout_ns) {
        wl_params_destroy(params);
        return pb_usage_error("run", "hang_rate > 0 needs --timeout-ms: only the process "
                              "pool's per-task timeout ends a hung task");
    }
    pb_server srv;
    if (pb_start_server_if_needed("run", params, &srv)) {
        wl_params_destroy(params);
        return 1;
    }
    c.o.params = params;
    c.o.server = pb_server_label(params, &srv);
    pb_pin_plan *plan = NULL;
    char pinning[512];
    if (pb_pin_attach(&c.o, c.pin, c.cpus, &plan, pinning, sizeof pinning, perr, sizeof perr)) {
        pb_server_stop(&srv);
        wl_params_destroy(params);
        return pb_usage_error("run", "%s", perr);
    }
    c.o.progress = !c.json && pb_progress_enabled();
    c.o.label = c.o.workload->name;
    pb_run_result r;
    char err[512];
    rc = pb_run(&c.o, &r, false, err, sizeof err);
    pb_server_stop(&srv);
    pb_pin_plan_destroy(plan);
    if (rc == 0) {
        if (c.json) {
            pb_run_json(&c.o, &r, stdout, pinning);
            fputc('\n', stdout);
        } else {
            print_summary(&c.o, &r);
            printf("pinning     %s (observed: %s)\n", pinning, r.cpus_observed);
        }
        pb_run_result_free(&r);
    } else {
        fprintf(stderr, "poolbench run: %s\n", err);
    }
    wl_params_destroy(params);
    wl_http_thread_cleanup();
    if (rc == EX_EINVAL)
        return PB_EXIT_USAGE;
    return rc ? 1 : 0;
}

/* What each workload is on the Python executors (pyexec.h). */
static void print_python_notes(void)
{
    printf("\nPython executors (py-seq, py-threads, py-procs; scripts/pyrunner, the same\n"
           "inputs from the same seed; \"identical\" = the digest equals the C runs'):\n");
    for (size_t i = 0; i < wl_count(); i++) {
        const char *note = pb_py_note(wl_at(i));
        printf("  %-12s %s\n", wl_at(i)->name, note ? note : "not available");
    }
}

int pb_cmd_list(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            puts("usage: poolbench list\n\nLists the workloads, their kind, parameters, "
                 "defaults and ranges.");
            return 0;
        }
        return pb_usage_error("list", "unexpected argument '%s' (list takes none)", argv[1]);
    }
    char *text = wl_list_text();
    if (!text) {
        fputs("poolbench list: out of memory\n", stderr);
        return 1;
    }
    fputs(text, stdout);
    free(text);
    print_python_notes();
    return 0;
}
