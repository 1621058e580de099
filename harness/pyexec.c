/*
 * pyexec.c: the Python executors (see pyexec.h).
 *
 * One run = one Python process: Debian's /usr/bin/python3 (the standard
 * library is all it needs; POOLBENCH_PYTHON overrides) running
 * scripts/pyrunner/runner.py in a process group of its own.  Its stdout is
 * a pipe carrying, after the run, one record per task (runner.py,
 * write_binary: timestamps, CPU, worker, CPU number, output) and an end
 * record (start-up, the clock's t0 and t1, its rusage, its own digest).
 * Everything is read before anything is parsed, with a deadline, so a
 * runner that hangs costs its run the deadline and no more; when the pipe
 * closes, or the deadline passes, the whole group is killed (the pool's
 * worker processes with it) before the runner is reaped, so the group id
 * cannot have been reused.
 *
 * The result is built as pb_run builds a C one: wl_check on every output
 * (the C side rebuilds the C inputs, so a Python generator that drifted
 * fails there), wl_digest over all of them, latency = submit to the
 * future's done callback, wait = start - submit, CPU from the worker's
 * thread clock, blocked = the rest.  Tasks the runner did not report (it
 * was killed) fail with EX_EWORKER; a runner that exits without a word
 * (refused its input, raised, no interpreter) is no run at all, an error
 * with its message on stderr.  Its digest must equal ours, or the run says
 * so on stderr (the Python digest code is checked on every run).
 */
#include "pyexec.h"

#include "child.h"
#include "cli.h"
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TASK_REC_LEN 76  /* "<4sQiiQQQQQiiQ" */
#define END_REC_LEN 164  /* "<4sQQQQQQQQQQQQ64s" */
#define GRACE_S 60

/* ----------------------------------------------------------------- names */

static const char *const py_names[] = {NULL, "py-seq", "py-threads", "py-procs"};

const char *pb_executor_name(const pb_run_opts *o)
{
    return o->py ? py_names[o->py] : ex_kind_name(o->kind);
}

int pb_executor_parse(const char *name, ex_kind *kind, pb_py_kind *py)
{
    static const ex_kind model[] = {EX_SEQ, EX_SEQ, EX_THREADS, EX_PROCS};
    for (int k = PB_PY_SEQ; k <= PB_PY_PROCS; k++)
        if (name && strcmp(name, py_names[k]) == 0) {
            *kind = model[k];
            *py = (pb_py_kind)k;
            return 0;
        }
    *py = PB_PY_NONE;
    return ex_kind_parse(name, kind);
}

const char *pb_py_note(const wl_workload *w)
{
    static const struct {
        const char *name, *note;
    } notes[] = {
        {"primes", "identical; bytearray sieve, holds the GIL"},
        {"sha256", "identical; hashlib, releases the GIL over 2 KiB"},
        {"mandelbrot", "identical; pure Python floats, holds the GIL"},
        {"blur", "identical; float32 emulated with array('f'), holds the GIL"},
        {"compress", "identical; zlib.compress, releases the GIL"},
        {"sleep", "identical; time.sleep"},
        {"http", "identical; http.client, one kept-alive connection per thread"},
        {"file", "identical; os.read + zlib.crc32"},
        {"fetch-hash", "identical; both stages in one task (no then())"},
        {"noop", "identical"},
        {"fault", "identical without crashes; a crash breaks the whole py-procs pool"},
        {"table", "identical; a list of ints: reads write refcounts (copied pages)"},
        {"mix", "identical; time.sleep or the bytearray sieve"},
    };
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++)
        if (strcmp(w->name, notes[i].name) == 0)
            return notes[i].note;
    return NULL;
}

const char *pb_py_refusal(const pb_run_opts *o, bool pinned, char *why, size_t len)
{
    if (!o->py)
        return NULL;
    if (pinned)
        snprintf(why, len, "%s cannot be pinned: Python's pools give poolbench no "
                 "per-worker start hook (use --pin none and no --cpus)", py_names[o->py]);
    else if (!pb_py_note(o->workload))
        snprintf(why, len, "workload '%s' has no Python version", o->workload->name);
    else if (o->queue_capacity || o->max_tasks_per_worker)
        snprintf(why, len, "%s has no bounded queue and no worker recycling "
                 "(--queue, --max-tasks-per-worker)", py_names[o->py]);
    else if (o->py != PB_PY_PROCS && wl_requires_isolation(o->params, why, len))
        snprintf(why + strlen(why), len - strlen(why), " (with Python: py-procs)");
    else
        return NULL;
    return why;
}

/* ------------------------------------------------------------ launching */

static bool is_file(const char *path)
{
    return access(path, R_OK) == 0;
}

/* The runner script: $POOLBENCH_PYRUNNER, else scripts/pyrunner/runner.py
 * beside or up to three levels above the executable (build/, build/asan/),
 * else share/poolbench/ of an installed prefix. */
static int find_runner(char *out, size_t len)
{
    const char *env = getenv("POOLBENCH_PYRUNNER");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return is_file(out) ? 0 : -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    for (int up = 0; up < 4; up++) {
        char *slash = strrchr(exe, '/');
        if (!slash)
            break;
        *slash = 0;
        snprintf(out, len, "%s/scripts/pyrunner/runner.py", exe);
        if (is_file(out))
            return 0;
        snprintf(out, len, "%s/share/poolbench/pyrunner/runner.py", exe);
        if (is_file(out))
            return 0;
    }
    return -1;
}

/* Debian's python3 unless POOLBENCH_PYTHON says otherwise; "python3" from
 * the PATH as the last resort. */
static const char *python_path(void)
{
    const char *env = getenv("POOLBENCH_PYTHON");
    if (env && *env)
        return env;
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

typedef struct argv_buf {
    char *argv[160];
    char store[64][48];
    size_t n, nstore;
    char *owned[80];
    size_t nowned;
} argv_buf;

static void push(argv_buf *a, const char *s)
{
    if (a->n < sizeof a->argv / sizeof a->argv[0] - 1)
        a->argv[a->n++] = (char *)s;
}

static void pushf(argv_buf *a, const char *fmt, unsigned long long v)
{
    if (a->nstore == sizeof a->store / sizeof a->store[0])
        return;
    snprintf(a->store[a->nstore], sizeof a->store[0], fmt, v);
    push(a, a->store[a->nstore++]);
}

static void argv_free(argv_buf *a)
{
    for (size_t i = 0; i < a->nowned; i++)
        free(a->owned[i]);
}

/* The warm-up round a Python run can have: pb_run's, except where a
 * warm-up task could ruin the measured run, since Python's pools cannot
 * end a hung task (a thread cannot be killed, a process pool has no
 * per-task timeout) nor replace a crashed worker (BrokenProcessPool breaks
 * the whole pool): no warm-up for work that hangs or crashes. */
static size_t python_warmup(const pb_run_opts *o)
{
    char why[512];
    if (pb_needs_timeout(o->params) || wl_requires_isolation(o->params, why, sizeof why))
        return 0;
    return o->warmup_tasks;
}

/* python runner.py -W .. -e .. -w .. -n .. --seed .. --binary -p k=v ... */
static int build_argv(const pb_run_opts *o, const char *script, double deadline_s,
                      size_t digest_tasks, argv_buf *a)
{
    memset(a, 0, sizeof *a);
    push(a, python_path());
    push(a, script);
    push(a, "--binary");
    push(a, "-W");
    push(a, o->workload->name);
    push(a, "-e");
    push(a, py_names[o->py]);
    pushf(a, "--workers=%llu", o->py == PB_PY_SEQ ? 1 : o->workers);
    pushf(a, "--tasks=%llu", o->tasks);
    pushf(a, "--seed=%llu", (unsigned long long)o->seed);
    pushf(a, "--warmup-tasks=%llu", python_warmup(o));
    pushf(a, "--digest-tasks=%llu", digest_tasks);
    if (deadline_s > 0)
        pushf(a, "--deadline-s=%llu", (unsigned long long)ceil(deadline_s));
    for (size_t i = 0; i < o->workload->nparams && a->nowned < 80; i++) {
        char value[4200];
        if (wl_params_value_text(o->params, i, value, sizeof value))
            return -1;
        char *kv = NULL;
        if (asprintf(&kv, "--param=%s=%s", o->workload->params[i].name, value) < 0)
            return -1;
        a->owned[a->nowned++] = kv;
        push(a, kv);
    }
    a->argv[a->n] = NULL;
    return 0;
}

/* Forks the runner with stdout on a pipe; *rd is the read end. */
static pid_t spawn(argv_buf *a, int *rd, char *err, size_t errlen)
{
    static const char *const env[] = {"PYTHONDONTWRITEBYTECODE=1", NULL};
    const pb_child_opts opts = {.env = env};
    return pb_child_spawn(a->argv, &opts, rd, err, errlen);
}

typedef struct bytes {
    unsigned char *p;
    size_t len, cap;
} bytes;

/* Reads fd to EOF or until deadline_ns; 0 at EOF, 1 past the deadline,
 * -1 out of memory. */
static int read_until(int fd, bytes *b, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = ex_now_ns();
        if (now >= deadline_ns)
            return 1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint64_t left_ms = (deadline_ns - now) / 1000000 + 1;
        int pr = poll(&pfd, 1, left_ms > 60000 ? 60000 : (int)left_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        if (b->cap - b->len < 65536) {
            size_t cap = b->cap ? b->cap * 2 : 1 << 20;
            unsigned char *p = realloc(b->p, cap);
            if (!p)
                return -1;
            b->p = p;
            b->cap = cap;
        }
        ssize_t n = read(fd, b->p + b->len, b->cap - b->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        b->len += (size_t)n;
    }
}

/* ------------------------------------------------------------- parsing */

typedef struct task_rec {
    uint64_t index;
    int32_t status, code;
    uint64_t submit, start, end, done, cpu;
    int32_t worker, cpu_id;
    uint64_t out_len;
    const unsigned char *out;
} task_rec;

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

static int32_t le32s(const unsigned char *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return (int32_t)v;
}

/* The task record at *off, advancing it; 0, or -1 if none is complete. */
static int next_task(const bytes *b, size_t *off, task_rec *t)
{
    const unsigned char *p = b->p + *off;
    if (b->len - *off < TASK_REC_LEN || memcmp(p, "PBT1", 4) != 0)
        return -1;
    t->index = le64(p + 4);
    t->status = le32s(p + 12);
    t->code = le32s(p + 16);
    t->submit = le64(p + 20);
    t->start = le64(p + 28);
    t->end = le64(p + 36);
    t->done = le64(p + 44);
    t->cpu = le64(p + 52);
    t->worker = le32s(p + 60);
    t->cpu_id = le32s(p + 64);
    t->out_len = le64(p + 68);
    if (t->out_len > b->len - *off - TASK_REC_LEN)
        return -1;
    t->out = p + TASK_REC_LEN;
    *off += TASK_REC_LEN + (size_t)t->out_len;
    return 0;
}

typedef struct end_rec {
    uint64_t startup, t0, t1, user_us, sys_us, maxrss, maxrss_children, nvcsw, nivcsw, workers;
    uint64_t warmup_tasks, warmup_ns;
    char digest[WL_DIGEST_HEX_LEN + 1];
} end_rec;

static int parse_end(const bytes *b, size_t off, end_rec *e)
{
    const unsigned char *p = b->p + off;
    if (b->len - off != END_REC_LEN || memcmp(p, "PBE2", 4) != 0)
        return -1;
    uint64_t *fields[] = {&e->startup, &e->t0, &e->t1, &e->user_us, &e->sys_us, &e->maxrss,
                          &e->maxrss_children, &e->nvcsw, &e->nivcsw, &e->workers,
                          &e->warmup_tasks, &e->warmup_ns};
    size_t nfields = sizeof fields / sizeof fields[0];
    for (size_t k = 0; k < nfields; k++)
        *fields[k] = le64(p + 4 + 8 * k);
    memcpy(e->digest, p + 4 + 8 * nfields, WL_DIGEST_HEX_LEN);
    e->digest[WL_DIGEST_HEX_LEN] = 0;
    return 0;
}

/* ------------------------------------------------------ the run's result */

typedef struct accum {
    double *lat;
    size_t nran;
    double sum_lat, sum_wait, sum_cpu, sum_blocked, sum_ipc;
    uint64_t observed[64]; /* per worker (< 64): CPUs seen (< 64) */
    unsigned char seen_cpu[1024];
} accum;

/* One reported task: digest, check, error count, per-task numbers. */
static void add_task(wl_ctx *ctx, wl_digest *d, const task_rec *t,
                     pb_run_result *r, accum *a)
{
    pb_run_account(r, ctx, d, t->index, t->status, t->code, t->out, t->out_len);
    if (t->start == 0 || t->done < t->submit || t->end < t->start)
        return; /* never ran */
    uint64_t cpu = t->cpu, ran = t->end - t->start;
    if (cpu > ran) { /* cannot happen: the thread clock is read inside */
        cpu = ran;
        r->cpu_over_wall++;
    }
    double l = (double)(t->done - t->submit), wait = (double)(t->start - t->submit);
    a->lat[a->nran++] = l;
    a->sum_lat += l;
    a->sum_wait += wait;
    a->sum_cpu += (double)cpu;
    a->sum_blocked += fmax(0, l - wait - (double)cpu);
    a->sum_ipc += (double)(t->done - t->end);
    if (t->cpu_id >= 0 && t->cpu_id < 8192)
        a->seen_cpu[t->cpu_id / 8] |= (unsigned char)(1u << (t->cpu_id % 8));
    if (t->cpu_id >= 0 && t->cpu_id < 64 && t->worker >= 0 && t->worker < 64)
        a->observed[t->worker] |= 1ull << t->cpu_id;
}

/* "w0:0 w1:1,3" from the CPUs each worker was seen on. */
static void describe_observed(const accum *a, pb_run_result *r)
{
    size_t off = 0, cap = sizeof r->cpus_observed;
    for (int w = 0; w < 64 && off < cap; w++) {
        if (!a->observed[w])
            continue;
        off += (size_t)snprintf(r->cpus_observed + off, cap - off, "%sw%d:", off ? " " : "", w);
        const char *sep = "";
        for (int c = 0; c < 64 && off < cap; c++)
            if (a->observed[w] >> c & 1) {
                off += (size_t)snprintf(r->cpus_observed + off, cap - off, "%s%d", sep, c);
                sep = ",";
            }
    }
    for (size_t b = 0; b < sizeof a->seen_cpu; b++)
        r->distinct_cpus += (size_t)__builtin_popcount(a->seen_cpu[b]);
}

static void apply_end(const pb_run_opts *o, const end_rec *e, const accum *a, pb_run_result *r)
{
    r->wall_s = e->t1 > e->t0 ? (double)(e->t1 - e->t0) / 1e9 : 0;
    r->startup_s = (double)e->startup / 1e9;
    r->warmup_tasks = (size_t)e->warmup_tasks;
    r->warmup_s = (double)e->warmup_ns / 1e9;
    r->user_s = (double)e->user_us / 1e6;
    r->sys_s = (double)e->sys_us / 1e6;
    r->peak_rss_kb = (long)e->maxrss;
    r->peak_rss_children_kb = (long)e->maxrss_children;
    r->nvcsw = (long)e->nvcsw;
    r->nivcsw = (long)e->nivcsw;
    if (a->nran) {
        r->lat_mean_ns = a->sum_lat / (double)a->nran;
        r->wait_mean_ns = a->sum_wait / (double)a->nran;
        r->cpu_mean_ns = a->sum_cpu / (double)a->nran;
        r->blocked_mean_ns = a->sum_blocked / (double)a->nran;
        /* py-procs: the result's way back (worker end to done callback). */
        r->ipc_mean_ns = o->py == PB_PY_PROCS ? a->sum_ipc / (double)a->nran : 0;
    }
    r->task_cpu_s = a->sum_cpu / 1e9;
}

/* Parses everything the runner sent; tasks it did not report fail with
 * `missing` (EX_EWORKER: it died, EX_ETIMEDOUT: it was stopped). */
static int collect(const pb_run_opts *o, wl_ctx *ctx, const bytes *b, int missing,
                   pb_run_result *r, accum *a, end_rec *e, char *digest_hex)
{
    wl_digest *d = NULL;
    unsigned char *seen = calloc(o->tasks, 1);
    if (!seen || wl_digest_create(r->digest_tasks, &d)) {
        free(seen);
        return EX_ENOMEM;
    }
    size_t off = 0;
    task_rec t;
    while (next_task(b, &off, &t) == 0)
        if (t.index < o->tasks && !seen[t.index]) {
            seen[t.index] = 1;
            add_task(ctx, d, &t, r, a);
        }
    bool ended = parse_end(b, off, e) == 0;
    for (size_t i = 0; i < o->tasks; i++)
        if (!seen[i])
            pb_run_account(r, ctx, d, i, missing, 0, NULL, 0);
    wl_digest_final(d, digest_hex);
    wl_digest_destroy(d);
    free(seen);
    return ended ? 0 : 1;
}

/* ---------------------------------------------------------------- a run */

static void describe_status(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "died of signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

/* One run of the runner: its command line, what it wrote, what it did. */
typedef struct py_run {
    char script[PATH_MAX + 64];
    double deadline_s, warmup_s;
    argv_buf a;
    bytes b;
    accum acc;
    uint64_t t0, t1;
    int status, late;
    char how[64];
} py_run;

/* Whether the run can go to Python at all, and where the runner is. */
static int py_check(const pb_run_opts *o, py_run *p, char *err, size_t errlen)
{
    char why[512];
    if (pb_py_refusal(o, o->worker_start != NULL, why, sizeof why)) {
        pb_set_err(err, errlen, "%s", why);
        return EX_EINVAL;
    }
    if (find_runner(p->script, sizeof p->script)) {
        pb_set_err(err, errlen, "cannot find scripts/pyrunner/runner.py beside poolbench "
                   "(set POOLBENCH_PYRUNNER)");
        return EX_ESYS;
    }
    return 0;
}

/* The run's time limits from the per-task timeout: the runner's deadline,
 * and the warm-up round's own share, as many rounds again. */
static void py_limits(const pb_run_opts *o, py_run *p)
{
    unsigned workers = o->py == PB_PY_SEQ ? 1 : o->workers;
    double per_task = (double)o->timeout_ns / 1e9;
    p->deadline_s = o->timeout_ns ? per_task * (double)((o->tasks + workers - 1) / workers) : 0;
    p->warmup_s = o->timeout_ns
                      ? per_task * (double)((python_warmup(o) + workers - 1) / workers)
                      : 0;
}

/* Starts the runner and reads its records until it ends or its limit
 * passes; the window (noise.h) spans its whole life: its CPU, its pool's
 * included, reaches our RUSAGE_CHILDREN when it is reaped. */
static int py_execute(const pb_run_opts *o, py_run *p, pb_run_result *r, char *err,
                      size_t errlen)
{
    pb_usage u0, u1;
    pb_window_begin(o, &u0);
    p->t0 = ex_now_ns();
    int fd = -1;
    pid_t pid = spawn(&p->a, &fd, err, errlen);
    if (pid < 0)
        return EX_ESYS;
    double limit_s = p->deadline_s > 0 ? p->deadline_s + p->warmup_s + GRACE_S : PB_PY_LIMIT_S;
    p->late = read_until(fd, &p->b, p->t0 + (uint64_t)(limit_s * 1e9));
    close(fd);
    p->status = pb_child_kill_group(pid);
    p->t1 = ex_now_ns();
    pb_window_end(o, &u1);
    r->window_cpu_s = pb_usage_cpu_s(&u0, &u1);
    if (p->late < 0) {
        pb_set_err(err, errlen, "out of memory reading the runner's results");
        return EX_ENOMEM;
    }
    describe_status(p->status, p->how, sizeof p->how);
    if (p->b.len == 0 && !p->late && WIFEXITED(p->status)) { /* refused, an exception, no python */
        pb_set_err(err, errlen, "the Python runner (%s %s) %s without a result (its message "
                   "is above)", p->a.argv[0], p->script, p->how);
        return EX_ESYS;
    }
    return 0;
}

/* The records checked and digested by the workload's own code (a task the
 * runner did not report counts as failed); 0 or EX_ENOMEM. */
static int py_result(const pb_run_opts *o, wl_ctx *ctx, py_run *p, pb_run_result *r,
                     bool keep_latencies, char *err, size_t errlen)
{
    r->tasks = o->tasks;
    end_rec e;
    char digest[WL_DIGEST_HEX_LEN + 1];
    int rc = collect(o, ctx, &p->b, p->late ? EX_ETIMEDOUT : EX_EWORKER, r, &p->acc, &e, digest);
    if (rc < 0) {
        pb_set_err(err, errlen, "out of memory");
        return EX_ENOMEM;
    }
    if (rc == 0) {
        apply_end(o, &e, &p->acc, r);
        if (strcmp(e.digest, digest) != 0)
            fprintf(stderr, "poolbench: the Python runner's digest %s differs from the "
                    "harness's %s over the same outputs (runner.py: digest())\n", e.digest,
                    digest);
    } else { /* it died or was stopped: the wall time is what we waited */
        fprintf(stderr, "poolbench: the Python runner %s%s; the %zu tasks it did not "
                "report count as failed\n", p->how, p->late ? " (past its deadline)" : "",
                o->tasks - p->acc.nran);
        r->wall_s = (double)(p->t1 - p->t0) / 1e9;
        r->task_cpu_s = p->acc.sum_cpu / 1e9;
    }
    memcpy(r->digest, digest, sizeof digest);
    r->throughput = r->wall_s > 0 ? (double)o->tasks / r->wall_s : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    r->cores = ncpu > 0 ? (unsigned)ncpu : 1;
    r->cpu_util = r->wall_s > 0 ? r->task_cpu_s / (r->wall_s * r->cores) : 0;
    describe_observed(&p->acc, r);
    pb_run_set_latencies(r, p->acc.lat, p->acc.nran);
    if (keep_latencies) {
        r->latencies = p->acc.lat;
        r->nlatencies = p->acc.nran;
        p->acc.lat = NULL;
    }
    return 0;
}

int pb_py_run(const pb_run_opts *o, pb_run_result *r, bool keep_latencies, char *err,
              size_t errlen)
{
    py_run p = {.status = 0};
    int rc = py_check(o, &p, err, errlen);
    if (rc)
        return rc;
    wl_ctx *ctx = NULL;
    rc = wl_prepare(o->workload, o->params, o->tasks, o->seed, WL_PREPARE_LAZY, &ctx, err,
                    errlen);
    if (rc)
        return rc;
    py_limits(o, &p);
    r->digest_tasks = o->digest_tasks && o->digest_tasks < o->tasks ? o->digest_tasks : o->tasks;
    p.acc.lat = calloc(o->tasks, sizeof(double));
    if (!p.acc.lat || build_argv(o, p.script, p.deadline_s, r->digest_tasks, &p.a)) {
        rc = EX_ENOMEM;
        pb_set_err(err, errlen, "out of memory");
    }
    if (rc == 0)
        rc = py_execute(o, &p, r, err, errlen);
    if (rc == 0)
        rc = py_result(o, ctx, &p, r, keep_latencies, err, errlen);
    argv_free(&p.a);
    free(p.b.p);
    free(p.acc.lat);
    wl_cleanup(ctx);
    return rc;
}
