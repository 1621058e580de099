/*
 * procs_internal.h: what the files of the process pool (EX_PROCS) share:
 * the pool and worker-slot structs, the fork server's control protocol and
 * the functions one role calls in another.  See procs.c for the map.
 *
 *   procs.c             the vtable and the queue submitters share
 *   procs_forkserver.c  the fork server process, and the requests to it
 *   procs_worker.c      a worker process's loop (the child side)
 *   procs_dispatch.c    the dispatcher thread: batch, read, poll, timeouts
 *   procs_window.c      a worker's window: the tasks sent ahead to it
 *   procs_slots.c       a worker slot's life: spawn, loss, respawn, recycle
 *   procs_shm.c         a worker's shared-memory region (EX_TRANSPORT_SHM)
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
    W_READY,    /* takes tasks, up to its window */
    W_EXITING,  /* takes no more: recycled (EXIT sent once its window
                   emptied, waiting for its death) or revoked (running
                   what it had begun, if anything) */
};

/* The board: one cache line per worker slot, in a MAP_SHARED mapping made
 * before the fork server is forked, so that each worker process shares its
 * own with the parent.  It makes the window exact without a message per
 * task (procs_window.c says how each field is used):
 *   cursor     the number (seq) of the last task the process committed to
 *              run: it moves only by the worker's compare-and-swap seq-1 ->
 *              seq just before the task begins.  PROCS_REVOKED, set by the
 *              parent, makes that swap fail: from then on the process
 *              begins nothing more, and every task of its window with a
 *              number above the cursor provably never began.
 *   begun_ns   when task seq began, in begun_ns[seq & 1], stored (release)
 *              before the swap: the running task's deadline counts from
 *              it (read as procs_window.c says, so that a start is never
 *              paired with the wrong task).
 *   out_done   EX_TRANSPORT_SHM: how far the parent has consumed the
 *              worker's output ring (procs_shm.c).
 * Reset by the parent before a new process takes the slot (the previous
 * one is reaped by then). */
#define PROCS_REVOKED ((uint64_t)1 << 63)
typedef struct procs_board {
    _Alignas(64) _Atomic uint64_t cursor;
    _Atomic uint64_t begun_ns[2];
    _Atomic uint64_t out_done;
    _Atomic uint64_t shm_mapped; /* the parent mapped the region: the
                                    worker may send outputs through it */
} procs_board;

/* A task in a worker's window: its frame queued, being written or
 * written, its result not read yet.  Frames go out in window order and
 * results come back in it. */
typedef struct procs_sent {
    ex_future *f;
    uint64_t seq;          /* its number in this process: 1, 2, ... */
    uint64_t queued_ns;    /* when its frame was queued for sending */
    size_t frame_len;      /* header + inline payload */
    size_t written;        /* bytes of the frame written so far */
    uint64_t in_end;       /* EX_TRANSPORT_SHM: where its input ends in
                              the input ring (0: inline) */
    unsigned char hdr[WIRE_HEADER_SIZE];
} procs_sent;

typedef struct procs_region procs_region; /* procs_shm.c */

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
    bool revoked;          /* its unbegun tasks were taken back (shutdown
                              with cancel_pending): it gets no more */
    bool dying;            /* being lost: its last results are read, and
                              nothing is sent or recycled meanwhile */
    bool task_pipe_big;    /* its task pipe was grown (ex__pipe_grow) */
    unsigned completed;    /* tasks completed by this process */
    unsigned assigned;     /* tasks sent to this process (the budget of
                              max_tasks_per_worker) */
    uint64_t next_seq;     /* seq of the next task sent to it */
    uint64_t deadline_ns;  /* W_EXITING with an empty window: kill after
                              this (0 = none) */
    /* The window: a ring of cfg.window entries from win_head; the first
     * win_sent of the win_len are wholly written. */
    procs_sent *win;
    unsigned win_cap, win_head, win_len, win_sent;
    procs_board *board;    /* its line of p->boards */
    procs_region *shm;     /* EX_TRANSPORT_SHM: its region, else NULL */
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

    unsigned window;         /* tasks in flight per worker, >= 1 */
    size_t shm_ring;         /* EX_TRANSPORT_SHM: bytes of each ring of a
                                worker's region (0: pipes only) */
    procs_board *boards;     /* MAP_SHARED, one per slot (procs_board) */
    size_t boards_len;

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
    pthread_cond_t space;      /* queue got room, or shut / broken, or
                                  revoke_done, or stopped */
    pthread_cond_t started;    /* startup_done */
    ex_future *head, *tail;    /* PENDING futures, linked by f->next */
    size_t qlen;
    bool stopping;             /* shutdown called: exit once drained */
    bool cancel_all;           /* shutdown(cancel_pending) was asked: a
                                  task still in the dispatcher's batch, or
                                  taken back from a worker that never read
                                  it, is cancelled, not started */
    bool stopped;              /* the dispatcher decided to exit */
    bool revoke_done;          /* the dispatcher revoked every window after
                                  cancel_all: what they held unbegun is
                                  cancelled (shutdown waits for it) */
    bool wake_pending;         /* an eventfd write is pending */
    bool startup_done;
    uint64_t next_id;

    /* Dispatcher only. */
    unsigned inflight;         /* tasks in windows, all workers */
    unsigned starting;         /* initial workers not yet READY /
                                  INIT_FAIL / dead */
    bool revoked_all;          /* cancel_all seen: windows revoked, no
                                  worker is replaced any more */
    uint64_t task_ns_avg;      /* running mean of tasks' run times, 1/8
                                  weight to each new one (0: none yet):
                                  how deep the windows go (procs_window.c) */

    /* Who may use this struct: the creating process only.  The fork
     * server and every worker hold a fork-time copy of it, marked
     * in_child there (a task calling ex_* on its own pool gets EX_EINVAL
     * instead of touching a copy of threads and fds it does not have). */
    pid_t owner_pid;
    bool in_child;

    /* The gauges' run counts (ex_internal.h), written by the dispatcher
     * alone: begun when a task is taken to be sent, unbegun when it comes
     * back from a dead worker's window unread, and its end. */
    ex__run_counts counts;
} procs;

/* ------------------------------------------------ fork server protocol */

enum { FS_SPAWN = 1, FS_REAP = 2, FS_EXIT = 3 };

/* Control message, both directions (same image: a plain struct is fine on
 * a socketpair).  SPAWN: arg = worker index; reply pid, err (errno), and
 * on success SCM_RIGHTS [task write end, result read end] and, with
 * EX_TRANSPORT_SHM, the worker's region (a memfd; the worker holds it
 * too).  REAP: pid; reply arg = wait status, err.  EXIT (no reply): kill
 * and reap every worker and exit; the parent then reaps the fork server.
 * Shutdown is this explicit message, never EOF alone: a child the
 * application forked (without exec) holds a copy of the control socket,
 * so EOF may never come while that child lives. */
typedef struct fs_msg {
    int32_t op;
    int32_t arg;
    int32_t pid;
    int32_t err;
} fs_msg;

/* The fds a SPAWN reply hands the parent. */
enum { FS_TASK_FD, FS_RESULT_FD, FS_SHM_FD, FS_NFDS };

/* -------------------------------------------------- procs_forkserver.c */

/* Forks the fork server (in start(), before the pool has a thread) and
 * keeps the control socket.  0 or EX_ESYS. */
int ex__procs_fs_start(procs *p);
/* A new worker for slot `index`: its pid and the parent's fds (FS_*_FD;
 * FS_SHM_FD is -1 without EX_TRANSPORT_SHM).  0 or EX_ESYS (errno set).
 * Blocks briefly: the fork server forks and answers. */
int ex__procs_fs_spawn(procs *p, unsigned index, pid_t *pid,
                       int fds[FS_NFDS]);
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
 * task pipe's read end; out_fd: the result pipe's write end; shm_fd: its
 * region (-1 without EX_TRANSPORT_SHM). */
_Noreturn void ex__procs_worker_main(const procs *p, unsigned index,
                                     int in_fd, int out_fd, int shm_fd,
                                     pid_t fs_pid);
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
/* Reads what w's result pipe holds now, up to budget bytes, and handles
 * every whole frame in it.  0: nothing more now; 1: the budget was used
 * up; -1: end of file, an error or a bad frame (w is NOT lost: the
 * caller decides).  An INIT_FAIL frame loses w itself unless w->dying. */
int ex__procs_read_some(procs *p, procs_worker *w, size_t budget);

/* ------------------------------------------------------ procs_window.c */

/* Tasks w may be sent now: room in its window, within what its process
 * may still run (max_tasks_per_worker), 0 unless W_READY. */
unsigned ex__procs_room(const procs *p, const procs_worker *w);
/* Appends the RUNNING f to w's window and frames it (its input copied to
 * w's region with EX_TRANSPORT_SHM); ex__procs_window_send writes it. */
void ex__procs_window_add(procs *p, procs_worker *w, ex_future *f);
/* Writes what the pipe takes now of w's unwritten frames (several frames
 * in one writev), up to a budget.  Never blocks.  0, or EX_EWORKER when
 * the worker is gone. */
int ex__procs_window_send(procs_worker *w);
/* A RESULT for w: 0 if it answers the oldest task of the window (whose
 * frame was wholly written), else EX_EWORKER (protocol violation). */
int ex__procs_window_check(const procs_worker *w, const wire_header *h);
/* Completes the oldest task of w's window with the RESULT in w->reader
 * (output from the pipe or w's region); recycles the process when it has
 * run max_tasks_per_worker.  0, or EX_EWORKER (an output range outside
 * w's region: nothing was completed). */
int ex__procs_window_complete(procs *p, procs_worker *w);
/* shutdown(cancel_pending): the tasks of w's window its process has not
 * begun are taken back (PROCS_REVOKED) and cancelled; the one it runs, if
 * any, finishes.  w gets no more tasks. */
void ex__procs_window_revoke(procs *p, procs_worker *w);
/* w's process is gone (reaped) and its last results were read: takes its
 * window apart.  The tasks it had begun (at most one, unless its results
 * were garbage) go on *began, with their start from the board; those it
 * never began go on *never, both in window order, linked by f->next.
 * The window is empty afterwards. */
void ex__procs_window_take(procs *p, procs_worker *w, ex_future **began,
                           ex_future **never);
/* Then, once the slot was replaced (or the pool broken): the began fail
 * with err, the never go back to the front of the queue still PENDING.
 * The first of them, when the process was not running another task, may
 * be why it died (it was reading its input): that one goes back at most
 * REDISPATCH_MAX times, then fails with err too. */
void ex__procs_window_settle(procs *p, ex_future *began, ex_future *never,
                             int err);
/* When w must be looked at again for its timeout: the deadline of the
 * task its process runs (*kill: it may be killed then), or a later look
 * when none runs yet; 0: never (no timeout, or an empty window). */
uint64_t ex__procs_window_deadline(const procs *p, const procs_worker *w,
                                   uint64_t now, bool *kill);

/* ------------------------------------------------------- procs_slots.c */

/* Asks the fork server for a new process in slot w (state W_STARTING).
 * 0 or EX_ESYS. */
int ex__procs_slot_spawn(procs *p, procs_worker *w);
/* The worker died, was killed, overran its timeout or sent garbage: its
 * process is killed and reaped, what it wrote before is read, the task it
 * was running fails with err and those it never began run again
 * (procs_window.c), and the slot gets a new process (or the pool breaks:
 * the rule against respawn loops). */
void ex__procs_slot_lost(procs *p, procs_worker *w, int err);
/* Asks w, whose window is empty, to exit (max_tasks_per_worker reached). */
void ex__procs_slot_recycle(procs *p, procs_worker *w, uint64_t now);
/* READY, INIT_FAIL or death of an initial worker: start() may return
 * once every one has reported. */
void ex__procs_startup_report(procs *p, procs_worker *w);
/* End-of-task stats from the parent side, recorded with the output (out
 * passes to f; NULL: none): the call fields give way to the result's, so
 * f must not be sent again.  h and st: the worker's RESULT (NULL when the
 * task never reported); queued_ns: when its frame was queued for
 * sending.  By the dispatcher, f RUNNING. */
void ex__procs_stats_end(ex_future *f, uint64_t now, const wire_header *h,
                         const wire_stats *st, uint64_t queued_ns, ex_buf *out);

/* --------------------------------------------------------- procs_shm.c */

/* The parent's side of w's region, from the memfd the fork server made
 * (the fd is kept open).  0, or EX_ESYS / EX_ENOMEM: the worker then
 * uses the pipes alone. */
int ex__procs_shm_attach(procs *p, procs_worker *w, int fd);
/* Unmaps and closes w's region. */
void ex__procs_shm_detach(procs_worker *w);
/* Whether an input of len bytes may go to w now: always, unless it is
 * for w's region and does not fit there while w has tasks in flight (it
 * waits for their results rather than crawl through the pipe). */
bool ex__procs_shm_fits(const procs_worker *w, size_t len);
/* Copies f's input into w's input ring when it is worth it and fits:
 * fills h (WIRE_F_SHM, off) and returns the ring position its space ends
 * at (freed with the task's result), or 0: send it inline. */
uint64_t ex__procs_shm_put(procs_worker *w, const ex_future *f,
                           wire_header *h);
/* The task whose input ends at in_end has finished: its space is free. */
void ex__procs_shm_release(procs_worker *w, uint64_t in_end);
/* Copies a RESULT's output from w's output ring into out and marks it
 * consumed.  0, EX_ENOMEM, or EX_EWORKER for a range outside the ring. */
int ex__procs_shm_take(procs_worker *w, const wire_header *h, ex_buf *out);
/* Transparent huge pages asked for a fresh destination of at least
 * EX__PROCS_HUGE_MIN bytes (a no-op below, or where the kernel gives them
 * only system-wide or never): a 64 MiB copy-out then takes tens of page
 * faults instead of 16384.  Best effort. */
#define EX__PROCS_HUGE_MIN ((size_t)4 << 20)
void ex__procs_advise_huge(void *p, size_t len);
/* The size of each ring of a region for this config (0: no shm). */
size_t ex__procs_shm_ring_size(const ex_config *cfg, size_t max_payload);
/* In the fork server (raw system calls only): a new region for a worker,
 * its two rings sparse; -1 without EX_TRANSPORT_SHM or on failure. */
int ex__procs_shm_create(const procs *p);
/* READY said whether the worker mapped its region: without it, w's
 * region is dropped and its payloads go through the pipes. */
void ex__procs_shm_ready(procs_worker *w, bool worker_mapped);

/* The worker's side of its region (procs_worker.c), NULL without one. */
typedef struct procs_wregion procs_wregion;
procs_wregion *ex__procs_shm_wmap(const procs *p, int fd, procs_board *b);
/* The input of a WIRE_F_SHM task frame, read in place; NULL for a range
 * outside the input ring. */
const void *ex__procs_shm_winput(procs_wregion *r, const wire_header *h);
/* Lends out the output ring's free room for the next task's output (out
 * must own nothing); false: the output goes to the heap (no region, the
 * parent did not map it, or no room). */
bool ex__procs_shm_wlend(procs_wregion *r, ex_buf *out);
/* After the task: whether its output stayed in the lent room and is worth
 * sending from there; if so fills h (WIRE_F_SHM, off) and takes the
 * room.  Ends the lending either way (out keeps its bytes: lent storage,
 * or heap storage it moved to). */
bool ex__procs_shm_wpublish(procs_wregion *r, ex_buf *out, wire_header *h);

/* ------------------------------------------------------------- procs.c */

/* Marks the executor broken; the dispatcher fails the queue on its next
 * turn and submitters see EX_EBROKEN. */
void ex__procs_set_broken(procs *p);
/* Wakes the dispatcher's poll (the eventfd).  Never blocks. */
void ex__procs_wake(procs *p);
/* Takes the futures one dispatcher turn can hand out (room: what the
 * windows can take, or all of them when broken) and decides, under the
 * same lock, whether the dispatcher is done (*stop) and whether
 * shutdown(cancel_pending) was asked (*cancel_all). */
ex_future *ex__procs_queue_take(procs *p, unsigned room, bool broken,
                                bool *stop, bool *cancel_all);
/* Puts a list of PENDING futures back at the head of the queue, or
 * cancels them if shutdown(cancel_pending) was asked (true). */
bool ex__procs_queue_requeue(procs *p, ex_future *list);
/* Starts a future taken from the queue, unless shutdown(cancel_pending)
 * came since.  false: not started (cancelled now, or by the user). */
bool ex__procs_queue_begin(procs *p, ex_future *f);

#endif
