/*
 * executor.h: libexecutors, the futures API of poolbench.
 *
 * One API, three interchangeable backends (sequential, pthread pool,
 * fork+pipe process pool), so that the identical task can run in the caller,
 * in a thread or in another process and the difference can be measured.
 *
 * Contract, for every function below:
 *   - it returns 0 or a negative EX_E* status (ex_strerror() names it);
 *     objects come back through out-parameters;
 *   - the doc block says whether it MAY block the caller;
 *   - timeouts are in nanoseconds: EX_FOREVER (-1) waits without limit,
 *     0 polls, a positive value bounds the wait (CLOCK_MONOTONIC).
 *
 * A task is a plain function of bytes.  It MUST NOT keep pointers to its
 * input after it returns, and it SHALL write its result only through `out`.
 * It returns 0, or a positive task-defined code: the future then fails with
 * EX_ETASK and keeps that code (ex_future_task_code()).  In the process pool
 * the function pointer is used in a forked child, so everything the task
 * reads MUST exist before ex_create() (children see a fork-time snapshot).
 *
 * Under faults (README "Guarantees" says the same beside Python's pool):
 *   - Every accepted task's future becomes final exactly once, whatever its
 *     task, its worker or the application does; ex_shutdown(wait) and
 *     ex_destroy return once they are (none hangs on a broken pool).
 *   - EX_PROCS: a worker's death is seen through its pidfd, not only as
 *     EOF on its pipe (a task that forks a grandchild and then crashes
 *     still fails, with EX_EWORKER; without pidfds, before Linux 5.3 or
 *     under valgrind, such a task stays RUNNING until its timeout).  Only
 *     the task it was running fails; the tasks sent ahead to it (its
 *     window) that it provably never began go back to PENDING and are
 *     dispatched again (a task whose input the worker was reading when it
 *     died, at most 3 times).  Neither the fork server nor the workers depend on
 *     fds a child the application forked may hold: ex_destroy and
 *     recycling never wait for such a child.
 *   - EX_PROCS: ex_create flushes stdout and stderr before forking, and a
 *     worker flushes them after every task, before its result is sent:
 *     nothing is written twice, and what a task printed is out before its
 *     future is final (lost only if the worker dies).  Other FILE streams
 *     the application has unflushed at ex_create are copied into workers:
 *     flush them first.
 *   - EX_PROCS: the fork server and workers run with every caught signal
 *     back at its default action (the application's handlers never run
 *     there), ignored ones still ignored, nothing blocked: as after exec.
 *     Terminal signals reach them (same process group): ignore SIGINT
 *     before ex_create to keep Ctrl-C from failing running tasks.
 *   - From inside the executor (a task, a callback it runs, a callback run
 *     by ex_shutdown's cancellations, or a process-pool worker) ex_destroy
 *     and ex_shutdown(wait=1) return EX_EINVAL: never a crash, a self-join
 *     or a hang.
 */
#ifndef POOLBENCH_EXECUTOR_H
#define POOLBENCH_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The shared library builds with -fvisibility=hidden: what this header
 * declares is its interface and stays visible; everything else the library
 * holds (ex__*, ex_internal.h) does not leave it. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define EX_VERSION "0.1.0"
#define EX_FOREVER ((int64_t)-1)

/* Status codes.  0 is success; every error is negative. */
enum {
    EX_OK = 0,
    EX_ETIMEDOUT = -1,  /* a wait ran out, or (state FAILED) the task ran past
                           the process pool's per-task timeout */
    EX_ECANCELLED = -2, /* the future was cancelled before it ran */
    EX_ESHUTDOWN = -3,  /* the executor is shut down */
    EX_EFULL = -4,      /* bounded queue full and on_full == EX_ON_FULL_REJECT */
    EX_EBROKEN = -5,    /* an initializer or worker start failed */
    EX_EWORKER = -6,    /* the worker process died running this task */
    EX_ETASK = -7,      /* the task returned a nonzero code */
    EX_EINVAL = -8,     /* invalid argument */
    EX_ENOMEM = -9,     /* out of memory */
    EX_ESYS = -10,      /* a system call failed (errno is kept where useful) */
    EX_EUNAVAIL = -11,  /* the backend is not in this build (EX_MPI without
                           Open MPI): ex_create refuses it */
};

/* Name and one-line meaning of a status ("EX_EFULL: queue full"). Never NULL. */
const char *ex_strerror(int status);

/* ---------------------------------------------------------------- buffers */

/* A growable byte buffer owned by the executor; tasks append to it. */
typedef struct ex_buf {
    unsigned char *data;
    size_t len;
    size_t cap;
} ex_buf;

/* Ensures room for `extra` more bytes after len.  Does not block. */
int ex_buf_reserve(ex_buf *b, size_t extra);
/* Appends n bytes.  Does not block. */
int ex_buf_append(ex_buf *b, const void *p, size_t n);
/* Grows len by n (reserving first) and returns a pointer to the n new bytes
 * for the caller to fill, or NULL on ENOMEM.  Does not block. */
void *ex_buf_extend(ex_buf *b, size_t n);
/* Frees the storage and zeroes the struct.  Does not block. */
void ex_buf_free(ex_buf *b);

typedef int (*ex_task_fn)(const void *in, size_t in_len, ex_buf *out);

/* --------------------------------------------------------------- executor */

typedef enum { EX_SEQ = 0, EX_THREADS = 1, EX_PROCS = 2, EX_MPI = 3 } ex_kind;

typedef enum {
    EX_ON_FULL_BLOCK = 0,  /* ex_submit waits for room */
    EX_ON_FULL_REJECT = 1, /* ex_submit returns EX_EFULL */
    EX_ON_FULL_CALLER_RUNS = 2, /* the task runs in the submitting thread;
                                   EX_PROCS refuses it (EX_EINVAL at
                                   ex_create): a task run in the caller has
                                   neither isolation nor timeout */
} ex_on_full;

/* EX_PROCS: how task inputs and outputs travel between the parent and a
 * worker process.  Both keep the pipes for the frames (and so for the
 * worker's liveness); they differ in where the payload bytes go. */
typedef enum {
    EX_TRANSPORT_PIPE = 0, /* through the pipes, as the frames */
    EX_TRANSPORT_SHM = 1,  /* through a shared-memory region per worker
                              (memfd_create + mmap): the worker reads its
                              input in place and writes its output there;
                              payloads under EX_SHM_INLINE_MAX, or larger
                              than the region can hold at that moment,
                              still go through the pipe */
} ex_transport;

/* Below this many bytes a payload goes inline through the pipe even with
 * EX_TRANSPORT_SHM (a small copy costs less than managing the region). */
#define EX_SHM_INLINE_MAX 4096

/* EX_PROCS: tasks in flight per worker by default, and at most.  The
 * default is deep enough for short tasks to cover a hand-off between two
 * CPUs (a cross-core pipe round trip is about 60 us on a VM, where a worker
 * ends an empty task in 1-2 us); longer tasks get a shallower window. */
#define EX_DEFAULT_WINDOW 64
#define EX_MAX_WINDOW 1024

typedef struct ex_config {
    ex_kind kind;
    /* Workers; 0 means min(32, ncpu + 4), as Python.  EX_SEQ uses 1. */
    unsigned max_workers;
    /* Tasks waiting in the queue; 0 = unbounded.  Ignored by EX_SEQ.
     * EX_PROCS holds up to `window` more per worker, sent ahead. */
    size_t queue_capacity;
    ex_on_full on_full;
    /* Called inside every worker (thread, or forked process) before its
     * first task, with the worker's index; EX_SEQ calls it once in
     * ex_create.  Nonzero return: the executor is broken (EX_EBROKEN). */
    int (*worker_start)(unsigned index, void *arg);
    void *worker_start_arg;
    /* Called in every worker after worker_start; nonzero = broken. */
    int (*initializer)(void *arg);
    void *initializer_arg;
    /* EX_PROCS only: a worker exits and is replaced after this many tasks
     * (0 = never). */
    unsigned max_tasks_per_worker;
    /* EX_PROCS: a task running longer than this is killed with its
     * worker, fails with EX_ETIMEDOUT, and the worker is replaced (0 = none).
     * EX_MPI: that task fails with EX_ETIMEDOUT and the whole MPI job ends
     * (every other task EX_EBROKEN; see "task names, mpi" below). */
    int64_t timeout_ns;
    /* EX_PROCS only: largest task input or output in bytes (0 = 1 GiB).
     * A cap, not a reservation: buffers grow with the bytes received. */
    size_t max_payload;
    /* EX_PROCS only: tasks in flight per worker (0 = EX_DEFAULT_WINDOW,
     * 1 = one at a time, at most EX_MAX_WINDOW).  The dispatcher sends a
     * worker up to this many tasks ahead, in one write, so that it finds
     * its next task waiting when it ends one instead of idling for a round
     * trip; fewer when tasks are long (enough to cover a hand-off of about
     * 50 us, at least 2), so that a long task holds back one other, and at
     * most 8 until a task has ended (their length is unknown until then).
     * A task sent ahead counts as RUNNING for the API (its future
     * leaves PENDING when it is sent): ex_future_cancel no longer wins
     * against it, but shutdown(cancel_pending) still cancels it if its
     * worker has not begun it.  Its timeout counts from when it begins, a
     * crash fails only the task that was running (those behind it run
     * again elsewhere), and max_tasks_per_worker counts tasks run. */
    unsigned window;
    /* EX_PROCS only: how payloads travel (EX_TRANSPORT_PIPE by default). */
    ex_transport transport;
    /* EX_THREADS: how long an idle worker polls the queue before it sleeps
     * on the condition variable (ns; 0 = never).  A short poll turns most
     * hand-offs into a cache-line transfer instead of a futex wake, which
     * costs tens of microseconds on a VM.  ex_config_init sets
     * EX_DEFAULT_SPIN_NS.  ex_future_wait polls a future this long before
     * it sleeps (EX_THREADS), or EX_PROCS_WAIT_SPIN_FACTOR times this long
     * (EX_PROCS: a round trip through a worker process takes longer, and
     * a waiter that sleeps adds a cross-CPU wake-up to it). */
    int64_t spin_ns;
    /* Per-task CPU time and context switches (ex_task_stats.cpu_ns, nvcsw,
     * nivcsw).  On by default (ex_config_init).  With switch detection
     * (exact_cpu below) a busy worker takes no system call for them; with
     * exact readings they cost a thread-clock read and a getrusage per
     * task, most of an empty task's cost on a VM (~0.5 us).  Turning them
     * off leaves the timestamps, worker and CPU, and clears EX_STATS_CPU in
     * stats.flags.  EX_PROCS always measures them (the pipe costs far
     * more). */
    bool measure_cpu;
    /* Read the thread clock (and getrusage) at every task boundary.  By
     * default (false) a worker reads them only when the task may have left
     * the CPU: where the kernel offers it, the worker arms an rseq marker
     * at each exact reading, which the kernel clears on any context
     * switch, migration or signal; while it stays armed and the last exact
     * reading is under EX_EXACT_EVERY_NS old, the thread has run without
     * interruption since then, so its CPU time advanced exactly as the
     * monotonic clock did and its switch counts did not move.  The only
     * difference from reading the thread clock is that interrupt handling
     * and a hypervisor's steal inside such a short stretch count as CPU.
     * ex_cpu_switch_detection() tells whether this kernel offers it. */
    bool exact_cpu;
} ex_config;

/* How stale an exact CPU reading may be before a worker takes a new one,
 * even without any context switch (see exact_cpu). */
#define EX_EXACT_EVERY_NS 50000

/* Whether this process can tell, without a system call, that a thread ran
 * without a context switch (rseq; see ex_config.exact_cpu).  Tested once,
 * on first use: a voluntary sleep must be seen, a stretch of user code
 * must not.  Non-blocking after the first call. */
int ex_cpu_switch_detection(void);

#define EX_DEFAULT_SPIN_NS 20000
#define EX_PROCS_WAIT_SPIN_FACTOR 5

typedef struct ex_executor ex_executor;
typedef struct ex_future ex_future;

/* Fills *cfg with the defaults for `kind`.  Does not block. */
void ex_config_init(ex_config *cfg, ex_kind kind);

/* Resolves max_workers == 0 to min(32, ncpu + 4).  Does not block. */
unsigned ex_default_workers(void);

/* Creates an executor and starts its workers; returns once every worker has
 * run worker_start and initializer (a failure there leaves a usable object
 * that rejects work with EX_EBROKEN).  Blocks while workers start.
 * EX_EINVAL for a bad config, including EX_PROCS or EX_MPI with
 * CALLER_RUNS, or EX_MPI with more than 128 workers.  EX_MPI: EX_EUNAVAIL
 * in a build without Open MPI; EX_EBROKEN when its MPI workers could not
 * be started (the broker says why on stderr).
 * EX_PROCS flushes stdout and stderr first (they would be copied into
 * every worker).
 * Memory: a future takes 112 bytes, cut from 1 MiB slabs the executor maps
 * as it needs them; released futures are reused, however many were live
 * at once (no cap, no cost that grows with the count).  The first
 * submission after a moment when none was out gives the slabs past the
 * first two back to the kernel lazily (MADV_FREE: reclaimed only if memory
 * runs short); all are unmapped once the executor is destroyed and its
 * last future released. */
int ex_create(const ex_config *cfg, ex_executor **out);

/* Submits fn(in, len) and returns its future (one reference, the caller's;
 * release it with ex_future_release).  `in` is NOT copied: it MUST stay valid
 * until the future is final.  May block when the queue is bounded and
 * on_full is BLOCK; with CALLER_RUNS the task may run inside this call;
 * EX_SEQ always runs it inside this call.  From a process-pool task, on its
 * own pool: EX_EINVAL (the worker holds only a copy of it).  EX_MPI: fn
 * MUST be registered (ex_task_register), else EX_EINVAL. */
int ex_submit(ex_executor *ex, ex_task_fn fn, const void *in, size_t len,
              ex_future **out);

/* Stops accepting work (later submits fail with EX_ESHUTDOWN).  With
 * cancel_pending, every task not yet started is CANCELLED (including one
 * the process pool's dispatcher had taken but not yet sent, one sent
 * ahead to a worker that has not begun it, or one whose worker died
 * before beginning it); it returns once they are (called from a callback
 * the process pool's dispatcher runs, the tasks sent ahead are cancelled
 * right after that callback returns).  With wait, blocks until every
 * accepted task is final and the workers have exited; without, it does
 * not wait for running tasks and the workers drain the queue in the
 * background.  Calling it again is allowed (a later wait=1 call waits).
 * From inside the executor (a task or a callback it runs, or a callback of
 * a future this very call cancels), wait=1 would wait for the caller
 * itself: the executor still stops, nothing waits, and it returns
 * EX_EINVAL.  From a process-pool worker it does nothing: EX_EINVAL. */
int ex_shutdown(ex_executor *ex, int wait, int cancel_pending);

/* Shuts down (wait=1, keeping pending tasks unless ex_shutdown said
 * otherwise), joins every worker, reaps every process, closes every fd and
 * frees the executor; returns 0.  Futures the caller still holds stay
 * readable.  Blocks until all of that is done, and first until no other
 * thread is inside ex_shutdown on it; never for a child the application
 * forked.  NULL is a no-op (0).
 * From inside the executor (as for ex_shutdown) it cannot free what runs
 * it: it shuts down without waiting and returns EX_EINVAL; destroy it
 * again from outside.  From a process-pool worker: EX_EINVAL, nothing. */
int ex_destroy(ex_executor *ex);

/* The resolved worker count, kind, and whether the executor is broken. */
unsigned ex_workers(const ex_executor *ex);
ex_kind ex_executor_kind(const ex_executor *ex);
int ex_is_broken(const ex_executor *ex);
/* "seq", "threads", "procs", "mpi"; ex_kind_parse returns 0 or EX_EINVAL. */
const char *ex_kind_name(ex_kind kind);
int ex_kind_parse(const char *name, ex_kind *out);
/* "pipe", "shm"; ex_transport_parse returns 0 or EX_EINVAL. */
const char *ex_transport_name(ex_transport t);
int ex_transport_parse(const char *name, ex_transport *out);
/* "block", "reject", "caller-runs"; ex_on_full_parse: 0 or EX_EINVAL. */
const char *ex_on_full_name(ex_on_full f);
int ex_on_full_parse(const char *name, ex_on_full *out);

/* ------------------------------------------------------- task names, mpi */

/* EX_MPI runs tasks in other processes, possibly on other hosts, started
 * from the application's own executable by MPI_Comm_spawn: a function
 * pointer means nothing there, so every task an mpi executor runs MUST be
 * registered under a name, in every process, before ex_create and before
 * ex_worker_main (register them at the top of main).  Other backends
 * ignore the registry.  ex_submit (and ex_map, ex_future_then) of an
 * unregistered function to an mpi executor returns EX_EINVAL.
 *
 * How EX_MPI works: ex_create starts a broker, a child process running
 * this executable again (so main MUST call ex_worker_main, below), which
 * calls MPI_Init as a singleton and MPI_Comm_spawn's max_workers workers
 * (this executable again).  The application itself never calls MPI: it
 * may create and destroy any number of mpi executors, and fork.  Each
 * worker thread of the executor is the proxy of one MPI worker: it sends
 * the task's name and input, and the worker's measurements (start, end,
 * CPU, pid) come back with its output.  worker_start and initializer run
 * in those proxy threads (a function pointer does not cross either).
 * Transport and hosts are Open MPI's: the broker inherits the environment
 * (OMPI_MCA_btl=tcp,self or vader,self; OMPI_MCA_orte_default_hostfile),
 * POOLBENCH_MPI_HOSTS ("a,b,c") is passed as MPI_Info "host".  As root,
 * Open MPI refuses to start unless OMPI_ALLOW_RUN_AS_ROOT=1 and
 * OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 are in the environment.
 *
 * Faults: Open MPI 4.1 has no fault tolerance for a dead rank.  When an
 * MPI worker dies (each holds a TCP lifeline to the broker, so its death
 * is seen on any host), the broker ends the whole MPI job: every task
 * running or queued fails with EX_EBROKEN, the executor is broken (later
 * submits: EX_EBROKEN), and no process of it is left.  A task past
 * timeout_ns does the same (that task fails with EX_ETIMEDOUT).  There is
 * no per-task isolation as EX_PROCS has; on_full CALLER_RUNS, window,
 * transport and max_tasks_per_worker do not apply (CALLER_RUNS:
 * EX_EINVAL at ex_create).
 *
 * The mpirun start: under `mpirun -n N+1 prog ...` (Open MPI; seen in
 * OMPI_COMM_WORLD_RANK/SIZE, N from 1 to 128) ex_worker_main makes ranks
 * 1..N the MPI workers (they return 1 once done) and forks rank 0 before
 * MPI_Init: the process mpirun launched is the broker rank, and its child
 * returns 0 from ex_worker_main and runs the program, in its own session,
 * with mpirun's own stdout and stderr, and without mpirun's variables of
 * a rank (OMPI_* but OMPI_MCA_btl* and the run-as-root pair; PMIX_*).
 * The first ex_create(EX_MPI) then uses the job's N ranks, with their
 * shared memory (vader) when OMPI_MCA_btl allows it; max_workers 0 means
 * N, another count than N is EX_EINVAL (with a line on stderr).  Later or
 * concurrent mpi executors start their own broker as above.  A dead
 * worker rank makes mpirun kill every rank, the broker rank with them: the
 * program, outside the job, sees every pending task fail with EX_EBROKEN
 * and goes on (mpirun itself exits at once with its own status, and what
 * the program prints afterwards still reaches mpirun's stdout); a task
 * past timeout_ns makes the broker call MPI_Abort.  Otherwise the broker
 * rank ends the job after the executor is destroyed, waits for the
 * program and exits with its status, which mpirun reports.  In a build
 * without Open MPI, ranks 1..N say so on stderr and return 1, and rank 0
 * runs the program (whose EX_MPI is EX_EUNAVAIL). */
#define EX_TASK_NAME_MAX 63

/* Binds name (1..EX_TASK_NAME_MAX bytes) to fn for this process: 0 (also
 * when it is already bound to fn), EX_EINVAL for a NULL fn, a NULL, empty
 * or too long name, or a name bound to another function; EX_ENOMEM.
 * Thread-safe; a name stays bound.  Does not block for long. */
int ex_task_register(const char *name, ex_task_fn fn);

/* Call at the top of main, after registering the tasks: in a process that
 * ex_create(EX_MPI) started (the broker, or an MPI worker it spawned), or
 * a rank of `mpirun -n N+1` but rank 0's program (the mpirun start above),
 * it serves its role and returns 1 once done: main then returns 0 at once.
 * Anywhere else it returns 0 at once and touches nothing.  argc and argv
 * are main's (MPI_Init takes them).  Blocks for the executor's lifetime
 * in those processes. */
int ex_worker_main(int *argc, char ***argv);

/* Whether this build has EX_MPI (1), or 0 with *why saying why not (a
 * static string).  Does not block. */
int ex_mpi_available(const char **why);

/* Process pool only: the pid of worker `index` now (0 if none or not
 * EX_PROCS), and how many workers were replaced so far.  Do not block. */
pid_t ex_worker_pid(ex_executor *ex, unsigned index);
uint64_t ex_workers_replaced(ex_executor *ex);

/* ----------------------------------------------------------------- gauges */

/* Live gauges of an executor (ex_executor_stats): how many tasks it took,
 * where they are now, how they ended.
 *
 * What counts as one task:
 *   - an ex_submit call that returned 0 (with EX_SEQ, or CALLER_RUNS, the
 *     task ran inside that call: it still counts, as submitted, begun and
 *     ended);
 *   - an ex_future_then chain, once its predecessor is DONE and the chained
 *     task is handed to ex (if ex refuses it then, shut down or broken, it
 *     counts as submitted and failed); a chain whose predecessor failed or
 *     was cancelled never reaches ex and counts nowhere, nor does its
 *     cancel before that;
 *   - ex_map: each ex_submit it makes, i.e. one task per input with
 *     chunksize <= 1 and one per chunk (chunksize inputs in one hand-off)
 *     otherwise.
 * An ex_submit refused with EX_EFULL counts in `rejected` only; other
 * refusals (EX_ESHUTDOWN, EX_EBROKEN, EX_EINVAL, EX_ENOMEM) count nowhere.
 * Each accepted task counts once in submitted, and once in one of
 * completed, failed and cancelled when its future becomes final, whatever
 * path it took (a process-pool task sent again after its worker died is
 * still one task). */
typedef struct ex_pool_stats {
    uint64_t submitted;  /* tasks accepted (ex_submit, chained, map) */
    uint64_t queued;     /* accepted and not begun: in the queue (EX_PROCS:
                            not sent to a worker yet, or taken back from a
                            dead one to be sent again) */
    uint64_t running;    /* begun and not final (EX_PROCS: sent to a
                            worker, including those sent ahead in its
                            window, ex_config.window) */
    uint64_t completed;  /* final DONE */
    uint64_t failed;     /* final FAILED: task error, worker crash, timeout,
                            or refused after acceptance */
    uint64_t cancelled;  /* final CANCELLED (ex_future_cancel, shutdown) */
    uint64_t rejected;   /* ex_submit calls that returned EX_EFULL */
    uint64_t caller_ran; /* tasks CALLER_RUNS ran in the submitting thread
                            (also in submitted and in their ending) */
    unsigned workers_alive; /* threads / processes that can run tasks now:
                            EX_THREADS: worker threads not exited;
                            EX_PROCS: worker processes that exist (starting,
                            ready or exiting); EX_SEQ: 1 (the caller) until
                            ex_shutdown, then 0 */
    uint64_t workers_replaced; /* EX_PROCS: as ex_workers_replaced; else 0 */
} ex_pool_stats;

/* Fills *out with a snapshot of ex's gauges: 0, or EX_EINVAL if ex or out
 * is NULL.  Never blocks and takes no lock: it reads counters that the
 * hot path updates without a read-modify-write where a single thread owns
 * them (a thread-pool worker's own, on its own cache line), so it may be
 * called at any rate, from any thread, even from a task or a callback.
 * Consistency:
 *   - The counters are read one by one, so a snapshot taken while tasks
 *     move may be off by the tasks in motion (e.g. a task that ends while
 *     the snapshot is taken may show as still running).
 *   - submitted, completed, failed, cancelled, rejected, caller_ran and
 *     workers_replaced never go down from one snapshot to the next; queued
 *     and running are derived, never negative (clamped at 0).
 *   - The ends are read before submitted, and a task is counted submitted
 *     before it can begin: completed + failed + cancelled <= submitted in
 *     every snapshot.
 *   - A task is counted in its ending before its future becomes final, so
 *     a thread that saw a future final (ex_future_wait, a callback) sees it
 *     in completed, failed or cancelled.
 *   - Once every accepted task's future is final and no ex_submit or
 *     chaining is in progress: submitted == completed + failed +
 *     cancelled, and queued == running == 0.
 * From a process-pool task, on its own pool, it reads the worker's
 * fork-time copy: the counts as they were at the fork, not live ones. */
int ex_executor_stats(const ex_executor *ex, ex_pool_stats *out);

/* ----------------------------------------------------------------- future */

/* PENDING -> RUNNING -> DONE | FAILED | CANCELLED, and PENDING -> final.
 * One step back exists: EX_PROCS returns a RUNNING task to PENDING when
 * its worker died before beginning it (it provably never started: it was
 * sent ahead, ex_config.window), and dispatches it again.  EX_PROCS
 * counts a task RUNNING from when it is sent to its worker. */
typedef enum {
    EX_PENDING = 0,
    EX_RUNNING = 1,
    EX_DONE = 2,
    EX_FAILED = 3,
    EX_CANCELLED = 4,
} ex_state;

const char *ex_state_name(ex_state s);

/* Per-task measurements, always on.  Timestamps are CLOCK_MONOTONIC ns.
 *   queue wait = start_ns - submit_ns
 *   CPU        = cpu_ns
 *   blocked    = (end_ns - start_ns) - cpu_ns
 * and the three add up to the latency end_ns - submit_ns.  For EX_PROCS,
 * start is when the worker process began the task (not when it was sent:
 * a task may wait in its worker's window) and end is when the whole result
 * has been read back, so sending the input (ipc_send_ns) is part of the
 * queue wait and returning the output (ipc_recv_ns) part of "blocked". */
#define EX_STATS_CPU 1u /* cpu_ns, nvcsw and nivcsw were measured */
/* The raw CPU reading exceeded end_ns - start_ns and cpu_ns was cut to
 * it.  Readings are taken so that this cannot happen (the CPU sample of
 * each boundary lies between its timestamps): only the thread clock
 * running faster than CLOCK_MONOTONIC can set it, and the harness counts
 * it per run so that such a machine shows. */
#define EX_STATS_CPU_OVER_WALL 2u
/* The raw CPU reading was below zero and cpu_ns was set to 0.  Only with
 * switch detection (exact_cpu false): the task's start was estimated, and
 * interrupt or steal time just before it, which the estimate counts as CPU
 * and the thread clock does not, exceeded the task's own CPU time. */
#define EX_STATS_CPU_UNDER_ZERO 4u

typedef struct ex_task_stats {
    unsigned flags;         /* EX_STATS_CPU, EX_STATS_CPU_OVER_WALL, ..._UNDER_ZERO */
    uint64_t submit_ns, start_ns, end_ns;
    uint64_t cpu_ns;        /* CLOCK_THREAD_CPUTIME_ID in the worker */
    int64_t nvcsw, nivcsw;  /* voluntary / involuntary context switches */
    int worker;             /* worker index, -1 if it never ran */
    int cpu;                /* CPU the task ran on (sched_getcpu), -1 unknown */
    pid_t worker_pid;       /* process that ran it */
    uint64_t ipc_send_ns;   /* EX_PROCS: frame queued for sending, or the
                               worker free for it if later -> input read */
    uint64_t ipc_recv_ns;   /* EX_PROCS: output write start -> fully read */
} ex_task_stats;

/* Waits until f is final (DONE, FAILED or CANCELLED).  0 or EX_ETIMEDOUT.
 * Blocks up to timeout_ns. */
int ex_future_wait(ex_future *f, int64_t timeout_ns);

/* Waits like ex_future_wait, then returns 0 with the output (valid while the
 * caller holds its reference) or the future's error: EX_ETASK (see
 * ex_future_task_code), EX_ECANCELLED, EX_EWORKER, EX_ETIMEDOUT, ...
 * out and len may be NULL.  Blocks up to timeout_ns. */
int ex_future_result(ex_future *f, const void **out, size_t *len,
                     int64_t timeout_ns);

/* The current state; the final error (0 unless FAILED/CANCELLED); the
 * task's own positive code when the error is EX_ETASK.  Do not block. */
ex_state ex_future_state(ex_future *f);
int ex_future_error(ex_future *f);
int ex_future_task_code(ex_future *f);

/* Cancels f if it is still PENDING (0); otherwise EX_EINVAL (running or
 * final).  Callbacks and waiters see CANCELLED.  Does not block long. */
int ex_future_cancel(ex_future *f);

typedef void (*ex_done_fn)(ex_future *f, void *arg);

/* Adds a callback run once f is final, in the order added.  If f is already
 * final it runs at once in the caller; otherwise in the thread that completes
 * f (a worker, the dispatcher, or the submitter).  It MUST NOT block for
 * long and MUST NOT release the reference it was given (it was given none).
 * A callback may submit to the pool it runs in (on a full BLOCK queue that
 * submission overshoots the bound rather than wait); shutdown(wait=1) and
 * ex_destroy from it return EX_EINVAL (a worker cannot wait for itself; the
 * pool still stops).  Does not block except to run the callback. */
int ex_future_on_done(ex_future *f, ex_done_fn cb, void *arg);

/* When f is DONE, submits fn on f's output to ex, and *next is that task's
 * future (the caller's reference).  If f fails, next fails with the same
 * error (and task code); if f is cancelled, next is cancelled.  A chain
 * accepted before ex_shutdown still runs while ex's workers do (shutdown
 * waits for it); once they have stopped, next fails with EX_ESHUTDOWN.
 * The chained submission bypasses queue_capacity (it may run in a worker
 * and must not block there).  ex MUST outlive every future chained to it
 * (destroy ex only after those futures are final).  Does not block (with
 * EX_SEQ, fn may run inside this call). */
int ex_future_then(ex_future *f, ex_executor *ex, ex_task_fn fn,
                   ex_future **next);

/* Copies f's measurements once f is final (EX_EINVAL before: they are
 * written while the task runs).  Does not block. */
int ex_future_stats(ex_future *f, ex_task_stats *out);

/* Takes / drops a reference.  The last release frees f; releasing a
 * future that is not final is allowed (the executor keeps its own).  */
void ex_future_retain(ex_future *f);
void ex_future_release(ex_future *f);

/* ----------------------------------------------------------------- groups */

typedef enum {
    EX_FIRST_COMPLETED = 0, /* any future final */
    EX_FIRST_FAILED = 1,    /* any future FAILED, or all final */
    EX_ALL_COMPLETED = 2,   /* all final */
} ex_wait_mode;

/* Waits on n futures per mode.  Returns 0 if the condition was met, or
 * EX_ETIMEDOUT; in both cases *ndone (if not NULL) is the number of final
 * futures.  Blocks up to timeout_ns. */
int ex_wait(ex_future *const *fs, size_t n, ex_wait_mode mode,
            int64_t timeout_ns, size_t *ndone);

typedef struct ex_as_completed ex_as_completed;

/* An iterator that yields the n futures in the order they complete (those
 * already final first, in array order).  It does not take references: the
 * futures MUST outlive it.  Does not block. */
int ex_as_completed_create(ex_future *const *fs, size_t n,
                           ex_as_completed **out);
/* Yields the next final future in *f (0), or *f = NULL when all n have been
 * yielded (0), or EX_ETIMEDOUT.  Blocks up to timeout_ns. */
int ex_as_completed_next(ex_as_completed *it, ex_future **f,
                         int64_t timeout_ns);
void ex_as_completed_destroy(ex_as_completed *it);

/* -------------------------------------------------------------------- map */

/* Where ex_map takes its inputs: get(i) yields input i (called in order,
 * from the thread that calls ex_map_next/ex_map_create); put(i), if set,
 * is called once that input is no longer needed, so a generator can free
 * it.  With buffersize > 0, at most buffersize inputs (rounded up to whole
 * chunks) are between get and put at any time. */
typedef struct ex_map_source {
    int (*get)(void *arg, size_t index, const void **in, size_t *len);
    void (*put)(void *arg, size_t index, const void *in, size_t len);
    void *arg;
} ex_map_source;

typedef struct ex_map ex_map;

/* Maps fn over n inputs, results in input order.  chunksize (0 or 1 = one
 * task per input) batches inputs into one hand-off; buffersize (0 =
 * unbounded) bounds the inputs in flight, rounded up to whole chunks (so
 * at most buffersize + chunksize - 1).  Submits the first window; may block
 * like ex_submit. */
int ex_map_create(ex_executor *ex, ex_task_fn fn, const ex_map_source *src,
                  size_t n, size_t chunksize, size_t buffersize,
                  ex_map **out);

/* Convenience: inputs from an array of pointers and lengths. */
int ex_map_create_array(ex_executor *ex, ex_task_fn fn,
                        const void *const *inputs, const size_t *lens,
                        size_t n, size_t chunksize, size_t buffersize,
                        ex_map **out);

/* The next result in input order: *index, the task's status (0, EX_ETASK
 * with *task_code, or another EX_E* error: a failed submission of a later
 * chunk shows as that chunk's status), and its output, valid until the
 * next call.  Returns 0, 1 when all n results were returned, or
 * EX_ETIMEDOUT.  Blocks up to timeout_ns waiting for the result, plus, on
 * a bounded BLOCK queue, while it submits the next chunk. */
int ex_map_next(ex_map *m, size_t *index, int *status, int *task_code,
                const void **out, size_t *len, int64_t timeout_ns);

/* Cancels what has not started, waits for what runs, frees.  Blocks. */
void ex_map_destroy(ex_map *m);

/* ------------------------------------------------------------------ misc */

/* CLOCK_MONOTONIC now, in ns. */
uint64_t ex_now_ns(void);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
