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

#include <errno.h>
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
    "  -e, --executor KIND     seq, threads, procs or mpi (default threads), or Python's\n"
    "                          py-seq, py-threads, py-procs (scripts/pyrunner)\n"
    "  -w, --workers N         pool size, 1..4096 (default: online CPUs)\n"
    "  -n, --tasks N           number of tasks, 1..10000000 (default 200)\n"
    "  -p, --param KEY=VALUE   workload parameter (repeatable)\n"
    "      --url URL           http, fetch-hash: fetch this URL instead of the\n"
    "                          embedded loopback server\n"
    "      --seed S            input seed, 0..2^63-1 (default 1)\n"
    "      --queue N           bounded queue capacity (default 0 = unbounded)\n"
    "      --on-full P         what a submit to a full --queue does: block (default),\n"
    "                          reject (counted as rejected, not failed) or\n"
    "                          caller-runs (the submitter runs it; not procs)\n"
    "      --rate R            open loop: tasks arrive at R per second (0 < R <=\n"
    "                          1e7) instead of all at once; latency and queue wait\n"
    "                          count from each task's intended arrival\n"
    "      --arrival A         with --rate: poisson (default: exponential intervals\n"
    "                          drawn from --seed) or fixed (one every 1/R s)\n"
    "      --chunksize N       submit through ex_map, N inputs per hand-off\n"
    "                          (1..1000000; all at once, one-stage workloads)\n"
    "      --sample-ms N       sample the pool's gauges every N ms (1..60000):\n"
    "                          peak queue in the summary, all samples with --timeline\n"
    "      --timeline FILE     write the samples as CSV to FILE (needs --sample-ms)\n"
    "      --timeout-ms N      procs: per-task timeout, the worker is killed\n"
    "      --max-tasks-per-worker N  procs: recycle a worker after N tasks\n"
    "      --window N          procs: tasks in flight per worker, 1..1024\n"
    "                          (default 64; 1 = one at a time)\n"
    "      --transport T       procs: pipe (default) or shm (a shared-memory\n"
    "                          region per worker for the payloads)\n"
    "      --mpi-btl B         mpi: Open MPI's transport, tcp (tcp,self: the\n"
    "                          network path) or sm (vader,tcp,self: shared memory\n"
    "                          where Open MPI 4.1 can, within one job: spawned\n"
    "                          workers still reach the broker over tcp);\n"
    "                          default: OMPI_MCA_btl from the environment\n"
    "      --warmup-tasks N    tasks run before the clock starts, results\n"
    "                          discarded (default: one round, = workers)\n"
    "      --pin P             none (default), compact or scatter: bind each worker\n"
    "                          to a CPU (see `poolbench topo`)\n"
    "      --cpus LIST         restrict workers to these CPUs (e.g. 0-3)\n"
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
    const char *workload;      /* --workload as given */
    const char *timeline;      /* --timeline FILE */
    bool arrival_set;
} run_cli;

/* The numeric options: 0 or PB_EXIT_USAGE after one message. */
static int parse_run_number(int ch, const char *arg, run_cli *c)
{
    pb_run_opts *o = &c->o;
    uint64_t v;
    bool ok;
    switch (ch) {
    case 'w': ok = pb_parse_unsigned("run", "--workers", arg, 1, 4096, false, &o->workers); break;
    case 'n': ok = pb_parse_size("run", "--tasks", arg, 1, 10000000, true, &o->tasks); break;
    case 's': ok = pb_parse_u64("run", "--seed", arg, 0, INT64_MAX, false, &o->seed); break;
    case 'q':
        ok = pb_parse_size("run", "--queue", arg, 0, 100000000, true, &o->queue_capacity);
        break;
    case 't':
        ok = pb_parse_u64("run", "--timeout-ms", arg, 1, 86400000, false, &v);
        o->timeout_ns = ok ? (int64_t)v * 1000000 : 0;
        break;
    case 'm':
        ok = pb_parse_unsigned("run", "--max-tasks-per-worker", arg, 1, UINT32_MAX, false,
                               &o->max_tasks_per_worker);
        break;
    default: /* 'T' */
        ok = pb_parse_size("run", "--warmup-tasks", arg, 0, 10000000, true, &o->warmup_tasks);
        c->warmup_set |= ok;
    }
    return ok ? 0 : PB_EXIT_USAGE;
}

/* One option: 0, -1 (--help printed) or the exit status after one
 * message. */
static int parse_run_option(int ch, char *arg, char **argv, run_cli *c)
{
    char perr[256];
    switch (ch) {
    case 'W': c->workload = arg; return 0;
    case 'e':
        if (pb_executor_parse(arg, &c->o.kind, &c->o.py))
            return pb_usage_error("run", "unknown executor '%s' (accepted: %s)", arg,
                                  PB_EXECUTOR_NAMES);
        return 0;
    case 'w': case 'n': case 's': case 'q': case 't': case 'm': case 'T':
        return parse_run_number(ch, arg, c);
    case 'p':
        if (c->nkv == sizeof c->kvs / sizeof c->kvs[0])
            return pb_usage_error("run", "too many -p parameters (at most 64)");
        c->kvs[c->nkv++] = arg;
        return 0;
    case 'u': c->url = arg; return 0;
    case PB_OPT_WINDOW:
    case PB_OPT_TRANSPORT:
        return pb_parse_procs_option("run", ch, arg, &c->o) != 0 ? PB_EXIT_USAGE : 0;
    case PB_OPT_ARRIVAL:
        c->arrival_set = true;
        return pb_parse_load_option("run", ch, arg, &c->o);
    case PB_OPT_RATE: case PB_OPT_ON_FULL: case PB_OPT_CHUNKSIZE: case PB_OPT_SAMPLE_MS:
        return pb_parse_load_option("run", ch, arg, &c->o);
    case PB_OPT_TIMELINE: c->timeline = arg; return 0;
    case PB_OPT_MPI_BTL:
        if (strcmp(arg, "tcp") != 0 && strcmp(arg, "sm") != 0)
            return pb_usage_error("run", "unknown --mpi-btl '%s' (accepted: tcp, sm)", arg);
        c->o.mpi_btl = arg;
        return 0;
    case 'j': c->json = true; return 0;
    case 'P':
        if (pb_pin_policy_parse(arg, &c->pin, perr, sizeof perr))
            return pb_usage_error("run", "%s", perr);
        return 0;
    case 'c': c->cpus = arg; return 0;
    case 'h': fputs(run_usage, stdout); return -1;
    case ':': return pb_usage_error("run", "option %s needs a value", argv[optind - 1]);
    default:
        return pb_usage_error("run", "unknown option '%s' (see poolbench run --help)",
                              argv[optind - 1]);
    }
}

/* The load options against each other.  A rate without --arrival is
 * Poisson; --arrival without a rate is refused. */
static int check_load(run_cli *c)
{
    pb_run_opts *o = &c->o;
    if (o->rate > 0 && !c->arrival_set)
        o->arrival = PB_ARRIVAL_POISSON;
    if (o->rate == 0 && c->arrival_set)
        return pb_usage_error("run", "--arrival needs --rate");
    if (o->rate > 0 && o->arrival == PB_ARRIVAL_BATCH)
        return pb_usage_error("run", "--arrival with --rate must be fixed or poisson");
    if (o->chunksize && o->rate > 0)
        return pb_usage_error("run", "--chunksize (ex_map, all at once) and --rate exclude "
                              "each other");
    if (o->on_full != EX_ON_FULL_BLOCK && o->queue_capacity == 0)
        return pb_usage_error("run", "--on-full needs a bounded --queue N (N >= 1)");
    if (o->on_full == EX_ON_FULL_CALLER_RUNS && (o->kind == EX_PROCS || o->kind == EX_MPI))
        return pb_usage_error("run", "--on-full caller-runs is for seq and threads: a task "
                              "of the process pool does not run in the submitter (accepted "
                              "for procs: block, reject)");
    if (c->timeline && !o->sample_ms)
        return pb_usage_error("run", "--timeline needs --sample-ms N");
    return 0;
}

/* What only the whole command line can tell, and the defaults that
 * depend on other options. */
static int check_run(run_cli *c)
{
    if (!c->workload)
        return pb_usage_error("run", "--workload is required (accepted: %s)", wl_names());
    c->o.workload = wl_find(c->workload);
    if (!c->o.workload)
        return pb_usage_error("run", "unknown workload '%s' (accepted: %s)", c->workload, wl_names());
    if (c->o.py == PB_PY_SEQ)
        c->o.workers = 1; /* a loop in the runner's main thread, as seq */
    if (!c->warmup_set)
        c->o.warmup_tasks = c->o.workers; /* one round, as sweep */
    if (c->o.max_tasks_per_worker && c->o.kind != EX_PROCS)
        return pb_usage_error("run", "--max-tasks-per-worker needs --executor procs");
    if (c->o.timeout_ns && c->o.kind != EX_PROCS && c->o.kind != EX_MPI)
        return pb_usage_error("run", "--timeout-ms needs --executor procs, py-procs or mpi");
    if (c->o.mpi_btl && c->o.kind != EX_MPI)
        return pb_usage_error("run", "--mpi-btl needs --executor mpi");
    const char *why;
    if (c->o.kind == EX_MPI && !ex_mpi_available(&why))
        return pb_usage_error("run", "the mpi executor is unavailable: %s", why);
    if ((c->o.procs_window || c->o.transport != EX_TRANSPORT_PIPE) &&
        (c->o.kind != EX_PROCS || c->o.py != PB_PY_NONE))
        return pb_usage_error("run", "--window and --transport need --executor procs");
    return check_load(c);
}

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
        PB_SHARED_LONG_OPTIONS,
        {"timeline", required_argument, NULL, PB_OPT_TIMELINE},
        {"mpi-btl", required_argument, NULL, PB_OPT_MPI_BTL},
        {"warmup-tasks", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'},
        {"pin", required_argument, NULL, 'P'},
        {"cpus", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    c->o.kind = EX_THREADS;
    c->o.workers = ncpu > 0 ? (unsigned)ncpu : 1;
    c->o.tasks = 200;
    c->o.seed = 1;
    int ch, rc;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":W:e:w:n:p:hj", opts, NULL)) != -1)
        if ((rc = parse_run_option(ch, optarg, argv, c)))
            return rc;
    if (optind < argc)
        return pb_usage_error("run", "unexpected argument '%s' (see poolbench run --help)", argv[optind]);
    return check_run(c);
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

int pb_parse_load_option(const char *cmd, int opt, const char *value, pb_run_opts *o)
{
    uint64_t v;
    switch (opt) {
    case PB_OPT_RATE:
        return pb_parse_double(cmd, "--rate", value, 1e-3, PB_RATE_MAX, &o->rate)
                   ? 0 : PB_EXIT_USAGE;
    case PB_OPT_ARRIVAL:
        if (pb_arrival_parse(value, &o->arrival) || o->arrival == PB_ARRIVAL_BATCH)
            return pb_usage_error(cmd, "unknown arrival '%s' (accepted: fixed, poisson)", value);
        return 0;
    case PB_OPT_ON_FULL:
        if (ex_on_full_parse(value, &o->on_full))
            return pb_usage_error(cmd, "unknown --on-full '%s' (accepted: block, reject, "
                                  "caller-runs)", value);
        return 0;
    case PB_OPT_CHUNKSIZE:
        if (!pb_parse_u64(cmd, "--chunksize", value, 1, PB_CHUNKSIZE_MAX, false, &v))
            return PB_EXIT_USAGE;
        o->chunksize = (size_t)v;
        return 0;
    default: /* PB_OPT_SAMPLE_MS */
        if (!pb_parse_u64(cmd, "--sample-ms", value, 1, PB_SAMPLE_MS_MAX, false, &v))
            return PB_EXIT_USAGE;
        o->sample_ms = (unsigned)v;
        return 0;
    }
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

int pb_isolates(ex_kind kind)
{
    return kind == EX_PROCS || kind == EX_MPI;
}

int pb_timeout_refusal(const wl_params *p, int64_t timeout_ns, char *why, size_t len)
{
    if (!pb_needs_timeout(p) || timeout_ns)
        return 0;
    snprintf(why, len, "hang_rate > 0 needs --timeout-ms: only a per-task timeout (procs, "
             "mpi) ends a hung task");
    return 1;
}

int pb_executor_refusal(ex_kind kind, const wl_params *p, int64_t timeout_ns, char *why,
                        size_t len)
{
    if (!pb_isolates(kind) && wl_requires_isolation(p, why, len))
        return 1;
    if (pb_timeout_refusal(p, timeout_ns, why, len))
        return 1;
    return kind == EX_MPI && wl_requires_shared_memory(p, why, len);
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

/* The arrivals, the queue and the gauges, when they are not the default. */
static void print_load(const pb_run_opts *o, const pb_run_result *r)
{
    if (o->arrival != PB_ARRIVAL_BATCH)
        printf("arrivals    %s at %.6g tasks/s offered, %.6g issued, at worst %.3f ms behind "
               "schedule; latency and wait from each task's intended arrival\n",
               pb_arrival_name(o->arrival), o->rate, r->achieved_rate,
               r->submit_lag_max_ns / 1e6);
    if (o->chunksize)
        printf("submission  ex_map, chunksize %zu; latency from the run's start to each "
               "result in input order\n", o->chunksize);
    if (o->queue_capacity && o->kind != EX_SEQ)
        printf("queue       capacity %zu, on full: %s; %zu rejected, %llu run by the "
               "submitter\n", o->queue_capacity, ex_on_full_name(o->on_full),
               r->tasks_rejected, (unsigned long long)r->caller_ran);
    if (r->nsamples) {
        uint64_t q = 0, run = 0;
        for (size_t i = 0; i < r->nsamples; i++) {
            q = r->samples[i].g.queued > q ? r->samples[i].g.queued : q;
            run = r->samples[i].g.running > run ? r->samples[i].g.running : run;
        }
        printf("gauges      peak %llu queued, %llu running (%zu samples, every %u ms)\n",
               (unsigned long long)q, (unsigned long long)run, r->nsamples, o->sample_ms);
    }
}

/* --timeline FILE: the samples as CSV.  0, or 1 after a message. */
static int write_timeline(const char *path, const pb_run_result *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "w");
    int rc = f ? pb_timeline_csv(r->samples, r->nsamples, "", &buf, &len) : -1;
    if (rc == 0 && (fputs(PB_TIMELINE_COLUMNS "\n", f) < 0 || fwrite(buf, 1, len, f) != len))
        rc = -1;
    if (f && fclose(f) != 0)
        rc = -1;
    free(buf);
    if (rc)
        fprintf(stderr, "poolbench run: cannot write --timeline %s: %s\n", path, strerror(errno));
    return rc ? 1 : 0;
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
    if (r->tasks_rejected)
        printf(", %zu rejected", r->tasks_rejected);
    for (size_t i = 0; i < r->nerrors; i++) {
        char name[64];
        pb_error_name(&r->errors[i], name, sizeof name);
        printf("%s%s x%zu", i ? ", " : " (", name, r->errors[i].count);
    }
    printf("%s\n", r->nerrors ? ")" : "");
    printf("latency     p50 %.3f ms, p95 %.3f ms, p99 %.3f ms\n", r->lat_p50_ns / 1e6,
           r->lat_p95_ns / 1e6, r->lat_p99_ns / 1e6);
    print_load(o, r);
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
        pb_executor_refusal(c.o.kind, params, c.o.timeout_ns, why, sizeof why)) {
        wl_params_destroy(params);
        return pb_usage_error("run", "%s", why);
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
            if (pb_run_json(&c.o, &r, stdout, pinning) != 0) {
                fprintf(stderr, "poolbench run: cannot write the JSON: %s\n", strerror(errno));
                rc = 1;
            }
        } else {
            print_summary(&c.o, &r);
            printf("pinning     %s (observed: %s)\n", pinning, r.cpus_observed);
        }
        if (c.timeline && write_timeline(c.timeline, &r))
            rc = 1;
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

/* One name a line, for scripts and the shell completion: the workloads
 * (the registry's order) or every executor name -e accepts. */
static int print_names(const char *what)
{
    if (strcmp(what, "--workloads") == 0) {
        for (size_t i = 0; i < wl_count(); i++)
            puts(wl_at(i)->name);
        return 0;
    }
    const char *s = PB_EXECUTOR_NAMES;
    while (*s) {
        size_t n = strcspn(s, ", ");
        printf("%.*s\n", (int)n, s);
        s += n;
        s += strspn(s, ", ");
    }
    return 0;
}

int pb_cmd_list(int argc, char **argv)
{
    if (argc > 2)
        return pb_usage_error("list", "unexpected argument '%s' (list takes at most one option)",
                              argv[2]);
    if (argc == 2) {
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            puts("usage: poolbench list [--workloads | --executors]\n\n"
                 "Lists the workloads, their kind, parameters, defaults and ranges.\n\n"
                 "      --workloads  only the workload names, one a line\n"
                 "      --executors  only the executor names --executor accepts, one a line\n"
                 "  -h, --help       this text");
            return 0;
        }
        if (strcmp(argv[1], "--workloads") == 0 || strcmp(argv[1], "--executors") == 0)
            return print_names(argv[1]);
        return pb_usage_error("list", "unknown option '%s' (accepted: --workloads, --executors, "
                              "--help)", argv[1]);
    }
    char *text = wl_list_text();
    if (!text) {
        fputs("poolbench list: out of memory\n", stderr);
        return 1;
    }
    fputs(text, stdout);
    free(text);
    print_python_notes();
    const char *why;
    if (ex_mpi_available(&why))
        printf("\nmpi executor (-e mpi): available (Open MPI; tasks by name, workers "
               "spawned with MPI_Comm_spawn)\n");
    else
        printf("\nmpi executor (-e mpi): unavailable: %s\n", why);
    return 0;
}
