/*
 * run_result.c: what a run's result is made of (run.h), apart from running
 * it: each task's outcome counted (ok, failed by kind, checked, digested),
 * the latency percentiles, the process usage over the measurement window,
 * the names of error kinds, and the result as one JSON object.  pyexec.c
 * builds a Python run's result with the same functions.
 */
#include "run.h"

#include "json.h"
#include "pyexec.h"
#include "stats.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static void count_error(pb_run_result *r, int status, int code)
{
    if (status != EX_ETASK)
        code = 0;
    for (size_t i = 0; i < r->nerrors; i++)
        if (r->errors[i].status == status && r->errors[i].task_code == code) {
            r->errors[i].count++;
            return;
        }
    if (r->nerrors == PB_MAX_ERROR_KINDS) {
        r->errors_other++;
        return;
    }
    r->errors[r->nerrors++] = (pb_error_count){status, code, 1};
}

void pb_error_name(const pb_error_count *e, char *buf, size_t len)
{
    const char *name = ex_strerror(e->status);
    size_t n = strcspn(name, ":");
    if (e->status == EX_ETASK)
        snprintf(buf, len, "%.*s:%d", (int)n, name, e->task_code);
    else
        snprintf(buf, len, "%.*s", (int)n, name);
}

void pb_run_result_free(pb_run_result *r)
{
    if (!r)
        return;
    free(r->latencies);
    r->latencies = NULL;
    r->nlatencies = 0;
    free(r->samples);
    r->samples = NULL;
    r->nsamples = 0;
}

/* What ran: the configuration, and the run's size and time. */
static int json_config(json_t *j, const pb_run_opts *o, const pb_run_result *r)
{
    char params[1024];
    if (wl_params_format(o->params, params, sizeof params))
        params[sizeof params - 1] = 0;
    int rc = pb_json_str(j, "executor", pb_executor_name(o));
    rc |= pb_json_str(j, "workload", o->workload->name);
    rc |= pb_json_str(j, "kind", wl_kind_name(o->workload->kind));
    rc |= pb_json_int(j, "workers", o->workers);
    rc |= pb_json_int(j, "tasks", (long long)r->tasks);
    rc |= pb_json_str(j, "params", params);
    rc |= pb_json_int(j, "seed", (long long)o->seed);
    rc |= pb_json_num(j, "wall_s", r->wall_s, "%.9g");
    rc |= pb_json_num(j, "startup_s", r->startup_s, "%.9g");
    rc |= pb_json_int(j, "warmup_tasks", (long long)r->warmup_tasks);
    rc |= pb_json_num(j, "warmup_s", r->warmup_s, "%.9g");
    rc |= pb_json_int(j, "rounds", (long long)((r->tasks + o->workers - 1) / o->workers));
    return rc;
}

/* The outcome: throughput, failures by kind, the digest, where it ran. */
static int json_outcome(json_t *j, const pb_run_opts *o, const pb_run_result *r,
                        const char *pinning)
{
    json_t *errors = json_object();
    int rc = pb_json_num(j, "throughput", r->throughput, "%.9g");
    rc |= pb_json_int(j, "tasks_ok", (long long)r->tasks_ok);
    rc |= pb_json_int(j, "tasks_failed", (long long)r->tasks_failed);
    rc |= pb_json_int(j, "check_failed", (long long)r->check_failed);
    for (size_t i = 0; errors && i < r->nerrors; i++) {
        char name[64];
        pb_error_name(&r->errors[i], name, sizeof name);
        rc |= pb_json_int(errors, name, (long long)r->errors[i].count);
    }
    if (errors && r->errors_other)
        rc |= pb_json_int(errors, "other", (long long)r->errors_other);
    rc |= pb_json_set(j, "errors", errors);
    rc |= pb_json_str(j, "digest", r->digest);
    rc |= pb_json_str(j, "pinning", pinning ? pinning : "none");
    rc |= pb_json_str(j, "cpus_observed", r->cpus_observed);
    rc |= pb_json_str(j, "server", o->server);
    return rc;
}

/* The per-task profile and the process's resources. */
static int json_profile(json_t *j, const pb_run_opts *o, const pb_run_result *r)
{
    const struct {
        const char *k;
        double v;
    } nums[] = {
        {"latency_p50_ms", r->lat_p50_ns / 1e6}, {"latency_p95_ms", r->lat_p95_ns / 1e6},
        {"latency_p99_ms", r->lat_p99_ns / 1e6}, {"latency_mean_ms", r->lat_mean_ns / 1e6},
        {"latency_max_ms", r->lat_max_ns / 1e6}, {"wait_mean_ms", r->wait_mean_ns / 1e6},
        {"cpu_mean_ms", r->cpu_mean_ns / 1e6}, {"blocked_mean_ms", r->blocked_mean_ns / 1e6},
        {"ipc_mean_ms", r->ipc_mean_ns / 1e6}, {"task_cpu_s", r->task_cpu_s},
        {"cpu_util", r->cpu_util}, {"user_s", r->user_s}, {"sys_s", r->sys_s},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        rc |= pb_json_num(j, nums[i].k, nums[i].v, "%.9g");
    rc |= pb_json_int(j, "peak_rss_kb", r->peak_rss_kb);
    rc |= pb_json_int(j, "peak_rss_children_kb", r->peak_rss_children_kb);
    rc |= pb_json_int(j, "nvcsw", r->nvcsw);
    rc |= pb_json_int(j, "nivcsw", r->nivcsw);
    rc |= pb_json_int(j, "cores", r->cores);
    rc |= pb_json_int(j, "distinct_cpus", (long long)r->distinct_cpus);
    rc |= pb_json_int(j, "workers_replaced", (long long)r->workers_replaced);
    rc |= pb_json_int(j, "cpu_over_wall", (long long)r->cpu_over_wall);
    rc |= pb_json_int(j, "cpu_under_zero", (long long)r->cpu_under_zero);
    rc |= pb_json_str(j, "transport", pb_run_transport(o));
    rc |= pb_json_int(j, "window", pb_run_window(o));
    return rc;
}

/* The load: arrivals, the queue and its policy, the submission. */
static int json_load(json_t *j, const pb_run_opts *o, const pb_run_result *r)
{
    int rc = pb_json_int(j, "queue", o->kind == EX_SEQ ? 0 : (long long)o->queue_capacity);
    rc |= pb_json_str(j, "on_full", ex_on_full_name(o->on_full));
    rc |= pb_json_str(j, "arrival", pb_arrival_name(o->arrival));
    if (o->arrival != PB_ARRIVAL_BATCH)
        rc |= pb_json_num(j, "offered_rate", o->rate, "%.9g");
    else
        rc |= pb_json_null(j, "offered_rate");
    rc |= pb_json_num(j, "achieved_rate", r->achieved_rate, "%.9g");
    rc |= pb_json_num(j, "submit_lag_max_ms", r->submit_lag_max_ns / 1e6, "%.9g");
    rc |= pb_json_int(j, "chunksize", (long long)o->chunksize);
    rc |= pb_json_int(j, "tasks_rejected", (long long)r->tasks_rejected);
    rc |= pb_json_int(j, "caller_ran", (long long)r->caller_ran);
    return rc;
}

int pb_run_json(const pb_run_opts *o, const pb_run_result *r, FILE *f, const char *pinning)
{
    json_t *j = json_object();
    int rc = json_config(j, o, r) | json_outcome(j, o, r, pinning) | json_profile(j, o, r) |
             json_load(j, o, r);
    return pb_json_finish(f, j, rc, 0);
}

/* Only poolbench's process pool has a window and a transport (py-procs
 * has the kind EX_PROCS as its model, not the pool). */
unsigned pb_run_window(const pb_run_opts *o)
{
    if (o->kind != EX_PROCS || o->py != PB_PY_NONE)
        return 0;
    return o->procs_window ? o->procs_window : EX_DEFAULT_WINDOW;
}

const char *pb_run_transport(const pb_run_opts *o)
{
    if (o->kind == EX_MPI && o->py == PB_PY_NONE) {
        /* --mpi-btl, or what OMPI_MCA_btl says (sweep: the environment's). */
        const char *btl = o->mpi_btl, *env = getenv("OMPI_MCA_btl");
        if (!btl && env)
            btl = strstr(env, "vader") || strstr(env, "sm") ? "sm" : strstr(env, "tcp") ? "tcp" : NULL;
        return !btl ? "mpi" : strcmp(btl, "tcp") == 0 ? "mpi-tcp" : "mpi-sm";
    }
    return o->kind == EX_PROCS && o->py == PB_PY_NONE ? ex_transport_name(o->transport) : "";
}

void pb_run_account(pb_run_result *r, wl_ctx *ctx, wl_digest *d, size_t i, int status,
                    int task_code, const void *out, size_t len)
{
    if (status == 0) {
        char msg[256];
        if (wl_check(ctx, i, out, len, msg, sizeof msg) != 0) {
            r->check_failed++;
            r->tasks_failed++;
            count_error(r, EX_EINVAL, 0);
            if (r->check_failed == 1)
                fprintf(stderr, "poolbench: output check failed: %s\n", msg);
        } else {
            r->tasks_ok++;
        }
        wl_digest_add(d, i, out, len);
    } else {
        r->tasks_failed++;
        count_error(r, status, task_code);
        wl_digest_add_failure(d, i, status, task_code);
    }
}

void pb_window_begin(const pb_run_opts *o, pb_usage *u)
{
    if (o->window)
        o->window(o->window_arg, 0);
    getrusage(RUSAGE_SELF, &u->self);
    getrusage(RUSAGE_CHILDREN, &u->kids);
}

void pb_window_end(const pb_run_opts *o, pb_usage *u)
{
    getrusage(RUSAGE_SELF, &u->self);
    getrusage(RUSAGE_CHILDREN, &u->kids);
    if (o->window)
        o->window(o->window_arg, 1);
}

void pb_usage_times(const pb_usage *a, const pb_usage *b, double *user_s, double *sys_s)
{
    *user_s = tv_s(b->self.ru_utime) - tv_s(a->self.ru_utime) + tv_s(b->kids.ru_utime) -
              tv_s(a->kids.ru_utime);
    *sys_s = tv_s(b->self.ru_stime) - tv_s(a->self.ru_stime) + tv_s(b->kids.ru_stime) -
             tv_s(a->kids.ru_stime);
}

double pb_usage_cpu_s(const pb_usage *a, const pb_usage *b)
{
    return tv_s(b->self.ru_utime) - tv_s(a->self.ru_utime) + tv_s(b->kids.ru_utime) -
           tv_s(a->kids.ru_utime) + tv_s(b->self.ru_stime) - tv_s(a->self.ru_stime) +
           tv_s(b->kids.ru_stime) - tv_s(a->kids.ru_stime);
}

void pb_run_set_latencies(pb_run_result *r, double *lat, size_t n)
{
    if (n == 0)
        return;
    pb_sort(lat, n);
    r->lat_p50_ns = pb_percentile_sorted(lat, n, 50);
    r->lat_p95_ns = pb_percentile_sorted(lat, n, 95);
    r->lat_p99_ns = pb_percentile_sorted(lat, n, 99);
    r->lat_max_ns = lat[n - 1];
}
