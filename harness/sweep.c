/*
 * sweep.c: `poolbench sweep`, the cartesian product of executors x workers
 * x workloads x varied parameters x pin policies, with warm-up runs and
 * repetitions: its command line, the validation of every parameter before
 * anything runs, and the loopback server's life.  sweep_exec.c runs the
 * plan: it sizes every configuration by the steady-state rule, then runs
 * the repetitions interleaved (or grouped), each in a fresh child process
 * (measure.c), and appends the rows (rows.c).
 */
#include "cli.h"
#include "commands.h"
#include "pin.h"
#include "pyexec.h"
#include "sweep.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LIST SWEEP_MAX_LIST
#define MAX_VARY SWEEP_MAX_VARY

typedef sweep_vary vary;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char usage[] =
    "usage: poolbench sweep --out DIR [options]\n"
    "\n"
    "Measures the cartesian product executors x workers x workloads x varied\n"
    "parameters x pin policies, each with warm-up runs and repetitions, each\n"
    "run in a fresh child process.  The sequential baseline of every workload\n"
    "(and parameter combination) runs first so that every row carries its\n"
    "speedup.  Rows are appended to DIR/runs.csv and DIR/runs.jsonl as they\n"
    "finish; DIR/summary.csv gets one row per configuration (median, 95%%\n"
    "interval, CV, outliers, a warning when the spread is too wide).\n"
    "\n"
    "  -o, --out DIR          results folder (created if missing)\n"
    "  -e, --executors LIST   seq,threads,procs (default all three), and Python's\n"
    "                         py-seq,py-threads,py-procs (unpinned; py-seq, the\n"
    "                         Python baseline, runs whenever one of them does)\n"
    "  -w, --workers LIST     e.g. 1,2,4 or 1-8 or 1-64x2 (default 1,2)\n"
    "  -W, --workloads LIST   e.g. primes,sleep (default primes,sleep)\n"
    "  -p, --param KEY=VALUE  fixed parameter, for every workload that has KEY\n"
    "      --vary KEY=V1,V2   a parameter to sweep (up to 4 keys)\n"
    "      --pin LIST         none,compact,scatter (default none)\n"
    "      --cpus LIST        restrict workers to these CPUs (e.g. 0-3)\n"
    "  -r, --reps N           measured repetitions, 1..1000 (default 5: the\n"
    "                         fewest with which a rank test can call a\n"
    "                         difference significant at p < 0.05 is 4)\n"
    "      --warmup N         unrecorded warm-up runs, 0..100 (default 1); the\n"
    "                         rule's pilot runs count as warm-ups\n"
    "  -n, --tasks N          at least N tasks per run (default 100)\n"
    "      --seed S           input seed, 0..2^63-1 (default 1)\n"
    "      --timeout-ms N     procs: per-task timeout\n"
    "      --window N         procs: tasks in flight per worker (default 64)\n"
    "      --transport T      procs: pipe (default) or shm; a configuration\n"
    "                         other than the defaults shows in config_id\n"
    "      --queue LIST       queue capacities, e.g. 0,16,256 (0 = unbounded, the\n"
    "                         default)\n"
    "      --on-full LIST     block,reject,caller-runs (default block): what a\n"
    "                         submit to a full queue does (not with queue 0;\n"
    "                         caller-runs not for procs)\n"
    "      --rate LIST        open-loop arrival rates in tasks/s, e.g. 0,500,1000\n"
    "                         (0 = all at once, the default); latency counts\n"
    "                         from each task's intended arrival\n"
    "      --arrival A        poisson (default) or fixed, for the rates above 0\n"
    "      --chunksize LIST   0 = one ex_submit per task (default), N >= 1 =\n"
    "                         ex_map with chunks of N (all at once, one stage)\n"
    "      --sample-ms N      sample the pool's gauges every N ms into\n"
    "                         DIR/timeline.csv (queue depth, in flight, ...)\n"
    "      --url URL          http workloads: this URL instead of the embedded server\n"
    "      --no-baseline      skip the sequential baseline (rows get no speedup\n"
    "                         and no digest check): for runs whose sequential\n"
    "                         time would be prohibitive, e.g. 512 x 20 ms HTTP\n"
    "  -q, --quiet            no progress line\n"
    "  -h, --help             this text\n"
    "\n"
    "Run length, by rule: each configuration's runs have at least R rounds of\n"
    "the pool (tasks >= R x workers) and last at least T seconds of measured\n"
    "time, sized with unrecorded pilot runs; a warm-up round runs inside each\n"
    "run before its clock starts.\n"
    "      --min-rounds R     0..100000 (default %u)\n"
    "      --min-time T       seconds, 0..3600 (default %g; 0: no pilot runs)\n"
    "      --warmup-rounds K  in-run warm-up, rounds of the pool, 0..100 (default 1)\n"
    "\n"
    "Order and noise:\n"
    "      --order ORDER      interleaved (default: rep 1 of every configuration\n"
    "                         in a shuffled order, then rep 2, ...) or grouped\n"
    "                         (all reps of one configuration, then the next)\n"
    "      --order-seed S     the shuffle's seed (default: random; recorded in\n"
    "                         runs.csv order_seed)\n"
    "      --probe-ms N       spin on every CPU for N ms before each measured\n"
    "                         run to record the CPUs available, 0..1000\n"
    "                         (default 20; 0: no probe)\n";

/* "1,2,4", "1-8", "1-64x2" -> values. */
static int parse_workers(const char *text, unsigned *out, size_t *n)
{
    static const pb_list_rule rule = {.min = 1, .max = 4096, .ranges = true, .cap = MAX_LIST};
    uint64_t v[MAX_LIST];
    int rc = pb_parse_u64_list("sweep", "--workers", text, &rule, v, n);
    for (size_t i = 0; rc == 0 && i < *n; i++)
        out[i] = (unsigned)v[i];
    return rc;
}

static int split_list(const char *opt, char *text, char **items, size_t *n)
{
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(text, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST)
            return pb_usage_error("sweep", "%s lists at most %d values", opt, MAX_LIST);
        items[(*n)++] = tok;
    }
    if (*n == 0)
        return pb_usage_error("sweep", "%s is empty", opt);
    return 0;
}

/* C executors into executors[], Python's into py[], each at most once. */
static int parse_executors(char **items, size_t n, sweep_cli *c)
{
    c->nexecutors = c->npy = 0;
    for (size_t i = 0; i < n; i++) {
        ex_kind kind;
        pb_py_kind py;
        if (pb_executor_parse(items[i], &kind, &py))
            return pb_usage_error("sweep", "unknown executor '%s' in --executors (accepted: %s)",
                                  items[i], PB_EXECUTOR_NAMES);
        bool dup = false;
        for (size_t k = 0; k < (py ? c->npy : c->nexecutors); k++)
            dup |= py ? c->py[k] == py : c->executors[k] == kind;
        if (dup)
            return pb_usage_error("sweep", "executor '%s' is listed twice in --executors", items[i]);
        if (py)
            c->py[c->npy++] = py;
        else
            c->executors[c->nexecutors++] = kind;
    }
    return 0;
}

/* A seed for the shuffled order when none is given: from the kernel's
 * generator, else the clock and the pid; recorded in every row either way. */
static uint64_t random_seed(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v >> 1; /* below 2^63: prints the same in every tool */
    return (ex_now_ns() ^ ((uint64_t)getpid() << 32)) >> 1;
}

/* The run-length rule, the order and the probe options. */
static int parse_steady(int ch, const char *arg, sweep_cli *c)
{
    uint64_t v;
    switch (ch) {
    case 'R':
        if (!pb_parse_u64("sweep", "--min-rounds", arg, 0, 100000, false, &v))
            return PB_EXIT_USAGE;
        c->rule.min_rounds = (unsigned)v;
        return 0;
    case 'M':
        return pb_parse_double("sweep", "--min-time", arg, 0, 3600, &c->rule.min_time_s)
                   ? 0 : PB_EXIT_USAGE;
    case 'K':
        if (!pb_parse_u64("sweep", "--warmup-rounds", arg, 0, 100, false, &v))
            return PB_EXIT_USAGE;
        c->warmup_rounds = (unsigned)v;
        return 0;
    case 'O':
        if (strcmp(arg, "interleaved") && strcmp(arg, "grouped"))
            return pb_usage_error("sweep", "--order must be interleaved or grouped, got '%s'", arg);
        c->grouped = strcmp(arg, "grouped") == 0;
        return 0;
    case 'S':
        if (!pb_parse_u64("sweep", "--order-seed", arg, 0, INT64_MAX, false, &c->order_seed))
            return PB_EXIT_USAGE;
        return 0;
    default: /* 'X' */
        return pb_parse_double("sweep", "--probe-ms", arg, 0, 1000, &c->probe_ms)
                   ? 0 : PB_EXIT_USAGE;
    }
}

static void set_defaults(sweep_cli *c)
{
    memset(c, 0, sizeof *c);
    c->executors[0] = EX_SEQ;
    c->executors[1] = EX_THREADS;
    c->executors[2] = EX_PROCS;
    c->nexecutors = 3;
    c->workers[0] = 1;
    c->workers[1] = 2;
    c->nworkers = 2;
    c->workloads[0] = wl_find("primes");
    c->workloads[1] = wl_find("sleep");
    c->nworkloads = 2;
    c->pins[0] = PB_PIN_NONE;
    c->npins = 1;
    c->reps = 5;
    c->warmup = 1;
    c->tasks = 100;
    c->seed = 1;
    c->rule = (pb_rule){PB_RULE_DEFAULT_ROUNDS, PB_RULE_DEFAULT_TIME_S};
    c->warmup_rounds = 1;
    c->probe_ms = 20;
    c->order_seed = random_seed();
    c->nqueues = c->non_fulls = c->nrates = c->nchunks = 1; /* 0, block, 0, 0 */
    c->arrival = PB_ARRIVAL_POISSON;
}

/* --vary KEY=V1,V2,...; text is the option's own copy (split in place). */
static int parse_vary(char *text, const char *arg, sweep_cli *c)
{
    if (c->nvary == MAX_VARY)
        return pb_usage_error("sweep", "--vary is limited to %d keys", MAX_VARY);
    char *eq = strchr(text, '=');
    if (!eq || eq == text || !eq[1])
        return pb_usage_error("sweep", "--vary takes KEY=V1,V2,..., got '%s'", arg);
    *eq = 0;
    vary *vy = &c->vary[c->nvary++];
    vy->key = text;
    return split_list("--vary", eq + 1, vy->values, &vy->n);
}

static int parse_pins(char **items, size_t n, sweep_cli *c)
{
    if (n > 3)
        return pb_usage_error("sweep", "--pin takes at most none, compact and scatter");
    for (size_t i = 0; i < n; i++) {
        char err[256];
        if (pb_pin_policy_parse(items[i], &c->pins[i], err, sizeof err))
            return pb_usage_error("sweep", "%s", err);
    }
    c->npins = n;
    return 0;
}

static int parse_workloads(char **items, size_t n, sweep_cli *c)
{
    for (size_t i = 0; i < n; i++)
        if (!(c->workloads[i] = wl_find(items[i])))
            return pb_usage_error("sweep", "unknown workload '%s' in --workloads (accepted: %s)",
                                  items[i], wl_names());
    c->nworkloads = n;
    return 0;
}

/* --on-full LIST: block, reject, caller-runs, each at most once. */
static int parse_on_fulls(char **items, size_t n, sweep_cli *c)
{
    c->non_fulls = 0;
    for (size_t i = 0; i < n; i++) {
        ex_on_full f;
        if (ex_on_full_parse(items[i], &f))
            return pb_usage_error("sweep", "unknown policy '%s' in --on-full (accepted: block, "
                                  "reject, caller-runs)", items[i]);
        for (size_t k = 0; k < c->non_fulls; k++)
            if (c->on_fulls[k] == f)
                return pb_usage_error("sweep", "'%s' is listed twice in --on-full", items[i]);
        c->on_fulls[c->non_fulls++] = f;
    }
    return 0;
}

/* The copies of the list options' values, split in place: c keeps
 * pointers into them after parse_cli returns.  parse_cli empties it. */
static struct {
    char text[8][1024];
    size_t n;
} list_text;

/* The options whose value is a list of names: -e, -W, --pin, --on-full,
 * --vary. */
static int parse_list_option(int ch, const char *arg, sweep_cli *c)
{
    if (list_text.n == 8 || strlen(arg) >= sizeof list_text.text[0])
        return pb_usage_error("sweep", "option value too long or too many lists: '%s'", arg);
    char *text = strcpy(list_text.text[list_text.n++], arg);
    if (ch == 'V')
        return parse_vary(text, arg, c);
    const char *opt = ch == 'e' ? "--executors" : ch == 'W' ? "--workloads"
                    : ch == 'P' ? "--pin" : "--on-full";
    char *items[MAX_LIST];
    size_t n;
    int rc = split_list(opt, text, items, &n);
    if (rc)
        return rc;
    switch (ch) {
    case 'e': return parse_executors(items, n, c);
    case 'W': return parse_workloads(items, n, c);
    case 'P': return parse_pins(items, n, c);
    default: return parse_on_fulls(items, n, c); /* PB_OPT_ON_FULL */
    }
}

/* The load lists: --queue, --rate, --chunksize (whole numbers, 0 = the
 * default: unbounded, all at once, ex_submit). */
static int parse_load_list(int ch, const char *arg, sweep_cli *c)
{
    static const pb_list_rule queue = {.max = 100000000, .suffixes = true, .cap = MAX_LIST};
    static const pb_list_rule rate = {.max = (uint64_t)PB_RATE_MAX, .cap = MAX_LIST};
    static const pb_list_rule chunk = {.max = PB_CHUNKSIZE_MAX, .cap = MAX_LIST};
    const char *opt = ch == 'Q' ? "--queue" : ch == PB_OPT_RATE ? "--rate" : "--chunksize";
    const pb_list_rule *rule = ch == 'Q' ? &queue : ch == PB_OPT_RATE ? &rate : &chunk;
    uint64_t v[MAX_LIST];
    size_t n;
    int rc = pb_parse_u64_list("sweep", opt, arg, rule, v, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (ch == 'Q')
            c->queues[i] = (size_t)v[i];
        else if (ch == PB_OPT_RATE)
            c->rates[i] = (double)v[i];
        else
            c->chunksizes[i] = (size_t)v[i];
    }
    if (rc == 0)
        *(ch == 'Q' ? &c->nqueues : ch == PB_OPT_RATE ? &c->nrates : &c->nchunks) = n;
    return rc;
}

/* --arrival, --sample-ms and the load lists. */
static int parse_load(int ch, char *arg, sweep_cli *c)
{
    pb_run_opts one = {0};
    switch (ch) {
    case PB_OPT_ARRIVAL:
    case PB_OPT_SAMPLE_MS:
        if (pb_parse_load_option("sweep", ch, arg, &one))
            return PB_EXIT_USAGE;
        if (ch == PB_OPT_ARRIVAL)
            c->arrival = one.arrival;
        else
            c->sample_ms = one.sample_ms;
        return 0;
    case PB_OPT_ON_FULL:
        return parse_list_option(ch, arg, c);
    default:
        return parse_load_list(ch, arg, c);
    }
}

/* The numeric options: -r, --warmup, -n, --seed, --timeout-ms. */
static int parse_number_option(int ch, const char *arg, sweep_cli *c)
{
    uint64_t v;
    bool ok;
    switch (ch) {
    case 'r': ok = pb_parse_unsigned("sweep", "--reps", arg, 1, 1000, false, &c->reps); break;
    case 'u': ok = pb_parse_unsigned("sweep", "--warmup", arg, 0, 100, false, &c->warmup); break;
    case 'n': ok = pb_parse_size("sweep", "--tasks", arg, 1, 10000000, true, &c->tasks); break;
    case 's': ok = pb_parse_u64("sweep", "--seed", arg, 0, INT64_MAX, false, &c->seed); break;
    default: /* 't' */
        ok = pb_parse_u64("sweep", "--timeout-ms", arg, 1, 86400000, false, &v);
        c->timeout_ns = ok ? (int64_t)v * 1000000 : 0;
    }
    return ok ? 0 : PB_EXIT_USAGE;
}

static int parse_fixed(const char *arg, sweep_cli *c)
{
    if (c->nfixed == MAX_LIST)
        return pb_usage_error("sweep", "too many -p parameters (at most %d)", MAX_LIST);
    if (!strchr(arg, '='))
        return pb_usage_error("sweep", "-p takes KEY=VALUE, got '%s'", arg);
    c->fixed[c->nfixed++] = arg;
    return 0;
}

static int parse_procs(int ch, const char *arg, sweep_cli *c)
{
    pb_run_opts procs = {.procs_window = c->window, .transport = c->transport};
    if (pb_parse_procs_option("sweep", ch, arg, &procs) != 0)
        return PB_EXIT_USAGE;
    c->window = procs.procs_window;
    c->transport = procs.transport;
    return 0;
}

/* One option of the command line: 0, -1 (--help printed) or the exit
 * status after one message. */
static int parse_option(int ch, char *arg, char **argv, sweep_cli *c)
{
    switch (ch) {
    case 'o': c->out = arg; return 0;
    case 'e': case 'W': case 'P': case 'V': return parse_list_option(ch, arg, c);
    case 'w': return parse_workers(arg, c->workers, &c->nworkers);
    case 'p': return parse_fixed(arg, c);
    case 'c': c->cpus = arg; return 0;
    case 'r': case 'u': case 'n': case 's': case 't': return parse_number_option(ch, arg, c);
    case PB_OPT_WINDOW: case PB_OPT_TRANSPORT: return parse_procs(ch, arg, c);
    case 'Q': case PB_OPT_RATE: case PB_OPT_ARRIVAL: case PB_OPT_ON_FULL: case PB_OPT_CHUNKSIZE:
    case PB_OPT_SAMPLE_MS:
        return parse_load(ch, arg, c);
    case 'U': c->url = arg; return 0;
    case 'q': c->quiet = true; return 0;
    case 'B': c->no_baseline = true; return 0;
    case 'R': case 'M': case 'K': case 'O': case 'S': case 'X': return parse_steady(ch, arg, c);
    case 'h': printf(usage, PB_RULE_DEFAULT_ROUNDS, PB_RULE_DEFAULT_TIME_S); return -1;
    case ':': return pb_usage_error("sweep", "option %s needs a value", argv[optind - 1]);
    default:
        return pb_usage_error("sweep", "unknown option '%s' (see poolbench sweep --help)",
                              argv[optind - 1]);
    }
}

/* What only the whole command line can tell: --out given, every fixed or
 * varied key belonging to some selected workload, --cpus usable. */
static int check_cli(const sweep_cli *c)
{
    if (!c->out)
        return pb_usage_error("sweep", "--out DIR is required");
    for (size_t i = 0; i < c->nfixed + c->nvary; i++) {
        char key[128];
        if (i < c->nfixed)
            snprintf(key, sizeof key, "%.*s", (int)(strchr(c->fixed[i], '=') - c->fixed[i]), c->fixed[i]);
        else
            snprintf(key, sizeof key, "%s", c->vary[i - c->nfixed].key);
        bool found = false;
        for (size_t k = 0; k < c->nworkloads; k++)
            found |= wl_param_find(c->workloads[k], key) != NULL;
        if (!found)
            return pb_usage_error("sweep", "parameter '%s' belongs to none of the selected workloads", key);
    }
    if (c->cpus) {
        pb_pin_plan *plan;
        char err[256];
        if (pb_pin_plan_create(PB_PIN_COMPACT, c->cpus, 1, 0, &plan, err, sizeof err))
            return pb_usage_error("sweep", "--cpus: %s", err);
        pb_pin_plan_destroy(plan);
    }
    return 0;
}

static int parse_cli(int argc, char **argv, sweep_cli *c)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"executors", required_argument, NULL, 'e'},
        {"workers", required_argument, NULL, 'w'},
        {"workloads", required_argument, NULL, 'W'},
        {"param", required_argument, NULL, 'p'},
        {"vary", required_argument, NULL, 'V'},
        {"pin", required_argument, NULL, 'P'},
        {"cpus", required_argument, NULL, 'c'},
        {"reps", required_argument, NULL, 'r'},
        {"warmup", required_argument, NULL, 'u'},
        {"tasks", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"queue", required_argument, NULL, 'Q'},
        PB_SHARED_LONG_OPTIONS,
        {"url", required_argument, NULL, 'U'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-baseline", no_argument, NULL, 'B'},
        {"min-rounds", required_argument, NULL, 'R'},
        {"min-time", required_argument, NULL, 'M'},
        {"warmup-rounds", required_argument, NULL, 'K'},
        {"order", required_argument, NULL, 'O'},
        {"order-seed", required_argument, NULL, 'S'},
        {"probe-ms", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    set_defaults(c);
    list_text.n = 0;
    int ch, rc;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":o:e:w:W:p:r:n:qh", opts, NULL)) != -1)
        if ((rc = parse_option(ch, optarg, argv, c)))
            return rc;
    if (optind < argc)
        return pb_usage_error("sweep", "unexpected argument '%s'", argv[optind]);
    return check_cli(c);
}

/* Why p cannot run on the listed Python executors (into err), or 0. */
static int py_refusal(const sweep_cli *c, const wl_params *p, char *err, size_t len)
{
    pb_run_opts o = {.workload = wl_params_workload(p), .params = p, .workers = 1};
    char why[512];
    for (size_t e = 0; c->npy && e <= c->npy; e++) {
        o.py = e < c->npy ? c->py[e] : PB_PY_SEQ; /* py-seq runs as the baseline */
        if (pb_py_refusal(&o, c->cpus != NULL, why, sizeof why)) {
            snprintf(err, len, "%.400s (drop the py- executors)", why);
            return 1;
        }
    }
    return 0;
}

/* One varied combination of w: valid, runnable on every selected
 * executor, with a timeout if it can hang.  0 or the exit status. */
static int validate_combo(const sweep_cli *c, const wl_workload *w, const wl_params *base,
                          size_t combo, bool *need_server)
{
    char err[512], why[512];
    wl_params *p;
    if (wl_params_copy(base, &p)) {
        fprintf(stderr, "poolbench sweep: out of memory\n");
        return 1;
    }
    int bad = pb_sweep_set_combo(c, w, p, combo, err, sizeof err) ||
              wl_params_validate(p, err, sizeof err);
    if (!bad && pb_timeout_refusal(p, c->timeout_ns, err, sizeof err))
        bad = 1;
    for (size_t e = 0; !bad && e < c->nexecutors; e++)
        if (pb_executor_refusal(c->executors[e], p, c->timeout_ns, why, sizeof why)) {
            snprintf(err, sizeof err, "%.400s (drop %s from --executors)", why,
                     ex_kind_name(c->executors[e]));
            bad = 1;
        }
    if (!bad && py_refusal(c, p, err, sizeof err))
        bad = 1;
    *need_server |= wl_needs_server(p) != 0;
    wl_params_destroy(p);
    return bad ? pb_usage_error("sweep", "%s", err) : 0;
}

/* Validates every workload's parameters (each varied combination, and
 * what the executors can run) before anything is measured: 0, or the exit
 * status after one message.  base[k] gets workload k's fixed parameters;
 * *need_server whether any needs the loopback server. */
static int validate_params(const sweep_cli *c, wl_params **base, bool *need_server)
{
    int rc;
    for (size_t k = 0; k < c->nworkloads; k++) {
        const wl_workload *w = c->workloads[k];
        const char *mine[MAX_LIST];
        size_t nmine = 0;
        for (size_t i = 0; i < c->nfixed; i++) {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(strchr(c->fixed[i], '=') - c->fixed[i]), c->fixed[i]);
            if (wl_param_find(w, key))
                mine[nmine++] = c->fixed[i];
        }
        if ((rc = pb_build_params("sweep", w, mine, nmine, wl_param_find(w, "url") ? c->url : NULL,
                                  &base[k])))
            return rc;
        for (size_t combo = 0; combo < pb_sweep_combos(c, w); combo++)
            if ((rc = validate_combo(c, w, base[k], combo, need_server)))
                return rc;
    }
    return 0;
}

int pb_cmd_sweep(int argc, char **argv)
{
    sweep_cli c;
    int rc = parse_cli(argc, argv, &c);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (mkdir(c.out, 0755) && errno != EEXIST) {
        fprintf(stderr, "poolbench sweep: cannot create %s: %s\n", c.out, strerror(errno));
        return 1;
    }
    wl_params *base[MAX_LIST] = {0};
    bool need_server = false;
    pb_server srv = {.pid = -1};
    if ((rc = validate_params(&c, base, &need_server)))
        goto out_params;
    /* The server is a child process of its own, started before any run. */
    if (need_server) {
        int s = pb_server_start("127.0.0.1", 0, &srv);
        if (s) {
            fprintf(stderr, "poolbench sweep: cannot start the loopback HTTP server: %s\n", strerror(-s));
            rc = 1;
            goto out_params;
        }
        pb_server_note("sweep", &srv);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    struct sigaction old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    rc = pb_sweep_execute(&c, base, &srv, &interrupted);
    pb_server_stop(&srv);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out_params:
    for (size_t k = 0; k < MAX_LIST; k++)
        wl_params_destroy(base[k]);
    return rc;
}
