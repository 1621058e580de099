/*
 * run.c: one measured run (see run.h).
 *
 * Inputs are built before the clock starts; the clock runs from the first
 * submit to the moment the last future is final, so wall time is what a
 * user of the pool waits for.  Every future is kept until the end, then
 * read in input order for the digest, the checks and the per-task numbers.
 * Multi-stage workloads (fetch-hash) chain their stages with
 * ex_future_then; a task's numbers then cover the whole chain.
 *
 * The phases, in pb_run's order: check the options, allocate (inputs,
 * futures, the arrival schedule), start the executor and warm it up, the
 * measured part (submit all at once, at each task's intended arrival, or
 * through ex_map; sample the gauges; wait), collect every task's outcome
 * and numbers, finish the result.  run_result.c accounts outcomes and
 * writes the result.
 */
#include "run.h"
#include "commands.h"

#include "pyexec.h"
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { PB_OBS_WORKERS = 64 }; /* workers whose CPUs cpus_observed lists */

typedef struct task_slot {
    ex_future *stage[2]; /* stage[0] is submitted, stage[1] chained */
} task_slot;

static int errf(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t len, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return EX_EINVAL;
}

/* Tasks whose CPU reading the library had to cut (executor.h). */
static void count_cpu_cuts(pb_run_result *r, const ex_task_stats *s)
{
    r->cpu_over_wall += (s->flags & EX_STATS_CPU_OVER_WALL) != 0;
    r->cpu_under_zero += (s->flags & EX_STATS_CPU_UNDER_ZERO) != 0;
}

/* The warm-up round: n tasks (inputs 0, 1, ... cycling over the run's)
 * run to completion before the clock starts, their results discarded.  It
 * opens what workers open lazily (a curl handle and an HTTP connection per
 * worker, the executor's future cache, the task's code and data in the
 * caches), so that the measured window starts in the steady state instead
 * of paying for it in its first round.  Best effort: on a failure the
 * round is cut short and r->warmup_tasks says how many ran. */
static void warm_up(ex_executor *ex, wl_ctx *ctx, size_t n, pb_run_result *r)
{
    size_t nstages = wl_stage_count(ctx), ntasks = wl_ntasks(ctx), k = 0;
    ex_future **fs = n ? calloc(n * nstages, sizeof *fs) : NULL;
    ex_future **finals = n ? calloc(n, sizeof *finals) : NULL;
    uint64_t t0 = ex_now_ns();
    for (; fs && finals && k < n; k++) {
        const void *in;
        size_t len;
        ex_future **f = &fs[k * nstages];
        if (wl_input(ctx, k % ntasks, &in, &len) || ex_submit(ex, wl_task_fn(ctx), in, len, f))
            break;
        if (nstages > 1 && ex_future_then(f[0], ex, wl_stage_fn(ctx, 1), &f[1])) {
            ex_future_release(f[0]);
            f[0] = NULL;
            break;
        }
        finals[k] = f[nstages - 1];
    }
    ex_wait(finals, k, EX_ALL_COMPLETED, EX_FOREVER, NULL);
    r->warmup_s = (double)(ex_now_ns() - t0) / 1e9;
    r->warmup_tasks = k;
    for (size_t i = 0; fs && i < k * nstages; i++)
        ex_future_release(fs[i]);
    free(fs);
    free(finals);
}

/* Everything one run holds between its phases. */
typedef struct run_state {
    const pb_run_opts *o;
    pb_run_result *r;
    wl_ctx *ctx;
    size_t nstages;
    task_slot *slots;
    ex_future **finals;      /* the accepted tasks' last stages */
    size_t submitted;
    int *submit_error;       /* per task: why ex_submit refused it, or 0 */
    uint64_t *arrive;        /* open loop: intended arrival, ns after t0 */
    double *lat;
    size_t nran;
    wl_digest *digest;
    ex_executor *ex;
    pb_sampler *sampler;
    uint64_t t0, t1, first_submit, last_submit;
    pb_usage u0, u1;
} run_state;

/* "label: done/total tasks (pct) elapsed", and the gauges when sampled. */
static void progress_line(const run_state *s, size_t done)
{
    const pb_run_opts *o = s->o;
    double el = (double)(ex_now_ns() - s->t0) / 1e9;
    fprintf(stderr, "\r\033[K%s: %zu/%zu tasks (%.0f%%) %.1f s",
            o->label ? o->label : "run", done, o->tasks,
            100.0 * (double)done / (double)o->tasks, el);
    ex_pool_stats g;
    if (!s->ex || ex_executor_stats(s->ex, &g) != 0)
        return;
    fprintf(stderr, ", queued %llu, running %llu", (unsigned long long)g.queued,
            (unsigned long long)g.running);
    if (g.rejected)
        fprintf(stderr, ", rejected %llu", (unsigned long long)g.rejected);
}

static int check_opts(const pb_run_opts *o, char *err, size_t errlen)
{
    if (!o->workload || !o->params || o->tasks == 0 || o->workers == 0)
        return errf(err, errlen, "run: workload, params, tasks >= 1 and workers >= 1 are required");
    if (o->arrival != PB_ARRIVAL_BATCH && !(o->rate > 0 && isfinite(o->rate)))
        return errf(err, errlen, "run: a %s arrival needs a rate > 0 tasks/s",
                    pb_arrival_name(o->arrival));
    if (o->chunksize && o->arrival != PB_ARRIVAL_BATCH)
        return errf(err, errlen, "run: --chunksize (ex_map) submits all at once; it cannot "
                    "be combined with --rate");
    if (o->py && (o->arrival != PB_ARRIVAL_BATCH || o->chunksize || o->sample_ms ||
                  o->on_full != EX_ON_FULL_BLOCK))
        return errf(err, errlen, "run: Python's executors run all tasks at once through "
                    "submit; --rate, --chunksize, --sample-ms and --on-full are for seq, threads "
                    "and procs");
    return 0;
}

/* Inputs, futures, latencies, the digest and the arrival schedule. */
static int run_alloc(run_state *s, char *err, size_t errlen)
{
    const pb_run_opts *o = s->o;
    int rc = wl_prepare(o->workload, o->params, o->tasks, o->seed, 0, &s->ctx, err, errlen);
    if (rc)
        return rc;
    s->nstages = wl_stage_count(s->ctx);
    if (o->chunksize && s->nstages > 1)
        return errf(err, errlen, "run: %s chains %zu stages with ex_future_then; --chunksize "
                    "(ex_map) runs one-stage workloads only", o->workload->name, s->nstages);
    s->slots = calloc(o->tasks, sizeof *s->slots);
    s->finals = calloc(o->tasks, sizeof *s->finals);
    s->lat = calloc(o->tasks, sizeof *s->lat);
    s->submit_error = calloc(o->tasks, sizeof *s->submit_error);
    if (o->arrival != PB_ARRIVAL_BATCH)
        s->arrive = calloc(o->tasks, sizeof *s->arrive);
    /* The digest covers the first digest_tasks outputs (all when 0), so
     * that runs of different lengths can prove they computed the same
     * thing; later indexes are refused by wl_digest_add, harmlessly. */
    s->r->digest_tasks = o->digest_tasks && o->digest_tasks < o->tasks ? o->digest_tasks : o->tasks;
    if (!s->slots || !s->finals || !s->lat || !s->submit_error ||
        (o->arrival != PB_ARRIVAL_BATCH && !s->arrive) ||
        wl_digest_create(s->r->digest_tasks, &s->digest)) {
        errf(err, errlen, "run: out of memory for %zu tasks", o->tasks);
        return EX_ENOMEM;
    }
    if (s->arrive)
        pb_arrival_schedule(o->arrival, o->rate, o->seed, o->tasks, s->arrive);
    return 0;
}

/* The executor, started, checked and warmed up; the window opened. */
static int run_start(run_state *s, char *err, size_t errlen)
{
    const pb_run_opts *o = s->o;
    ex_config cfg;
    ex_config_init(&cfg, o->kind);
    cfg.max_workers = o->workers;
    cfg.queue_capacity = o->queue_capacity;
    cfg.on_full = o->on_full;
    cfg.max_tasks_per_worker = o->max_tasks_per_worker;
    cfg.timeout_ns = o->timeout_ns;
    cfg.window = o->procs_window;
    cfg.transport = o->transport;
    cfg.worker_start = o->worker_start;
    cfg.worker_start_arg = o->worker_start_arg;

    /* The broker inherits the environment: Open MPI reads the transport
     * there (this process never calls MPI itself).  Open MPI 4.1's shared
     * memory (vader) reaches only processes of the same job, and spawned
     * workers are a job of their own: with "sm" the broker still talks to
     * them over tcp, so tcp stays in the list (without it the spawn fails:
     * "unable to reach each other"). */
    if (o->kind == EX_MPI && o->mpi_btl)
        setenv("OMPI_MCA_btl", strcmp(o->mpi_btl, "tcp") == 0 ? "tcp,self" : "vader,tcp,self", 1);
    pb_window_begin(o, &s->u0);
    uint64_t c0 = ex_now_ns();
    int rc = ex_create(&cfg, &s->ex);
    if (rc) {
        pb_window_end(o, &s->u1);
        errf(err, errlen, "run: cannot create the %s executor: %s", ex_kind_name(o->kind),
             ex_strerror(rc));
        return rc;
    }
    s->r->startup_s = (double)(ex_now_ns() - c0) / 1e9;
    if (ex_is_broken(s->ex)) {
        ex_destroy(s->ex);
        s->ex = NULL;
        pb_window_end(o, &s->u1);
        return errf(err, errlen, "run: the %s executor is broken: a worker failed to start "
                    "(pinning or initializer)", ex_kind_name(o->kind));
    }
    warm_up(s->ex, s->ctx, o->warmup_tasks, s->r);
    return 0;
}

/* Sleeps until the absolute CLOCK_MONOTONIC time t (ns); at once if past. */
static void sleep_until(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* Submits task i (and chains its second stage).  A refused submit (not a
 * task error) is kept against the task, so the run still completes. */
static void submit_one(run_state *s, size_t i)
{
    const void *in;
    size_t len;
    task_slot *t = &s->slots[i];
    int rc = wl_input(s->ctx, i, &in, &len);
    if (rc == 0)
        rc = ex_submit(s->ex, wl_task_fn(s->ctx), in, len, &t->stage[0]);
    if (rc == 0 && s->nstages > 1)
        rc = ex_future_then(t->stage[0], s->ex, wl_stage_fn(s->ctx, 1), &t->stage[1]);
    if (rc)
        s->submit_error[i] = rc;
    else
        s->finals[s->submitted++] = t->stage[s->nstages > 1 ? 1 : 0];
}

/* Open loop: sleeps until task i's intended arrival, then notes how far
 * behind it the submitter is (the stall the latency from the intended
 * arrival includes). */
static void arrive(run_state *s, size_t i)
{
    uint64_t due = s->t0 + s->arrive[i];
    sleep_until(due);
    uint64_t now = ex_now_ns();
    if (now > due && (double)(now - due) > s->r->submit_lag_max_ns)
        s->r->submit_lag_max_ns = (double)(now - due);
}

/* Every task, at its intended arrival (open loop) or at once; all at
 * once reads no clock per task.  The timer slack drops to 1 ns meanwhile
 * (50 us by default would bunch arrivals that are a few us apart). */
static void submit_all(run_state *s)
{
    const pb_run_opts *o = s->o;
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (s->arrive)
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    s->first_submit = ex_now_ns();
    for (size_t i = 0; i < o->tasks; i++) {
        if (s->arrive)
            arrive(s, i);
        submit_one(s, i);
        if (o->stall_ns && i == o->stall_at)
            sleep_until(ex_now_ns() + o->stall_ns);
        if (o->progress && (i & 1023) == 0)
            progress_line(s, 0);
    }
    s->last_submit = ex_now_ns();
    if (s->arrive && slack > 0)
        prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0, 0, 0);
}

/* Waits for every accepted task, refreshing the progress line. */
static void wait_all(run_state *s)
{
    if (s->o->progress) {
        ex_as_completed *it = NULL;
        if (ex_as_completed_create(s->finals, s->submitted, &it) == 0) {
            size_t done = 0;
            uint64_t last = 0;
            for (;;) {
                ex_future *f;
                int w = ex_as_completed_next(it, &f, 100 * 1000000LL);
                if (w == 0 && !f)
                    break;
                done += w == 0;
                if (ex_now_ns() - last > 100 * 1000000ULL) {
                    progress_line(s, done);
                    last = ex_now_ns();
                }
            }
            ex_as_completed_destroy(it);
        }
    }
    ex_wait(s->finals, s->submitted, EX_ALL_COMPLETED, EX_FOREVER, NULL);
}

/* The tasks through ex_map: accounted as their results come back, in
 * input order, each latency from the run's start. */
static void map_all(run_state *s)
{
    const pb_run_opts *o = s->o;
    ex_map_source src = {wl_map_get, wl_map_put, s->ctx};
    ex_map *m = NULL;
    s->first_submit = s->last_submit = s->t0;
    int rc = ex_map_create(s->ex, wl_task_fn(s->ctx), &src, o->tasks, o->chunksize, 0, &m);
    for (size_t i = 0; rc != 0 && i < o->tasks; i++)
        s->submit_error[i] = rc;
    size_t idx;
    int st, code;
    const void *out;
    size_t len;
    while (m && ex_map_next(m, &idx, &st, &code, &out, &len, EX_FOREVER) == 0) {
        if (st == EX_EFULL) { /* its chunk was refused by a full queue */
            s->r->tasks_rejected++;
            wl_digest_add_failure(s->digest, idx, EX_EFULL, 0);
            continue;
        }
        pb_run_account(s->r, s->ctx, s->digest, idx, st, code, out, len);
        s->lat[s->nran++] = (double)(ex_now_ns() - s->t0);
        if (o->progress && (idx & 1023) == 0)
            progress_line(s, idx);
    }
    if (m)
        ex_map_destroy(m);
}

/* The measured part: from the first submit to the last task final. */
static void run_measured(run_state *s)
{
    const pb_run_opts *o = s->o;
    uint64_t replaced_before = ex_workers_replaced(s->ex);
    s->t0 = ex_now_ns();
    if (o->sample_ms)
        pb_sampler_start(s->ex, o->sample_ms, s->t0, &s->sampler);
    if (o->chunksize)
        map_all(s);
    else
        submit_all(s);
    wait_all(s);
    s->t1 = ex_now_ns();
    pb_sampler_stop(s->sampler, &s->r->samples, &s->r->nsamples);
    s->sampler = NULL;
    if (o->progress) {
        progress_line(s, o->tasks);
        fputc('\n', stderr);
    }
    ex_pool_stats g;
    if (ex_executor_stats(s->ex, &g) == 0)
        s->r->caller_ran = g.caller_ran;
    s->r->workers_replaced = ex_workers_replaced(s->ex) - replaced_before;
    ex_destroy(s->ex);
    s->ex = NULL;
    pb_window_end(o, &s->u1);
}

/* Per-task sums over the tasks that ran. */
typedef struct task_sums {
    double wait, cpu, blocked, lat, ipc;
    size_t nipc;
    unsigned char seen_cpu[1024];
    uint64_t observed[PB_OBS_WORKERS]; /* per worker: CPUs seen (< 64) */
} task_sums;

/* Task i's numbers over the stages that ran: its latency from its
 * intended arrival (open loop) or its submit. */
static void collect_task(run_state *s, size_t i, task_sums *a)
{
    ex_task_stats first, st;
    task_slot *t = &s->slots[i];
    if (ex_future_stats(t->stage[0], &first) != 0 || first.start_ns == 0)
        return; /* never ran (cancelled, or failed before start) */
    uint64_t from = s->arrive ? s->t0 + s->arrive[i] : first.submit_ns;
    uint64_t end = first.end_ns, wait = first.start_ns - from;
    uint64_t cpu = first.cpu_ns, ipc = first.ipc_send_ns + first.ipc_recv_ns;
    count_cpu_cuts(s->r, &first);
    if (first.cpu >= 0 && first.cpu < 8192)
        a->seen_cpu[first.cpu / 8] |= (unsigned char)(1u << (first.cpu % 8));
    if (first.cpu >= 0 && first.cpu < 64 && first.worker >= 0 && first.worker < PB_OBS_WORKERS)
        a->observed[first.worker] |= 1ull << first.cpu;
    for (size_t k = 1; k < s->nstages; k++) {
        if (ex_future_stats(t->stage[k], &st) != 0 || st.start_ns == 0)
            break;
        end = st.end_ns;
        wait += st.start_ns - st.submit_ns;
        cpu += st.cpu_ns;
        count_cpu_cuts(s->r, &st);
        ipc += st.ipc_send_ns + st.ipc_recv_ns;
    }
    if (end < from || first.start_ns < from)
        return;
    double l = (double)(end - from);
    s->lat[s->nran++] = l;
    a->lat += l;
    a->wait += (double)wait;
    a->cpu += (double)cpu;
    double blocked = l - (double)wait - (double)cpu;
    a->blocked += blocked > 0 ? blocked : 0;
    if (s->o->kind == EX_PROCS || s->o->kind == EX_MPI) {
        a->ipc += (double)ipc;
        a->nipc++;
    }
}

/* "w0:0 w1:1,3": the CPUs each worker's tasks were seen on. */
static void format_observed(const uint64_t *observed, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int w = 0; w < PB_OBS_WORKERS && off < len; w++) {
        if (!observed[w])
            continue;
        off += (size_t)snprintf(buf + off, len - off, "%sw%d:", off ? " " : "", w);
        bool firstc = true;
        for (int c = 0; c < 64 && off < len; c++)
            if (observed[w] >> c & 1) {
                off += (size_t)snprintf(buf + off, len - off, "%s%d", firstc ? "" : ",", c);
                firstc = false;
            }
    }
}

/* The outcome of every task, in input order, and the per-task means. */
static void collect_tasks(run_state *s)
{
    const pb_run_opts *o = s->o;
    pb_run_result *r = s->r;
    task_sums *a = calloc(1, sizeof *a);
    if (!a)
        return;
    for (size_t i = 0; i < o->tasks && !o->chunksize; i++) {
        if (s->submit_error[i] == EX_EFULL) {
            r->tasks_rejected++;
            wl_digest_add_failure(s->digest, i, EX_EFULL, 0);
            continue;
        }
        if (s->submit_error[i]) {
            pb_run_account(r, s->ctx, s->digest, i, s->submit_error[i], 0, NULL, 0);
            continue;
        }
        ex_future *last = s->slots[i].stage[s->nstages > 1 ? 1 : 0];
        const void *out = NULL;
        size_t len = 0;
        int st = ex_future_result(last, &out, &len, 0);
        pb_run_account(r, s->ctx, s->digest, i, st, st ? ex_future_task_code(last) : 0, out, len);
        collect_task(s, i, a);
    }
    format_observed(a->observed, r->cpus_observed, sizeof r->cpus_observed);
    for (size_t b = 0; b < sizeof a->seen_cpu; b++)
        r->distinct_cpus += (size_t)__builtin_popcount(a->seen_cpu[b]);
    if (s->nran && !o->chunksize) {
        r->lat_mean_ns = a->lat / (double)s->nran;
        r->wait_mean_ns = a->wait / (double)s->nran;
        r->cpu_mean_ns = a->cpu / (double)s->nran;
        r->blocked_mean_ns = a->blocked / (double)s->nran;
    }
    r->ipc_mean_ns = a->nipc ? a->ipc / (double)a->nipc : 0;
    r->task_cpu_s = a->cpu / 1e9;
    free(a);
}

/* Wall time, rates, latencies, CPU utilisation and the process usage. */
static void finish_result(run_state *s)
{
    const pb_run_opts *o = s->o;
    pb_run_result *r = s->r;
    const pb_usage *u0 = &s->u0, *u1 = &s->u1;
    r->tasks = o->tasks;
    r->wall_s = (double)(s->t1 - s->t0) / 1e9;
    r->throughput = r->wall_s > 0 ? (double)(o->tasks - r->tasks_rejected) / r->wall_s : 0;
    if (o->tasks > 1 && s->last_submit > s->first_submit)
        r->achieved_rate = (double)(o->tasks - 1) * 1e9 / (double)(s->last_submit - s->first_submit);
    if (o->chunksize && s->nran) {
        double sum = 0;
        for (size_t i = 0; i < s->nran; i++)
            sum += s->lat[i];
        r->lat_mean_ns = sum / (double)s->nran;
    }
    pb_run_set_latencies(r, s->lat, s->nran);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    r->cores = ncpu > 0 ? (unsigned)ncpu : 1;
    r->cpu_util = r->wall_s > 0 ? r->task_cpu_s / (r->wall_s * r->cores) : 0;
    pb_usage_times(u0, u1, &r->user_s, &r->sys_s);
    r->window_cpu_s = r->user_s + r->sys_s;
    r->peak_rss_kb = u1->self.ru_maxrss;
    r->peak_rss_children_kb = u1->kids.ru_maxrss;
    r->nvcsw = (u1->self.ru_nvcsw - u0->self.ru_nvcsw) + (u1->kids.ru_nvcsw - u0->kids.ru_nvcsw);
    r->nivcsw =
        (u1->self.ru_nivcsw - u0->self.ru_nivcsw) + (u1->kids.ru_nivcsw - u0->kids.ru_nivcsw);
}

static void run_free(run_state *s)
{
    if (s->slots)
        for (size_t i = 0; i < s->o->tasks; i++)
            for (size_t k = 0; k < 2; k++)
                ex_future_release(s->slots[i].stage[k]);
    free(s->slots);
    free(s->finals);
    free(s->lat);
    free(s->submit_error);
    free(s->arrive);
    wl_digest_destroy(s->digest);
    wl_cleanup(s->ctx);
}

int pb_run(const pb_run_opts *o, pb_run_result *r, bool keep_latencies,
           char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int rc = check_opts(o, err, errlen);
    if (rc)
        return rc;
    if (o->py)
        return pb_py_run(o, r, keep_latencies, err, errlen);
    char why[512];
    if (pb_executor_refusal(o->kind, o->params, o->timeout_ns, why, sizeof why))
        return errf(err, errlen, "%s", why);

    run_state s = {.o = o, .r = r};
    rc = run_alloc(&s, err, errlen);
    if (rc == 0)
        rc = run_start(&s, err, errlen);
    if (rc == 0) {
        run_measured(&s);
        collect_tasks(&s);
        wl_digest_final(s.digest, r->digest);
        finish_result(&s);
        if (keep_latencies) {
            r->latencies = s.lat;
            r->nlatencies = s.nran;
            s.lat = NULL;
        }
    }
    run_free(&s);
    return rc;
}
