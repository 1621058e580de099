/*
 * rows.c: appending result rows (see rows.h).  Each row is first built as
 * a list of named fields; the same list is then written as a CSV line and
 * as a JSON object (json.h, from the same text), so the two files can
 * never disagree on a column or a value.
 */
#include "rows.h"

#include "build_info.h"
#include "json.h"
#include "pyexec.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FIELDS 96

typedef struct field {
    const char *name;
    char value[1100];
    int is_number; /* JSON: bare number (or null when empty) */
} field;

typedef struct fields {
    field f[MAX_FIELDS];
    size_t n;
} fields;

struct pb_rows {
    int csv, jsonl, summary, timeline;
};

static const char timeline_header[] = "config_id,rep,sequence," PB_TIMELINE_COLUMNS "\n";

static void add_str(fields *fs, const char *name, const char *v)
{
    field *f = &fs->f[fs->n++];
    f->name = name;
    f->is_number = 0;
    snprintf(f->value, sizeof f->value, "%s", v ? v : "");
}

static void add_fmt(fields *fs, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_fmt(fields *fs, const char *name, const char *fmt, ...)
{
    field *f = &fs->f[fs->n++];
    f->name = name;
    f->is_number = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->value, sizeof f->value, fmt, ap);
    va_end(ap);
}

static void add_num(fields *fs, const char *name, double v)
{
    if (isfinite(v))
        add_fmt(fs, name, "%.9g", v);
    else
        add_fmt(fs, name, "%s", "");
}

/* procs: its payload transport and window (empty for the others, the
 * Python executors included). */
static void add_procs_fields(fields *fs, const pb_run_opts *o)
{
    add_str(fs, "transport", pb_run_transport(o));
    if (pb_run_window(o) > 0)
        add_fmt(fs, "window", "%u", pb_run_window(o));
    else
        add_fmt(fs, "window", "%s", "");
}

/* How the load arrived and what a full queue did with it. */
static void load_fields(fields *fs, const pb_run_opts *o, const pb_run_result *r)
{
    add_fmt(fs, "queue", "%zu", o->kind == EX_SEQ ? (size_t)0 : o->queue_capacity);
    add_str(fs, "on_full", ex_on_full_name(o->on_full));
    add_str(fs, "arrival", pb_arrival_name(o->arrival));
    if (o->arrival != PB_ARRIVAL_BATCH)
        add_num(fs, "offered_rate", o->rate);
    else
        add_fmt(fs, "offered_rate", "%s", "");
    add_num(fs, "achieved_rate", r->achieved_rate);
    add_num(fs, "submit_lag_max_ms", r->submit_lag_max_ns / 1e6);
    add_fmt(fs, "chunksize", "%zu", o->chunksize);
    add_fmt(fs, "tasks_rejected", "%zu", r->tasks_rejected);
    add_fmt(fs, "caller_ran", "%llu", (unsigned long long)r->caller_ran);
}

/* A growable line. */
typedef struct line {
    char *s;
    size_t len, cap;
} line;

static int put(line *l, const char *p, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        while (cap < l->len + n + 1)
            cap *= 2;
        char *s = realloc(l->s, cap);
        if (!s)
            return -1;
        l->s = s;
        l->cap = cap;
    }
    memcpy(l->s + l->len, p, n);
    l->len += n;
    l->s[l->len] = 0;
    return 0;
}

static int puts_(line *l, const char *p)
{
    return put(l, p, strlen(p));
}

static int csv_value(line *l, const char *v)
{
    if (!strpbrk(v, ",\"\n\r"))
        return puts_(l, v);
    int rc = put(l, "\"", 1);
    for (const char *p = v; *p && !rc; p++)
        rc = *p == '"' ? put(l, "\"\"", 2) : put(l, p, 1);
    return rc ? rc : put(l, "\"", 1);
}

/* One write() per row: with O_APPEND the row lands whole or not at all. */
static int write_line(int fd, const line *l)
{
    ssize_t w;
    do
        w = write(fd, l->s, l->len);
    while (w < 0 && errno == EINTR);
    if (w != (ssize_t)l->len) {
        if (w >= 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

/* The row as one JSON line (json.h), each number from the same text as
 * its CSV cell; NULL when memory ran out. */
static char *json_row(const fields *fs, size_t *len)
{
    json_t *j = json_object();
    int rc = j ? 0 : -1;
    for (size_t i = 0; i < fs->n && rc == 0; i++)
        rc = fs->f[i].is_number ? pb_json_num_text(j, fs->f[i].name, fs->f[i].value)
                                : pb_json_str(j, fs->f[i].name, fs->f[i].value);
    char *s = rc == 0 ? pb_json_line(j, len) : NULL;
    json_decref(j);
    return s;
}

static int emit(int csv, int jsonl, const fields *fs)
{
    line c = {0}, j = {0};
    int rc = 0;
    for (size_t i = 0; i < fs->n && !rc; i++) {
        if (i)
            rc |= put(&c, ",", 1);
        rc |= csv_value(&c, fs->f[i].value);
    }
    rc |= put(&c, "\n", 1);
    if (rc == 0 && jsonl >= 0 && !(j.s = json_row(fs, &j.len)))
        rc = -1;
    if (rc == 0 && csv >= 0)
        rc = write_line(csv, &c);
    if (rc == 0 && jsonl >= 0)
        rc = write_line(jsonl, &j);
    free(c.s);
    free(j.s);
    return rc ? -1 : 0;
}

static void header_of(const fields *fs, line *l)
{
    for (size_t i = 0; i < fs->n; i++) {
        if (i)
            put(l, ",", 1);
        puts_(l, fs->f[i].name);
    }
    put(l, "\n", 1);
}

/* The steady-state rule and how this run stands against it. */
static void rule_fields(fields *fs, const pb_run_result *r, unsigned workers, const pb_rule *rule)
{
    add_fmt(fs, "rounds", "%zu", pb_rounds(r->tasks, workers));
    add_fmt(fs, "min_rounds", "%u", rule->min_rounds);
    add_num(fs, "min_time_s", rule->min_time_s > 0 ? rule->min_time_s : 0);
    add_fmt(fs, "rule_met", "%d", pb_rule_met(rule, r->tasks, workers, r->wall_s));
    add_fmt(fs, "warmup_tasks", "%zu", r->warmup_tasks);
    add_num(fs, "warmup_s", r->warmup_s);
}

/* What the machine was doing (empty cells when not measured). */
static void noise_fields(fields *fs, const pb_noise *n)
{
    pb_noise none = {.loadavg_1m = NAN, .procs_running = -1, .capacity_cpus = NAN,
                     .window_s = NAN, .steal_pct = NAN, .iowait_pct = NAN,
                     .others_cpu_s = NAN};
    if (!n)
        n = &none;
    add_num(fs, "loadavg_1m", n->loadavg_1m);
    if (n->procs_running >= 0)
        add_fmt(fs, "procs_running", "%ld", n->procs_running);
    else
        add_fmt(fs, "procs_running", "%s", "");
    add_num(fs, "capacity_cpus", n->capacity_cpus);
    add_num(fs, "steal_pct", n->steal_pct);
    add_num(fs, "iowait_pct", n->iowait_pct);
    add_num(fs, "others_cpu_s", n->others_cpu_s);
    add_num(fs, "noise_window_s", n->window_s);
}

/* "name=count;..." of the run's failures, into errors. */
static void format_errors(const pb_run_result *r, char *errors, size_t len)
{
    size_t off = 0;
    errors[0] = 0;
    for (size_t i = 0; i < r->nerrors && off < len; i++) {
        char name[64];
        pb_error_name(&r->errors[i], name, sizeof name);
        off += (size_t)snprintf(errors + off, len - off, "%s%s=%zu", i ? ";" : "",
                                name, r->errors[i].count);
    }
    if (r->errors_other && off < len)
        snprintf(errors + off, len - off, "%sother=%zu", off ? ";" : "", r->errors_other);
}

/* What was run: the configuration and its place in the sweep. */
static void config_fields(fields *fs, const pb_run_opts *o, const pb_run_result *r,
                          const pb_row_meta *m, const char *params)
{
    add_fmt(fs, "schema_version", "%d", PB_SCHEMA_VERSION);
    add_str(fs, "timestamp", m->timestamp);
    add_str(fs, "host", m->host);
    add_str(fs, "config_id", m->config_id);
    add_str(fs, "workload", o->workload->name);
    add_str(fs, "workload_kind", wl_kind_name(o->workload->kind));
    add_str(fs, "params", params);
    add_str(fs, "executor", pb_executor_name(o));
    add_fmt(fs, "workers", "%u", o->workers);
    add_str(fs, "pin", m->pin);
    add_str(fs, "cpus", m->cpus);
    add_str(fs, "pinning", m->pinning);
    add_fmt(fs, "rep", "%u", m->rep);
    add_fmt(fs, "tasks", "%zu", r->tasks);
    add_fmt(fs, "seed", "%llu", (unsigned long long)o->seed);
    add_str(fs, "order", m->order);
    add_fmt(fs, "order_seed", "%llu", (unsigned long long)m->order_seed);
    add_fmt(fs, "sequence", "%zu", m->sequence);
}

/* The outcome: time, throughput, failures, the digest. */
static void outcome_fields(fields *fs, const pb_run_result *r, const pb_row_meta *m,
                           const char *errors)
{
    add_num(fs, "wall_s", r->wall_s);
    add_num(fs, "startup_s", r->startup_s);
    add_num(fs, "throughput", r->throughput);
    add_fmt(fs, "tasks_ok", "%zu", r->tasks_ok);
    add_fmt(fs, "tasks_failed", "%zu", r->tasks_failed);
    add_fmt(fs, "check_failed", "%zu", r->check_failed);
    add_str(fs, "errors", errors);
    add_str(fs, "digest", r->digest);
    add_fmt(fs, "digest_tasks", "%zu", r->digest_tasks);
    /* Empty when there is nothing to compare with (no baseline ran, or a
     * full queue refused some of the tasks the baseline computed). */
    if (m->baseline_digest && m->baseline_digest[0] && r->tasks_rejected == 0)
        add_fmt(fs, "digest_ok", "%d", strcmp(m->baseline_digest, r->digest) == 0);
    else
        add_fmt(fs, "digest_ok", "%s", "");
}

/* Per-task latency and its wait / CPU / blocked split, and the process's
 * resources. */
static void profile_fields(fields *fs, const pb_run_result *r)
{
    add_num(fs, "latency_p50_ms", r->lat_p50_ns / 1e6);
    add_num(fs, "latency_p95_ms", r->lat_p95_ns / 1e6);
    add_num(fs, "latency_p99_ms", r->lat_p99_ns / 1e6);
    add_num(fs, "latency_mean_ms", r->lat_mean_ns / 1e6);
    add_num(fs, "latency_max_ms", r->lat_max_ns / 1e6);
    add_num(fs, "wait_mean_ms", r->wait_mean_ns / 1e6);
    add_num(fs, "cpu_mean_ms", r->cpu_mean_ns / 1e6);
    add_num(fs, "blocked_mean_ms", r->blocked_mean_ns / 1e6);
    add_num(fs, "ipc_mean_ms", r->ipc_mean_ns / 1e6);
    add_num(fs, "task_cpu_s", r->task_cpu_s);
    add_num(fs, "cpu_util", r->cpu_util);
    add_num(fs, "user_s", r->user_s);
    add_num(fs, "sys_s", r->sys_s);
    add_fmt(fs, "peak_rss_kb", "%ld", r->peak_rss_kb);
    add_fmt(fs, "peak_rss_children_kb", "%ld", r->peak_rss_children_kb);
    add_fmt(fs, "nvcsw", "%ld", r->nvcsw);
    add_fmt(fs, "nivcsw", "%ld", r->nivcsw);
}

static void run_fields(fields *fs, const pb_run_opts *o, const pb_run_result *r,
                       const pb_row_meta *m)
{
    char params[1024], errors[1024];
    if (wl_params_format(o->params, params, sizeof params))
        params[sizeof params - 1] = 0;
    format_errors(r, errors, sizeof errors);
    fs->n = 0;
    config_fields(fs, o, r, m, params);
    rule_fields(fs, r, o->workers, &m->rule);
    outcome_fields(fs, r, m, errors);
    profile_fields(fs, r);
    noise_fields(fs, m->noise);
    add_fmt(fs, "cores", "%u", r->cores);
    add_fmt(fs, "distinct_cpus", "%zu", r->distinct_cpus);
    add_str(fs, "cpus_observed", r->cpus_observed);
    add_str(fs, "server", o->server ? o->server : "");
    add_str(fs, "build", pb_build_kind());
    add_fmt(fs, "workers_replaced", "%llu", (unsigned long long)r->workers_replaced);
    add_fmt(fs, "cpu_over_wall", "%zu", r->cpu_over_wall);
    add_fmt(fs, "cpu_under_zero", "%zu", r->cpu_under_zero);
    add_num(fs, "baseline_throughput", m->baseline_throughput);
    double speedup = m->baseline_throughput > 0 ? r->throughput / m->baseline_throughput : NAN;
    add_num(fs, "speedup", speedup);
    add_num(fs, "efficiency", speedup / (double)o->workers);
    add_procs_fields(fs, o);
    load_fields(fs, o, r);
}

static void summary_fields(fields *fs, const pb_config_summary *s)
{
    char params[1024];
    if (wl_params_format(s->o->params, params, sizeof params))
        params[sizeof params - 1] = 0;
    fs->n = 0;
    add_fmt(fs, "schema_version", "%d", PB_SCHEMA_VERSION);
    add_str(fs, "config_id", s->config_id);
    add_str(fs, "workload", s->o->workload->name);
    add_str(fs, "workload_kind", wl_kind_name(s->o->workload->kind));
    add_str(fs, "params", params);
    add_str(fs, "executor", pb_executor_name(s->o));
    add_fmt(fs, "workers", "%u", s->o->workers);
    add_str(fs, "pin", s->pin);
    add_fmt(fs, "reps", "%zu", s->n);
    add_fmt(fs, "tasks", "%zu", s->tasks);
    add_num(fs, "wall_median_s", s->wall_median_s);
    add_num(fs, "wall_ci_low_s", s->wall_ci_low_s);
    add_num(fs, "wall_ci_high_s", s->wall_ci_high_s);
    add_num(fs, "ci_level", s->ci_level);
    add_num(fs, "wall_cv", s->wall_cv);
    add_str(fs, "outlier_reps", s->outlier_reps);
    add_num(fs, "throughput_median", s->throughput_median);
    add_num(fs, "speedup_median", s->speedup_median);
    add_num(fs, "efficiency_median", s->efficiency_median);
    add_num(fs, "latency_p95_median_ms", s->latency_p95_median_ms);
    add_str(fs, "spread_warning", s->warning);
    add_procs_fields(fs, s->o);
}

/* Opens path for appending; writes header if the file is new or empty,
 * else checks that its first line is that header. */
static int open_with_header(const char *path, const char *header, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size == 0) {
        line l = {0};
        puts_(&l, header);
        int rc = l.s ? write_line(fd, &l) : -1;
        free(l.s);
        if (rc) {
            snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        return fd;
    }
    if (!header[0])
        return fd; /* jsonl: no header */
    FILE *f = fopen(path, "re");
    char first[4096] = "";
    if (f) {
        if (!fgets(first, sizeof first, f))
            first[0] = 0;
        fclose(f);
    }
    if (strcmp(first, header) != 0) {
        snprintf(err, errlen, "%s exists with other columns (another schema version?): "
                 "use a new --out folder", path);
        close(fd);
        return -1;
    }
    return fd;
}

static char csv_header[4096], summary_header[2048];

static void build_headers(void)
{
    /* Field names come from the same builders as the rows. */
    if (csv_header[0])
        return;
    const wl_workload *w = wl_at(0);
    wl_params *p = NULL;
    if (wl_params_create(w, &p))
        return;
    pb_run_opts o = {.workload = w, .params = p};
    pb_run_result r;
    memset(&r, 0, sizeof r);
    pb_row_meta m = {.host = "", .timestamp = "", .config_id = "", .pin = "", .cpus = "",
                     .pinning = "", .baseline_digest = "", .order = ""};
    fields *fs = malloc(sizeof *fs);
    if (fs) {
        line l = {0};
        run_fields(fs, &o, &r, &m);
        header_of(fs, &l);
        snprintf(csv_header, sizeof csv_header, "%s", l.s ? l.s : "");
        free(l.s);
        l = (line){0};
        pb_config_summary s = {.config_id = "", .o = &o, .pin = "", .outlier_reps = "",
                               .warning = ""};
        summary_fields(fs, &s);
        header_of(fs, &l);
        snprintf(summary_header, sizeof summary_header, "%s", l.s ? l.s : "");
        free(l.s);
        free(fs);
    }
    wl_params_destroy(p);
}

int pb_rows_open(const char *dir, pb_rows **out, char *err, size_t errlen)
{
    build_headers();
    pb_rows *rows = malloc(sizeof *rows);
    if (!rows) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rows->csv = rows->jsonl = rows->summary = rows->timeline = -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/runs.csv", dir);
    rows->csv = open_with_header(path, csv_header, err, errlen);
    snprintf(path, sizeof path, "%s/runs.jsonl", dir);
    if (rows->csv >= 0)
        rows->jsonl = open_with_header(path, "", err, errlen);
    snprintf(path, sizeof path, "%s/summary.csv", dir);
    if (rows->jsonl >= 0)
        rows->summary = open_with_header(path, summary_header, err, errlen);
    snprintf(path, sizeof path, "%s/timeline.csv", dir);
    if (rows->summary >= 0)
        rows->timeline = open_with_header(path, timeline_header, err, errlen);
    if (rows->timeline < 0) {
        pb_rows_close(rows);
        return -1;
    }
    *out = rows;
    return 0;
}

void pb_rows_close(pb_rows *rows)
{
    if (!rows)
        return;
    if (rows->csv >= 0)
        close(rows->csv);
    if (rows->jsonl >= 0)
        close(rows->jsonl);
    if (rows->summary >= 0)
        close(rows->summary);
    if (rows->timeline >= 0)
        close(rows->timeline);
    free(rows);
}

int pb_rows_add_run(pb_rows *rows, const pb_run_opts *o, const pb_run_result *r,
                    const pb_row_meta *m)
{
    fields *fs = malloc(sizeof *fs);
    if (!fs)
        return -1;
    run_fields(fs, o, r, m);
    int rc = emit(rows->csv, rows->jsonl, fs);
    free(fs);
    return rc;
}

int pb_rows_add_summary(pb_rows *rows, const pb_config_summary *s)
{
    fields *fs = malloc(sizeof *fs);
    if (!fs)
        return -1;
    summary_fields(fs, s);
    int rc = emit(rows->summary, -1, fs);
    free(fs);
    return rc;
}

int pb_rows_add_timeline(pb_rows *rows, const char *config_id, unsigned rep, size_t sequence,
                         const pb_run_result *r)
{
    if (r->nsamples == 0)
        return 0;
    line id = {0};
    char tail[64];
    snprintf(tail, sizeof tail, ",%u,%zu,", rep, sequence);
    int rc = csv_value(&id, config_id) | puts_(&id, tail);
    line l = {0};
    if (rc == 0)
        rc = pb_timeline_csv(r->samples, r->nsamples, id.s, &l.s, &l.len);
    if (rc == 0)
        rc = write_line(rows->timeline, &l);
    free(id.s);
    free(l.s);
    return rc ? -1 : 0;
}
