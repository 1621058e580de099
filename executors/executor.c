/*
 * executor.c: the backend-independent front of libexecutors: configuration,
 * ex_create / ex_submit / ex_shutdown / ex_destroy dispatching through the
 * vtable, and the spin-wait every backend uses (the clock, deadlines and
 * fd helpers are in sys.c, the per-task measurements in measure.c).
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

/* initial-exec: its address is two instructions in the shared library too
 * (a library linked at start, not dlopen-ed late). */
__attribute__((tls_model("initial-exec"))) _Thread_local const char ex__thread_id;

bool ex__spin_until(bool (*ready)(const void *arg), const void *arg,
                    int64_t spin_ns, bool may_yield)
{
    if (spin_ns <= 0)
        return ready(arg);
    uint64_t start = ex_now_ns(), until = start + (uint64_t)spin_ns;
    for (unsigned i = 0;; i++) {
        if (ready(arg))
            return true;
        ex__cpu_relax();
        if ((i & 63) == 63) {
            uint64_t now = ex_now_ns();
            if (now >= until)
                return false;
            /* Past the first couple of microseconds, a hand-off from a
             * running thread would have come: the one that will make it
             * ready may be waiting for this CPU, so let it run. */
            if (may_yield && now - start >= EX_SPIN_YIELD_AFTER_NS)
                sched_yield();
        }
    }
}

int ex__worker_init(const ex_config *cfg, unsigned index)
{
    if (cfg->worker_start && cfg->worker_start(index, cfg->worker_start_arg))
        return 1;
    if (cfg->initializer && cfg->initializer(cfg->initializer_arg))
        return 1;
    return 0;
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

/* How long ex_future_wait polls a future of this executor before it
 * sleeps: a thread hand-off takes a few microseconds, a process pool's
 * round trip (dispatcher, pipe, worker, pipe, dispatcher) ten to a hundred
 * on a VM, where a sleeping waiter adds one more cross-CPU wake-up. */
static int64_t wait_spin_ns(const ex_config *cfg)
{
    switch (cfg->kind) {
    case EX_THREADS: return cfg->spin_ns;
    case EX_PROCS: return EX_PROCS_WAIT_SPIN_FACTOR * cfg->spin_ns;
    default: return 0;
    }
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
    case EX_SEQ: make = ex__seq_new; break;
    case EX_THREADS: make = ex__threads_new; break;
    case EX_PROCS: make = ex__procs_new; break;
    case EX_MPI: make = ex__mpi_new; break;
    default: return EX_EINVAL;
    }
    /* ex_future_wait polls the futures of a pool first, then parks. */
    ex_fcache *c = ex__fcache_new(wait_spin_ns(cfg));
    if (!c)
        return EX_ENOMEM;
    ex_executor *ex = NULL;
    int rc = make(cfg, &ex);
    if (rc) {
        ex__fcache_close(c);
        return rc;
    }
    ex->fcache = c;
    ex->creator = &ex__thread_id;
    ex__fcache_set_gauges(c, &ex->gauges);
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
    rc = ex->vt->submit(ex, f, false);
    if (rc) {
        if (rc == EX_EFULL)
            ex__gauge_add(&ex->gauges.rejected);
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
    ex__fcache_set_gauges(c, NULL); /* every accepted future is final */
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

void *ex__executor_alloc(size_t size)
{
    ex_executor *ex = aligned_alloc(64, (size + 63) / 64 * 64);
    if (!ex)
        return NULL;
    memset(ex, 0, size);
    ex->inline_counts.shared = true;
    return ex;
}

/* ------------------------------------------------------------- gauges */

static uint64_t load_count(const _Atomic uint64_t *c)
{
    return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_acquire);
}

/* a - b, or 0 when the tasks in motion make b read above a. */
static uint64_t clamped_sub(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* The ends first, then unbegun, begun and submitted (ex_internal.h: the
 * order that keeps each later reading at least as large as what the
 * earlier ones imply). */
int ex_executor_stats(const ex_executor *ex, ex_pool_stats *out)
{
    if (!ex || !out)
        return EX_EINVAL;
    const ex__gauges *g = &ex->gauges;
    unsigned n = 0;
    const ex__run_counts *rc = ex->vt->run_counts ? ex->vt->run_counts(ex, &n) : NULL;
    const ex__run_counts *in = &ex->inline_counts, *own = &ex->creator_counts;
    uint64_t cancelled = load_count(&g->cancelled);
    uint64_t failed_unbegun = load_count(&g->failed_unbegun);
    uint64_t completed = load_count(&in->completed) + load_count(&own->completed);
    uint64_t failed = load_count(&in->failed) + load_count(&own->failed);
    for (unsigned i = 0; i < n; i++) {
        completed += load_count(&rc[i].completed);
        failed += load_count(&rc[i].failed);
    }
    uint64_t unbegun = 0; /* procs only */
    for (unsigned i = 0; i < n; i++)
        unbegun += load_count(&rc[i].unbegun);
    uint64_t begun = load_count(&in->begun) + load_count(&own->begun);
    for (unsigned i = 0; i < n; i++)
        begun += load_count(&rc[i].begun);
    uint64_t submitted = load_count(&g->by_creator) + load_count(&g->submitted);
    uint64_t started = clamped_sub(begun, unbegun);
    *out = (ex_pool_stats){
        .submitted = submitted,
        .queued = clamped_sub(submitted, started + cancelled + failed_unbegun),
        .running = clamped_sub(started, completed + failed),
        .completed = completed,
        .failed = failed + failed_unbegun,
        .cancelled = cancelled,
        .rejected = load_count(&g->rejected),
        .caller_ran = load_count(&g->caller_ran),
        .workers_alive = ex->vt->workers_alive ? ex->vt->workers_alive(ex) : 0,
        .workers_replaced = (uint64_t)atomic_load_explicit(
            &((ex_executor *)ex)->replaced, memory_order_acquire),
    };
    return EX_OK;
}
