/*
 * ex_internal.h: what the backends share and the public header hides: the
 * future's fields, the backend vtable and the helpers every backend calls to
 * move a future through its states.
 *
 * Ownership: a future has a reference count.  ex_submit hands one reference
 * to the caller and one to the executor; the backend gives its reference
 * back (ex_future_release) once the future is final and it no longer touches
 * it.  Every state transition happens in future.c under f->lock.
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

struct ex_callback;
struct ex_waiter;

struct ex_future {
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* signalled when the state becomes final */
    atomic_int refs;
    _Atomic ex_state state;   /* written under lock; read lock-free for polls */
    int error;                /* 0, or EX_E* when FAILED / CANCELLED */
    int task_code;            /* the task's positive code for EX_ETASK */
    int cond_waiters;         /* threads in ex_future_wait on cond */
    bool running_callbacks;   /* the completer is still running callbacks */
    int64_t spin_ns;          /* ex_future_wait polls this long first */

    ex_task_fn fn;
    const void *in;
    size_t in_len;
    ex_buf out;
    ex_task_stats stats;

    struct ex_callback *callbacks, **callbacks_tail;
    struct ex_waiter_link *waiters; /* ex_wait / as_completed registrations */

    /* Backend use only: queue links and free per-backend words.  Owned by
     * the backend from submit until the executor's reference is released. */
    ex_future *next;
    _Atomic(ex_future *) qnext; /* threads.c's lock-free queue */
    uint64_t id;
    void *backend_ptr;
    unsigned redispatched; /* procs: times its worker died before reading it */

    /* ex_future_then: the future whose output is this one's input (one
     * reference held until this future is final), and where to submit. */
    ex_future *parent;
    ex_executor *then_ex;

    struct ex_fcache *home; /* its executor's cache: where it goes back to */
};

/* Each executor keeps the futures released back to it for its next
 * submissions (up to EX_FCACHE_MAX of them), so a steady stream of tasks
 * neither calls malloc nor faults fresh pages in.  A future may outlive
 * its executor: the cache counts the futures it handed out and is freed
 * when the executor has closed it and the last of them came back. */
#define EX_FCACHE_MAX 131072u
typedef struct ex_fcache ex_fcache;
ex_fcache *ex__fcache_new(void);
/* The executor's end: frees the cached futures, and the cache itself once
 * every future it handed out has been released. */
void ex__fcache_close(ex_fcache *c);

/* Registration of a group waiter on one future (see group.c). */
struct ex_waiter_link {
    struct ex_waiter_link *next;
    struct ex_waiter *waiter;
    size_t index;
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
};

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

/* future.c */
/* A new PENDING future with two references (the caller's and the
 * executor's), taken from cache c (its executor's) or allocated. */
int ex__future_new(ex_fcache *c, ex_task_fn fn, const void *in, size_t len,
                   ex_future **out);
/* PENDING -> RUNNING (true) or false if it was cancelled meanwhile. */
bool ex__future_begin(ex_future *f);
/* RUNNING -> PENDING (true), for a task whose process-pool worker died
 * before it read the task: it provably never started and is dispatched
 * again.  Only the backend that began f may call it. */
bool ex__future_unbegin(ex_future *f);
/* RUNNING (or PENDING) -> DONE if error == 0, else FAILED with error and
 * task_code; wakes waiters, runs callbacks.  Does not drop any reference.
 * Returns whether any callback ran (their CPU time is the caller's). */
bool ex__future_finish(ex_future *f, int error, int task_code);
/* PENDING -> CANCELLED (true), false if not pending. */
bool ex__future_cancel_pending(ex_future *f);

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
 * readings, then finishes it.  Used by caller-runs.  f must be RUNNING. */
void ex__run_inline(ex_future *f, int worker);

/* The same, for a worker loop: `chain` holds the boundary read at the end
 * of the previous task.  When the worker went straight from that task to
 * this one (it did not sleep: the caller invalidates chain when it waits)
 * and this task was already submitted when that reading began, it serves
 * as this task's start.  With switch detection (see ex_config.exact_cpu) a
 * task that ran without a break costs no system call at all; with exact
 * readings, a busy worker pays the thread clock and getrusage once per
 * task, not twice. */
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

/* Busy-waits (with a CPU pause hint) until *flag != 0 or spin_ns passed;
 * returns whether it became nonzero.  After EX_SPIN_YIELD_AFTER_NS it
 * yields the CPU between polls: when threads outnumber CPUs, the thread it
 * waits for may be queued behind it on this very CPU. */
#define EX_SPIN_YIELD_AFTER_NS 2000
bool ex__spin_until_nonzero(const atomic_size_t *flag, int64_t spin_ns);

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

#endif
