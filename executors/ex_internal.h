/*
 * ex_internal.h: what the backends share and the public header hides: the
 * future's fields, the backend vtable and the helpers every backend calls to
 * move a future through its states.
 *
 * Ownership: a future has a reference count.  ex_submit hands one reference
 * to the caller and one to the executor; the backend gives its reference
 * back (ex_future_release) once the future is final and it no longer touches
 * it.  Every state transition happens in future.c under the future's lock
 * (a bit of its state word, below).
 */
#ifndef POOLBENCH_EX_INTERNAL_H
#define POOLBENCH_EX_INTERNAL_H

#include "executor.h"
#include "sys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Worker index recorded when a CALLER_RUNS task ran in the submitter. */
#define EX_WORKER_CALLER (-2)

/* The state word: the state, the final error, and the bits that replace a
 * per-future mutex and condition variable.  A thread that must sleep (for
 * the lock, or for the future to become final) sets PARKED and parks on
 * the word (ex__park: a futex); clearing LOCKED wakes them all, and a
 * final state is published without the lock only when no bit is set
 * (nobody parked).  Final states are published with release and read with
 * acquire, so whatever was written before (error, task_code, the result
 * fields) is there for a reader that sees them. */
#define EX__W_STATE 0x7u      /* ex_state */
#define EX__W_LOCKED 0x8u     /* the future's lock (ex__future_lock) */
#define EX__W_PARKED 0x10u    /* a thread sleeps on the word */
#define EX__W_LISTENERS 0x20u /* listeners is not empty */
#define EX__W_CALLBACKS 0x40u /* the completer is running callbacks */
#define EX__W_ERROR_SHIFT 8   /* bits 8-15: -error (EX_E*, 0 if none) */

/* stats_flags: EX_STATS_* (public), and these: the call fields have
 * given way to the result fields (ex__future_end_call); a chained future
 * not handed to its executor yet (ex_future_then, until its predecessor is
 * DONE): no gauge counts it, so neither does its cancel.  HELD is set
 * before the future is seen by anyone and cleared under its lock. */
#define EX__F_RESULT 0x8000u
#define EX__F_HELD 0x4000u

/* Something to run once a future is final (ex__future_listen).  `early`
 * ones run first, under the future's lock, and stay owned by whoever
 * added them (group waiters: they may unlisten and go away at any time,
 * which takes that lock); the others run in the order added, without the
 * lock, and fn disposes of its own node. */
struct ex__listener {
    struct ex__listener *next;
    void (*fn)(ex_future *f, struct ex__listener *self);
    bool early;
};

/*
 * The future: 112 bytes, laid out for the hot path.  What it must hold is
 * the call until it has run, then the result, never both: so the call
 * (fn, in, in_len, and the process pool's id and redispatch count) and the
 * result (output and the measurements taken when the task ends) share
 * their storage.  The call fields are valid from ex__future_new until the
 * owner turns them into the result (ex__future_end_call, by the runner
 * once the task returned, or by whoever makes the future final without
 * running it, under the lock); the result fields from then on, and for
 * anyone else only once the state is final.
 *
 * No mutex, no condition variable: waiting and locking use the state word
 * (above).  No pointer to the executor or its cache: futures live in the
 * executor's slabs (fcache.c), found from the future's address.
 */
struct ex_future {
    _Atomic uint32_t word;    /* EX__W_*: state | error | lock and waits */
    atomic_uint refs;
    int32_t task_code;        /* the task's positive code for EX_ETASK */
    int16_t cpu;              /* stats: CPU it ran on, -1 unknown */
    uint16_t stats_flags;     /* EX_STATS_*, EX__F_RESULT */
    /* The measurements known once the task starts: outside the union,
     * since the process pool records them at dispatch, while the call is
     * still needed (threads and seq record them with the rest). */
    struct {
        uint64_t submit_ns, start_ns;
        int32_t worker;       /* -1 if it never ran */
        pid_t worker_pid;
    } stats;
    /* Listeners (ex__future_listen) in a circular list, through the last
     * one (its next is the first), under the lock. */
    struct ex__listener *listeners;
    /* Backend use only, owned by the backend from submit until the
     * executor's reference is released: queue links (threads.c's
     * lock-free queue uses qnext, the others next).  A future may stay
     * linked after it became final (cancelled in the queue). */
    union {
        ex_future *next;
        _Atomic(ex_future *) qnext;
    };
    union {
        struct { /* the call */
            ex_task_fn fn;
            const void *in;
            size_t in_len;
            uint64_t id;            /* procs: its task id on the wire */
            unsigned redispatched;  /* procs: times its worker died first */
        };
        struct { /* the result */
            unsigned char *out_data; /* the task's output (malloc'd) */
            size_t out_len;
            uint64_t end_ns, cpu_ns;
            uint32_t nvcsw, nivcsw;  /* this task's, saturated */
            uint64_t ipc_send_ns, ipc_recv_ns;
        };
    };
};

/* The executor's futures come from its cache of slabs (fcache.c): 1 MiB
 * mappings cut into futures, handed out from a free list or in address
 * order, and taken back from any thread without a lock.  No cap: released
 * futures are reused however many were live at once.  A future may
 * outlive its executor: the cache is freed when the executor has closed it
 * and the last future came back. */
typedef struct ex_fcache ex_fcache;
/* spin_ns: how long ex_future_wait polls a future of this cache. */
ex_fcache *ex__fcache_new(int64_t spin_ns);
/* The executor's end: the cache goes once every future it handed out has
 * come back (at once if none is out). */
void ex__fcache_close(ex_fcache *c);
/* An uninitialised future, or NULL (out of memory).  Does not block for
 * long (a short lock among allocating threads). */
ex_future *ex__fcache_get(ex_fcache *c);
/* Gives f back to the cache it came from.  Lock-free. */
void ex__fcache_put(ex_future *f);
/* The gauges of the executor whose futures c holds (set by ex_create,
 * cleared by ex_destroy), and those of f's executor: NULL once it is gone
 * (only a final or HELD future may outlive it). */
struct ex__gauges;
void ex__fcache_set_gauges(ex_fcache *c, struct ex__gauges *g);
struct ex__gauges *ex__fcache_gauges(const ex_future *f);
/* The spin_ns of f's cache. */
int64_t ex__fcache_spin_ns(const ex_future *f);

/* Registration of a group waiter on one future (see group.c): an early
 * listener. */
struct ex_waiter_link {
    struct ex__listener node;
    struct ex_waiter *waiter;
    size_t index;
    bool listening;     /* added to the future (not already final) */
};

struct ex_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t nfinal;      /* futures final so far */
    size_t nfailed;     /* of which FAILED */
    size_t *order;      /* indexes in completion order (n slots), or
                           NULL when only the counts matter (ex_wait) */
    size_t n;
    /* Wake the waiting thread only when it can make progress: once nfinal
     * reaches wake_nfinal, or on a failure if wake_on_fail.  Waking it on
     * every completion would cost a futex call per task. */
    size_t wake_nfinal;
    bool wake_on_fail;
};

/* Counts future `index`, final in state s, in w (and in w->order, the
 * completion order, when as_completed keeps one).  Under w->lock once w
 * is registered with any future (group.c). */
void ex__waiter_count(struct ex_waiter *w, size_t index, ex_state s);

/* vt->inside: where the caller stands relative to the executor. */
enum {
    EX__OUTSIDE = 0,
    EX__INSIDE_THREAD = 1, /* one of its threads: a worker, the dispatcher,
                              a seq task in progress */
    EX__INSIDE_COPY = 2,   /* a process-pool worker: a fork-time copy */
};

/* A list of threads, each listed by a node on its own stack while it is
 * inside something (reentry.c): ex_shutdown on an executor, a seq task. */
typedef struct ex_tnode {
    pthread_t thread;
    struct ex_tnode *next;
} ex_tnode;

typedef struct ex_tlist {
    pthread_mutex_t lock;
    pthread_cond_t empty; /* head became NULL */
    ex_tnode *head;
} ex_tlist;

int ex__tlist_init(ex_tlist *l);
void ex__tlist_fini(ex_tlist *l);
void ex__tlist_enter(ex_tlist *l, ex_tnode *n);
void ex__tlist_leave(ex_tlist *l, ex_tnode *n);
/* Whether the calling thread is listed.  Does not block for long. */
bool ex__tlist_has_self(ex_tlist *l);
/* Blocks until no thread is listed. */
void ex__tlist_wait_empty(ex_tlist *l);

/*
 * Gauges (ex_executor_stats): counters that only go up, each written where
 * its transition happens, and read one by one without a lock.
 *
 * Tasks that ran (or run) are counted by what runs them, in an
 * ex__run_counts: a thread-pool worker's own, on its own cache line and
 * written by that worker alone (a load and a store, no read-modify-write,
 * nothing another thread writes); the process pool's dispatcher's (it alone
 * starts and ends tasks there); and, for tasks run inside the submitting
 * thread (seq, caller-runs), the executor's `creator_counts` when that
 * thread is the one that created the executor (it alone writes them) or
 * its `inline_counts` for any other (shared: read-modify-write).  Every
 * end is counted BEFORE the future is published final, so a thread that
 * saw a future final sees it counted.
 *
 * The rest are in ex__gauges, on one line of the executor: the accepted
 * tasks, one more each before the task can begin, in `by_creator` when
 * the creating thread submits (the usual case: a load and a store) or in
 * `submitted` (read-modify-write) for any other; and the rare paths:
 * rejected, caller_ran, and the tasks that became final without running
 * (cancelled, failed_unbegun), counted by future.c under the future's lock
 * (ex__future_cancel_pending, ex__future_fail_pending) unless the future
 * is HELD.  A thread is the creator when the address of its ex__thread_id
 * is the one ex_create saw (a thread-local address: two instructions, where
 * pthread_self is a call into libc); an address is reused only once its
 * thread has ended, so there is one writer at a time.
 *
 *   queued  = submitted - (begun - unbegun) - cancelled - failed_unbegun
 *   running = (begun - unbegun) - completed - failed
 *
 * A reader loads the ends first, then unbegun, begun, and submitted last
 * (acquire): a task's increments happen in the opposite order, so what it
 * sees ended it also sees begun and submitted.
 */
typedef struct ex__run_counts {
    _Alignas(64) _Atomic uint64_t begun; /* PENDING -> RUNNING (procs: sent) */
    _Atomic uint64_t unbegun;   /* procs: RUNNING -> PENDING (never read) */
    _Atomic uint64_t completed; /* RUNNING -> DONE */
    _Atomic uint64_t failed;    /* RUNNING -> FAILED */
    bool shared;                /* written by several threads */
} ex__run_counts;

/* One more in c, a counter of rc.  Single writer: a plain load and a
 * release store (what a reader's acquire needs, free on x86). */
static inline void ex__count(ex__run_counts *rc, _Atomic uint64_t *c)
{
    if (rc->shared)
        atomic_fetch_add_explicit(c, 1, memory_order_release);
    else
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_release);
}

typedef struct ex__gauges {
    _Alignas(64) _Atomic uint64_t by_creator; /* accepted, submitted by
                                                 the creating thread */
    _Atomic uint64_t submitted;      /* accepted, by any other thread */
    _Atomic uint64_t rejected;       /* ex_submit calls that said EX_EFULL */
    _Atomic uint64_t caller_ran;     /* tasks run by CALLER_RUNS */
    _Atomic uint64_t cancelled;      /* PENDING -> CANCELLED */
    _Atomic uint64_t failed_unbegun; /* PENDING -> FAILED */
} ex__gauges;

/* One more in a gauge (any thread). */
static inline void ex__gauge_add(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_release);
}

typedef struct ex_vtable {
    const char *name;
    /* Starts workers; returns after they confirmed start (or broke). */
    int (*start)(ex_executor *ex);
    /* Takes the executor's reference to f (state PENDING, fields set).
     * force (a chained ex_future_then submission, possibly from a worker or
     * the dispatcher): ignore queue_capacity and never block, and accept the
     * task even after ex_shutdown as long as workers still run (the chain
     * was accepted before the shutdown); EX_ESHUTDOWN only once they have
     * stopped.  Without force, re-check the shutdown flag under the queue
     * lock.  On error the reference stays with the caller, f untouched. */
    int (*submit)(ex_executor *ex, ex_future *f, bool force);
    int (*shutdown)(ex_executor *ex, bool wait, bool cancel_pending);
    /* After shutdown(wait): release everything backend-owned and free ex. */
    void (*destroy)(ex_executor *ex);
    pid_t (*worker_pid)(ex_executor *ex, unsigned index);
    /* EX__OUTSIDE, EX__INSIDE_THREAD or EX__INSIDE_COPY for the caller.
     * Does not block for long. */
    int (*inside)(ex_executor *ex);
    /* The backend's run counts (*n of them; besides ex->inline_counts)
     * and its workers alive now.  Never block, take no lock. */
    const ex__run_counts *(*run_counts)(const ex_executor *ex, unsigned *n);
    unsigned (*workers_alive)(const ex_executor *ex);
} ex_vtable;

/* Every backend's executor struct starts with this. */
struct ex_executor {
    const ex_vtable *vt;
    ex_fcache *fcache;        /* set by ex_create */
    ex_config cfg;
    unsigned workers;
    atomic_bool broken;
    atomic_bool shut;         /* ex_shutdown was called */
    atomic_uint_fast64_t replaced;
    ex_tlist shutdown_calls;  /* threads inside ex_shutdown (reentry.c) */
    /* Gauges (above), each on a line of its own: the struct is 64-byte
     * aligned (ex__executor_alloc), so what a backend puts after it starts
     * on a fresh line. */
    const char *creator;          /* &ex__thread_id in ex_create's thread */
    ex__gauges gauges;
    ex__run_counts creator_counts; /* tasks run in the creator (submitter) */
    ex__run_counts inline_counts;  /* ... in any other submitter: shared */
};

/* One per thread, never written: its address names the thread. */
extern __attribute__((tls_model("initial-exec"))) _Thread_local const char ex__thread_id;

/* Whether the calling thread created ex (its single-writer counters). */
static inline bool ex__by_creator(const ex_executor *ex)
{
    return ex->creator == &ex__thread_id;
}

/* One more task accepted by ex, counted before it can begin. */
static inline void ex__count_submitted(ex_executor *ex)
{
    _Atomic uint64_t *c = &ex->gauges.by_creator;
    if (ex__by_creator(ex))
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_release);
    else
        ex__gauge_add(&ex->gauges.submitted);
}

/* Where a task run in the calling (submitting) thread is counted. */
static inline ex__run_counts *ex__caller_counts(ex_executor *ex)
{
    return ex__by_creator(ex) ? &ex->creator_counts : &ex->inline_counts;
}

/* A zeroed executor struct of `size` bytes, 64-byte aligned (its gauges'
 * lines are their own), inline_counts marked shared, or NULL.  Freed with
 * free(). */
void *ex__executor_alloc(size_t size);

/* reentry.c: ex_shutdown lists its thread in ex->shutdown_calls for the
 * length of the call; ex__destroy_gate returns EX_OK once ex may be
 * destroyed by this caller (after waiting for other threads to leave
 * ex_shutdown), EX__INSIDE_THREAD when the caller is part of ex (a worker,
 * the dispatcher, a seq task, a callback run by ex_shutdown), or EX_EINVAL
 * for a worker process's copy. */
int ex__destroy_gate(ex_executor *ex);
/* vt->inside, or EX__INSIDE_THREAD for a callback run by ex_shutdown. */
int ex__caller_inside(ex_executor *ex);

extern const ex_vtable ex__seq_vtable;
extern const ex_vtable ex__threads_vtable;
extern const ex_vtable ex__procs_vtable;

/* Backend constructors: allocate the backend struct (base filled by the
 * caller afterwards is NOT assumed: they copy cfg themselves). */
int ex__seq_new(const ex_config *cfg, ex_executor **out);
int ex__threads_new(const ex_config *cfg, ex_executor **out);
int ex__procs_new(const ex_config *cfg, ex_executor **out);
int ex__mpi_new(const ex_config *cfg, ex_executor **out);

/* threads.c as the host of a remote backend (EX_MPI): each worker thread
 * is the proxy of one remote worker.  run(ctx, index, f, chain) is called
 * instead of the task with f RUNNING (begun and counted begun in
 * chain->counts); it MUST record f's run, count its end in chain->counts
 * and finish f.  ctx belongs to the caller (ex__threads_proxy_ctx). */
struct ex_probe;
typedef void (*ex__proxy_fn)(void *ctx, unsigned index, ex_future *f,
                             struct ex_probe *chain);
int ex__threads_new_proxy(const ex_config *cfg, const ex_vtable *vt,
                          ex__proxy_fn run, void *ctx, ex_executor **out);
void *ex__threads_proxy_ctx(ex_executor *ex);

/* registry.c: fn's name (the first registered for it) into name: true,
 * or false if fn is not registered.  The function registered as name, or
 * NULL.  Do not block for long. */
bool ex__task_name(ex_task_fn fn, char name[EX_TASK_NAME_MAX + 1]);
ex_task_fn ex__task_fn(const char *name);

/* future.c */
/* A new PENDING future with two references (the caller's and the
 * executor's), from cache c (its executor's). */
int ex__future_new(ex_fcache *c, ex_task_fn fn, const void *in, size_t len,
                   ex_future **out);
/* PENDING -> RUNNING (true) or false if it was cancelled meanwhile.  The
 * thread that wins owns the future until it is final. */
bool ex__future_begin(ex_future *f);
/* RUNNING -> PENDING (true), for a task whose process-pool worker died
 * before it read the task: it provably never started and is dispatched
 * again.  Only the backend that began f may call it. */
bool ex__future_unbegin(ex_future *f);
/* The call is over: its fields become the result's, cleared (no output,
 * no CPU time, end_ns 0).  By f's owner, once it no longer needs fn, in,
 * in_len, id or redispatched; at most once.  Does not block. */
void ex__future_end_call(ex_future *f);
/* Records a run's measurements (start, end, CPU, switches, worker, pid,
 * CPU number, IPC, flags) and its output, ending the call first if the
 * owner has not; out's buffer passes to f (out is cleared). */
void ex__future_record(ex_future *f, const ex_task_stats *st, ex_buf *out);
/* RUNNING (or PENDING) -> DONE if error == 0, else FAILED with error and
 * task_code; wakes waiters, runs listeners.  A future finished without a
 * recorded run ends now (end_ns).  Does not drop any reference.  Returns
 * whether any callback ran (their CPU time is the caller's). */
bool ex__future_finish(ex_future *f, int error, int task_code);
/* PENDING -> CANCELLED (true), false if not pending.  Counted in its
 * executor's gauges unless f is HELD. */
bool ex__future_cancel_pending(ex_future *f);
/* PENDING -> FAILED with error (true), false if not pending; counted as
 * ex__future_cancel_pending is.  For a task accepted and then refused. */
bool ex__future_fail_pending(ex_future *f, int error);
/* The future's lock (EX__W_LOCKED), for a backend writing fields that a
 * cancel may write too.  Never held while a task or a callback runs. */
void ex__future_lock(ex_future *f);
void ex__future_unlock(ex_future *f);
/* Adds l to run once f is final (early ones first, under the lock; the
 * others in the order added): true.  False if f is already final and no
 * callback of it is running (l was not added: the caller acts now).
 * A non-early l added while f's callbacks run joins them (true). */
bool ex__future_listen(ex_future *f, struct ex__listener *l);
/* Takes l off f's list if it is still there (f not final yet). */
void ex__future_unlisten(ex_future *f, struct ex__listener *l);
/* Called with the lock held and a final state just stored: runs the
 * listeners (listen.c) and returns with the lock released, and whether
 * any callback ran. */
bool ex__future_complete_locked(ex_future *f);
/* Whether f's completer is still running its callbacks (tests). */
bool ex__future_callbacks_running(ex_future *f);

/* measure.c: the per-task measurements every backend takes.
 *
 * A task's CPU time is the difference of two readings of the thread clock
 * (CLOCK_THREAD_CPUTIME_ID) and its wall time the difference of two
 * CLOCK_MONOTONIC timestamps.  The two clocks cannot be read at the same
 * instant, so each exact reading brackets its CPU sample between two
 * timestamps: a task starting at the reading starts at the first one, a
 * task ending at it ends at the second.  The CPU interval then lies inside
 * the wall interval, so 0 <= CPU <= wall holds without any correction (the
 * boundary's own few hundred nanoseconds count in both tasks it
 * separates).  A reading above the wall time can only come from the clocks
 * themselves disagreeing; it is cut to the wall time and the task's stats
 * say so (EX_STATS_CPU_OVER_WALL; see measure.c for the one case, with
 * switch detection, that can read below zero). */
typedef struct ex_thread_usage {
    uint64_t cpu_ns;        /* CLOCK_THREAD_CPUTIME_ID */
    int64_t nvcsw, nivcsw;  /* getrusage(RUSAGE_THREAD) */
} ex_thread_usage;

/* One task boundary: the thread's usage, and the time a task starting here
 * starts at (<= the CPU sample) and one ending here ends at (>= it). */
typedef struct ex_mark {
    uint64_t start_ns, end_ns;
    ex_thread_usage u;
} ex_mark;

/* An exact reading: timestamp, thread clock, timestamp, then getrusage for
 * the switch counts.  Two system calls: about 0.5-1 us on a VM. */
void ex__mark_exact(ex_mark *m);

/* Fills st's start/end/CPU/switch fields from a task's two boundaries and
 * sets EX_STATS_CPU, plus EX_STATS_CPU_OVER_WALL or _UNDER_ZERO if the raw
 * CPU fell outside [0, wall] and was cut to it. */
void ex__stats_measure(ex_task_stats *st, const ex_mark *start, const ex_mark *end);

/* A worker's measuring state across its tasks. */
typedef struct ex_probe {
    ex_mark last;     /* the boundary at the end of the previous task */
    bool valid;       /* last may serve as the next task's start */
    pid_t pid;        /* set once by the worker: getpid() is a system call */
    bool measure_cpu; /* ex_config.measure_cpu */
    /* Switch detection (ex_config.exact_cpu false and the kernel has it):
     * the last exact reading, taken in this thread right after arming the
     * rseq marker; anchor.end_ns == 0: none yet. */
    bool detect;
    ex_mark anchor;
    /* Where its runs are counted (the gauges), NULL: nowhere. */
    ex__run_counts *counts;
} ex_probe;

/* Prepares a probe: its pid, and whether it measures CPU with switch
 * detection, exactly, or not at all (ex_config.measure_cpu, exact_cpu). */
void ex__probe_init(ex_probe *p, const ex_config *cfg);

/* A task boundary now, as the probe measures (switch detection, exact
 * readings, or exact readings only when measure_cpu is off: callers that
 * want no CPU stats do not call it).  The process pool's workers use it
 * around each task. */
void ex__probe_mark(ex_probe *p, ex_mark *m);

/* Runs f in this thread as worker `worker`, measuring it with exact
 * readings, then finishes it, counted in counts (ended; the caller counted
 * it begun).  Used by caller-runs.  f must be RUNNING. */
void ex__run_inline(ex_future *f, int worker, ex__run_counts *counts);

/* The same, for a worker loop: `chain` holds the boundary read at the end
 * of the previous task.  When the worker went straight from that task to
 * this one (it did not sleep: the caller invalidates chain when it waits)
 * and this task was already submitted when that reading began, it serves
 * as this task's start.  With switch detection (see ex_config.exact_cpu) a
 * task that ran without a break costs no system call at all; with exact
 * readings, a busy worker pays the thread clock and getrusage once per
 * task, not twice.  The end is counted in chain->counts (if set) before f
 * is published final. */
void ex__run_chained(ex_future *f, int worker, ex_probe *chain);

/* Worker start: worker_start hook then initializer; 0 or nonzero. */
int ex__worker_init(const ex_config *cfg, unsigned index);

/* A CPU hint inside busy-wait loops. */
static inline void ex__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Busy-waits (with a CPU pause hint) until ready(arg) or spin_ns passed;
 * returns whether it became ready.  With may_yield, after
 * EX_SPIN_YIELD_AFTER_NS it yields the CPU between polls: when threads
 * outnumber CPUs, the thread it waits for may be queued behind it on this
 * very CPU. */
#define EX_SPIN_YIELD_AFTER_NS 2000
bool ex__spin_until(bool (*ready)(const void *arg), const void *arg,
                    int64_t spin_ns, bool may_yield);

/* buf.c: storage lent to an ex_buf that does not own it (a process-pool
 * worker lends its output ring, so that a task writes its output in
 * place): ex_buf_reserve moves the bytes to the heap when they outgrow it
 * (never realloc), and ex_buf_free leaves it.  One lending at a time per
 * process, set only inside a worker process around one task; elsewhere
 * nothing is lent and ex_buf behaves as it always does.  Do not block. */
void ex__buf_lend(ex_buf *b, void *storage, size_t cap);
void ex__buf_lend_end(void);

/* chunk.c: the batching used by ex_map's chunksize.  A chunk is one task
 * whose input packs the user function and several inputs, and whose output
 * packs their statuses and outputs, so it works on every backend. */
int ex__chunk_task(const void *in, size_t len, ex_buf *out);
int ex__chunk_pack(ex_buf *dst, ex_task_fn fn, const void *const *ins,
                   const size_t *lens, size_t n);
/* Iterates a chunk output: returns 0 and fills the next item, 1 at the end,
 * EX_EINVAL on a malformed buffer. */
typedef struct ex_chunk_cursor {
    const unsigned char *p;
    size_t left;
    uint32_t remaining;
} ex_chunk_cursor;
int ex__chunk_out_begin(ex_chunk_cursor *c, const void *buf, size_t len,
                        uint32_t expect);
int ex__chunk_out_next(ex_chunk_cursor *c, int *status, const void **out,
                       size_t *len);
/* The user function packed in a chunk input (NULL if malformed), and the
 * same slot rewritten (a remote worker puts its own function there). */
ex_task_fn ex__chunk_fn(const void *in, size_t len);
void ex__chunk_set_fn(void *in, size_t len, ex_task_fn fn);

#endif
