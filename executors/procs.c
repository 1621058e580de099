/*
 * procs.c: the fork+pipe process pool (EX_PROCS).
 *
 * Three kinds of process, one dispatcher thread:
 *
 *   parent ── control socket (SOCK_SEQPACKET) ──> FORK SERVER ──fork──> WORKERS
 *     │                                                              ▲   │
 *     └───── task pipe (TASK/EXIT frames) ───────────────────────────┘   │
 *     <───── result pipe (READY/INIT_FAIL/RESULT frames) ────────────────┘
 *
 * - The FORK SERVER is forked once in start(), before this pool has any
 *   thread, and stays single-threaded forever; every worker is forked from
 *   it, so no worker can inherit a lock another thread held at fork time
 *   (as far as the creator's own threads allow: see fork_server_main).  It
 *   creates each worker's two pipes and hands the parent's ends back with
 *   SCM_RIGHTS.
 * - Invariant (no pid reuse): the fork server reaps a worker only when the
 *   parent asks (REAP), and the parent asks only after it has stopped using
 *   the pid.  So kill(pid, SIGKILL) from the parent can never hit a recycled
 *   pid.
 * - The DISPATCHER thread owns every worker slot and every pipe fd; the
 *   submitters touch only the queue (under p->lock).  Only the dispatcher
 *   (or start() before the dispatcher exists, or the dispatcher's teardown)
 *   talks to the fork server, so requests and replies never interleave.
 * - Invariant (no deadlock between master and worker): a worker reads the
 *   whole TASK frame before it writes a byte of its RESULT, and writes
 *   nothing else unsolicited.  The master's pipe ends are O_NONBLOCK: it
 *   never blocks on a write (it keeps a per-worker write cursor and waits
 *   for POLLOUT) and polls every result pipe while writing, so a worker that
 *   is writing is always being read and a worker that is reading is always
 *   being fed.
 * - SIGPIPE: the process-wide disposition is never touched.  The dispatcher
 *   runs with every signal blocked (the application's signals go to its
 *   own threads); a write to a dead worker's pipe fails with EPIPE and the
 *   thread-directed SIGPIPE it raised stays pending on the dispatcher until
 *   sigtimedwait consumes it.  The control socket uses MSG_NOSIGNAL.
 *   Workers, being our own processes, simply ignore SIGPIPE.
 * - Failure: the worker's pidfd turning readable (its death, even when a
 *   grandchild its task forked keeps the pipes open), EOF, a read error, or
 *   a corrupt, oversized or unexpected frame on a result pipe loses the
 *   worker: what it wrote before dying is read first; the task it held
 *   (only that one) fails with EX_EWORKER (EX_ETIMEDOUT past
 *   cfg.timeout_ns), the process is killed and reaped, and a new one takes
 *   its slot.  A task it provably never started (frame not fully written,
 *   or bytes of it unread in the pipe) goes back to PENDING at the front of
 *   the queue instead (REDISPATCH_MAX times at most).  Rule against
 *   respawn loops: a worker lost holding no started task before completing
 *   any (worker_start, initializer, INIT_FAIL, killed idle) breaks the
 *   executor instead: queued futures fail with EX_EBROKEN.
 * - Fds an application child may hold: the application may fork (without
 *   exec) and its child keeps copies of our control socket and task pipes.
 *   So nothing waits for EOF on them: recycling sends an EXIT frame, the
 *   teardown an FS_EXIT message, worker death shows on pidfds, and the fork
 *   server watches the parent's pidfd.
 * - Shutdown: the dispatcher leaves its loop once shutdown was asked, the
 *   queue is empty, no task is taken and no worker is busy; after a batch
 *   failed on a broken pool it always looks again (nothing else would wake
 *   it).  It then closes the workers' fds and sends FS_EXIT (the fork
 *   server SIGKILLs and reaps what is left and exits) and reaps the fork
 *   server.  shutdown(wait) and destroy join it.
 * - stdio and signals: stdout and stderr are flushed before the fork
 *   server is forked and by each worker after each task; the fork server
 *   resets caught signals to their defaults and empties its mask, so no
 *   worker runs an application handler (reset_signals).
 * - Futures: the executor's reference travels queue -> worker slot
 *   (w->task) and is released exactly once, after ex__future_finish or a
 *   cancel.  ex__future_finish and cancel run callbacks, which may submit to
 *   this executor: they are never called with p->lock held.
 */
#include "ex_internal.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

/* Bytes the dispatcher moves through one pipe before it looks at the
 * others again (fairness between a 64 MiB transfer and small tasks). */
#define IO_BUDGET ((size_t)4 << 20)
/* Scratch for header-sized reads; payloads go straight to their buffer. */
#define SCRATCH_SIZE ((size_t)64 << 10)
/* A recycled worker gets this long to exit on its own before SIGKILL (a
 * task may have left a grandchild holding its result pipe open). */
#define EXIT_GRACE_NS (1000000000ull)
/* A worker frees its reused buffers after a task above this size. */
#define WORKER_KEEP_BYTES ((size_t)4 << 20)
/* A task whose worker died before reading it is dispatched again at most
 * this many times (a task whose input itself gets workers killed, e.g. by
 * the OOM killer, must not loop forever). */
#define REDISPATCH_MAX 3u

enum worker_state {
    W_EMPTY,    /* no process */
    W_STARTING, /* spawned, READY not received yet */
    W_IDLE,     /* ready for a task */
    W_BUSY,     /* holds w->task */
    W_EXITING,  /* recycled: task pipe closed, waiting for its EOF */
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
    unsigned char *scratch;
    struct pollfd *pfd;
    struct poll_owner { procs_worker *w; unsigned gen; int kind; } *owner;

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
    unsigned starting;         /* dispatcher only: initial workers not yet
                                  READY / INIT_FAIL / dead */

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

static _Noreturn void worker_main(const procs *p, unsigned index, int in_fd,
                                  int out_fd, pid_t fs_pid);

/* Closes every fd marked FD_CLOEXEC except `keep`: those are fds some part
 * of the parent meant no child to keep (this pool's other ends, other
 * pools' pipes and sockets, ...).  Uses raw getdents64 on /proc/self/fd:
 * no malloc in a child forked from a threaded process. */
static void close_cloexec_fds(int keep)
{
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        /* No /proc: probe every possible fd. */
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536)
            max = 65536;
        for (int fd = 3; fd < max; fd++) {
            int fl = fcntl(fd, F_GETFD);
            if (fd != keep && fl >= 0 && (fl & FD_CLOEXEC))
                close(fd);
        }
        return;
    }
    _Alignas(struct dirent64) char buf[4096];
    for (;;) {
        ssize_t n = getdents64(dfd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            int fd = 0;
            const char *s = d->d_name;
            if (*s < '0' || *s > '9')
                continue;
            for (; *s >= '0' && *s <= '9'; s++)
                fd = fd * 10 + (*s - '0');
            if (fd == dfd || fd == keep)
                continue;
            int fl = fcntl(fd, F_GETFD);
            if (fl >= 0 && (fl & FD_CLOEXEC))
                close(fd);
        }
    }
    close(dfd);
}

static void fs_send(int ctl, const fs_msg *m, const int *fds, int nfds)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    /* A failed send means the parent is gone: the next recv sees EOF. */
    while (sendmsg(ctl, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

/* parent_fd: the fork server's pidfd of the parent (-1 if none), which a
 * worker must not keep. */
static void fs_spawn(const procs *p, int ctl, int parent_fd, pid_t *pids,
                     unsigned index)
{
    fs_msg rep = {.op = FS_SPAWN, .arg = (int32_t)index};
    int tp[2] = {-1, -1}, rp[2] = {-1, -1};
    size_t slot = 0;
    while (slot < p->fs_cap && pids[slot] != 0)
        slot++;
    if (slot == p->fs_cap) {
        rep.err = EAGAIN;
    } else if (pipe2(tp, O_CLOEXEC) != 0 || pipe2(rp, O_CLOEXEC) != 0) {
        rep.err = errno;
    } else {
        pid_t me = getpid();
        pid_t pid = fork();
        if (pid == 0) {
            /* The worker keeps only its two ends (and stdio). */
            close(ctl);
            if (parent_fd >= 0)
                close(parent_fd);
            close(tp[1]);
            close(rp[0]);
            worker_main(p, index, tp[0], rp[1], me);
        }
        if (pid < 0) {
            rep.err = errno;
        } else {
            pids[slot] = pid;
            rep.pid = pid;
        }
    }
    if (rep.err == 0) {
        int fds[2] = {tp[1], rp[0]};
        fs_send(ctl, &rep, fds, 2);
    } else {
        fs_send(ctl, &rep, NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        if (tp[i] >= 0)
            close(tp[i]);
        if (rp[i] >= 0)
            close(rp[i]);
    }
}

static void fs_reap(const procs *p, int ctl, pid_t *pids, pid_t pid)
{
    fs_msg rep = {.op = FS_REAP, .pid = pid};
    size_t slot = 0;
    while (slot < p->fs_cap && (pid <= 0 || pids[slot] != pid))
        slot++;
    if (slot == p->fs_cap) {
        rep.err = ECHILD;
    } else {
        int st = 0;
        pid_t r;
        while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
            ;
        if (r < 0)
            rep.err = errno;
        rep.arg = st;
        pids[slot] = 0;
    }
    fs_send(ctl, &rep, NULL, 0);
}

/* pidfd_open(2) through syscall(2): glibc has had a wrapper only since
 * 2.36.  -1 with errno (ENOSYS on kernels before 5.3, or under a tool
 * that does not know it): the caller falls back to pipe EOF. */
static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* Signals in the fork server and so in every worker, as after exec: a
 * caught signal is back to its default action (the application's handler
 * must never run in a copy of the application), an ignored one stays
 * ignored (the application's choice, e.g. SIG_IGN for SIGINT before
 * ex_create keeps Ctrl-C from failing running tasks), and nothing is
 * blocked.  SIGCHLD is always default, so that dead workers stay zombies
 * until REAP (SIG_IGN in the creator would auto-reap them and break the
 * no-reuse invariant).  0, or -1 on failure. */
static int reset_signals(void)
{
    struct sigaction dfl, old;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sigaction(sig, NULL, &old) != 0)
            continue; /* reserved by the C library: not ours to touch */
        bool caught = (old.sa_flags & SA_SIGINFO) ||
                      (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN);
        if ((caught || sig == SIGCHLD) && sigaction(sig, &dfl, NULL) != 0)
            return -1;
    }
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Waits for the next request on ctl; false when the parent is gone (EOF,
 * an error, or its pidfd became readable: an application child holding a
 * copy of the control socket cannot keep us alive). */
static bool fs_next(int ctl, int parent_fd, fs_msg *m)
{
    for (;;) {
        struct pollfd pf[2] = {{.fd = ctl, .events = POLLIN},
                               {.fd = parent_fd, .events = POLLIN}};
        int r = poll(pf, parent_fd >= 0 ? 2 : 1, -1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (parent_fd >= 0 && pf[1].revents))
            return false;
        ssize_t n = recv(ctl, m, sizeof *m, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return false;
        if (n == (ssize_t)sizeof *m)
            return true;
    }
}

/* The fork server's whole life.  Single-threaded; never returns.
 * It is a snapshot of the creator at ex_create: this pool has no thread
 * yet, but the application may (another pool's dispatcher, its own
 * threads).  So it uses raw system calls only, never malloc or stdio; the
 * workers it forks run the user's hooks and tasks, which see the state of
 * any lock another creator thread held at that instant (glibc resets its
 * malloc locks across fork; create pools before starting threads that
 * hold other locks the tasks need). */
static _Noreturn void fork_server_main(procs *p, int ctl, pid_t parent,
                                       bool deathsig)
{
    close_cloexec_fds(ctl);
    /* This copy (and every worker's, forked from it) is not the pool. */
    p->in_child = true;
    if (reset_signals() != 0)
        _exit(1); /* the parent sees EOF: spawning fails with EX_ESYS */

    /* PR_SET_PDEATHSIG fires when the *thread* that forked us exits, not
     * the process: so only ask for it when the creator is the main thread.
     * Otherwise the parent's pidfd (or, without pidfds, EOF on the control
     * socket) tells us. */
    if (deathsig && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(1);
    int parent_fd = pidfd_of(parent);
    if (getppid() != parent)
        _exit(0);

    pid_t *pids = p->fs_pids; /* our copy-on-write copy, all zero */
    fs_msg m;
    while (fs_next(ctl, parent_fd, &m) && m.op != FS_EXIT) {
        if (m.op == FS_SPAWN)
            fs_spawn(p, ctl, parent_fd, pids, (unsigned)m.arg);
        else if (m.op == FS_REAP)
            fs_reap(p, ctl, pids, m.pid);
    }
    for (size_t i = 0; i < p->fs_cap; i++)
        if (pids[i] > 0)
            kill(pids[i], SIGKILL);
    for (;;) {
        pid_t r = waitpid(-1, NULL, 0);
        if (r < 0 && errno != EINTR)
            break;
    }
    _exit(0);
}

/* ---------------------------------------------------------- the worker */

/* stdout and stderr only, as Python's multiprocessing does: fflush(NULL)
 * would lock every FILE of the application, including one another thread
 * of the creator may hold (blocked reading stdin) at ex_create. */
static void flush_stdio(void)
{
    fflush(stdout);
    fflush(stderr);
}

static _Noreturn void worker_main(const procs *p, unsigned index, int in_fd,
                                  int out_fd, pid_t fs_pid)
{
    /* A write to a dead parent fails with EPIPE and we _exit. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        _exit(1);
    /* The fork server is single-threaded: its death is the process's. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(1);
    if (getppid() != fs_pid)
        _exit(1);

    unsigned char hb[WIRE_HEADER_SIZE + WIRE_STATS_SIZE];
    wire_header h;
    memset(&h, 0, sizeof h);
    int rc = ex__worker_init(&p->base.cfg, index);
    flush_stdio();
    h.type = rc == 0 ? WIRE_READY : WIRE_INIT_FAIL;
    h.status = rc;
    h.id = (uint64_t)getpid();
    wire_header_encode(&h, hb);
    if (wire_write_full(out_fd, hb, WIRE_HEADER_SIZE) != 0 || rc != 0)
        _exit(rc != 0 ? 0 : 1);

    ex_buf in = {0}, out = {0};
    for (;;) {
        rc = wire_read_full(in_fd, hb, WIRE_HEADER_SIZE);
        if (rc == WIRE_EOF)
            _exit(0); /* the parent closed the task pipe (stdio flushed
                         after every task) */
        if (rc != 0 || wire_header_decode(hb, WIRE_HEADER_SIZE,
                                          p->max_payload, &h) != 0)
            _exit(1);
        if (h.type == WIRE_EXIT)
            _exit(0);
        if (h.type != WIRE_TASK)
            _exit(1);
        in.len = 0;
        if (h.len > 0) {
            if (ex_buf_reserve(&in, (size_t)h.len) != 0 ||
                wire_read_full(in_fd, in.data, (size_t)h.len) != 0)
                _exit(1);
            in.len = (size_t)h.len;
        }
        wire_stats st;
        memset(&st, 0, sizeof st);
        st.input_done_ns = ex_now_ns();
        st.pid = getpid();

        /* The function pointer is valid here: same executable image. */
        ex_task_fn fn = (ex_task_fn)(uintptr_t)h.fn;
        ex_mark m0, m1;
        out.len = 0;
        ex__mark_exact(&m0);
        int status = fn(in.len ? (const void *)in.data : (const void *)"",
                        in.len, &out);
        ex__mark_exact(&m1);
        ex_task_stats ts = {0};
        ex__stats_measure(&ts, &m0, &m1);
        st.start_ns = ts.start_ns;
        st.end_ns = ts.end_ns;
        /* What the task printed reaches its fd before its result does,
         * and is not lost when the worker leaves with _exit. */
        flush_stdio();
        st.cpu = sched_getcpu();
        st.cpu_ns = ts.cpu_ns;
        st.nvcsw = ts.nvcsw;
        st.nivcsw = ts.nivcsw;

        wire_header r;
        memset(&r, 0, sizeof r);
        r.type = WIRE_RESULT;
        /* Exact readings never go below zero: only the over-wall cut. */
        r.flags = ts.flags & EX_STATS_CPU_OVER_WALL ? WIRE_F_CPU_OVER_WALL : 0;
        r.id = h.id;
        r.fn = h.fn;
        r.status = status;
        r.len = out.len;
        if (out.len > p->max_payload) {
            /* The parent would reject the frame: report instead. */
            r.flags |= WIRE_F_EXERR;
            r.status = EX_EINVAL;
            r.len = 0;
        }
        st.output_start_ns = ex_now_ns();
        wire_header_encode(&r, hb);
        wire_stats_encode(&st, hb + WIRE_HEADER_SIZE);
        struct iovec iov[2] = {
            {.iov_base = hb, .iov_len = sizeof hb},
            {.iov_base = out.data, .iov_len = (size_t)r.len},
        };
        if (wire_writev_full(out_fd, iov, 2) != 0)
            _exit(1);
        if (in.cap > WORKER_KEEP_BYTES)
            ex_buf_free(&in);
        if (out.cap > WORKER_KEEP_BYTES)
            ex_buf_free(&out);
    }
}

/* ---------------------------------------------- parent: fork server I/O */

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void set_broken(procs *p);

/* The fork server is gone: no worker can be spawned any more, so the
 * executor is broken (running tasks fail as their workers die). */
static void fork_server_lost(procs *p)
{
    p->fs_dead = true;
    set_broken(p);
}

/* One request, one reply; up to two fds come back.  Blocking (the fork
 * server answers at once: SPAWN forks, REAP follows a SIGKILL). */
static int fs_request(procs *p, const fs_msg *req, fs_msg *rep, int fds[2])
{
    if (p->fs_dead || p->ctl_fd < 0)
        return EX_ESYS;
    ssize_t n;
    while ((n = send(p->ctl_fd, req, sizeof *req, MSG_NOSIGNAL)) < 0 &&
           errno == EINTR)
        ;
    if (n != (ssize_t)sizeof *req) {
        fork_server_lost(p);
        return EX_ESYS;
    }
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } u;
    struct iovec iov = {.iov_base = rep, .iov_len = sizeof *rep};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    while ((n = recvmsg(p->ctl_fd, &mh, MSG_CMSG_CLOEXEC)) < 0 &&
           errno == EINTR)
        ;
    int got = 0;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; c;
         c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (fds && got < 2)
                fds[got++] = fd;
            else
                close(fd);
        }
    }
    if (n != (ssize_t)sizeof *rep || (mh.msg_flags & MSG_CTRUNC) ||
        rep->op != req->op) {
        while (got > 0)
            close(fds[--got]);
        fork_server_lost(p);
        if (n == 0)
            errno = EPIPE;
        return EX_ESYS;
    }
    if (fds && rep->err == 0 && got != 2) {
        while (got > 0)
            close(fds[--got]);
        return EX_ESYS;
    }
    return 0;
}

/* False once the control socket shows the fork server gone (checked
 * without blocking; a later death is noticed by the next request). */
static bool fork_server_alive(procs *p)
{
    if (p->fs_dead || p->ctl_fd < 0)
        return false;
    struct pollfd pf = {.fd = p->ctl_fd, .events = POLLIN};
    int r;
    while ((r = poll(&pf, 1, 0)) < 0 && errno == EINTR)
        ;
    /* It never speaks unasked: readable or hung up means dead. */
    if (r != 0)
        fork_server_lost(p);
    return !p->fs_dead;
}

/* Kills (if alive) and reaps the slot's process and closes its fds.  The
 * pid is unreaped until FS_REAP, so the SIGKILL cannot hit another process.
 * Blocks briefly: the fork server waits for the killed process. */
static void worker_retire(procs *p, procs_worker *w)
{
    close_fd(&w->task_fd);
    close_fd(&w->result_fd);
    close_fd(&w->pidfd);
    pid_t pid = atomic_load(&w->pid);
    if (pid > 0 && fork_server_alive(p)) {
        /* Cannot fail: the pid is unreaped (a zombie at worst). */
        (void)kill(pid, SIGKILL);
        fs_msg req = {.op = FS_REAP, .pid = pid}, rep;
        (void)fs_request(p, &req, &rep, NULL);
    }
    /* With the fork server gone its workers were SIGKILLed by their
     * PDEATHSIG and belong to init, which may reap them at any time: then
     * the pid must not be touched at all. */
    atomic_store(&w->pid, 0);
    w->state = W_EMPTY;
    w->gen++;
    w->iov_cnt = 0;
    w->deadline_ns = 0;
    wire_reader_reset(&w->reader);
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return EX_ESYS;
    return 0;
}

/* Asks the fork server for a new process in slot w (state W_STARTING). */
static int worker_spawn(procs *p, procs_worker *w)
{
    fs_msg req = {.op = FS_SPAWN, .arg = (int32_t)w->index}, rep;
    memset(&rep, 0, sizeof rep);
    int fds[2] = {-1, -1};
    int rc = fs_request(p, &req, &rep, fds);
    if (rc != 0) {
        if (rep.op == FS_SPAWN && rep.err == 0 && rep.pid > 0 &&
            fork_server_alive(p)) {
            /* Forked, but its pipes were lost on the way: undo it. */
            (void)kill(rep.pid, SIGKILL);
            fs_msg reap = {.op = FS_REAP, .pid = rep.pid}, ignored;
            (void)fs_request(p, &reap, &ignored, NULL);
        }
        return rc;
    }
    if (rep.err != 0) {
        errno = rep.err;
        return EX_ESYS;
    }
    w->task_fd = fds[0];
    w->result_fd = fds[1];
    atomic_store(&w->pid, rep.pid);
    /* The pid is unreaped until we ask (no-reuse invariant), so this
     * pidfd is this worker's.  Without one (no kernel support, or under
     * valgrind), death shows as EOF only: asked once per pool. */
    if (!p->no_pidfd && (w->pidfd = pidfd_of(rep.pid)) < 0 && errno == ENOSYS)
        p->no_pidfd = true;
    w->gen++;
    if (set_nonblock(w->task_fd) != 0 || set_nonblock(w->result_fd) != 0) {
        worker_retire(p, w);
        return EX_ESYS;
    }
    w->state = W_STARTING;
    w->completed = 0;
    w->task = NULL;
    w->iov_cnt = 0;
    w->deadline_ns = 0;
    wire_reader_reset(&w->reader);
    return 0;
}

/* ------------------------------------------------- parent: dispatcher */

static void wake_dispatcher(procs *p)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is already nonzero, the dispatcher will wake. */
    while (write(p->wake_fd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Marks the executor broken; the dispatcher fails the queue on its next
 * turn and submitters see EX_EBROKEN. */
static void set_broken(procs *p)
{
    atomic_store(&p->base.broken, true);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->lock);
}

static void startup_report(procs *p, procs_worker *w)
{
    if (!w->in_startup)
        return;
    w->in_startup = false;
    if (--p->starting == 0) {
        pthread_mutex_lock(&p->lock);
        p->startup_done = true;
        pthread_cond_broadcast(&p->started);
        pthread_mutex_unlock(&p->lock);
    }
}

static void set_inflight(procs *p, int delta)
{
    p->inflight = (unsigned)((int)p->inflight + delta);
}

/* A write to a dead worker's pipe raised SIGPIPE at this thread, where it
 * is blocked: consume it so that it is never delivered to anyone. */
static void consume_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    struct timespec zero = {0, 0};
    (void)sigtimedwait(&set, NULL, &zero);
}

/* Writes as much of w's pending TASK frame as the pipe takes now, up to
 * IO_BUDGET.  Never blocks.  0, or EX_EWORKER if the worker is gone. */
static int worker_write(procs *p, procs_worker *w)
{
    (void)p;
    struct iovec *iov = w->iov + w->iov_first;
    int cnt = w->iov_cnt;
    size_t done = 0;
    int rc = 0;
    while (cnt > 0 && done < IO_BUDGET) {
        ssize_t k = writev(w->task_fd, iov, cnt);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            if (errno == EPIPE)
                consume_sigpipe();
            rc = EX_EWORKER;
            break;
        }
        done += (size_t)k;
        wire_iov_consume(&iov, &cnt, (size_t)k);
    }
    w->iov_first = (int)(iov - w->iov);
    w->iov_cnt = cnt;
    return rc;
}

/* Fills the end-of-task stats of f from the parent side; h and st are the
 * worker's RESULT (NULL when the task never reported). */
static void stats_end(ex_future *f, uint64_t now, const wire_header *h, const wire_stats *st)
{
    pthread_mutex_lock(&f->lock);
    f->stats.end_ns = now;
    if (st) {
        f->stats.flags |= EX_STATS_CPU;
        if (h->flags & WIRE_F_CPU_OVER_WALL)
            f->stats.flags |= EX_STATS_CPU_OVER_WALL;
        f->stats.cpu_ns = st->cpu_ns;
        f->stats.nvcsw = st->nvcsw;
        f->stats.nivcsw = st->nivcsw;
        f->stats.cpu = st->cpu;
        f->stats.worker_pid = st->pid;
        f->stats.ipc_send_ns = st->input_done_ns > f->stats.start_ns
                                   ? st->input_done_ns - f->stats.start_ns : 0;
        f->stats.ipc_recv_ns = now > st->output_start_ns
                                   ? now - st->output_start_ns : 0;
    }
    pthread_mutex_unlock(&f->lock);
}

static void worker_respawn(procs *p, procs_worker *w)
{
    if (atomic_load(&p->base.broken))
        return;
    if (worker_spawn(p, w) != 0) {
        /* An executor that cannot keep its workers is broken. */
        set_broken(p);
        return;
    }
    atomic_fetch_add(&p->base.replaced, 1);
}

static void requeue_front(procs *p, ex_future *list);

/* Whether w's task provably never started: a worker reads the whole TASK
 * frame before it runs anything, so a frame not fully written yet, or
 * bytes of it still unread in the task pipe (FIONREAD works on either end
 * of a pipe), mean it never ran.  Asked before the pipe is closed. */
static bool task_never_started(const procs_worker *w)
{
    if (w->iov_cnt > 0)
        return true;
    int unread = 0;
    return w->task_fd >= 0 && ioctl(w->task_fd, FIONREAD, &unread) == 0 &&
           unread > 0;
}

/* f's worker died before reading it: f goes back to PENDING at the front
 * of the queue (or is cancelled, if shutdown(cancel_pending) came). */
static void task_redispatch(procs *p, ex_future *f)
{
    pthread_mutex_lock(&f->lock);
    f->redispatched++;
    f->stats.start_ns = 0;
    f->stats.worker = -1;
    f->stats.worker_pid = 0;
    pthread_mutex_unlock(&f->lock);
    ex__future_unbegin(f);
    f->next = NULL;
    requeue_front(p, f);
}

/* The worker died, was killed, overran its timeout, or sent garbage.
 * The task it held (if any) fails with `err` and the worker is replaced;
 * a task it provably never started runs again instead (at most
 * REDISPATCH_MAX times).  Rule against respawn loops: a worker that dies
 * holding no started task before it completed any (worker_start,
 * initializer, or idle before its first task) breaks the executor instead
 * of being replaced. */
static void worker_lost(procs *p, procs_worker *w, int err)
{
    ex_future *f = w->task;
    bool recycled = w->state == W_EXITING;
    bool again = f && f->redispatched < REDISPATCH_MAX && task_never_started(w);
    bool blameless = (f == NULL || again) && w->completed == 0 && !recycled;
    bool in_startup = w->in_startup;
    w->task = NULL;
    w->in_startup = false;
    worker_retire(p, w);
    /* Replace (or break) before failing the task or ending start(), so
     * that whoever sees either also sees the replacement counted or the
     * executor broken. */
    if (blameless)
        set_broken(p);
    else
        worker_respawn(p, w);
    if (in_startup) {
        w->in_startup = true;
        startup_report(p, w);
    }
    if (!f)
        return;
    set_inflight(p, -1);
    if (again) {
        task_redispatch(p, f);
        return;
    }
    stats_end(f, ex_now_ns(), NULL, NULL);
    ex__future_finish(f, err, 0);
    ex_future_release(f);
}

/* Sends f to the idle worker w.  f is RUNNING. */
static void worker_dispatch(procs *p, procs_worker *w, ex_future *f)
{
    uint64_t now = ex_now_ns();
    pthread_mutex_lock(&f->lock);
    f->stats.start_ns = now;
    f->stats.worker = (int)w->index;
    f->stats.worker_pid = atomic_load(&w->pid);
    pthread_mutex_unlock(&f->lock);

    wire_header h;
    memset(&h, 0, sizeof h);
    h.type = WIRE_TASK;
    h.id = f->id;
    h.fn = (uint64_t)(uintptr_t)f->fn;
    h.len = f->in_len;
    wire_header_encode(&h, w->hdr);
    w->iov[0].iov_base = w->hdr;
    w->iov[0].iov_len = WIRE_HEADER_SIZE;
    w->iov[1].iov_base = (void *)f->in;
    w->iov[1].iov_len = f->in_len;
    w->iov_first = 0;
    w->iov_cnt = 2;

    w->task = f;
    w->state = W_BUSY;
    w->deadline_ns = p->base.cfg.timeout_ns > 0
                         ? now + (uint64_t)p->base.cfg.timeout_ns : 0;
    set_inflight(p, +1);
    if (worker_write(p, w) != 0)
        worker_lost(p, w, EX_EWORKER);
}

/* Asks the idle w to exit: an EXIT frame, then our end of the task pipe
 * closed.  The frame, not EOF, is what the worker obeys: a child the
 * application forked may hold a copy of our end, and EOF would wait for
 * it.  The pipe is empty (the worker read its whole task before it
 * answered), so the 40 bytes go in at once, or the worker is gone; either
 * way its pidfd (or EOF) brings it to worker_lost as W_EXITING, or the
 * grace deadline does. */
static void worker_recycle(procs *p, procs_worker *w, uint64_t now)
{
    (void)p;
    wire_header h;
    memset(&h, 0, sizeof h);
    h.type = WIRE_EXIT;
    unsigned char hdr[WIRE_HEADER_SIZE];
    wire_header_encode(&h, hdr);
    ssize_t k;
    while ((k = write(w->task_fd, hdr, sizeof hdr)) < 0 && errno == EINTR)
        ;
    if (k < 0 && errno == EPIPE)
        consume_sigpipe();
    close_fd(&w->task_fd);
    w->state = W_EXITING;
    w->deadline_ns = now + EXIT_GRACE_NS;
}

/* A RESULT for the task w holds: publish it. */
static void task_complete(procs *p, procs_worker *w)
{
    uint64_t now = ex_now_ns();
    ex_future *f = w->task;
    const wire_header *h = &w->reader.hdr;
    stats_end(f, now, h, &w->reader.stats);

    /* Hand the payload buffer to the future as is: no second copy. */
    ex_buf tmp = f->out;
    f->out = w->reader.payload;
    w->reader.payload = tmp;
    w->reader.payload.len = 0;

    int err, code = 0;
    if (h->flags & WIRE_F_EXERR) {
        err = h->status < 0 ? h->status : EX_EWORKER;
    } else {
        err = h->status == 0 ? 0 : EX_ETASK;
        code = h->status;
    }
    w->task = NULL;
    w->state = W_IDLE;
    w->deadline_ns = 0;
    w->completed++;
    ex__future_finish(f, err, code);
    ex_future_release(f);
    set_inflight(p, -1);

    unsigned max = p->base.cfg.max_tasks_per_worker;
    if (max > 0 && w->completed >= max)
        worker_recycle(p, w, now);
}

/* A whole frame from w is in w->reader.  0, or EX_EWORKER (protocol). */
static int handle_frame(procs *p, procs_worker *w)
{
    const wire_header *h = &w->reader.hdr;
    int rc = 0;
    switch (h->type) {
    case WIRE_READY:
        if (w->state != W_STARTING)
            return EX_EWORKER;
        w->state = W_IDLE;
        startup_report(p, w);
        break;
    case WIRE_INIT_FAIL:
        if (w->state != W_STARTING)
            return EX_EWORKER;
        /* Not a respawn candidate: worker_lost sees completed == 0. */
        worker_lost(p, w, EX_EBROKEN);
        return 0;
    case WIRE_RESULT:
        if (w->state != W_BUSY || w->iov_cnt > 0 || h->id != w->task->id)
            return EX_EWORKER;
        task_complete(p, w);
        break;
    default:
        rc = EX_EWORKER;
        break;
    }
    wire_reader_reset(&w->reader);
    return rc;
}

/* Reads what w's result pipe holds now (bounded by IO_BUDGET); handles a
 * complete frame; EOF, error or a corrupt frame lose the worker.  Returns
 * 0 when the pipe has nothing more now, 1 after a frame or a full budget,
 * -1 once the worker was lost. */
static int worker_read(procs *p, procs_worker *w)
{
    size_t done = 0;
    while (done < IO_BUDGET) {
        void *dst;
        size_t room = wire_reader_direct(&w->reader, &dst);
        ssize_t k;
        int rc;
        if (room > 0) {
            /* Inside a payload: read straight into its buffer. */
            k = read(w->result_fd, dst, room);
            rc = k > 0 ? wire_reader_advance(&w->reader, (size_t)k) : 0;
        } else {
            k = read(w->result_fd, p->scratch, SCRATCH_SIZE);
            size_t used = 0;
            rc = k > 0 ? wire_reader_feed(&w->reader, p->scratch, (size_t)k,
                                          &used)
                       : 0;
            /* A worker sends one frame per request: bytes after it are a
             * protocol violation. */
            if (rc == WIRE_FRAME && used < (size_t)k)
                rc = WIRE_ELEN;
        }
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            return 0;
        if (k <= 0 || rc < 0) {
            worker_lost(p, w, EX_EWORKER);
            return -1;
        }
        done += (size_t)k;
        if (rc == WIRE_FRAME) {
            if (handle_frame(p, w) != 0) {
                worker_lost(p, w, EX_EWORKER);
                return -1;
            }
            return 1;
        }
    }
    return 1;
}

/* w's process is gone (its pidfd is readable).  What it wrote before
 * dying is still in the result pipe (a RESULT, an INIT_FAIL): read that
 * first.  Then it is lost, even when a grandchild its task forked holds
 * the pipe open so that no EOF will ever come. */
static void worker_died(procs *p, procs_worker *w)
{
    unsigned gen = w->gen;
    while (w->gen == gen && w->result_fd >= 0 && worker_read(p, w) > 0)
        ;
    if (w->gen == gen)
        worker_lost(p, w, EX_EWORKER);
}

static procs_worker *idle_worker(procs *p)
{
    for (unsigned i = 0; i < p->base.workers; i++)
        if (p->w[i].state == W_IDLE)
            return &p->w[i];
    return NULL;
}

static unsigned count_idle(procs *p)
{
    unsigned n = 0;
    for (unsigned i = 0; i < p->base.workers; i++)
        n += p->w[i].state == W_IDLE;
    return n;
}

enum { PK_WAKE, PK_CTL, PK_RESULT, PK_TASK, PK_DEATH };

static int poll_add(procs *p, int n, int fd, short events, procs_worker *w,
                    int kind)
{
    p->pfd[n].fd = fd;
    p->pfd[n].events = events;
    p->pfd[n].revents = 0;
    p->owner[n].w = w;
    p->owner[n].gen = w ? w->gen : 0;
    p->owner[n].kind = kind;
    return n + 1;
}

/* Waits for I/O or the nearest task deadline, and handles what came. */
static void poll_once(procs *p)
{
    int n = 0;
    n = poll_add(p, n, p->wake_fd, POLLIN, NULL, PK_WAKE);
    if (!p->fs_dead)
        n = poll_add(p, n, p->ctl_fd, POLLIN, NULL, PK_CTL);
    uint64_t deadline = 0;
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if (w->result_fd >= 0)
            n = poll_add(p, n, w->result_fd, POLLIN, w, PK_RESULT);
        if (w->state == W_BUSY && w->iov_cnt > 0)
            n = poll_add(p, n, w->task_fd, POLLOUT, w, PK_TASK);
        /* After the result pipe: a frame sent before death is read first. */
        if (w->pidfd >= 0)
            n = poll_add(p, n, w->pidfd, POLLIN, w, PK_DEATH);
        if ((w->state == W_BUSY || w->state == W_EXITING) &&
            w->deadline_ns && (deadline == 0 || w->deadline_ns < deadline))
            deadline = w->deadline_ns;
    }
    struct timespec ts, *tsp = NULL;
    if (deadline) {
        uint64_t now = ex_now_ns();
        uint64_t left = deadline > now ? deadline - now : 0;
        ts.tv_sec = (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        tsp = &ts;
    }
    int r = ppoll(p->pfd, (nfds_t)n, tsp, NULL);
    if (r < 0 && errno != EINTR) {
        /* Cannot happen with valid arguments; avoid a hot loop anyway. */
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    for (int i = 0; r > 0 && i < n; i++) {
        short re = p->pfd[i].revents;
        procs_worker *w = p->owner[i].w;
        if (!re || (w && w->gen != p->owner[i].gen))
            continue; /* nothing, or the slot changed process meanwhile */
        switch (p->owner[i].kind) {
        case PK_WAKE: {
            uint64_t v;
            while (read(p->wake_fd, &v, sizeof v) < 0 && errno == EINTR)
                ;
            break;
        }
        case PK_CTL:
            /* The fork server never speaks unasked: it died.  Its workers
             * die with it (PDEATHSIG); no more spawns are possible. */
            fork_server_lost(p);
            break;
        case PK_RESULT:
            (void)worker_read(p, w);
            break;
        case PK_DEATH:
            worker_died(p, w);
            break;
        case PK_TASK:
            if (w->state == W_BUSY && worker_write(p, w) != 0)
                worker_lost(p, w, EX_EWORKER);
            break;
        }
    }
    /* Timeouts: kill the worker, fail only its task (a recycled worker
     * past its grace holds none). */
    uint64_t now = ex_now_ns();
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        if ((w->state == W_BUSY || w->state == W_EXITING) &&
            w->deadline_ns && now >= w->deadline_ns)
            worker_lost(p, w, EX_ETIMEDOUT);
    }
}

/* Closes every worker's fds and tells the fork server to exit (it
 * SIGKILLs and reaps whatever workers are left); we reap it.  The EXIT
 * message, not EOF, ends it: a child the application forked may hold a
 * copy of the control socket.  After this no process, fd or pipe of the
 * pool remains (the thread is the caller's business). */
static void processes_teardown(procs *p)
{
    for (unsigned i = 0; i < p->base.workers; i++) {
        procs_worker *w = &p->w[i];
        close_fd(&w->task_fd);
        close_fd(&w->result_fd);
        close_fd(&w->pidfd);
        atomic_store(&w->pid, 0);
        w->state = W_EMPTY;
    }
    if (p->ctl_fd >= 0 && !p->fs_dead) {
        fs_msg m = {.op = FS_EXIT};
        /* Failure: it is gone already, and waitpid below reaps it. */
        while (send(p->ctl_fd, &m, sizeof m, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
    }
    close_fd(&p->ctl_fd);
    if (p->fs_pid > 0) {
        while (waitpid(p->fs_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        p->fs_pid = 0;
    }
}

/* Cancels (PENDING -> CANCELLED) and drops a list of futures. */
static void cancel_list(ex_future *list)
{
    while (list) {
        ex_future *f = list;
        list = f->next;
        f->next = NULL;
        ex__future_cancel_pending(f); /* false: the user cancelled it */
        ex_future_release(f);
    }
}

/* Puts a list of PENDING futures back at the head of the queue, or
 * cancels them if shutdown(cancel_pending) was asked (read under the lock
 * where shutdown sets it and drains the queue, so none slips past it). */
static void requeue_front(procs *p, ex_future *list)
{
    ex_future *last = list;
    size_t n = 1;
    while (last->next) {
        last = last->next;
        n++;
    }
    pthread_mutex_lock(&p->lock);
    bool cancel = p->cancel_all;
    if (!cancel) {
        last->next = p->head;
        if (!p->head)
            p->tail = last;
        p->head = list;
        p->qlen += n;
    }
    pthread_mutex_unlock(&p->lock);
    if (cancel)
        cancel_list(list);
}

/* Takes the futures this turn can hand out (one per idle worker; all of
 * them when broken, to fail them) and decides, under the same lock,
 * whether the dispatcher is done: shut down, nothing queued, taken or
 * running. */
static ex_future *take_batch(procs *p, bool broken, bool *stop)
{
    unsigned nidle = count_idle(p);
    ex_future *batch = NULL, **tail = &batch;
    pthread_mutex_lock(&p->lock);
    p->wake_pending = false;
    size_t take = broken ? p->qlen : (nidle < p->qlen ? nidle : p->qlen);
    for (size_t i = 0; i < take; i++) {
        ex_future *f = p->head;
        p->head = f->next;
        f->next = NULL;
        *tail = f;
        tail = &f->next;
    }
    if (!p->head)
        p->tail = NULL;
    p->qlen -= take;
    if (take)
        pthread_cond_broadcast(&p->space);
    *stop = p->stopping && p->qlen == 0 && take == 0 && p->inflight == 0;
    p->stopped = *stop;
    pthread_mutex_unlock(&p->lock);
    return batch;
}

/* Starts a future taken into the batch, unless shutdown(cancel_pending)
 * came since: read under p->lock, where shutdown sets it, so once that
 * shutdown returned no task it cancels can start.  false: not started
 * (cancelled now, or by the user before). */
static bool batch_begin(procs *p, ex_future *f)
{
    pthread_mutex_lock(&p->lock);
    bool cancel = p->cancel_all;
    bool began = !cancel && ex__future_begin(f);
    pthread_mutex_unlock(&p->lock);
    if (cancel)
        ex__future_cancel_pending(f);
    return began;
}

/* Dispatches a batch to idle workers, or fails it when broken.  Returns
 * whether to look at the queue again before sleeping: a task was dropped
 * while a worker stays idle, or a broken batch was failed (its callbacks
 * may have queued more, and a shutdown may be waiting with no wake-up
 * left for the poll: that used to hang it). */
static bool run_batch(procs *p, ex_future *batch, bool broken)
{
    bool again = broken && batch;
    while (batch) {
        procs_worker *w = NULL;
        if (!broken && !(w = idle_worker(p))) {
            /* A dispatch failed and its worker is being replaced: the
             * rest goes back to the front, still PENDING. */
            requeue_front(p, batch);
            break;
        }
        ex_future *f = batch;
        batch = f->next;
        f->next = NULL;
        if (!batch_begin(p, f)) {
            ex_future_release(f);
            again = true;
            continue;
        }
        if (broken) {
            pthread_mutex_lock(&f->lock);
            f->stats.end_ns = ex_now_ns();
            pthread_mutex_unlock(&f->lock);
            ex__future_finish(f, EX_EBROKEN, 0);
            ex_future_release(f);
            continue;
        }
        worker_dispatch(p, w, f);
    }
    return again;
}

static void *dispatcher_main(void *arg)
{
    procs *p = arg;
    for (;;) {
        bool broken = atomic_load(&p->base.broken), stop;
        ex_future *batch = take_batch(p, broken, &stop);
        if (stop)
            break;
        if (!run_batch(p, batch, broken))
            poll_once(p);
    }
    processes_teardown(p);
    return NULL;
}

/* ------------------------------------------------------------- vtable */

static void procs_free(procs *p)
{
    if (p->w) {
        for (unsigned i = 0; i < p->base.workers; i++)
            wire_reader_free(&p->w[i].reader);
    }
    close_fd(&p->wake_fd);
    free(p->w);
    free(p->fs_pids);
    free(p->scratch);
    free(p->pfd);
    free(p->owner);
    pthread_cond_destroy(&p->started);
    pthread_cond_destroy(&p->space);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->join_lock);
    free(p);
}

int ex_procs_new(const ex_config *cfg, ex_executor **out)
{
    /* CALLER_RUNS would run the task in the submitter (or, from a
     * callback, in the dispatcher) without isolation or timeout: the one
     * thing this pool exists to give.  Refused rather than half-kept. */
    if (!cfg || !out || cfg->timeout_ns < 0 ||
        cfg->on_full == EX_ON_FULL_CALLER_RUNS)
        return EX_EINVAL;
    procs *p = calloc(1, sizeof *p);
    if (!p)
        return EX_ENOMEM;
    p->base.vt = &ex_procs_vtable;
    p->base.cfg = *cfg;
    p->base.workers = cfg->max_workers ? cfg->max_workers : ex_default_workers();
    atomic_init(&p->base.broken, false);
    atomic_init(&p->base.shut, false);
    atomic_init(&p->base.replaced, 0);
    p->max_payload = wire_max_payload(cfg->max_payload);
    p->ctl_fd = -1;
    p->wake_fd = -1;
    p->owner_pid = getpid();
    unsigned n = p->base.workers;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return EX_ENOMEM;
    }
    if (pthread_mutex_init(&p->join_lock, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return EX_ENOMEM;
    }
    if (pthread_cond_init(&p->space, NULL) != 0) {
        pthread_mutex_destroy(&p->join_lock);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return EX_ENOMEM;
    }
    if (pthread_cond_init(&p->started, NULL) != 0) {
        pthread_cond_destroy(&p->space);
        pthread_mutex_destroy(&p->join_lock);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return EX_ENOMEM;
    }
    /* Unreaped processes at any time: n workers, plus one being replaced
     * per slot at worst; a little slack. */
    p->fs_cap = (size_t)n * 2 + 4;
    p->w = calloc(n, sizeof *p->w);
    p->fs_pids = calloc(p->fs_cap, sizeof *p->fs_pids);
    p->scratch = malloc(SCRATCH_SIZE);
    /* Per worker: result pipe, task pipe, pidfd; plus wake and control. */
    p->pfd = calloc((size_t)n * 3 + 2, sizeof *p->pfd);
    p->owner = calloc((size_t)n * 3 + 2, sizeof *p->owner);
    if (!p->w || !p->fs_pids || !p->scratch || !p->pfd || !p->owner) {
        procs_free(p);
        return EX_ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        procs_worker *w = &p->w[i];
        w->index = i;
        w->state = W_EMPTY;
        atomic_init(&w->pid, 0);
        w->task_fd = w->result_fd = w->pidfd = -1;
        wire_reader_init(&w->reader, p->max_payload);
    }
    *out = &p->base;
    return 0;
}

static int procs_start(ex_executor *ex)
{
    procs *p = (procs *)ex;
    int sv[2];
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->wake_fd < 0)
        return EX_ESYS;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return EX_ESYS;

    /* The fork server is forked now, before this pool has a thread.  Every
     * worker is a copy of it: bytes still in the application's stdout and
     * stderr buffers would be written again by each worker that flushes
     * (see flush_stdio for why only these two). */
    flush_stdio();
    pid_t self = getpid();
    bool main_thread = gettid() == self;
    pid_t pid = fork();
    if (pid == 0) {
        fork_server_main(p, sv[1], self, main_thread);
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return EX_ESYS;
    }
    p->ctl_fd = sv[0];
    p->fs_pid = pid;

    for (unsigned i = 0; i < p->base.workers; i++) {
        if (worker_spawn(p, &p->w[i]) != 0) {
            processes_teardown(p);
            return EX_ESYS;
        }
        p->w[i].in_startup = true;
        p->starting++;
    }

    /* The dispatcher takes every signal blocked: the application's signals
     * go to its own threads, and SIGPIPE from a pipe write stays pending on
     * the dispatcher where worker_write consumes it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&p->dispatcher, NULL, dispatcher_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        processes_teardown(p);
        errno = rc;
        return EX_ESYS;
    }
    p->dispatcher_started = true;

    /* Every worker has sent READY or INIT_FAIL (or died) when this ends. */
    pthread_mutex_lock(&p->lock);
    while (!p->startup_done)
        pthread_cond_wait(&p->started, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static int procs_submit(ex_executor *ex, ex_future *f, bool force)
{
    procs *p = (procs *)ex;
    if (p->in_child)
        return EX_EINVAL; /* a task of this pool: it holds only a copy */
    pthread_mutex_lock(&p->lock);
    for (;;) {
        /* A forced (chained) submission was accepted before the shutdown:
         * it runs as long as the dispatcher does. */
        if (force ? p->stopped || !p->dispatcher_started
                  : atomic_load(&p->base.shut) || p->stopping) {
            pthread_mutex_unlock(&p->lock);
            return EX_ESHUTDOWN;
        }
        if (atomic_load(&p->base.broken)) {
            pthread_mutex_unlock(&p->lock);
            return EX_EBROKEN;
        }
        if (f->in_len > p->max_payload) {
            pthread_mutex_unlock(&p->lock);
            return EX_EINVAL;
        }
        size_t cap = p->base.cfg.queue_capacity;
        /* Only the dispatcher makes room: a callback running on it that
         * waited for room would wait forever, so it overshoots instead. */
        if (force || cap == 0 || p->qlen < cap ||
            (p->dispatcher_started && pthread_equal(pthread_self(), p->dispatcher) &&
             p->base.cfg.on_full == EX_ON_FULL_BLOCK))
            break;
        if (p->base.cfg.on_full == EX_ON_FULL_REJECT) {
            pthread_mutex_unlock(&p->lock);
            return EX_EFULL;
        }
        pthread_cond_wait(&p->space, &p->lock);
    }
    f->id = ++p->next_id;
    f->next = NULL;
    if (p->tail)
        p->tail->next = f;
    else
        p->head = f;
    p->tail = f;
    p->qlen++;
    bool wake = !p->wake_pending;
    p->wake_pending = true;
    pthread_mutex_unlock(&p->lock);
    if (wake)
        wake_dispatcher(p);
    return 0;
}

/* Joins the dispatcher once, whoever asks first; later callers wait for the
 * first join to finish. */
static void dispatcher_join(procs *p)
{
    pthread_mutex_lock(&p->join_lock);
    if (p->dispatcher_started && !p->joined) {
        pthread_join(p->dispatcher, NULL);
        p->joined = true;
    }
    pthread_mutex_unlock(&p->join_lock);
}

static int procs_shutdown(ex_executor *ex, bool wait, bool cancel_pending)
{
    procs *p = (procs *)ex;
    ex_future *cancel = NULL;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->base.shut, true);
    p->stopping = true;
    if (cancel_pending) {
        p->cancel_all = true;
        cancel = p->head;
        p->head = p->tail = NULL;
        p->qlen = 0;
    }
    pthread_cond_broadcast(&p->space);
    pthread_mutex_unlock(&p->lock);

    /* Wake first: the callbacks below may destroy nothing (reentry.c),
     * but they may take long, and the dispatcher can drain meanwhile. */
    if (p->wake_fd >= 0)
        wake_dispatcher(p);
    cancel_list(cancel);
    if (!wait)
        return 0;
    /* ex_shutdown never asks a wait from the dispatcher (reentry.c). */
    dispatcher_join(p);
    return 0;
}

static void procs_destroy(ex_executor *ex)
{
    procs *p = (procs *)ex;
    procs_shutdown(ex, true, false);
    /* Covers a start() that failed before the dispatcher existed. */
    processes_teardown(p);
    procs_free(p);
}

/* The dispatcher runs callbacks; a worker process holds a copy of p
 * (in_child), and so would a child the application forked: getpid. */
static int procs_inside(ex_executor *ex)
{
    procs *p = (procs *)ex;
    if (p->in_child || getpid() != p->owner_pid)
        return EX__INSIDE_COPY;
    if (p->dispatcher_started && pthread_equal(pthread_self(), p->dispatcher))
        return EX__INSIDE_THREAD;
    return EX__OUTSIDE;
}

static pid_t procs_worker_pid(ex_executor *ex, unsigned index)
{
    procs *p = (procs *)ex;
    if (index >= p->base.workers)
        return 0;
    return atomic_load(&p->w[index].pid);
}

const ex_vtable ex_procs_vtable = {
    .name = "procs",
    .start = procs_start,
    .submit = procs_submit,
    .shutdown = procs_shutdown,
    .destroy = procs_destroy,
    .worker_pid = procs_worker_pid,
    .inside = procs_inside,
};
