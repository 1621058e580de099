/*
 * soak.c: the randomized, seeded soak test of libexecutors (make soak).
 *
 * Round after round until SOAK_SECONDS (default 60) have passed, it builds
 * an executor of a random kind (seq, threads, procs) and configuration
 * (workers, bounded queue in every on_full mode, recycling, per-task
 * timeout, and for procs its window and transport, pipes or shared
 * memory) and drives it with a random mix of normal (some with large
 * payloads), failing, slow, printing, forking, crashing, hanging and fork-then-crash tasks, random
 * cancels, callbacks that submit, then-chains, worker kills, a child the
 * application forks, and a shutdown racing the submissions; then it
 * destroys the executor and checks the invariants:
 *
 *   - ex_destroy returned 0 and no round outlived its deadline (a watchdog
 *     thread reports a hang with the round's seed);
 *   - every future is final, its completion callback ran exactly once, and
 *     state, error, task code and ex_future_result agree;
 *   - each outcome is one this task may have (a normal task fails only
 *     through a fault injected in its round: a kill, a timeout, a cancel,
 *     a shutdown), a failing task keeps its code, a chain follows its
 *     parent, and every successful output is the expected one;
 *   - what tasks printed appears once (or, for a task that died, at most
 *     once), and the parent's unflushed line exactly once;
 *   - the process has the fds, threads and children it had before.
 *
 * Each round has its own seed, printed when the round fails: replay it
 * with SOAK_SEED=<that seed> SOAK_SECONDS=0 (exactly that round).  At the
 * end it prints the rounds, tasks and injected faults it counted.
 */
#include "util.h"

#include <inttypes.h>
#include <signal.h>

#define MAX_TASKS 160
#define MAX_SLOTS (MAX_TASKS * 3)

/* ------------------------------------------------------------ random */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rnd(rng *r)
{
    r->s += 0x9e3779b97f4a7c15ull;
    return mix64(r->s);
}

/* Uniform in [0, n). */
static unsigned below(rng *r, unsigned n)
{
    return n ? (unsigned)(rnd(r) % n) : 0;
}

static bool chance(rng *r, unsigned percent)
{
    return below(r, 100) < percent;
}

/* ------------------------------------------------------------- tasks */

enum kind {
    K_NORMAL, K_FAIL, K_SLOW, K_PRINT, K_FORK, /* every backend */
    K_CRASH, K_HANG, K_FORK_CRASH,             /* procs only */
    K_THEN, K_FOLLOW,                          /* chain, callback's submit */
    K_COUNT
};
static const char *const kind_names[K_COUNT] = {
    "normal", "fail", "slow", "print", "fork", "crash", "hang",
    "fork_crash", "then", "follow"};

typedef struct task_in {
    uint32_t kind, arg;
    uint64_t id;
} task_in;

static uint64_t expected_out(uint64_t id)
{
    return mix64(id ^ 0x50a4ull);
}

static int put_u64(ex_buf *out, uint64_t v)
{
    return ex_buf_append(out, &v, sizeof v) ? 90 : 0;
}

/* In a forked worker (procs), a grandchild that keeps the worker's pipes
 * open for arg ms; elsewhere (a threaded process) a child that leaves at
 * once and is reaped here. */
static int fork_child(bool in_worker, uint32_t ms)
{
    pid_t pid = fork();
    if (pid < 0)
        return 91;
    if (pid == 0) {
        if (in_worker)
            sleep_ns((int64_t)ms * MS);
        _exit(0);
    }
    if (!in_worker) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
    return 0;
}

/* The task of every kind but K_THEN; in->arg: ms, code, or whether it runs
 * in a worker process (fork kinds). */
static int task_main(const void *p, size_t len, ex_buf *out)
{
    task_in in;
    if (len < sizeof in)
        return 99;
    memcpy(&in, p, sizeof in);
    size_t pad = len - sizeof in; /* echoed after the result */
    switch (in.kind) {
    case K_FAIL:
        return (int)in.arg;
    case K_SLOW:
        sleep_ns((int64_t)in.arg * MS);
        break;
    case K_PRINT:
        printf("soak-task %" PRIu64 "\n", in.id); /* never flushed here */
        break;
    case K_FORK:
        if (fork_child(in.arg != 0, 20 + in.arg % 100))
            return 91;
        break;
    case K_CRASH:
        crash_now();
    case K_HANG:
        for (;;)
            pause();
    case K_FORK_CRASH:
        fork_child(true, 50 + in.arg % 200);
        crash_now();
    default:
        break;
    }
    if (put_u64(out, expected_out(in.id)) != 0)
        return 90;
    return ex_buf_append(out, (const char *)p + sizeof in, pad) ? 90 : 0;
}

/* A chain's task: its input is the parent's output, 8 bytes (then the
 * parent's echoed padding, if any). */
static int task_then(const void *p, size_t len, ex_buf *out)
{
    uint64_t v;
    if (len < sizeof v)
        return 98;
    memcpy(&v, p, sizeof v);
    return put_u64(out, mix64(v ^ 0x7e11ull));
}

/* ------------------------------------------------------------- a round */

typedef struct slot {
    ex_future *f;
    task_in in;
    unsigned char *padded; /* in, then pad bytes (NULL: in alone): large
                              payloads, through a process pool's region
                              with EX_TRANSPORT_SHM */
    size_t pad;
    int parent;        /* K_THEN: the parent's slot */
    bool cancel_tried;
    atomic_int finals; /* completion callbacks run */
} slot;

typedef struct counters {
    uint64_t rounds, tasks, by_kind[K_COUNT];
    uint64_t cancels, kills, racing_shutdowns, app_forks, rejected_caller_runs,
        callback_submits, cancelling_shutdowns, padded;
} counters;

typedef struct round {
    uint64_t seed;
    rng r;
    ex_config cfg;
    ex_executor *ex;
    slot slots[MAX_SLOTS];
    atomic_int nslots;
    int mine[MAX_SLOTS]; /* slots the main thread made: cancel targets */
    int nmine;
    /* What this round injected: the outcomes that makes legitimate. */
    bool cancel_pending_used;
    bool kills;
    counters *c;
    char why[512];
} round;

static void count_final(ex_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add(&((slot *)arg)->finals, 1);
}

/* A fresh slot (any thread: callbacks take slots too), or NULL if full. */
static slot *take_slot(round *rd, uint32_t kind, uint32_t arg)
{
    int i = atomic_fetch_add(&rd->nslots, 1);
    if (i >= MAX_SLOTS) {
        atomic_fetch_sub(&rd->nslots, 1);
        return NULL;
    }
    slot *s = &rd->slots[i];
    memset(&s->in, 0, sizeof s->in);
    s->padded = NULL;
    s->pad = 0;
    s->f = NULL;
    s->parent = -1;
    s->cancel_tried = false;
    atomic_init(&s->finals, 0);
    s->in.kind = kind;
    s->in.arg = arg;
    s->in.id = mix64(rd->seed ^ ((uint64_t)i << 20));
    return s;
}

static void watch(slot *s)
{
    if (s->f && ex_future_on_done(s->f, count_final, s) != 0)
        s->f = NULL; /* out of memory: not checked */
}

/* A callback that submits one more task to the same executor (it may be
 * refused: shut down, full, broken). */
static void cb_submit(ex_future *f, void *arg)
{
    (void)f;
    round *rd = arg;
    slot *s = take_slot(rd, K_FOLLOW, 0);
    if (!s)
        return;
    if (ex_submit(rd->ex, task_main, &s->in, sizeof s->in, &s->f) != 0)
        s->f = NULL;
    watch(s);
}

typedef struct racer {
    round *rd;
    int64_t delay_ns;
    int wait, cancel;
    int rc;
} racer;

static void *racer_main(void *p)
{
    racer *a = p;
    sleep_ns(a->delay_ns); /* where in the submissions the race lands */
    a->rc = ex_shutdown(a->rd->ex, a->wait, a->cancel);
    return NULL;
}

static void choose_config(round *rd)
{
    static const ex_kind kinds[] = {EX_SEQ, EX_THREADS, EX_PROCS, EX_PROCS};
    ex_config *cfg = &rd->cfg;
    ex_config_init(cfg, kinds[below(&rd->r, 4)]);
    cfg->max_workers = 1 + below(&rd->r, 3);
    if (chance(&rd->r, 50)) {
        cfg->queue_capacity = 1 + below(&rd->r, 8);
        cfg->on_full = (ex_on_full)below(&rd->r, 3);
    }
    if (cfg->kind == EX_PROCS) {
        cfg->max_tasks_per_worker = chance(&rd->r, 40) ? 1 + below(&rd->r, 3) : 0;
        cfg->timeout_ns = chance(&rd->r, 50) ? (300 + below(&rd->r, 700)) * MS : 0;
        cfg->window = chance(&rd->r, 25) ? 1 : 1 + below(&rd->r, 16);
        cfg->transport = (ex_transport)below(&rd->r, 2);
    }
}

static uint32_t choose_kind(round *rd)
{
    bool procs = rd->cfg.kind == EX_PROCS;
    unsigned k = below(&rd->r, 100);
    if (k < 40)
        return K_NORMAL;
    if (k < 50)
        return K_FAIL;
    if (k < 60)
        return K_SLOW;
    if (k < 70)
        return K_PRINT;
    if (k < 78)
        return K_FORK;
    if (!procs)
        return K_NORMAL;
    if (k < 86)
        return K_CRASH;
    if (k < 92)
        return rd->cfg.timeout_ns ? K_HANG : K_CRASH;
    return K_FORK_CRASH;
}

static uint32_t choose_arg(round *rd, uint32_t kind)
{
    switch (kind) {
    case K_FAIL: return 1 + below(&rd->r, 120);
    case K_SLOW: return 1 + below(&rd->r, 30);
    case K_FORK:
    case K_FORK_CRASH: return rd->cfg.kind == EX_PROCS ? 1 + below(&rd->r, 150) : 0;
    default: return 0;
    }
}

/* Gives s a large input: its task_in, then 16 bytes .. 256 KiB derived
 * from its id (echoed back by the task). */
static bool pad_slot(round *rd, slot *s)
{
    size_t pad = 16 + below(&rd->r, 256u << 10);
    s->padded = malloc(sizeof s->in + pad);
    if (!s->padded)
        return false;
    memcpy(s->padded, &s->in, sizeof s->in);
    for (size_t i = 0; i < pad; i++)
        s->padded[sizeof s->in + i] = (unsigned char)mix64(s->in.id + i / 8);
    s->pad = pad;
    rd->c->padded++;
    return true;
}

/* One submission and what may hang on it: a chain, a submitting callback,
 * a cancel of an earlier task, a worker kill. */
static void submit_one(round *rd)
{
    uint32_t kind = choose_kind(rd);
    slot *s = take_slot(rd, kind, choose_arg(rd, kind));
    if (!s)
        return;
    rd->c->by_kind[kind]++;
    rd->mine[rd->nmine++] = (int)(s - rd->slots);
    const void *in = &s->in;
    size_t len = sizeof s->in;
    if (kind == K_NORMAL && chance(&rd->r, 25) && pad_slot(rd, s)) {
        in = s->padded;
        len += s->pad;
    }
    if (ex_submit(rd->ex, task_main, in, len, &s->f) != 0)
        s->f = NULL; /* EX_EFULL, EX_ESHUTDOWN, EX_EBROKEN: not accepted */
    watch(s);
    if (s->f && chance(&rd->r, 15)) {
        rd->c->callback_submits++;
        ex_future_on_done(s->f, cb_submit, rd);
    }
    if (s->f && chance(&rd->r, 15)) {
        slot *t = take_slot(rd, K_THEN, 0);
        if (t) {
            t->parent = (int)(s - rd->slots);
            if (ex_future_then(s->f, rd->ex, task_then, &t->f) != 0)
                t->f = NULL;
            else
                rd->c->by_kind[K_THEN]++;
            watch(t);
            rd->mine[rd->nmine++] = (int)(t - rd->slots);
        }
    }
    if (chance(&rd->r, 10)) {
        slot *v = &rd->slots[rd->mine[below(&rd->r, (unsigned)rd->nmine)]];
        if (v->f) {
            v->cancel_tried = true;
            rd->c->cancels++;
            ex_future_cancel(v->f);
        }
    }
    if (rd->cfg.kind == EX_PROCS && chance(&rd->r, 2)) {
        /* A pid read from the slot may be reaped meanwhile; with pid_max
         * in the millions its reuse inside this window does not happen. */
        pid_t pid = ex_worker_pid(rd->ex, below(&rd->r, ex_workers(rd->ex)));
        if (pid > 0 && kill(pid, SIGKILL) == 0) {
            rd->kills = true;
            rd->c->kills++;
        }
    }
}

/* ------------------------------------------------------------- checks */

static bool round_fail(round *rd, const char *fmt, ...)
{
    if (rd->why[0])
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rd->why, sizeof rd->why, fmt, ap);
    va_end(ap);
    return false;
}

static bool final_state(ex_state s)
{
    return s == EX_DONE || s == EX_FAILED || s == EX_CANCELLED;
}

/* An error this slot may legitimately end with (its parent aside). */
static bool allowed_error(const round *rd, const slot *s, int err, int code)
{
    bool procs = rd->cfg.kind == EX_PROCS;
    switch (err) {
    case EX_ECANCELLED:
        return s->cancel_tried || rd->cancel_pending_used;
    case EX_ETASK:
        return s->in.kind == K_FAIL && code == (int)s->in.arg;
    case EX_ETIMEDOUT:
        return procs && rd->cfg.timeout_ns > 0;
    case EX_EWORKER:
        return procs && (s->in.kind == K_CRASH || s->in.kind == K_FORK_CRASH ||
                         rd->kills);
    case EX_EBROKEN:
        return rd->kills;
    case EX_ESHUTDOWN:
        return s->in.kind == K_THEN; /* chained after the workers stopped */
    default:
        return false;
    }
}

static bool must_fail(uint32_t kind)
{
    return kind == K_FAIL || kind == K_CRASH || kind == K_HANG ||
           kind == K_FORK_CRASH;
}

static bool check_slot(round *rd, slot *s)
{
    int i = (int)(s - rd->slots);
    ex_future *f = s->f;
    ex_state st = ex_future_state(f);
    if (!final_state(st))
        return round_fail(rd, "slot %d (%s) not final after ex_destroy: %s", i,
                          kind_names[s->in.kind], ex_state_name(st));
    if (atomic_load(&s->finals) != 1)
        return round_fail(rd, "slot %d: completion callback ran %d times", i,
                          atomic_load(&s->finals));
    int err = ex_future_error(f), code = ex_future_task_code(f);
    const void *out = NULL;
    size_t len = 0;
    int rc = ex_future_result(f, &out, &len, 0);
    ex_task_stats ts;
    if (ex_future_stats(f, &ts) != 0)
        return round_fail(rd, "slot %d: final but no stats", i);
    if (rc != err || (st == EX_DONE) != (err == 0) ||
        (st == EX_CANCELLED) != (err == EX_ECANCELLED) ||
        (err != EX_ETASK && code != 0))
        return round_fail(rd, "slot %d (%s): incoherent: state %s error %d result %d code %d",
                          i, kind_names[s->in.kind], ex_state_name(st), err, rc, code);
    if (s->in.kind == K_THEN) {
        slot *p = &rd->slots[s->parent];
        ex_state ps = ex_future_state(p->f);
        if (ps == EX_CANCELLED && st != EX_CANCELLED)
            return round_fail(rd, "slot %d: chain of a cancelled parent is %s", i,
                              ex_state_name(st));
        if (ps == EX_FAILED && !(st == EX_CANCELLED && s->cancel_tried) &&
            (err != ex_future_error(p->f) || code != ex_future_task_code(p->f)))
            return round_fail(rd, "slot %d: chain of a failed parent (%d) ends %s/%d", i,
                              ex_future_error(p->f), ex_state_name(st), err);
        if (ps != EX_DONE)
            return true;
        if (st == EX_DONE) {
            const void *pout;
            size_t plen;
            ex_future_result(p->f, &pout, &plen, 0);
            uint64_t pv, v;
            memcpy(&pv, pout, sizeof pv);
            if (len != sizeof v || (memcpy(&v, out, sizeof v), v != mix64(pv ^ 0x7e11ull)))
                return round_fail(rd, "slot %d: chain output wrong", i);
            return true;
        }
    } else if (st == EX_DONE) {
        uint64_t v;
        if (must_fail(s->in.kind))
            return round_fail(rd, "slot %d (%s) succeeded", i, kind_names[s->in.kind]);
        if (len != sizeof v + s->pad ||
            (memcpy(&v, out, sizeof v), v != expected_out(s->in.id)) ||
            (s->pad && memcmp((const char *)out + sizeof v,
                              s->padded + sizeof s->in, s->pad) != 0))
            return round_fail(rd, "slot %d (%s): output wrong (%zu bytes)", i,
                              kind_names[s->in.kind], len);
        return true;
    }
    if (!allowed_error(rd, s, err, code))
        return round_fail(rd, "slot %d (%s) on %s: unexpected %s (code %d)", i,
                          kind_names[s->in.kind], ex_kind_name(rd->cfg.kind),
                          ex_strerror(err), code);
    return true;
}

/* Every printing task's line once (at most once if it did not succeed),
 * the parent's pending line exactly once. */
static bool check_output(round *rd, const fd_capture *cap)
{
    char *text = fd_capture_text(cap, NULL);
    if (!text)
        return round_fail(rd, "cannot read the round's stdout");
    bool ok = true;
    char line[64];
    snprintf(line, sizeof line, "soak-parent %" PRIx64 "\n", rd->seed);
    if (count_lines(text, line) != 1)
        ok = round_fail(rd, "parent's pending stdout line written %zu times",
                        count_lines(text, line));
    int n = atomic_load(&rd->nslots);
    for (int i = 0; ok && i < n; i++) {
        slot *s = &rd->slots[i];
        if (s->in.kind != K_PRINT || !s->f)
            continue;
        snprintf(line, sizeof line, "soak-task %" PRIu64 "\n", s->in.id);
        size_t c = count_lines(text, line);
        bool done = ex_future_state(s->f) == EX_DONE;
        if (c > 1 || (done && c != 1))
            ok = round_fail(rd, "slot %d printed %zu times (state %s)", i, c,
                            ex_state_name(ex_future_state(s->f)));
    }
    free(text);
    return ok;
}

/* The counts settle back within a generous bound (20 s). */
static bool check_counts(round *rd, pc_counts want)
{
    pc_counts now = pc_settle(want, 2000);
    if (memcmp(&now, &want, sizeof now) != 0)
        return round_fail(rd, "left behind: fds %d->%d threads %d->%d children %d->%d",
                          want.fds, now.fds, want.threads, now.threads,
                          want.children, now.children);
    return true;
}

/* ------------------------------------------------------------ the round */

/* ex_create with the round's configuration.  procs with CALLER_RUNS must
 * be refused (EX_EINVAL); the round then goes on with BLOCK. */
static bool round_create(round *rd)
{
    int rc = ex_create(&rd->cfg, &rd->ex);
    if (rd->cfg.kind == EX_PROCS && rd->cfg.on_full == EX_ON_FULL_CALLER_RUNS) {
        rd->c->rejected_caller_runs++;
        if (rc != EX_EINVAL) {
            if (rc == 0)
                ex_destroy(rd->ex);
            rd->ex = NULL;
            return round_fail(rd, "procs + CALLER_RUNS: ex_create returned %d", rc);
        }
        rd->cfg.on_full = EX_ON_FULL_BLOCK;
        rc = ex_create(&rd->cfg, &rd->ex);
    }
    return rc == 0 || round_fail(rd, "ex_create: %s", ex_strerror(rc));
}

/* The round's traffic: maybe a shutdown racing the submissions, the
 * submissions, maybe a shutdown after them, and ex_destroy, next to a
 * child the application forked (sometimes).  False if a call that must
 * succeed did not. */
static bool round_drive(round *rd)
{
    int release = -1;
    pid_t child = 0;
    if (chance(&rd->r, 20) && (child = app_child_start(&release)) > 0)
        rd->c->app_forks++;
    racer rc_arg = {.rd = rd};
    pthread_t racer_th;
    bool racing = chance(&rd->r, 30);
    if (racing) {
        rc_arg.delay_ns = below(&rd->r, 30) * MS;
        rc_arg.wait = (int)below(&rd->r, 2);
        rc_arg.cancel = (int)below(&rd->r, 2);
        rd->cancel_pending_used = rc_arg.cancel;
        rd->c->racing_shutdowns++;
        if (pthread_create(&racer_th, NULL, racer_main, &rc_arg) != 0)
            racing = false;
    }
    unsigned n = 10 + below(&rd->r, MAX_TASKS - 10);
    for (unsigned i = 0; i < n; i++)
        submit_one(rd);
    if (racing)
        pthread_join(racer_th, NULL);
    if (chance(&rd->r, 30)) {
        int cancel = (int)below(&rd->r, 2);
        rd->cancel_pending_used |= cancel;
        rd->c->cancelling_shutdowns += cancel;
        ex_shutdown(rd->ex, (int)below(&rd->r, 2), cancel);
    }
    int drc = ex_destroy(rd->ex);
    rd->ex = NULL;
    if (child > 0)
        app_child_end(child, release);
    bool ok = drc == 0 || round_fail(rd, "ex_destroy returned %d", drc);
    if (racing && rc_arg.rc != 0)
        ok = round_fail(rd, "racing ex_shutdown returned %d", rc_arg.rc);
    return ok;
}

static bool run_round(round *rd)
{
    rd->r.s = rd->seed;
    choose_config(rd);
    pc_counts before = pc_take();
    /* stdout of the round: a fresh file, fully buffered, holding the
     * parent's pending line when the executor is created. */
    fd_capture cap;
    if (fd_capture_begin(&cap, STDOUT_FILENO) != 0) {
        fd_capture_close(&cap);
        return round_fail(rd, "cannot redirect stdout: %s", strerror(errno));
    }
    setvbuf(stdout, NULL, _IOFBF, BUFSIZ);
    printf("soak-parent %" PRIx64 "\n", rd->seed);
    if (!round_create(rd)) {
        fd_capture_close(&cap);
        return false;
    }
    bool ok = round_drive(rd);
    fd_capture_end(&cap);
    int ns = atomic_load(&rd->nslots);
    for (int i = 0; ok && i < ns; i++)
        if (rd->slots[i].f) {
            rd->c->tasks++;
            ok = check_slot(rd, &rd->slots[i]);
        }
    ok = ok && check_output(rd, &cap);
    fd_capture_close(&cap);
    for (int i = 0; i < ns; i++) {
        ex_future_release(rd->slots[i].f);
        free(rd->slots[i].padded);
    }
    return ok && check_counts(rd, before);
}

/* ------------------------------------------------------------ watchdog */

typedef struct watchdog {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int64_t deadline; /* CLOCK_MONOTONIC ns, 0: idle */
    uint64_t seed;
    bool quit;
} watchdog;

static void *watchdog_main(void *p)
{
    watchdog *w = p;
    pthread_mutex_lock(&w->lock);
    while (!w->quit) {
        int64_t dl = w->deadline;
        if (dl && (int64_t)ex_now_ns() >= dl) {
            fprintf(stderr, "soak: HANG: a round ran past its deadline; replay: "
                            "SOAK_SEED=0x%" PRIx64 " SOAK_SECONDS=0\n", w->seed);
            _exit(3);
        }
        ex__cond_wait_until(&w->cv, &w->lock, dl ? dl : (int64_t)(ex_now_ns() + SEC));
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void watch_round(watchdog *w, uint64_t seed, int64_t budget_ns)
{
    pthread_mutex_lock(&w->lock);
    w->seed = seed;
    w->deadline = budget_ns ? (int64_t)ex_now_ns() + budget_ns : 0;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->lock);
}

/* ---------------------------------------------------------------- main */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void report(const counters *c, double secs, uint64_t failed)
{
    uint64_t faults = c->by_kind[K_FAIL] + c->by_kind[K_SLOW] +
                      c->by_kind[K_PRINT] + c->by_kind[K_FORK] +
                      c->by_kind[K_CRASH] + c->by_kind[K_HANG] +
                      c->by_kind[K_FORK_CRASH] + c->cancels + c->kills +
                      c->racing_shutdowns + c->cancelling_shutdowns +
                      c->app_forks + c->rejected_caller_runs;
    fprintf(stderr,
            "soak: %.0f s, %" PRIu64 " rounds, %" PRIu64 " tasks checked, %" PRIu64
            " injected faults (fail %" PRIu64 ", slow %" PRIu64 ", print %" PRIu64
            ", fork %" PRIu64 ", crash %" PRIu64 ", hang %" PRIu64 ", fork+crash %" PRIu64
            ", cancel %" PRIu64 ", worker kill %" PRIu64 ", racing shutdown %" PRIu64
            ", cancelling shutdown %" PRIu64 ", app fork %" PRIu64
            ", procs+caller-runs %" PRIu64 "); also %" PRIu64 " chains, %" PRIu64
            " submitting callbacks, %" PRIu64 " large payloads\n",
            secs, c->rounds, c->tasks, faults, c->by_kind[K_FAIL], c->by_kind[K_SLOW],
            c->by_kind[K_PRINT], c->by_kind[K_FORK], c->by_kind[K_CRASH],
            c->by_kind[K_HANG], c->by_kind[K_FORK_CRASH], c->cancels, c->kills,
            c->racing_shutdowns, c->cancelling_shutdowns, c->app_forks,
            c->rejected_caller_runs, c->by_kind[K_THEN], c->callback_submits,
            c->padded);
    fprintf(stderr, "soak: %" PRIu64 " rounds passed, %" PRIu64 " failed\n",
            c->rounds - failed, failed);
}

int main(void)
{
    uint64_t seconds = env_u64("SOAK_SECONDS", 60);
    uint64_t seed = env_u64("SOAK_SEED", mix64(ex_now_ns() ^ (uint64_t)getpid()));
    /* A round that takes this long hangs: the longest legitimate one is a
     * few seconds even under a sanitizer on a loaded machine. */
    int64_t hang_ns = (int64_t)env_u64("SOAK_HANG_SECONDS", 300) * SEC;
    fprintf(stderr, "soak: seed 0x%" PRIx64 ", %" PRIu64 " s%s\n", seed, seconds,
            seconds ? "" : " (one round: replay)");

    watchdog w = {.lock = PTHREAD_MUTEX_INITIALIZER};
    ex__cond_init(&w.cv);
    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog_main, &w) != 0)
        return 2;
    counters c;
    memset(&c, 0, sizeof c);
    round *rd = malloc(sizeof *rd);
    if (!rd)
        return 2;
    uint64_t start = ex_now_ns(), failed = 0;
    for (uint64_t i = 0;; i++) {
        if (seconds && ex_now_ns() - start >= seconds * (uint64_t)SEC)
            break;
        if (!seconds && i == 1)
            break;
        memset(rd, 0, sizeof *rd);
        rd->seed = seconds ? mix64(seed + i) : seed;
        rd->c = &c;
        watch_round(&w, rd->seed, hang_ns);
        bool ok = run_round(rd);
        watch_round(&w, rd->seed, 0);
        c.rounds++;
        if (!ok) {
            failed++;
            fprintf(stderr, "soak: FAILED round %" PRIu64 " (%s, %u workers, queue %zu "
                            "on_full %d, recycle %u, timeout %" PRId64 " ms, window %u, "
                            "transport %s): %s\n"
                            "soak: replay: make soak SOAK_SEED=0x%" PRIx64 " SOAK_SECONDS=0\n",
                    i, ex_kind_name(rd->cfg.kind), rd->cfg.max_workers,
                    rd->cfg.queue_capacity, (int)rd->cfg.on_full,
                    rd->cfg.max_tasks_per_worker, (int64_t)(rd->cfg.timeout_ns / MS),
                    rd->cfg.window, ex_transport_name(rd->cfg.transport), rd->why,
                    rd->seed);
            break;
        }
    }
    report(&c, (double)(ex_now_ns() - start) / SEC, failed);
    pthread_mutex_lock(&w.lock);
    w.quit = true;
    pthread_cond_broadcast(&w.cv);
    pthread_mutex_unlock(&w.lock);
    pthread_join(wd, NULL);
    free(rd);
    return failed ? 1 : 0;
}
