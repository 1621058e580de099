/*
 * sweep.c: `poolbench sweep`, the cartesian product of executors x workers
 * x workloads x varied parameters x pin policies, with warm-up runs and
 * repetitions.
 *
 * Every measured run happens in a forked child of the sweep, so each run
 * starts from the same state (no allocator or page-cache warmth carried
 * from the previous configuration, a fresh peak RSS, rusage of its own) and
 * a run that crashes the harness costs one row, not the sweep.  The child
 * sends its pb_run_result back over a pipe.  For every workload and
 * parameter combination the sequential baseline runs first, so every row
 * carries its speedup and efficiency when it is written.  Rows are appended
 * as they finish (rows.c): an interrupted sweep keeps all of them.
 */
#include "cli.h"
#include "commands.h"
#include "pin.h"
#include "rows.h"
#include "run.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIST 64
#define MAX_VARY 4

typedef struct vary {
    const char *key;
    char *values[MAX_LIST];
    size_t n;
} vary;

typedef struct sweep_cli {
    ex_kind executors[3];
    size_t nexecutors;
    unsigned workers[MAX_LIST];
    size_t nworkers;
    const wl_workload *workloads[MAX_LIST];
    size_t nworkloads;
    pb_pin_policy pins[3];
    size_t npins;
    const char *cpus;
    const char *fixed[MAX_LIST];
    size_t nfixed;
    vary vary[MAX_VARY];
    size_t nvary;
    unsigned reps, warmup;
    size_t tasks;
    uint64_t seed;
    int64_t timeout_ns;
    pb_run_opts procs;        /* procs: window and transport */
    const char *out;
    const char *url;
    bool quiet;
    bool no_baseline;
} sweep_cli;

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
    "  -e, --executors LIST   seq,threads,procs (default all three)\n"
    "  -w, --workers LIST     e.g. 1,2,4 or 1-8 or 1-64x2 (default 1,2)\n"
    "  -W, --workloads LIST   e.g. primes,sleep (default primes,sleep)\n"
    "  -p, --param KEY=VALUE  fixed parameter, for every workload that has KEY\n"
    "      --vary KEY=V1,V2   a parameter to sweep (up to 4 keys)\n"
    "      --pin LIST         none,compact,scatter (default none)\n"
    "      --cpus LIST        restrict workers to these CPUs (e.g. 0-3)\n"
    "  -r, --reps N           measured repetitions, 1..1000 (default 3)\n"
    "      --warmup N         unrecorded warm-up runs, 0..100 (default 1)\n"
    "  -n, --tasks N          tasks per run (default 100)\n"
    "      --seed S           input seed (default 1)\n"
    "      --timeout-ms N     procs: per-task timeout\n"
    "      --window N         procs: tasks in flight per worker (default 8)\n"
    "      --transport T      procs: pipe (default) or shm; a configuration\n"
    "                         other than the defaults shows in config_id\n"
    "      --url URL          http workloads: this URL instead of the embedded server\n"
    "      --no-baseline      skip the sequential baseline (rows get no speedup\n"
    "                         and no digest check): for runs whose sequential\n"
    "                         time would be prohibitive, e.g. 512 x 20 ms HTTP\n"
    "  -q, --quiet            no progress line\n"
    "  -h, --help             this text\n";

/* "1,2,4", "1-8", "1-64x2" -> values. */
static int parse_workers(const char *text, unsigned *out, size_t *n)
{
    char buf[512];
    if (strlen(text) >= sizeof buf)
        return pb_usage_error("sweep", "--workers is too long");
    strcpy(buf, text);
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned long a, b, f = 0;
        char *end;
        a = strtoul(tok, &end, 10);
        b = a;
        if (end != tok && *end == '-') {
            char *p = end + 1;
            b = strtoul(p, &end, 10);
            if (end == p)
                goto bad;
            if (*end == 'x') {
                p = end + 1;
                f = strtoul(p, &end, 10);
                if (end == p || f < 2)
                    goto bad;
            }
        }
        if (end == tok || *end || a < 1 || b < a || b > 4096)
            goto bad;
        for (unsigned long v = a; v <= b; v = f ? v * f : v + 1) {
            if (*n == MAX_LIST)
                return pb_usage_error("sweep", "--workers lists at most %d values", MAX_LIST);
            out[(*n)++] = (unsigned)v;
        }
        continue;
    bad:
        return pb_usage_error("sweep", "--workers item '%s' is not N, A-B or A-BxF with "
                              "1 <= A <= B <= 4096 and F >= 2 (e.g. 1,2,4 or 1-8 or 1-64x2)", tok);
    }
    if (*n == 0)
        return pb_usage_error("sweep", "--workers is empty");
    return 0;
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
        {"window", required_argument, NULL, 'O'},
        {"transport", required_argument, NULL, 'T'},
        {"url", required_argument, NULL, 'U'},
        {"quiet", no_argument, NULL, 'q'},
        {"no-baseline", no_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    static char textbuf[8][1024];
    size_t ntext = 0;
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
    c->reps = 3;
    c->warmup = 1;
    c->tasks = 100;
    c->seed = 1;
    uint64_t v;
    int ch, rc;
    char *items[MAX_LIST];
    size_t n;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":o:e:w:W:p:r:n:qh", opts, NULL)) != -1) {
        if (strchr("eWPV", ch) && optarg) {
            if (ntext == 8 || strlen(optarg) >= sizeof textbuf[0])
                return pb_usage_error("sweep", "option value too long or too many lists: '%s'", optarg);
            strcpy(textbuf[ntext], optarg);
        }
        switch (ch) {
        case 'o': c->out = optarg; break;
        case 'e':
            if ((rc = split_list("--executors", textbuf[ntext++], items, &n)))
                return rc;
            if (n > 3)
                return pb_usage_error("sweep", "--executors takes at most seq, threads and procs");
            for (size_t i = 0; i < n; i++)
                if (ex_kind_parse(items[i], &c->executors[i]))
                    return pb_usage_error("sweep", "unknown executor '%s' in --executors (accepted: seq, threads, procs)", items[i]);
            c->nexecutors = n;
            break;
        case 'w':
            if ((rc = parse_workers(optarg, c->workers, &c->nworkers)))
                return rc;
            break;
        case 'W':
            if ((rc = split_list("--workloads", textbuf[ntext++], items, &n)))
                return rc;
            for (size_t i = 0; i < n; i++)
                if (!(c->workloads[i] = wl_find(items[i])))
                    return pb_usage_error("sweep", "unknown workload '%s' in --workloads (accepted: %s)", items[i], wl_names());
            c->nworkloads = n;
            break;
        case 'p':
            if (c->nfixed == MAX_LIST)
                return pb_usage_error("sweep", "too many -p parameters (at most %d)", MAX_LIST);
            if (!strchr(optarg, '='))
                return pb_usage_error("sweep", "-p takes KEY=VALUE, got '%s'", optarg);
            c->fixed[c->nfixed++] = optarg;
            break;
        case 'V': {
            if (c->nvary == MAX_VARY)
                return pb_usage_error("sweep", "--vary is limited to %d keys", MAX_VARY);
            char *text = textbuf[ntext++];
            char *eq = strchr(text, '=');
            if (!eq || eq == text || !eq[1])
                return pb_usage_error("sweep", "--vary takes KEY=V1,V2,..., got '%s'", optarg);
            *eq = 0;
            vary *vy = &c->vary[c->nvary++];
            vy->key = text;
            if ((rc = split_list("--vary", eq + 1, vy->values, &vy->n)))
                return rc;
            break;
        }
        case 'P':
            if ((rc = split_list("--pin", textbuf[ntext++], items, &n)))
                return rc;
            if (n > 3)
                return pb_usage_error("sweep", "--pin takes at most none, compact and scatter");
            for (size_t i = 0; i < n; i++) {
                char err[256];
                if (pb_pin_policy_parse(items[i], &c->pins[i], err, sizeof err))
                    return pb_usage_error("sweep", "%s", err);
            }
            c->npins = n;
            break;
        case 'c': c->cpus = optarg; break;
        case 'r':
            if (!pb_parse_u64("sweep", "--reps", optarg, 1, 1000, false, &v))
                return PB_EXIT_USAGE;
            c->reps = (unsigned)v;
            break;
        case 'u':
            if (!pb_parse_u64("sweep", "--warmup", optarg, 0, 100, false, &v))
                return PB_EXIT_USAGE;
            c->warmup = (unsigned)v;
            break;
        case 'n':
            if (!pb_parse_u64("sweep", "--tasks", optarg, 1, 10000000, true, &v))
                return PB_EXIT_USAGE;
            c->tasks = (size_t)v;
            break;
        case 's':
            if (!pb_parse_u64("sweep", "--seed", optarg, 0, UINT64_MAX, false, &v))
                return PB_EXIT_USAGE;
            c->seed = v;
            break;
        case 't':
            if (!pb_parse_u64("sweep", "--timeout-ms", optarg, 1, 86400000, false, &v))
                return PB_EXIT_USAGE;
            c->timeout_ns = (int64_t)v * 1000000;
            break;
        case 'O':
        case 'T':
            if (pb_parse_procs_option("sweep", ch, optarg, &c->procs) != 0)
                return PB_EXIT_USAGE;
            break;
        case 'U': c->url = optarg; break;
        case 'q': c->quiet = true; break;
        case 'B': c->no_baseline = true; break;
        case 'h': fputs(usage, stdout); return -1;
        case ':': return pb_usage_error("sweep", "option %s needs a value", argv[optind - 1]);
        default:
            return pb_usage_error("sweep", "unknown option '%s' (see poolbench sweep --help)",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pb_usage_error("sweep", "unexpected argument '%s'", argv[optind]);
    if (!c->out)
        return pb_usage_error("sweep", "--out DIR is required");
    /* Every fixed or varied key must belong to some selected workload. */
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

/* ------------------------------------------------------------ measuring */

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Runs o in a forked child; fills m.  The child pins (plan made there) and
 * exits with _exit. */
void pb_measure(const pb_run_opts *o, pb_pin_policy pin, const char *cpus, pb_measured *m)
{
    memset(m, 0, sizeof *m);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        snprintf(m->err, sizeof m->err, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(m->err, sizeof m->err, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        pb_measured res;
        memset(&res, 0, sizeof res);
        pb_run_opts ro = *o;
        pb_pin_plan *plan = NULL;
        int rc = pb_pin_attach(&ro, pin, cpus, &plan, res.pinning, sizeof res.pinning, res.err,
                               sizeof res.err);
        if (rc == 0 && pb_run(&ro, &res.r, false, res.err, sizeof res.err) == 0)
            res.ok = 1;
        res.r.latencies = NULL;
        const char *p = (const char *)&res;
        size_t left = sizeof res;
        while (left) {
            ssize_t w = write(fds[1], p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                _exit(3);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    int got = read_full(fds[0], m, sizeof *m);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got) {
        m->ok = 0;
        if (WIFSIGNALED(status))
            snprintf(m->err, sizeof m->err, "the run's process died of signal %d", WTERMSIG(status));
        else
            snprintf(m->err, sizeof m->err, "the run's process exited with status %d without a result",
                     WEXITSTATUS(status));
    }
}

/* ---------------------------------------------------------------- sweep */

typedef struct progress {
    bool on;
    size_t done, total;
    uint64_t t0;
} progress;

static void show(progress *p, const char *what)
{
    if (!p->on)
        return;
    double el = (double)(ex_now_ns() - p->t0) / 1e9;
    double eta = p->done ? el / (double)p->done * (double)(p->total - p->done) : 0;
    fprintf(stderr, "\r\033[K[%zu/%zu] %s | %.0f s elapsed, ETA %.0f s", p->done, p->total, what,
            el, eta);
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

typedef struct sweep_state {
    sweep_cli *c;
    pb_rows *rows;
    progress prog;
    char host[256];
    size_t failures;
    size_t rows_written;
} sweep_state;

/* Runs one configuration: warm-ups, reps, rows, a summary row.  Returns
 * the median wall time (for the baseline) and its digest. */
static double run_config(sweep_state *st, pb_run_opts *o, pb_pin_policy pin,
                         double baseline_wall, const char *baseline_digest, char *digest_out)
{
    sweep_cli *c = st->c;
    char params[1024], config_id[1400], what[1600];
    if (wl_params_format(o->params, params, sizeof params))
        params[sizeof params - 1] = 0;
    int len = snprintf(config_id, sizeof config_id, "%s|%s|%s|%u|%s", o->workload->name,
                       params, ex_kind_name(o->kind), o->workers, pb_pin_policy_name(pin));
    /* A process pool other than the default is another configuration. */
    if (o->kind == EX_PROCS && len > 0 && (size_t)len < sizeof config_id &&
        (o->transport != EX_TRANSPORT_PIPE || pb_run_window(o) != EX_DEFAULT_WINDOW))
        snprintf(config_id + len, sizeof config_id - (size_t)len, "|%s|w%u",
                 pb_run_transport(o), pb_run_window(o));
    double walls[1000], tputs[1000], speedups[1000], effs[1000], p95s[1000];
    unsigned rep_no[1000];
    size_t n = 0;
    for (unsigned k = 0; k < c->warmup + c->reps && !interrupted; k++) {
        bool warm = k < c->warmup;
        snprintf(what, sizeof what, "%s %s w=%u pin=%s %s %u/%u", o->workload->name,
                 ex_kind_name(o->kind), o->workers, pb_pin_policy_name(pin),
                 warm ? "warm-up" : "rep", warm ? k + 1 : k - c->warmup + 1,
                 warm ? c->warmup : c->reps);
        show(&st->prog, what);
        pb_measured m;
        pb_measure(o, pin, c->cpus, &m);
        st->prog.done++;
        if (interrupted)
            break;
        if (!m.ok) {
            st->failures++;
            if (st->prog.on)
                fputc('\n', stderr);
            fprintf(stderr, "poolbench sweep: %s: %s\n", config_id, m.err);
            continue;
        }
        if (warm)
            continue;
        if (digest_out && !digest_out[0])
            snprintf(digest_out, WL_DIGEST_HEX_LEN + 1, "%s", m.r.digest);
        /* The baseline's own repetitions compare with its first one. */
        const char *compare_to = digest_out ? digest_out : baseline_digest;
        char ts[32];
        utc_now(ts, sizeof ts);
        walls[n] = m.r.wall_s;
        double row_baseline = baseline_wall;
        if (digest_out) {
            /* The baseline itself (the one call that asks for its digest):
             * against the median of its repetitions so far (this one
             * included), so its rows can be written now.  Other rows
             * without a baseline (none ran: --no-baseline, or work only
             * procs survives) get no speedup. */
            pb_summary so_far;
            row_baseline = pb_summarize(walls, n + 1, &so_far) == 0 ? so_far.median : NAN;
        }
        pb_row_meta meta = {
            .host = st->host, .timestamp = ts, .config_id = config_id,
            .pin = pb_pin_policy_name(pin), .cpus = c->cpus ? c->cpus : "",
            .pinning = m.pinning, .rep = k - c->warmup + 1,
            .baseline_wall_s = row_baseline, .baseline_digest = compare_to,
        };
        if (pb_rows_add_run(st->rows, o, &m.r, &meta)) {
            fprintf(stderr, "poolbench sweep: cannot append a row: %s\n", strerror(errno));
            st->failures++;
            interrupted = 1;
            break;
        }
        st->rows_written++;
        rep_no[n] = k - c->warmup + 1;
        tputs[n] = m.r.throughput;
        speedups[n] = row_baseline > 0 ? row_baseline / m.r.wall_s : NAN;
        effs[n] = speedups[n] / (double)o->workers;
        p95s[n] = m.r.lat_p95_ns / 1e6;
        n++;
    }
    if (n == 0)
        return NAN;
    pb_summary ws, ts_, ss, es, ps;
    pb_summarize(walls, n, &ws);
    pb_summarize(tputs, n, &ts_);
    pb_summarize(p95s, n, &ps);
    bool have_speedup = isfinite(speedups[0]);
    if (have_speedup) {
        pb_summarize(speedups, n, &ss);
        pb_summarize(effs, n, &es);
    }
    unsigned char flags[1000];
    size_t nout = 0;
    char outliers[256] = "";
    if (pb_outliers(walls, n, flags, &nout) == 0) {
        size_t off = 0;
        for (size_t i = 0; i < n && off < sizeof outliers; i++)
            if (flags[i])
                off += (size_t)snprintf(outliers + off, sizeof outliers - off, "%s%u",
                                        off ? ";" : "", rep_no[i]);
    }
    char warning[256] = "";
    if (n >= 2)
        pb_spread_warning(&ws, 0, warning, sizeof warning);
    pb_config_summary s = {
        .config_id = config_id, .o = o, .pin = pb_pin_policy_name(pin), .n = n,
        .wall_median_s = ws.median, .wall_ci_low_s = ws.ci_low, .wall_ci_high_s = ws.ci_high,
        .ci_level = ws.ci_level, .wall_cv = ws.cv, .outlier_reps = outliers,
        .throughput_median = ts_.median,
        .speedup_median = have_speedup ? ss.median : NAN,
        .efficiency_median = have_speedup ? es.median : NAN,
        .latency_p95_median_ms = ps.median, .warning = warning,
    };
    pb_rows_add_summary(st->rows, &s);
    if (warning[0] && !c->quiet) {
        if (st->prog.on)
            fputc('\n', stderr);
        fprintf(stderr, "poolbench sweep: warning: %s: %s\n", config_id, warning);
    }
    return ws.median;
}

/* Applies the idx-th combination of the varied keys that w has. */
static int set_combo(sweep_cli *c, const wl_workload *w, wl_params *p, size_t idx, char *err,
                     size_t errlen)
{
    for (size_t v = 0; v < c->nvary; v++) {
        if (!wl_param_find(w, c->vary[v].key))
            continue;
        size_t k = idx % c->vary[v].n;
        idx /= c->vary[v].n;
        if (wl_params_set(p, c->vary[v].key, c->vary[v].values[k], err, errlen))
            return -1;
    }
    return 0;
}

static size_t combos_of(sweep_cli *c, const wl_workload *w)
{
    size_t n = 1;
    for (size_t v = 0; v < c->nvary; v++)
        if (wl_param_find(w, c->vary[v].key))
            n *= c->vary[v].n;
    return n;
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
    /* Validate every workload's parameters before measuring anything. */
    wl_params *base[MAX_LIST] = {0};
    bool need_server = false;
    for (size_t k = 0; k < c.nworkloads; k++) {
        const wl_workload *w = c.workloads[k];
        const char *mine[MAX_LIST];
        size_t nmine = 0;
        for (size_t i = 0; i < c.nfixed; i++) {
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(strchr(c.fixed[i], '=') - c.fixed[i]), c.fixed[i]);
            if (wl_param_find(w, key))
                mine[nmine++] = c.fixed[i];
        }
        if ((rc = pb_build_params("sweep", w, mine, nmine, wl_param_find(w, "url") ? c.url : NULL,
                                  &base[k])))
            goto out_params;
        char err[512];
        for (size_t combo = 0; combo < combos_of(&c, w); combo++) {
            wl_params *p;
            if (wl_params_copy(base[k], &p)) {
                rc = 1;
                goto out_params;
            }
            int bad = set_combo(&c, w, p, combo, err, sizeof err) ||
                      wl_params_validate(p, err, sizeof err);
            char why[512];
            for (size_t e = 0; !bad && e < c.nexecutors; e++)
                if (c.executors[e] != EX_PROCS && wl_requires_isolation(p, why, sizeof why)) {
                    snprintf(err, sizeof err, "%.400s (drop %s from --executors)", why,
                             ex_kind_name(c.executors[e]));
                    bad = 1;
                }
            if (!bad && pb_needs_timeout(p) && !c.timeout_ns) {
                snprintf(err, sizeof err, "hang_rate > 0 needs --timeout-ms: only the process "
                         "pool's per-task timeout ends a hung task");
                bad = 1;
            }
            need_server |= wl_needs_server(p) != 0;
            wl_params_destroy(p);
            if (bad) {
                rc = pb_usage_error("sweep", "%s", err);
                goto out_params;
            }
        }
    }
    sweep_state st = {.c = &c};
    char err[512];
    if (pb_rows_open(c.out, &st.rows, err, sizeof err)) {
        fprintf(stderr, "poolbench sweep: %s\n", err);
        rc = 1;
        goto out_params;
    }
    gethostname(st.host, sizeof st.host - 1);
    /* The server is a child process of its own, started before any run. */
    pb_server srv = {.pid = -1};
    if (need_server) {
        int s = pb_server_start("127.0.0.1", 0, &srv);
        if (s) {
            fprintf(stderr, "poolbench sweep: cannot start the loopback HTTP server: %s\n", strerror(-s));
            pb_rows_close(st.rows);
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

    /* Count the runs for the progress line. */
    size_t per_combo = 0;
    for (size_t e = 0; e < c.nexecutors; e++)
        if (c.executors[e] != EX_SEQ)
            per_combo += c.nworkers * c.npins;
    st.prog.on = !c.quiet && pb_progress_enabled();
    st.prog.t0 = ex_now_ns();
    for (size_t k = 0; k < c.nworkloads; k++) {
        char why[512];
        size_t baseline =
            c.no_baseline || wl_requires_isolation(base[k], why, sizeof why) ? 0 : 1;
        st.prog.total += combos_of(&c, c.workloads[k]) * (per_combo + baseline) *
                         (c.warmup + c.reps);
    }

    for (size_t k = 0; k < c.nworkloads && !interrupted; k++) {
        const wl_workload *w = c.workloads[k];
        for (size_t combo = 0; combo < combos_of(&c, w) && !interrupted; combo++) {
            wl_params *p = NULL;
            if (wl_params_copy(base[k], &p) || set_combo(&c, w, p, combo, err, sizeof err)) {
                fprintf(stderr, "poolbench sweep: %s: %s\n", w->name,
                        p ? err : "out of memory");
                wl_params_destroy(p);
                st.failures++;
                break;
            }
            if (wl_needs_server(p))
                wl_params_set(p, "base_url", pb_server_url(&srv), err, sizeof err);
            pb_run_opts o = {.kind = EX_SEQ, .workers = 1, .workload = w, .params = p,
                             .tasks = c.tasks, .seed = c.seed, .label = w->name,
                             .server = pb_server_label(p, &srv)};
            /* The baseline: seq, one worker, unpinned; not for work that
             * crashes or hangs its worker (only procs survives that: its
             * rows then have no speedup and no digest to compare). */
            char digest[WL_DIGEST_HEX_LEN + 1] = "";
            double base_wall = NAN;
            char why[512];
            if (!c.no_baseline && !wl_requires_isolation(p, why, sizeof why))
                base_wall = run_config(&st, &o, PB_PIN_NONE, NAN, "", digest);
            for (size_t e = 0; e < c.nexecutors && !interrupted; e++) {
                if (c.executors[e] == EX_SEQ)
                    continue;
                for (size_t wi = 0; wi < c.nworkers && !interrupted; wi++)
                    for (size_t pi = 0; pi < c.npins && !interrupted; pi++) {
                        o.kind = c.executors[e];
                        o.workers = c.workers[wi];
                        o.timeout_ns = o.kind == EX_PROCS ? c.timeout_ns : 0;
                        o.window = o.kind == EX_PROCS ? c.procs.window : 0;
                        o.transport = o.kind == EX_PROCS ? c.procs.transport
                                                         : EX_TRANSPORT_PIPE;
                        run_config(&st, &o, c.pins[pi], base_wall, digest, NULL);
                    }
            }
            wl_params_destroy(p);
        }
    }
    if (st.prog.on)
        fputc('\n', stderr);
    pb_server_stop(&srv);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    pb_rows_close(st.rows);
    if (interrupted) {
        fprintf(stderr, "poolbench sweep: interrupted; %zu finished rows kept in %s/runs.csv\n",
                st.rows_written, c.out);
        rc = 130;
    } else {
        if (!c.quiet)
            fprintf(stderr, "poolbench sweep: %zu rows in %s/runs.csv (%zu failed runs)\n",
                    st.rows_written, c.out, st.failures);
        rc = st.failures ? 1 : 0;
    }
out_params:
    for (size_t k = 0; k < MAX_LIST; k++)
        wl_params_destroy(base[k]);
    return rc;
}
