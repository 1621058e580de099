/*
 * executor.c: the backend-independent front of libexecutors: configuration,
 * ex_create / ex_submit / ex_shutdown / ex_destroy dispatching through the
 * vtable, and the small helpers every backend uses (clocks, thread usage,
 * running a task inline with its measurements).
 */
#include "ex_internal.h"

#include <errno.h>
#include <stddef.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

uint64_t ex_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool ex__spin_until_nonzero(const atomic_size_t *flag, int64_t spin_ns)
{
    if (spin_ns <= 0)
        return atomic_load_explicit(flag, memory_order_acquire) != 0;
    uint64_t start = ex_now_ns(), until = start + (uint64_t)spin_ns;
    for (unsigned i = 0;; i++) {
        if (atomic_load_explicit(flag, memory_order_acquire))
            return true;
        ex__cpu_relax();
        if ((i & 63) == 63) {
            uint64_t now = ex_now_ns();
            if (now >= until)
                return false;
            /* Past the first couple of microseconds, a hand-off from a
             * running thread would have come: the one that will set the
             * flag may be waiting for this CPU, so let it run. */
            if (now - start >= EX_SPIN_YIELD_AFTER_NS)
                sched_yield();
        }
    }
}

int64_t ex__deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return EX_FOREVER;
    return (int64_t)ex_now_ns() + timeout_ns;
}

int ex__cond_init(pthread_cond_t *c)
{
    /* A default condition variable: every timed wait names its clock with
     * pthread_cond_clockwait, so no attribute object is needed, and setting
     * one up per future cost more than the rest of the future's set-up. */
    *c = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    return EX_OK;
}

int ex__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t dl)
{
    if (dl < 0)
        return pthread_cond_wait(c, m);
    struct timespec ts = {.tv_sec = dl / 1000000000, .tv_nsec = dl % 1000000000};
    return pthread_cond_clockwait(c, m, CLOCK_MONOTONIC, &ts);
}

/* CPU from the thread clock: it includes the running slice.  The CPU
 * times in getrusage do not (the kernel folds a slice in only at a tick or
 * a switch), so a short task would read as using no CPU at all. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The switch counts only (getrusage(RUSAGE_THREAD)). */
static void thread_switches(ex_thread_usage *u)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        u->nvcsw = ru.ru_nvcsw;
        u->nivcsw = ru.ru_nivcsw;
    } else {
        u->nvcsw = u->nivcsw = 0;
    }
}

void ex__thread_usage(ex_thread_usage *u)
{
    u->cpu_ns = thread_cpu_ns();
    thread_switches(u);
}

int ex__worker_init(const ex_config *cfg, unsigned index)
{
    if (cfg->worker_start && cfg->worker_start(index, cfg->worker_start_arg))
        return 1;
    if (cfg->initializer && cfg->initializer(cfg->initializer_arg))
        return 1;
    return 0;
}


/*
 * Switch detection through rseq.  glibc registers an rseq area for every
 * thread; its rseq_cs word names a critical section, and whenever the
 * kernel preempts, migrates, blocks or signals the thread it clears that
 * word on the way back to user space if the thread is outside the
 * section.  So a marker section that covers no code at all is cleared by
 * the first interruption after it was armed: while it is still set, the
 * thread has run without a break.  The kernel checks the descriptor: the
 * abort address must follow the registered signature, and lie outside the
 * (empty) section.
 */
#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define EX_HAVE_RSEQ 1
#endif
#endif

#ifdef EX_HAVE_RSEQ
static const uint32_t rseq_sig_words[2] __attribute__((aligned(8))) = {RSEQ_SIG, 0};
static struct rseq_cs rseq_marker;
static bool rseq_detects;
static pthread_once_t rseq_once = PTHREAD_ONCE_INIT;

static inline struct rseq *rseq_area(void)
{
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static inline void rseq_arm(void)
{
    __atomic_store_n(&rseq_area()->rseq_cs, (uint64_t)(uintptr_t)&rseq_marker,
                     __ATOMIC_RELAXED);
}

static inline bool rseq_intact(void)
{
    return __atomic_load_n(&rseq_area()->rseq_cs, __ATOMIC_RELAXED) ==
           (uint64_t)(uintptr_t)&rseq_marker;
}

/* Whether the calling thread's own rseq registration succeeded (glibc
 * registers each thread; cpu_id stays negative when that failed). */
static bool rseq_registered(void)
{
    return (int32_t)__atomic_load_n(&rseq_area()->cpu_id, __ATOMIC_RELAXED) >= 0;
}

static void rseq_test(void)
{
    if (__rseq_size < offsetof(struct rseq, rseq_cs) + sizeof(uint64_t) || !rseq_registered())
        return; /* not registered: old kernel, valgrind, or tunable off */
    rseq_marker.version = 0;
    rseq_marker.flags = 0;
    rseq_marker.start_ip = (uintptr_t)&rseq_sig_words[0];
    rseq_marker.post_commit_offset = 0;
    rseq_marker.abort_ip = (uintptr_t)&rseq_sig_words[1];
    /* A voluntary switch must clear it (some kernels skip the update when
     * the thread comes back to the CPU it left, which would hide it), and
     * every time: one clear could come from a preemption or a signal. */
    bool seen = true;
    for (int i = 0; i < 4 && seen; i++) {
        rseq_arm();
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000};
        nanosleep(&ts, NULL);
        seen = !rseq_intact();
    }
    /* And plain user code must leave it (else it would gain nothing). */
    bool kept = false;
    for (int i = 0; i < 8 && !kept; i++) {
        rseq_arm();
        for (volatile int k = 0; k < 1000; k++)
            ;
        kept = rseq_intact();
    }
    __atomic_store_n(&rseq_area()->rseq_cs, 0, __ATOMIC_RELAXED);
    rseq_detects = seen && kept;
}
#endif

int ex_cpu_switch_detection(void)
{
#ifdef EX_HAVE_RSEQ
    pthread_once(&rseq_once, rseq_test);
    return rseq_detects;
#else
    return 0;
#endif
}

/* An exact reading, after arming the marker; the CPU time and the
 * timestamp are read back to back so that they describe the same moment. */
static void take_anchor(ex_probe *p)
{
#ifdef EX_HAVE_RSEQ
    rseq_arm();
#endif
    p->anchor.cpu_ns = thread_cpu_ns();
    p->anchor_ns = ex_now_ns();
    thread_switches(&p->anchor);
}

/* The thread's usage now: from the anchor while the marker is intact and
 * the anchor recent (no system call), else from a new anchor. */
static void detect_reading(ex_probe *p, uint64_t *ns, ex_thread_usage *u)
{
    uint64_t now = ex_now_ns();
#ifdef EX_HAVE_RSEQ
    /* The marker is checked after the timestamp: a switch before it has
     * cleared the marker by then. */
    if (p->anchor_ns && now - p->anchor_ns < EX_EXACT_EVERY_NS && rseq_intact()) {
        *ns = now;
        *u = p->anchor;
        u->cpu_ns += now - p->anchor_ns;
        return;
    }
#endif
    (void)now;
    take_anchor(p);
    *ns = p->anchor_ns;
    *u = p->anchor;
}

void ex__probe_init(ex_probe *p, const ex_config *cfg)
{
    memset(p, 0, sizeof *p);
    p->pid = getpid();
    p->measure_cpu = cfg->measure_cpu;
    p->detect = cfg->measure_cpu && !cfg->exact_cpu && ex_cpu_switch_detection();
#ifdef EX_HAVE_RSEQ
    /* This thread's own registration may have failed where others' did not. */
    p->detect = p->detect && rseq_registered();
#endif
}

/* ex__run_chained with switch detection: readings come from the anchor
 * (detect_reading), so a task that ran without a break costs two
 * monotonic clock reads and no system call. */
static void run_detected(ex_future *f, ex_probe *chain)
{
    uint64_t start_ns;
    ex_thread_usage start;
    if (chain->valid && chain->ns >= f->stats.submit_ns) {
        start_ns = chain->ns;
        start = chain->u;
    } else {
        detect_reading(chain, &start_ns, &start);
    }
    f->stats.start_ns = start_ns;
    int rc = f->fn(f->in, f->in_len, &f->out);
    detect_reading(chain, &chain->ns, &chain->u);
    chain->valid = true;
    uint64_t wall = chain->ns - start_ns;
    /* Signed: an estimated start (anchor + wall time) can exceed an exact
     * end reading, since the thread clock leaves out steal and interrupt
     * time that the estimate counted.  Clamped to [0, wall]. */
    int64_t cpu = (int64_t)(chain->u.cpu_ns - start.cpu_ns);
    f->stats.flags |= EX_STATS_CPU;
    f->stats.end_ns = chain->ns;
    f->stats.cpu_ns = cpu < 0 ? 0 : (uint64_t)cpu < wall ? (uint64_t)cpu : wall;
    f->stats.nvcsw = chain->u.nvcsw - start.nvcsw;
    f->stats.nivcsw = chain->u.nivcsw - start.nivcsw;
    if (ex__future_finish(f, rc == 0 ? 0 : EX_ETASK, rc))
        chain->valid = false;
}

void ex__run_chained(ex_future *f, int worker, ex_probe *chain)
{
    f->stats.worker = worker;
    f->stats.worker_pid = chain && chain->pid ? chain->pid : getpid();
    f->stats.cpu = sched_getcpu();
    if (chain && !chain->measure_cpu) {
        f->stats.start_ns = ex_now_ns();
        int rc = f->fn(f->in, f->in_len, &f->out);
        f->stats.end_ns = ex_now_ns();
        ex__future_finish(f, rc == 0 ? 0 : EX_ETASK, rc);
        return;
    }
    if (chain && chain->detect) {
        run_detected(f, chain);
        return;
    }
    ex_probe start, end;
    /* Start: timestamp, then usage; end: usage, then timestamp; so the CPU
     * interval lies inside the wall interval and blocked >= 0. */
    if (chain && chain->valid && chain->ns >= f->stats.submit_ns) {
        start = *chain;
    } else {
        start.ns = ex_now_ns();
        ex__thread_usage(&start.u);
    }
    f->stats.start_ns = start.ns;
    int rc = f->fn(f->in, f->in_len, &f->out);
    end.u.cpu_ns = thread_cpu_ns();
    end.ns = ex_now_ns();
    /* The switch counts always come from getrusage: off-CPU time does not
     * tell them (a switch to a thread that answers at once costs less
     * than the clock reads' own jitter). */
    thread_switches(&end.u);
    uint64_t cpu = end.u.cpu_ns - start.u.cpu_ns;
    uint64_t wall = end.ns - start.ns;
    f->stats.flags |= EX_STATS_CPU;
    f->stats.end_ns = end.ns;
    /* A chained start reading took the CPU time a moment before its
     * timestamp: never report more CPU than wall time. */
    f->stats.cpu_ns = cpu < wall ? cpu : wall;
    f->stats.nvcsw = end.u.nvcsw - start.u.nvcsw;
    f->stats.nivcsw = end.u.nivcsw - start.u.nivcsw;
    if (chain) {
        chain->ns = end.ns;
        chain->u = end.u;
        chain->valid = true;
    }
    /* Callbacks run here, after the reading: their time belongs to no
     * task, so the next task starts from a fresh reading instead. */
    if (ex__future_finish(f, rc == 0 ? 0 : EX_ETASK, rc) && chain)
        chain->valid = false;
}

void ex__run_inline(ex_future *f, int worker)
{
    ex__run_chained(f, worker, NULL);
}

unsigned ex_default_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    n += 4;
    return (unsigned)(n < 32 ? n : 32);
}

void ex_config_init(ex_config *cfg, ex_kind kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->on_full = EX_ON_FULL_BLOCK;
    cfg->spin_ns = EX_DEFAULT_SPIN_NS;
    cfg->measure_cpu = true;
}

int ex_create(const ex_config *cfg, ex_executor **out)
{
    if (!cfg || !out)
        return EX_EINVAL;
    *out = NULL;
    if (cfg->on_full > EX_ON_FULL_CALLER_RUNS || cfg->timeout_ns < 0 || cfg->spin_ns < 0)
        return EX_EINVAL;
    int (*make)(const ex_config *, ex_executor **);
    switch (cfg->kind) {
    case EX_SEQ: make = ex_seq_new; break;
    case EX_THREADS: make = ex_threads_new; break;
    case EX_PROCS: make = ex_procs_new; break;
    default: return EX_EINVAL;
    }
    ex_fcache *c = ex__fcache_new();
    if (!c)
        return EX_ENOMEM;
    ex_executor *ex = NULL;
    int rc = make(cfg, &ex);
    if (rc) {
        ex__fcache_close(c);
        return rc;
    }
    ex->fcache = c;
    if ((rc = ex__tlist_init(&ex->shutdown_calls)) != 0) {
        ex->vt->destroy(ex);
        ex__fcache_close(c);
        return rc;
    }
    rc = ex->vt->start(ex);
    if (rc) {
        ex__tlist_fini(&ex->shutdown_calls);
        ex->vt->destroy(ex);
        ex__fcache_close(c);
        return rc;
    }
    *out = ex;
    return EX_OK;
}

int ex_submit(ex_executor *ex, ex_task_fn fn, const void *in, size_t len,
              ex_future **out)
{
    if (!ex || !fn || !out || (!in && len))
        return EX_EINVAL;
    *out = NULL;
    if (atomic_load_explicit(&ex->shut, memory_order_acquire))
        return EX_ESHUTDOWN;
    if (atomic_load_explicit(&ex->broken, memory_order_acquire))
        return EX_EBROKEN;
    ex_future *f;
    int rc = ex__future_new(ex->fcache, fn, in, len, &f);
    if (rc)
        return rc;
    f->spin_ns = ex->cfg.kind == EX_THREADS ? ex->cfg.spin_ns : 0;
    rc = ex->vt->submit(ex, f, false);
    if (rc) {
        /* Never queued: drop both references (the executor's and ours). */
        ex_future_release(f);
        ex_future_release(f);
        return rc;
    }
    *out = f;
    return EX_OK;
}

/* From inside (see reentry.c) a wait would wait for the caller itself: the
 * executor still stops, and the call says EX_EINVAL.  A worker process's
 * copy is never touched. */
int ex_shutdown(ex_executor *ex, int wait, int cancel_pending)
{
    if (!ex)
        return EX_EINVAL;
    int where = ex__caller_inside(ex);
    if (where == EX__INSIDE_COPY)
        return EX_EINVAL;
    bool refuse = wait && where == EX__INSIDE_THREAD;
    ex_tnode me;
    ex__tlist_enter(&ex->shutdown_calls, &me);
    atomic_store_explicit(&ex->shut, true, memory_order_release);
    int rc = ex->vt->shutdown(ex, wait && !refuse, cancel_pending != 0);
    ex__tlist_leave(&ex->shutdown_calls, &me);
    return refuse ? EX_EINVAL : rc;
}

int ex_destroy(ex_executor *ex)
{
    if (!ex)
        return EX_OK;
    int gate = ex__destroy_gate(ex);
    if (gate == EX__INSIDE_THREAD) {
        /* Stop it, as ex_shutdown(wait=1) from here does; the application
         * destroys it later from outside. */
        atomic_store_explicit(&ex->shut, true, memory_order_release);
        ex->vt->shutdown(ex, false, false);
        return EX_EINVAL;
    }
    if (gate != EX_OK)
        return gate;
    atomic_store_explicit(&ex->shut, true, memory_order_release);
    ex->vt->shutdown(ex, true, false);
    ex_fcache *c = ex->fcache;
    ex__tlist_fini(&ex->shutdown_calls);
    ex->vt->destroy(ex);
    ex__fcache_close(c);
    return EX_OK;
}

unsigned ex_workers(const ex_executor *ex) { return ex ? ex->workers : 0; }
ex_kind ex_executor_kind(const ex_executor *ex) { return ex ? ex->cfg.kind : EX_SEQ; }

int ex_is_broken(const ex_executor *ex)
{
    return ex ? atomic_load(&((ex_executor *)ex)->broken) : 0;
}

pid_t ex_worker_pid(ex_executor *ex, unsigned index)
{
    if (!ex || index >= ex->workers || !ex->vt->worker_pid)
        return 0;
    return ex->vt->worker_pid(ex, index);
}

uint64_t ex_workers_replaced(ex_executor *ex)
{
    return ex ? (uint64_t)atomic_load(&ex->replaced) : 0;
}
