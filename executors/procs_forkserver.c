/*
 * procs_forkserver.c: the process pool's fork server, and the requests the
 * parent sends it (SPAWN, REAP, EXIT over a SOCK_SEQPACKET socketpair; the
 * protocol is fs_msg in procs_internal.h).
 *
 * Why a fork server: every worker is forked from it, and it is forked once
 * in start(), before this pool has any thread, and stays single-threaded
 * forever, so no worker can inherit a lock another thread of the pool held
 * at fork time.  (The application's own threads may exist: see
 * fork_server_main.)  It creates each worker's two pipes (and, with
 * EX_TRANSPORT_SHM, its region) and hands the parent's ends back with
 * SCM_RIGHTS.
 *
 * Invariants:
 * - Raw system calls only, never malloc or stdio, in the fork server: it is
 *   a snapshot of a possibly threaded creator.  Its table of unreaped
 *   workers (p->fs_pids) was allocated before the fork.
 * - No pid reuse: the fork server reaps a worker only when the parent asks
 *   (REAP), and the parent asks only after it has stopped using the pid.
 *   So kill(pid, SIGKILL) from the parent can never hit a recycled pid.
 *   SIGCHLD is reset to its default, since SIG_IGN would auto-reap.
 * - One request, one reply, from one thread at a time: only the dispatcher
 *   (or start() before it exists, or its teardown) talks to the fork
 *   server, so requests and replies never interleave.  The fork server
 *   never speaks unasked: a readable control socket means it died.
 * - It ends on an explicit EXIT, or when the parent is gone (its pidfd
 *   turns readable, or EOF, or PDEATHSIG when the creator is the main
 *   thread): never on EOF alone, which an application child holding a copy
 *   of the control socket would postpone.  The control socket uses
 *   MSG_NOSIGNAL, both ways.
 * - Signals, as after exec: a caught signal is back to its default action
 *   and nothing is blocked, so no application handler runs in a copy of
 *   the application (reset_signals).
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Ancillary data room for the fds a SPAWN reply carries. */
typedef union fs_cmsg {
    struct cmsghdr align;
    char buf[CMSG_SPACE(FS_NFDS * sizeof(int))];
} fs_cmsg;

/* ------------------------------------------------ the fork server side */

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

static void fs_send(int ctl, const fs_msg *m, const int *fds, int nfds)
{
    struct iovec iov = {.iov_base = (void *)m, .iov_len = sizeof *m};
    fs_cmsg u;
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

/* The fds of a worker being forked: its two pipes (tp: task, rp: result)
 * and, with EX_TRANSPORT_SHM, its region. */
typedef struct fs_fds {
    int tp[2], rp[2], shm;
} fs_fds;

static void fs_fds_close(fs_fds *f)
{
    for (int i = 0; i < 2; i++) {
        ex__close(&f->tp[i]);
        ex__close(&f->rp[i]);
    }
    ex__close(&f->shm);
}

/* Forks a worker for slot `index` with its fds; the fork server keeps
 * nothing of them.  parent_fd: the fork server's pidfd of the parent (-1
 * if none), which a worker must not keep.  Returns the pid, or 0 with
 * rep->err set.  A region that cannot be made is no error: the worker
 * then uses the pipes alone. */
static pid_t fs_fork_worker(const procs *p, int ctl, int parent_fd,
                            unsigned index, fs_fds *f, fs_msg *rep)
{
    if (pipe2(f->tp, O_CLOEXEC) != 0 || pipe2(f->rp, O_CLOEXEC) != 0) {
        rep->err = errno;
        return 0;
    }
    f->shm = ex__procs_shm_create(p);
    pid_t me = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The worker keeps only its own ends and its region (and stdio). */
        ex__close(&ctl);
        ex__close(&parent_fd);
        ex__close(&f->tp[1]);
        ex__close(&f->rp[0]);
        ex__procs_worker_main(p, index, f->tp[0], f->rp[1], f->shm, me);
    }
    if (pid < 0) {
        rep->err = errno;
        return 0;
    }
    return pid;
}

static void fs_spawn(const procs *p, int ctl, int parent_fd, pid_t *pids,
                     unsigned index)
{
    fs_msg rep = {.op = FS_SPAWN, .arg = (int32_t)index};
    fs_fds f = {{-1, -1}, {-1, -1}, -1};
    size_t slot = 0;
    while (slot < p->fs_cap && pids[slot] != 0)
        slot++;
    if (slot == p->fs_cap)
        rep.err = EAGAIN;
    else if ((rep.pid = fs_fork_worker(p, ctl, parent_fd, index, &f, &rep)) > 0)
        pids[slot] = rep.pid;
    if (rep.err == 0) {
        int fds[FS_NFDS] = {f.tp[1], f.rp[0], f.shm};
        fs_send(ctl, &rep, fds, f.shm >= 0 ? 3 : 2);
    } else {
        fs_send(ctl, &rep, NULL, 0);
    }
    fs_fds_close(&f);
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

/* The fork server's set-up: only ctl (and the fds no part of the creator
 * marked close-on-exec) stays open, this copy is marked as not the pool,
 * signals are reset, and the parent's death is watched.  Returns the
 * parent's pidfd (-1 without pidfds); _exits on failure, which the parent
 * sees as EOF: spawning fails with EX_ESYS. */
static int fork_server_init(procs *p, int ctl, pid_t parent, bool deathsig)
{
    ex__close_fds_except(&ctl, 1, EX__CLOSE_CLOEXEC_ONLY);
    /* This copy (and every worker's, forked from it) is not the pool. */
    p->in_child = true;
    if (reset_signals() != 0)
        _exit(1);
    /* PR_SET_PDEATHSIG fires when the *thread* that forked us exits, not
     * the process: so only ask for it when the creator is the main thread.
     * Otherwise the parent's pidfd (or, without pidfds, EOF on the control
     * socket) tells us. */
    if (deathsig && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        _exit(1);
    int parent_fd = ex__pidfd_open(parent);
    if (getppid() != parent)
        _exit(0);
    return parent_fd;
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
    int parent_fd = fork_server_init(p, ctl, parent, deathsig);
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

/* ------------------------------------------------------ the parent side */

int ex__procs_fs_start(procs *p)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return EX_ESYS;
    /* Every worker is a copy of the fork server: bytes still in the
     * application's stdout and stderr buffers would be written again by
     * each worker that flushes. */
    ex__procs_flush_stdio();
    pid_t self = getpid();
    bool main_thread = gettid() == self;
    pid_t pid = fork();
    if (pid == 0)
        fork_server_main(p, sv[1], self, main_thread);
    ex__close(&sv[1]);
    if (pid < 0) {
        ex__close(&sv[0]);
        return EX_ESYS;
    }
    p->ctl_fd = sv[0];
    p->fs_pid = pid;
    return 0;
}

void ex__procs_fs_lost(procs *p)
{
    p->fs_dead = true;
    ex__procs_set_broken(p);
}

/* Takes the fds a reply carried: up to FS_NFDS into fds (when fds is
 * not NULL), any other closed.  Returns how many it kept. */
static int take_fds(struct msghdr *mh, ssize_t n, int fds[FS_NFDS])
{
    int got = 0;
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(mh) : NULL; c;
         c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (fds && got < FS_NFDS)
                fds[got++] = fd;
            else
                ex__close(&fd);
        }
    }
    return got;
}

/* One request, one reply; up to FS_NFDS fds come back (two at least for
 * a successful SPAWN).  Blocking (the fork server answers at once: SPAWN
 * forks, REAP follows a SIGKILL). */
static int fs_request(procs *p, const fs_msg *req, fs_msg *rep,
                      int fds[FS_NFDS])
{
    if (p->fs_dead || p->ctl_fd < 0)
        return EX_ESYS;
    ssize_t n;
    while ((n = send(p->ctl_fd, req, sizeof *req, MSG_NOSIGNAL)) < 0 &&
           errno == EINTR)
        ;
    if (n != (ssize_t)sizeof *req) {
        ex__procs_fs_lost(p);
        return EX_ESYS;
    }
    fs_cmsg u;
    struct iovec iov = {.iov_base = rep, .iov_len = sizeof *rep};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    while ((n = recvmsg(p->ctl_fd, &mh, MSG_CMSG_CLOEXEC)) < 0 &&
           errno == EINTR)
        ;
    int got = take_fds(&mh, n, fds);
    bool bad = n != (ssize_t)sizeof *rep || (mh.msg_flags & MSG_CTRUNC) ||
               rep->op != req->op;
    if (bad || (fds && rep->err == 0 && got < 2)) {
        while (got > 0)
            ex__close(&fds[--got]);
        if (bad)
            ex__procs_fs_lost(p);
        if (n == 0)
            errno = EPIPE;
        return EX_ESYS;
    }
    return 0;
}

/* False once the control socket shows the fork server gone (checked
 * without blocking; a later death is noticed by the next request). */
static bool fs_alive(procs *p)
{
    if (p->fs_dead || p->ctl_fd < 0)
        return false;
    struct pollfd pf = {.fd = p->ctl_fd, .events = POLLIN};
    int r;
    while ((r = poll(&pf, 1, 0)) < 0 && errno == EINTR)
        ;
    /* It never speaks unasked: readable or hung up means dead. */
    if (r != 0)
        ex__procs_fs_lost(p);
    return !p->fs_dead;
}

void ex__procs_fs_kill(procs *p, pid_t pid)
{
    if (pid <= 0 || !fs_alive(p))
        return;
    /* Cannot fail: the pid is unreaped (a zombie at worst). */
    (void)kill(pid, SIGKILL);
    fs_msg req = {.op = FS_REAP, .pid = pid}, rep;
    (void)fs_request(p, &req, &rep, NULL);
}

int ex__procs_fs_spawn(procs *p, unsigned index, pid_t *pid,
                       int fds[FS_NFDS])
{
    fs_msg req = {.op = FS_SPAWN, .arg = (int32_t)index}, rep;
    memset(&rep, 0, sizeof rep);
    int rc = fs_request(p, &req, &rep, fds);
    if (rc != 0) {
        /* Forked, but its pipes were lost on the way: undo it. */
        if (rep.op == FS_SPAWN && rep.err == 0 && rep.pid > 0)
            ex__procs_fs_kill(p, rep.pid);
        return rc;
    }
    if (rep.err != 0) {
        errno = rep.err;
        return EX_ESYS;
    }
    *pid = rep.pid;
    return 0;
}

void ex__procs_fs_stop(procs *p)
{
    if (p->ctl_fd >= 0 && !p->fs_dead) {
        fs_msg m = {.op = FS_EXIT};
        /* Failure: it is gone already, and waitpid below reaps it. */
        while (send(p->ctl_fd, &m, sizeof m, MSG_NOSIGNAL) < 0 &&
               errno == EINTR)
            ;
    }
    ex__close(&p->ctl_fd);
    if (p->fs_pid > 0) {
        while (waitpid(p->fs_pid, NULL, 0) < 0 && errno == EINTR)
            ;
        p->fs_pid = 0;
    }
}
