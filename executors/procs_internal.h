/*
 * procs_internal.h: what the files of the process pool (EX_PROCS) share:
 * the pool and worker-slot structs, the fork server's control protocol and
 * the functions one role calls in another.  See procs.c for the map.
 *
 *   procs.c             the vtable and the queue submitters share
 *   procs_forkserver.c  the fork server process, and the requests to it
 *   procs_worker.c      a worker process's loop (the child side)
 *   procs_dispatch.c    the dispatcher thread: batch, send, read, poll
 *   procs_slots.c       a worker slot's life: spawn, loss, respawn, recycle
 *
 * Who touches what: the dispatcher thread owns every procs_worker and
 * every fd of the pool (start() and the teardown too, when no dispatcher
 * runs); submitters touch only the fields marked "under lock".
 */
#ifndef POOLBENCH_PROCS_INTERNAL_H
#define POOLBENCH_PROCS_INTERNAL_H

#include "ex_internal.h"
#include "wire.h"

#include <poll.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The dispatcher's scratch for header-sized reads (payloads go straight
 * to their buffer). */
#define PROCS_SCRATCH_SIZE ((size_t)64 << 10)

enum worker_state {
    W_EMPTY,    /* no process */
    W_STARTING, /* spawned, READY not received yet */
    W_IDLE,     /* ready for a task */
    W_BUSY,     /* holds w->task */
    W_EXITING,  /* recycled: EXIT sent, waiting for its death */
};

typedef struct procs_worker {
    unsigned index;
    enum worker_state state;
    atomic_int pid;        /* read by ex_worker_pid from any thread */
    int pidfd;             /* readable once the process is gone; -1 if
                              the kernel has no pidfd (EOF alone then) */
    unsigned gen;          /* bumped whenever the slot's process changes */
    int task_fd;           /* parent -> worker, O_NONBLOCK, -1 if none */
    int result_fd;         /* worker -> parent, O_NONBLOCK, -1 if none */
    bool in_startup;       /* counted in p->starting */
    unsigned completed;    /* tasks completed by this process */
    ex_future *task;       /* the task it holds (W_BUSY) */
    uint64_t deadline_ns;  /* W_BUSY with a timeout, W_EXITING: kill
                              after this (0 = none) */
    /* Write cursor of the TASK frame being sent: header then input. */
    unsigned char hdr[WIRE_HEADER_SIZE];
    struct iovec iov[2];
    int iov_first, iov_cnt;
    wire_reader reader;
} procs_worker;

/* What a pollfd of the dispatcher's set belongs to. */
typedef struct procs_poll_owner {
    procs_worker *w;
    unsigned gen;
    int kind; /* PK_* in procs_dispatch.c */
} procs_poll_owner;

typedef struct procs {
    struct ex_executor base; /* first: the executor is cast to this */
    size_t max_payload;      /* effective cap */
    procs_worker *w;         /* base.workers slots */

    /* Fork server.  fs_pids is its table of unreaped workers: allocated
     * here before the fork so that the fork server never allocates. */
    int ctl_fd;
    pid_t fs_pid;
    bool fs_dead;            /* control socket failed: no more spawns */
    pid_t *fs_pids;
    size_t fs_cap;

    int wake_fd;             /* eventfd: submit/shutdown -> dispatcher */
    bool no_pidfd;           /* pidfd_open said ENOSYS: EOF alone */
    unsigned char *scratch;  /* dispatcher: header-sized reads */
    struct pollfd *pfd;      /* dispatcher: the poll set ... */
    procs_poll_owner *owner; /* ... and whose each entry is */

    pthread_t dispatcher;
    bool dispatcher_started;
    pthread_mutex_t join_lock; /* serialises joining the dispatcher */
    bool joined;

    /* Shared with submitters, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t space;      /* queue got room, or shut / broken */
    pthread_cond_t started;    /* startup_done */
    ex_future *head, *tail;    /* PENDING futures, linked by f->next */
    size_t qlen;
    bool stopping;             /* shutdown called: exit once drained */
    bool cancel_all;           /* shutdown(cancel_pending) was asked: a
                                  task still in the dispatcher's batch, or
                                  taken back from a worker that never read
                                  it, is cancelled, not started */
    bool stopped;              /* the dispatcher decided to exit */
    bool wake_pending;         /* an eventfd write is pending */
    bool startup_done;
    uint64_t next_id;

    /* Dispatcher only. */
    unsigned inflight;         /* workers in W_BUSY */
    unsigned starting;         /* initial workers not yet READY /
                                  INIT_FAIL / dead */

    /* Who may use this struct: the creating process only.  The fork
     * server and every worker hold a fork-time copy of it, marked
     * in_child there (a task calling ex_* on its own pool gets EX_EINVAL
     * instead of touching a copy of threads and fds it does not have). */
    pid_t owner_pid;
    bool in_child;
} procs;

/* ------------------------------------------------ fork server protocol */

enum { FS_SPAWN = 1, FS_REAP = 2, FS_EXIT = 3 };

/* Control message, both directions (same image: a plain struct is fine on
 * a socketpair).  SPAWN: arg = worker index; reply pid, err (errno), and
 * on success SCM_RIGHTS [task write end, result read end].  REAP: pid;
 * reply arg = wait status, err.  EXIT (no reply): kill and reap every
 * worker and exit; the parent then reaps the fork server.  Shutdown is
 * this explicit message, never EOF alone: a child the application forked
 * (without exec) holds a copy of the control socket, so EOF may never
 * come while that child lives. */
typedef struct fs_msg {
    int32_t op;
    int32_t arg;
    int32_t pid;
    int32_t err;
} fs_msg;

/* -------------------------------------------------- procs_forkserver.c */

/* Forks the fork server (in start(), before the pool has a thread) and
 * keeps the control socket.  0 or EX_ESYS. */
int ex__procs_fs_start(procs *p);
/* A new worker for slot `index`: its pid and the parent's ends of its two
 * pipes (fds[0] task write end, fds[1] result read end).  0 or EX_ESYS
 * (errno set).  Blocks briefly: the fork server forks and answers. */
int ex__procs_fs_spawn(procs *p, unsigned index, pid_t *pid, int fds[2]);
/* SIGKILLs the worker pid (unreaped until now, so it is ours) and has the
 * fork server reap it.  Nothing if the fork server is gone.  Blocks
 * briefly. */
void ex__procs_fs_kill(procs *p, pid_t pid);
/* Tells the fork server to exit (it kills and reaps what workers are
 * left), closes the control socket and reaps it.  Blocks briefly. */
void ex__procs_fs_stop(procs *p);
/* The fork server died: no more spawns; the executor is broken. */
void ex__procs_fs_lost(procs *p);

/* ------------------------------------------------------ procs_worker.c */

/* A worker process's whole life (forked by the fork server).  in_fd: the
 * task pipe's read end; out_fd: the result pipe's write end. */
_Noreturn void ex__procs_worker_main(const procs *p, unsigned index,
                                     int in_fd, int out_fd, pid_t fs_pid);
/* fflush of stdout and stderr only (why: procs_worker.c). */
void ex__procs_flush_stdio(void);

/* ---------------------------------------------------- procs_dispatch.c */

/* The dispatcher thread, started by start() with every signal blocked. */
void *ex__procs_dispatcher_main(void *arg);
/* Closes every worker's fds and stops the fork server: afterwards no
 * process, fd or pipe of the pool remains.  Blocks briefly. */
void ex__procs_teardown(procs *p);
/* Consumes the SIGPIPE a write to a dead worker's pipe raised at the
 * (signal-blocking) dispatcher, so that it is never delivered. */
void ex__procs_consume_sigpipe(void);
/* Reads what w's result pipe holds now and handles a whole frame; loses
 * the worker on EOF, error or a bad frame.  0: nothing more now; 1: a
 * frame or a full budget was handled; -1: the worker was lost. */
int ex__procs_read(procs *p, procs_worker *w);

/* ------------------------------------------------------- procs_slots.c */

/* Asks the fork server for a new process in slot w (state W_STARTING).
 * 0 or EX_ESYS. */
int ex__procs_slot_spawn(procs *p, procs_worker *w);
/* The worker died, was killed, overran its timeout or sent garbage: the
 * task it held fails with err (or runs again if it never started), the
 * process is killed and reaped, and the slot gets a new one (or the pool
 * breaks: the rule against respawn loops). */
void ex__procs_slot_lost(procs *p, procs_worker *w, int err);
/* w's process is gone (pidfd): what it wrote before is read first. */
void ex__procs_slot_died(procs *p, procs_worker *w);
/* Asks the idle w to exit (max_tasks_per_worker reached). */
void ex__procs_slot_recycle(procs *p, procs_worker *w, uint64_t now);
/* READY, INIT_FAIL or death of an initial worker: start() may return
 * once every one has reported. */
void ex__procs_startup_report(procs *p, procs_worker *w);
/* End-of-task stats from the parent side; h and st: the worker's RESULT
 * (NULL when the task never reported). */
void ex__procs_stats_end(ex_future *f, uint64_t now, const wire_header *h,
                         const wire_stats *st);

/* ------------------------------------------------------------- procs.c */

/* Marks the executor broken; the dispatcher fails the queue on its next
 * turn and submitters see EX_EBROKEN. */
void ex__procs_set_broken(procs *p);
/* Wakes the dispatcher's poll (the eventfd).  Never blocks. */
void ex__procs_wake(procs *p);
/* Takes the futures one dispatcher turn can hand out (one per idle worker,
 * or all of them when broken) and decides, under the same lock, whether
 * the dispatcher is done: *stop. */
ex_future *ex__procs_queue_take(procs *p, unsigned nidle, bool broken,
                                bool *stop);
/* Puts a list of PENDING futures back at the head of the queue, or
 * cancels them if shutdown(cancel_pending) was asked. */
void ex__procs_queue_requeue(procs *p, ex_future *list);
/* Starts a future taken from the queue, unless shutdown(cancel_pending)
 * came since.  false: not started (cancelled now, or by the user). */
bool ex__procs_queue_begin(procs *p, ex_future *f);

#endif
