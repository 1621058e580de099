/*
 * executor.c: the backend-independent front of libexecutors: configuration,
 * ex_create / ex_submit / ex_shutdown / ex_destroy dispatching through the
 * vtable, and the small helpers every backend uses (clocks, thread usage,
 * running a task inline with its measurements).
 */
#include "ex_internal.h"

#include <errno.h>
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
    uint64_t until = ex_now_ns() + (uint64_t)spin_ns;
    for (unsigned i = 0;; i++) {
        if (atomic_load_explicit(flag, memory_order_acquire))
            return true;
        ex__cpu_relax();
        if ((i & 63) == 63 && ex_now_ns() >= until)
            return false;
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

void ex__thread_usage(ex_thread_usage *u)
{
    struct timespec ts;
    struct rusage ru;
    /* CPU from the thread clock: it includes the running slice.  The CPU
     * times in getrusage do not (the kernel folds a slice in only at a tick
     * or a switch), so a short task would read as using no CPU at all. */
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        u->cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    else
        u->cpu_ns = 0;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        u->nvcsw = ru.ru_nvcsw;
        u->nivcsw = ru.ru_nivcsw;
    } else {
        u->nvcsw = u->nivcsw = 0;
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

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ex__probe_init(ex_probe *p, bool measure_cpu)
{
    memset(p, 0, sizeof *p);
    p->pid = getpid();
    p->measure_cpu = measure_cpu;
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 16; i++) {
        uint64_t t0 = ex_now_ns(), c0 = thread_cpu_ns();
        uint64_t c1 = thread_cpu_ns(), t1 = ex_now_ns();
        uint64_t gap = t1 - t0 > c1 - c0 ? (t1 - t0) - (c1 - c0) : 0;
        if (gap < best)
            best = gap;
    }
    p->switch_free_ns = 2 * best + 1000;
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
    /* Context switches: a switch takes the thread off the CPU for longer
     * than switch_free_ns (ex__probe_init), so when wall - CPU stays below
     * that, no switch happened and the counts carry over without a
     * getrusage call.  When there was off-CPU time, getrusage gives the
     * exact counts. */
    uint64_t cpu = end.u.cpu_ns - start.u.cpu_ns;
    uint64_t wall = end.ns - start.ns;
    if (!chain || !chain->switch_free_ns || wall > cpu + chain->switch_free_ns) {
        ex_thread_usage u;
        ex__thread_usage(&u);
        end.u.nvcsw = u.nvcsw;
        end.u.nivcsw = u.nivcsw;
    } else {
        end.u.nvcsw = start.u.nvcsw;
        end.u.nivcsw = start.u.nivcsw;
    }
    f->stats.flags |= EX_STATS_CPU;
    f->stats.end_ns = end.ns;
    f->stats.cpu_ns = cpu;
    f->stats.nvcsw = end.u.nvcsw - start.u.nvcsw;
    f->stats.nivcsw = end.u.nivcsw - start.u.nivcsw;
    if (chain) {
        end.pid = chain->pid;
        end.switch_free_ns = chain->switch_free_ns;
        end.measure_cpu = chain->measure_cpu;
        end.valid = true;
        *chain = end;
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
    ex_executor *ex = NULL;
    int rc = make(cfg, &ex);
    if (rc)
        return rc;
    rc = ex->vt->start(ex);
    if (rc) {
        ex->vt->destroy(ex);
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
    int rc = ex__future_new(fn, in, len, &f);
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

int ex_shutdown(ex_executor *ex, int wait, int cancel_pending)
{
    if (!ex)
        return EX_EINVAL;
    atomic_store_explicit(&ex->shut, true, memory_order_release);
    return ex->vt->shutdown(ex, wait != 0, cancel_pending != 0);
}

void ex_destroy(ex_executor *ex)
{
    if (!ex)
        return;
    atomic_store_explicit(&ex->shut, true, memory_order_release);
    ex->vt->shutdown(ex, true, false);
    ex->vt->destroy(ex);
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
