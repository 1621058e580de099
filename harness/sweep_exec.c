/*
 * sweep_exec.c: running a sweep's plan (sweep.h).
 *
 * Three phases.  The plan: one case per workload and parameter
 * combination, and per case its configurations (the sequential baseline
 * first, then executors x workers x pins, then Python's executors x
 * workers, unpinned, sized, ordered and checked as the C ones: pyexec.h).
 * Sizing: each configuration gets its run length from the steady-state
 * rule (plan.h), found with unrecorded pilot runs that double as the
 * warm-up runs.  Measuring: the repetitions, either interleaved (rep 1 of
 * every configuration in an order shuffled from the recorded seed, then
 * rep 2, ...) or grouped (all repetitions of one configuration, then the
 * next).  In both orders a case's baseline runs before the other
 * configurations of the same round, so every row carries its speedup when
 * it is written: against the median of the baseline's repetitions so far.
 *
 * Every run is a fresh child process (measure.c); rows are appended as
 * they finish (rows.c), so an interrupted sweep keeps all of them.
 */
#include "cli.h"
#include "commands.h"
#include "pyexec.h"
#include "rows.h"
#include "stats.h"
#include "sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NO_BASELINE ((size_t)-1)
/* Pilot runs per configuration at most: each scales the size by up to
 * 100x, so four reach any length a sweep accepts. */
#define MAX_PILOTS 4

typedef struct sw_case {
    const wl_workload *w;
    wl_params *p;
    size_t baseline;        /* index of its seq configuration, or NO_BASELINE */
    char digest[WL_DIGEST_HEX_LEN + 1]; /* the baseline's first measured one */
    double *base_tput;      /* the baseline's throughput per repetition so far */
    size_t nbase;
} sw_case;

typedef struct sw_config {
    size_t case_idx;
    pb_run_opts o;
    pb_pin_policy pin;
    char config_id[1400];
    double *walls, *tputs, *speedups, *p95s;
    unsigned *rep_no;
    size_t n;
} sw_config;

typedef struct progress {
    bool on;
    size_t done, total;
    uint64_t t0;
} progress;

typedef struct sw_state {
    const sweep_cli *c;
    const pb_server *srv;
    volatile sig_atomic_t *interrupted;
    pb_rows *rows;
    sw_case *cases;
    size_t ncases;
    sw_config *configs;
    size_t nconfigs;
    progress prog;
    char host[256];
    size_t failures, rows_written, sequence;
} sw_state;

static void show(progress *p, const char *what)
{
    if (!p->on)
        return;
    double el = (double)(ex_now_ns() - p->t0) / 1e9;
    double eta = p->done ? el / (double)p->done * (double)(p->total - p->done) : 0;
    fprintf(stderr, "\r\033[K[%zu/%zu] %s | %.0f s elapsed, ETA %.0f s", p->done, p->total, what,
            el, eta);
}

/* A message on its own line, below the progress line if there is one. */
static void say(sw_state *st, const char *config_id, const char *msg)
{
    if (st->prog.on)
        fputc('\n', stderr);
    fprintf(stderr, "poolbench sweep: %s: %s\n", config_id, msg);
}

static void utc_now(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ----------------------------------------------------------------- plan */

size_t pb_sweep_combos(const sweep_cli *c, const wl_workload *w)
{
    size_t n = 1;
    for (size_t v = 0; v < c->nvary; v++)
        if (wl_param_find(w, c->vary[v].key))
            n *= c->vary[v].n;
    return n;
}

int pb_sweep_set_combo(const sweep_cli *c, const wl_workload *w, wl_params *p, size_t idx,
                       char *err, size_t errlen)
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

/* A configuration; py: Python's executor of kind's model instead (always
 * unpinned; the deadline of a Python run of any kind is --timeout-ms). */
/* One point of the load dimensions (sweep_cli's queues x on_fulls x rates
 * x chunksizes). */
typedef struct sw_load {
    size_t queue;
    ex_on_full on_full;
    double rate;
    size_t chunksize;
} sw_load;

static const sw_load default_load = {0, EX_ON_FULL_BLOCK, 0, 0};

/* The load's share of a config_id: "" for the default load, else e.g.
 * "|q64|reject|r500poisson|c8" (only what differs from the default). */
static void load_suffix(const sweep_cli *c, const sw_load *l, char *buf, size_t len)
{
    int off = 0;
    buf[0] = '\0';
    if (l->queue)
        off += snprintf(buf + off, len - (size_t)off, "|q%zu|%s", l->queue,
                        ex_on_full_name(l->on_full));
    if (l->rate > 0 && (size_t)off < len)
        off += snprintf(buf + off, len - (size_t)off, "|r%.6g%s", l->rate,
                        pb_arrival_name(c->arrival));
    if (l->chunksize && (size_t)off < len)
        snprintf(buf + off, len - (size_t)off, "|c%zu", l->chunksize);
}

/* Whether load l makes sense for an executor of kind: a policy for a full
 * queue needs a bound (queue 0 runs block only), a process pool's task
 * cannot run in the submitter, and ex_map submits all at once. */
static bool load_applies(const sw_load *l, ex_kind kind)
{
    if (l->queue == 0 && l->on_full != EX_ON_FULL_BLOCK)
        return false;
    if (kind == EX_PROCS && l->on_full == EX_ON_FULL_CALLER_RUNS)
        return false;
    return !(l->chunksize && l->rate > 0);
}

/* The k-th combination of the load lists. */
static sw_load load_at(const sweep_cli *c, size_t k)
{
    sw_load l;
    l.queue = c->queues[k % c->nqueues];
    k /= c->nqueues;
    l.on_full = c->on_fulls[k % c->non_fulls];
    k /= c->non_fulls;
    l.rate = c->rates[k % c->nrates];
    k /= c->nrates;
    l.chunksize = c->chunksizes[k % c->nchunks];
    return l;
}

static size_t load_count(const sweep_cli *c)
{
    return c->nqueues * c->non_fulls * c->nrates * c->nchunks;
}

static int add_config(sw_state *st, size_t ci, ex_kind kind, pb_py_kind py, unsigned workers,
                      pb_pin_policy pin, const sw_load *load)
{
    const sweep_cli *c = st->c;
    sw_case *cs = &st->cases[ci];
    sw_config *cf = &st->configs[st->nconfigs];
    memset(cf, 0, sizeof *cf);
    cf->case_idx = ci;
    cf->pin = pin;
    cf->o = (pb_run_opts){
        .kind = kind, .workers = workers, .workload = cs->w, .params = cs->p,
        .tasks = c->tasks, .seed = c->seed, .label = cs->w->name,
        .server = pb_server_label(cs->p, st->srv),
        .timeout_ns = kind == EX_PROCS || py ? c->timeout_ns : 0,
        .procs_window = kind == EX_PROCS && !py ? c->window : 0,
        .transport = kind == EX_PROCS && !py ? c->transport : EX_TRANSPORT_PIPE,
        .warmup_tasks = (size_t)c->warmup_rounds * workers, .py = py,
        .queue_capacity = load->queue, .on_full = load->on_full, .rate = load->rate,
        .arrival = load->rate > 0 ? c->arrival : PB_ARRIVAL_BATCH,
        .chunksize = load->chunksize, .sample_ms = c->sample_ms,
    };
    char params[1024];
    if (wl_params_format(cs->p, params, sizeof params))
        params[sizeof params - 1] = 0;
    int len = snprintf(cf->config_id, sizeof cf->config_id, "%s|%s|%s|%u|%s", cs->w->name,
                       params, pb_executor_name(&cf->o), workers, pb_pin_policy_name(pin));
    /* A process pool other than the default is another configuration. */
    if (kind == EX_PROCS && !py && len > 0 && (size_t)len < sizeof cf->config_id &&
        (cf->o.transport != EX_TRANSPORT_PIPE || pb_run_window(&cf->o) != EX_DEFAULT_WINDOW))
        len += snprintf(cf->config_id + len, sizeof cf->config_id - (size_t)len, "|%s|w%u",
                        pb_run_transport(&cf->o), pb_run_window(&cf->o));
    /* So is the mpi executor's Open MPI transport (OMPI_MCA_btl): mpi-tcp, mpi-sm. */
    else if (kind == EX_MPI && !py && len > 0 && (size_t)len < sizeof cf->config_id &&
             strcmp(pb_run_transport(&cf->o), "mpi") != 0)
        len += snprintf(cf->config_id + len, sizeof cf->config_id - (size_t)len, "|%s",
                        pb_run_transport(&cf->o));
    if (len > 0 && (size_t)len < sizeof cf->config_id)
        load_suffix(c, load, cf->config_id + len, sizeof cf->config_id - (size_t)len);
    double *d = calloc((size_t)c->reps * 4, sizeof *d);
    cf->rep_no = calloc(c->reps, sizeof *cf->rep_no);
    if (!d || !cf->rep_no) {
        free(d);
        free(cf->rep_no);
        return -1;
    }
    cf->walls = d;
    cf->tputs = d + c->reps;
    cf->speedups = d + 2 * (size_t)c->reps;
    cf->p95s = d + 3 * (size_t)c->reps;
    st->nconfigs++;
    return 0;
}

/* Python's configurations of a case per parameter combination: py-seq
 * (Python's own baseline) once whenever any py- executor is listed, the
 * others at every pool size, all unpinned.  Their rows carry the speedup
 * against C's seq like every row (the report adds the one against
 * py-seq). */
static size_t python_configs(const sweep_cli *c)
{
    size_t n = c->npy ? 1 : 0;
    for (size_t e = 0; e < c->npy; e++)
        if (c->py[e] != PB_PY_SEQ)
            n += c->nworkers;
    return n;
}

static int add_python(sw_state *st, size_t ci)
{
    const sweep_cli *c = st->c;
    if (c->npy && add_config(st, ci, EX_SEQ, PB_PY_SEQ, 1, PB_PIN_NONE, &default_load))
        return -1;
    for (size_t e = 0; e < c->npy; e++)
        for (size_t wi = 0; c->py[e] != PB_PY_SEQ && wi < c->nworkers; wi++)
            if (add_config(st, ci, c->py[e] == PB_PY_PROCS ? EX_PROCS : EX_THREADS, c->py[e],
                           c->workers[wi], PB_PIN_NONE, &default_load))
                return -1;
    return 0;
}

/* The sequential loop under each open-loop rate (when seq is listed): its
 * latency against the offered rate beside the pools'.  A loop has no
 * queue and no ex_map of its own to vary. */
static int add_seq_rates(sw_state *st, size_t ci)
{
    const sweep_cli *c = st->c;
    bool seq = false;
    for (size_t e = 0; e < c->nexecutors; e++)
        seq |= c->executors[e] == EX_SEQ;
    for (size_t k = 0; seq && k < c->nrates; k++) {
        sw_load l = {0, EX_ON_FULL_BLOCK, c->rates[k], 0};
        if (l.rate > 0 && add_config(st, ci, EX_SEQ, PB_PY_NONE, 1, PB_PIN_NONE, &l))
            return -1;
    }
    return 0;
}

/* One case: its parameters, its baseline (seq, one worker, unpinned; not
 * for work that crashes or hangs its worker: only procs survives that, and
 * its rows then have no speedup and no digest to compare), its pools. */
static int add_case(sw_state *st, const wl_workload *w, wl_params *p)
{
    const sweep_cli *c = st->c;
    size_t ci = st->ncases++;
    sw_case *cs = &st->cases[ci];
    *cs = (sw_case){.w = w, .p = p, .baseline = NO_BASELINE};
    char why[512];
    if (!c->no_baseline && !wl_requires_isolation(p, why, sizeof why)) {
        cs->base_tput = calloc(c->reps, sizeof *cs->base_tput);
        cs->baseline = st->nconfigs;
        if (!cs->base_tput ||
            add_config(st, ci, EX_SEQ, PB_PY_NONE, 1, PB_PIN_NONE, &default_load))
            return -1;
    }
    if (add_seq_rates(st, ci))
        return -1;
    for (size_t e = 0; e < c->nexecutors; e++)
        for (size_t wi = 0; c->executors[e] != EX_SEQ && wi < c->nworkers; wi++)
            for (size_t pi = 0; pi < c->npins; pi++)
                for (size_t k = 0; k < load_count(c); k++) {
                    sw_load l = load_at(c, k);
                    if (load_applies(&l, c->executors[e]) &&
                        add_config(st, ci, c->executors[e], PB_PY_NONE, c->workers[wi],
                                   c->pins[pi], &l))
                        return -1;
                }
    return add_python(st, ci);
}

static int build_plan(sw_state *st, wl_params *const *base)
{
    const sweep_cli *c = st->c;
    size_t ncases = 0;
    for (size_t k = 0; k < c->nworkloads; k++)
        ncases += pb_sweep_combos(c, c->workloads[k]);
    size_t per_case = 1 + c->nrates + c->nexecutors * c->nworkers * c->npins * load_count(c) +
                      python_configs(c);
    st->cases = calloc(ncases, sizeof *st->cases);
    st->configs = calloc(ncases * per_case, sizeof *st->configs);
    if (!st->cases || !st->configs) {
        fprintf(stderr, "poolbench sweep: out of memory\n");
        return -1;
    }
    char err[512];
    for (size_t k = 0; k < c->nworkloads; k++) {
        const wl_workload *w = c->workloads[k];
        for (size_t combo = 0; combo < pb_sweep_combos(c, w); combo++) {
            wl_params *p = NULL;
            if (wl_params_copy(base[k], &p) || pb_sweep_set_combo(c, w, p, combo, err, sizeof err)) {
                fprintf(stderr, "poolbench sweep: %s: %s\n", w->name, p ? err : "out of memory");
                wl_params_destroy(p);
                return -1;
            }
            if (wl_needs_server(p))
                wl_params_set(p, "base_url", pb_server_url(st->srv), err, sizeof err);
            if (add_case(st, w, p)) {
                fprintf(stderr, "poolbench sweep: out of memory\n");
                return -1;
            }
        }
    }
    return 0;
}

static void free_plan(sw_state *st)
{
    for (size_t i = 0; st->configs && i < st->nconfigs; i++) {
        free(st->configs[i].walls);
        free(st->configs[i].rep_no);
    }
    for (size_t i = 0; st->cases && i < st->ncases; i++) {
        wl_params_destroy(st->cases[i].p);
        free(st->cases[i].base_tput);
    }
    free(st->configs);
    free(st->cases);
}

/* --------------------------------------------------------------- sizing */

/* An unrecorded run (pilot or warm-up) of cf at its current size; 0, or -1
 * after saying why it failed. */
static int unrecorded_run(sw_state *st, sw_config *cf, unsigned k, pb_measured *m)
{
    char what[1600];
    snprintf(what, sizeof what, "%s %s w=%u pin=%s sizing %u (%zu tasks)", cf->o.workload->name,
             pb_executor_name(&cf->o), cf->o.workers, pb_pin_policy_name(cf->pin), k,
             cf->o.tasks);
    show(&st->prog, what);
    pb_measure(&cf->o, &(pb_measure_opts){.pin = cf->pin, .cpus = st->c->cpus,
                                          .server_pid = st->srv->pid}, m);
    pb_run_result_free(&m->r); /* its samples: only measured runs keep them */
    st->prog.done++;
    if (m->ok)
        return 0;
    if (!*st->interrupted) {
        st->failures++;
        say(st, cf->config_id, m->err);
    }
    return -1;
}

/* The run length by the rule: start at the floor (>= min_rounds rounds),
 * and while a pilot lasts less than min_time_s, scale up and try again.
 * The pilots count as the configuration's warm-up runs; more warm-ups run
 * at the final size if --warmup asks for more. */
static void size_config(sw_state *st, sw_config *cf)
{
    const sweep_cli *c = st->c;
    const pb_rule *rule = &c->rule;
    cf->o.tasks = pb_rule_floor(rule, c->tasks, cf->o.workers);
    bool settled = rule->min_time_s <= 0;
    for (unsigned k = 0; !*st->interrupted && (k < c->warmup || (!settled && k < MAX_PILOTS));
         k++) {
        if (k >= c->warmup)
            st->prog.total++; /* a pilot beyond the warm-ups planned */
        pb_measured m;
        if (unrecorded_run(st, cf, k + 1, &m))
            return;
        if (settled || m.r.wall_s >= rule->min_time_s) {
            settled = true;
            continue;
        }
        cf->o.tasks = pb_rule_rescale(rule, cf->o.tasks, cf->o.workers, m.r.wall_s);
    }
}

/* Sizes every configuration; then each case's digest covers its shortest
 * run's outputs, so that all its runs are checked against the same ones. */
static void size_all(sw_state *st)
{
    for (size_t i = 0; i < st->nconfigs && !*st->interrupted; i++)
        size_config(st, &st->configs[i]);
    for (size_t ci = 0; ci < st->ncases; ci++) {
        size_t shortest = PB_MAX_TASKS;
        for (size_t i = 0; i < st->nconfigs; i++)
            if (st->configs[i].case_idx == ci && st->configs[i].o.tasks < shortest)
                shortest = st->configs[i].o.tasks;
        for (size_t i = 0; i < st->nconfigs; i++)
            if (st->configs[i].case_idx == ci)
                st->configs[i].o.digest_tasks = shortest;
    }
}

/* ------------------------------------------------------------ measuring */

/* The baseline's median throughput over its repetitions so far, or NAN. */
static double baseline_throughput(const sw_case *cs)
{
    pb_summary s;
    return cs->nbase && pb_summarize(cs->base_tput, cs->nbase, &s) == 0 ? s.median : NAN;
}

static int write_row(sw_state *st, sw_config *cf, const pb_measured *m, unsigned rep,
                     double base_tput)
{
    const sweep_cli *c = st->c;
    char ts[32];
    utc_now(ts, sizeof ts);
    pb_row_meta meta = {
        .host = st->host, .timestamp = ts, .config_id = cf->config_id,
        .pin = pb_pin_policy_name(cf->pin), .cpus = c->cpus ? c->cpus : "",
        .pinning = m->pinning, .rep = rep, .baseline_throughput = base_tput,
        .baseline_digest = st->cases[cf->case_idx].digest, .rule = c->rule,
        .order = c->grouped ? "grouped" : "interleaved", .order_seed = c->order_seed,
        .sequence = ++st->sequence, .noise = &m->noise,
    };
    if (pb_rows_add_run(st->rows, &cf->o, &m->r, &meta) ||
        pb_rows_add_timeline(st->rows, cf->config_id, rep, meta.sequence, &m->r)) {
        fprintf(stderr, "poolbench sweep: cannot append a row: %s\n", strerror(errno));
        st->failures++;
        *st->interrupted = 1;
        return -1;
    }
    st->rows_written++;
    return 0;
}

/* A measured run of configuration i: its row, and its numbers for the
 * configuration's summary. */
static void record_rep(sw_state *st, size_t i, unsigned rep, const pb_measured *m)
{
    sw_config *cf = &st->configs[i];
    sw_case *cs = &st->cases[cf->case_idx];
    if (cs->baseline == i) {
        if (!cs->digest[0])
            snprintf(cs->digest, sizeof cs->digest, "%s", m->r.digest);
        cs->base_tput[cs->nbase++] = m->r.throughput;
    }
    double base = baseline_throughput(cs);
    if (write_row(st, cf, m, rep, base))
        return;
    cf->rep_no[cf->n] = rep;
    cf->walls[cf->n] = m->r.wall_s;
    cf->tputs[cf->n] = m->r.throughput;
    cf->speedups[cf->n] = base > 0 ? m->r.throughput / base : NAN;
    cf->p95s[cf->n] = m->r.lat_p95_ns / 1e6;
    cf->n++;
}

/* Repetition rep of configuration i: one measured run, one row. */
static void measure_rep(sw_state *st, size_t i, unsigned rep)
{
    sw_config *cf = &st->configs[i];
    char what[1600];
    snprintf(what, sizeof what, "%s %s w=%u pin=%s rep %u/%u", cf->o.workload->name,
             pb_executor_name(&cf->o), cf->o.workers, pb_pin_policy_name(cf->pin), rep,
             st->c->reps);
    show(&st->prog, what);
    pb_measured m;
    pb_measure(&cf->o, &(pb_measure_opts){.pin = cf->pin, .cpus = st->c->cpus,
                                          .probe_ms = st->c->probe_ms,
                                          .server_pid = st->srv->pid}, &m);
    st->prog.done++;
    if (!*st->interrupted && !m.ok) {
        st->failures++;
        say(st, cf->config_id, m.err);
    } else if (!*st->interrupted) {
        record_rep(st, i, rep, &m);
    }
    pb_run_result_free(&m.r);
}

static void measure_grouped(sw_state *st)
{
    for (size_t i = 0; i < st->nconfigs; i++)
        for (unsigned rep = 1; rep <= st->c->reps && !*st->interrupted; rep++)
            measure_rep(st, i, rep);
}

/* Round by round: the baselines in case order, then every other
 * configuration in an order shuffled afresh each round. */
static int measure_interleaved(sw_state *st)
{
    size_t *order = calloc(st->nconfigs ? st->nconfigs : 1, sizeof *order);
    if (!order) {
        fprintf(stderr, "poolbench sweep: out of memory\n");
        return -1;
    }
    uint64_t rng = st->c->order_seed;
    for (unsigned rep = 1; rep <= st->c->reps && !*st->interrupted; rep++) {
        size_t n = 0;
        for (size_t ci = 0; ci < st->ncases && !*st->interrupted; ci++)
            if (st->cases[ci].baseline != NO_BASELINE)
                measure_rep(st, st->cases[ci].baseline, rep);
        for (size_t i = 0; i < st->nconfigs; i++)
            if (st->cases[st->configs[i].case_idx].baseline != i)
                order[n++] = i;
        pb_shuffle(order, n, &rng);
        for (size_t k = 0; k < n && !*st->interrupted; k++)
            measure_rep(st, order[k], rep);
    }
    free(order);
    return 0;
}

/* ------------------------------------------------------------ summaries */

static void outlier_list(const sw_config *cf, char *buf, size_t len)
{
    unsigned char flags[1000];
    size_t nout = 0, off = 0;
    buf[0] = 0;
    if (pb_outliers(cf->walls, cf->n, flags, &nout))
        return;
    for (size_t i = 0; i < cf->n && off < len; i++)
        if (flags[i])
            off += (size_t)snprintf(buf + off, len - off, "%s%u", off ? ";" : "", cf->rep_no[i]);
}

static void summarize(sw_state *st, sw_config *cf)
{
    size_t n = cf->n;
    pb_summary ws, ts, ss = {0}, es = {0}, ps;
    pb_summarize(cf->walls, n, &ws);
    pb_summarize(cf->tputs, n, &ts);
    pb_summarize(cf->p95s, n, &ps);
    bool have_speedup = isfinite(cf->speedups[0]);
    if (have_speedup) {
        double effs[1000];
        for (size_t i = 0; i < n; i++)
            effs[i] = cf->speedups[i] / (double)cf->o.workers;
        pb_summarize(cf->speedups, n, &ss);
        pb_summarize(effs, n, &es);
    }
    char outliers[256], warning[256] = "";
    outlier_list(cf, outliers, sizeof outliers);
    if (n >= 2)
        pb_spread_warning(&ws, 0, warning, sizeof warning);
    pb_config_summary s = {
        .config_id = cf->config_id, .o = &cf->o, .pin = pb_pin_policy_name(cf->pin), .n = n,
        .tasks = cf->o.tasks, .wall_median_s = ws.median, .wall_ci_low_s = ws.ci_low,
        .wall_ci_high_s = ws.ci_high, .ci_level = ws.ci_level, .wall_cv = ws.cv,
        .outlier_reps = outliers, .throughput_median = ts.median,
        .speedup_median = have_speedup ? ss.median : NAN,
        .efficiency_median = have_speedup ? es.median : NAN,
        .latency_p95_median_ms = ps.median, .warning = warning,
    };
    pb_rows_add_summary(st->rows, &s);
    if (warning[0] && !st->c->quiet)
        say(st, cf->config_id, warning);
}

/* ----------------------------------------------------------------- main */

static void announce(const sw_state *st)
{
    const sweep_cli *c = st->c;
    if (c->quiet)
        return;
    fprintf(stderr, "poolbench sweep: %zu configurations x %u repetitions, %s order (seed %llu); "
            "runs of >= %u rounds and >= %g s measured, after a warm-up of %u round%s\n",
            st->nconfigs, c->reps, c->grouped ? "grouped" : "interleaved",
            (unsigned long long)c->order_seed, c->rule.min_rounds, c->rule.min_time_s,
            c->warmup_rounds, c->warmup_rounds == 1 ? "" : "s");
}

int pb_sweep_execute(const sweep_cli *c, wl_params *const *base, const pb_server *srv,
                     volatile sig_atomic_t *interrupted)
{
    sw_state st = {.c = c, .srv = srv, .interrupted = interrupted};
    char err[512];
    if (pb_rows_open(c->out, &st.rows, err, sizeof err)) {
        fprintf(stderr, "poolbench sweep: %s\n", err);
        return 1;
    }
    gethostname(st.host, sizeof st.host - 1);
    int rc = build_plan(&st, base);
    if (rc == 0) {
        announce(&st);
        st.prog.on = !c->quiet && pb_progress_enabled();
        st.prog.t0 = ex_now_ns();
        st.prog.total = st.nconfigs * (c->warmup + c->reps);
        size_all(&st);
        rc = c->grouped ? (measure_grouped(&st), 0) : measure_interleaved(&st);
        for (size_t i = 0; i < st.nconfigs; i++)
            if (st.configs[i].n)
                summarize(&st, &st.configs[i]);
        if (st.prog.on)
            fputc('\n', stderr);
    }
    pb_rows_close(st.rows);
    free_plan(&st);
    if (rc)
        return 1;
    if (*interrupted) {
        fprintf(stderr, "poolbench sweep: interrupted; %zu finished rows kept in %s/runs.csv\n",
                st.rows_written, c->out);
        return 130;
    }
    if (!c->quiet)
        fprintf(stderr, "poolbench sweep: %zu rows in %s/runs.csv (%zu failed runs)\n",
                st.rows_written, c->out, st.failures);
    return st.failures ? 1 : 0;
}
