/*
 * measure.c: the per-task measurements (start, end, CPU time, context
 * switches) that seq, threads and the process pool's workers take around
 * every task, and the rseq switch detection that lets a busy worker skip
 * the system calls of an exact reading.
 *
 * The invariant everything here keeps (see ex_internal.h): a task's CPU
 * interval lies inside its wall interval, so cpu_ns <= end - start holds
 * by construction.  An exact reading brackets its thread-clock sample
 * between two timestamps; an estimated one (switch detection) is an upper
 * bound of the thread clock at its timestamp.  Which bound a task uses at
 * each end is what makes the inequality hold:
 *
 *   start           end             raw CPU               why <= wall
 *   exact [a,c,b]   exact [a',c',b'] c' - c               c, c' inside [a, b']
 *   estimate        same anchor      t_end - t_start      both from one anchor
 *   exact anchor    estimate         t_end - a            the anchor's own a
 *   estimate        exact            c' - est(t_start)    est >= clock at t_start
 *
 * The last row is also the one case that can read below zero: an estimate
 * counts interrupt and steal time as CPU, the thread clock does not, so
 * when such time between the anchor and the task's start exceeds the
 * task's own CPU, c' < est(t_start).  Exact readings never go below zero
 * (the thread clock is monotonic).
 */
#include "ex_internal.h"

#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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

void ex__mark_exact(ex_mark *m)
{
    m->start_ns = ex_now_ns();
    m->u.cpu_ns = thread_cpu_ns();
    m->end_ns = ex_now_ns();
    /* Outside the bracket: the switch counts need no timestamp, and the
     * bracket stays one system call wide. */
    thread_switches(&m->u);
}

void ex__stats_measure(ex_task_stats *st, const ex_mark *start, const ex_mark *end)
{
    uint64_t wall = end->end_ns - start->start_ns;
    int64_t cpu = (int64_t)(end->u.cpu_ns - start->u.cpu_ns);
    st->start_ns = start->start_ns;
    st->end_ns = end->end_ns;
    st->flags |= EX_STATS_CPU;
    if (cpu > (int64_t)wall) {
        /* Only the two clocks disagreeing can do this (the thread clock
         * running faster than CLOCK_MONOTONIC): say so, never hide it. */
        st->flags |= EX_STATS_CPU_OVER_WALL;
        cpu = (int64_t)wall;
    } else if (cpu < 0) {
        /* Only an estimated start can do this: interrupt or steal time
         * between its anchor and the task counted as CPU there, and the
         * task's exact end reading left it out. */
        st->flags |= EX_STATS_CPU_UNDER_ZERO;
        cpu = 0;
    }
    st->cpu_ns = (uint64_t)cpu;
    st->nvcsw = end->u.nvcsw - start->u.nvcsw;
    st->nivcsw = end->u.nivcsw - start->u.nivcsw;
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

/* A new anchor: the marker armed first, so that any switch from here on
 * clears it, then an exact reading. */
static void take_anchor(ex_probe *p)
{
#ifdef EX_HAVE_RSEQ
    rseq_arm();
#endif
    ex__mark_exact(&p->anchor);
}

/* The boundary now, with switch detection: estimated from the anchor while
 * the marker is intact and the anchor recent (no system call), else a new
 * anchor.  The estimate counts every nanosecond since the anchor's first
 * timestamp as CPU, an upper bound of the thread clock: the thread ran
 * without a break since the marker was armed, before that timestamp. */
static void detect_mark(ex_probe *p, ex_mark *m)
{
    uint64_t now = ex_now_ns();
#ifdef EX_HAVE_RSEQ
    /* The marker is checked after the timestamp: a switch before it has
     * cleared the marker by then. */
    if (p->anchor.end_ns && now - p->anchor.start_ns < EX_EXACT_EVERY_NS &&
        rseq_intact()) {
        m->start_ns = m->end_ns = now;
        m->u = p->anchor.u;
        m->u.cpu_ns += now - p->anchor.start_ns;
        return;
    }
#endif
    (void)now;
    take_anchor(p);
    *m = p->anchor;
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

void ex__probe_mark(ex_probe *p, ex_mark *m)
{
    if (p->detect)
        detect_mark(p, m);
    else
        ex__mark_exact(m);
}

/* What a worker reads of a task before it runs: the call fields give way
 * to the result once it has (ex__future_record). */
typedef struct call {
    ex_task_fn fn;
    const void *in;
    size_t len;
} call;

static call call_of(const ex_future *f)
{
    return (call){f->fn, f->in, f->in_len};
}

/* The task ended with rc: counted in the gauges before f is final. */
static void count_end(ex__run_counts *counts, int rc)
{
    if (counts)
        ex__count(counts, rc == 0 ? &counts->completed : &counts->failed);
}

/* Timestamps only (ex_config.measure_cpu off). */
static void run_unmeasured(ex_future *f, ex_task_stats *st, ex__run_counts *counts)
{
    call c = call_of(f);
    ex_buf out = {0};
    st->start_ns = ex_now_ns();
    int rc = c.fn(c.in, c.len, &out);
    st->end_ns = ex_now_ns();
    ex__future_record(f, st, &out);
    count_end(counts, rc);
    ex__future_finish(f, rc == 0 ? 0 : EX_ETASK, rc);
}

void ex__run_chained(ex_future *f, int worker, ex_probe *chain)
{
    ex_task_stats st = {.worker = worker, .cpu = sched_getcpu()};
    st.worker_pid = chain->pid ? chain->pid : getpid();
    if (!chain->measure_cpu) {
        run_unmeasured(f, &st, chain->counts);
        return;
    }
    ex_mark start, end;
    if (chain->valid && chain->last.start_ns >= f->stats.submit_ns)
        start = chain->last;
    else
        ex__probe_mark(chain, &start);
    call c = call_of(f);
    ex_buf out = {0};
    int rc = c.fn(c.in, c.len, &out);
    ex__probe_mark(chain, &end);
    ex__stats_measure(&st, &start, &end);
    ex__future_record(f, &st, &out);
    chain->last = end;
    chain->valid = true;
    count_end(chain->counts, rc);
    /* Callbacks run in ex__future_finish, after the reading: their time
     * belongs to no task, so the next task starts from a fresh reading. */
    if (ex__future_finish(f, rc == 0 ? 0 : EX_ETASK, rc))
        chain->valid = false;
}

void ex__run_inline(ex_future *f, int worker, ex__run_counts *counts)
{
    ex_probe probe = {.measure_cpu = true, .counts = counts};
    ex__run_chained(f, worker, &probe);
}
