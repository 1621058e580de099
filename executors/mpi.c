/*
 * mpi.c: the mpi backend (EX_MPI), the application's side.
 *
 * The executor is threads.c's pool (its queue, futures, callbacks,
 * bounded queue, shutdown matrix and gauges, unchanged) whose worker
 * threads are proxies: thread i holds a socket to the broker, which holds
 * MPI worker i (mpi_internal.h says why a broker).  A proxy sends its
 * task's name and input, waits for the reply and records the worker's own
 * measurements; one task at a time per MPI worker, as mpi4py.futures.
 *
 * This file never calls MPI: it starts the broker (this executable again,
 * posix_spawn of /proc/self/exe with MPI_ROLE_ENV set, so that the
 * application's ex_worker_main takes that role), hands it the proxies'
 * sockets, waits for its workers to be up, and at the end asks it to stop
 * and reaps it.  Faults all arrive as EOF on a proxy's socket (the broker
 * exits when any MPI worker dies) or as a proxy's timeout (the proxy asks
 * the broker to end the job): the executor is then broken, and every task
 * still queued or running fails with EX_EBROKEN.
 */
#include "mpi_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* How long the broker may take to start its workers, and to stop. */
#define MPI_START_NS ((int64_t)120 * 1000000000)
#define MPI_STOP_NS ((int64_t)15 * 1000000000)
/* The largest input or output: one MPI message, whose count is an int. */
#define MPI_DEFAULT_MAX_PAYLOAD ((size_t)1 << 30)

typedef struct mpi_ctx {
    ex_executor *ex;
    pid_t broker;
    int ctl;              /* control socket, -1 once closed */
    int *sock;            /* proxy i's socket to the broker */
    pid_t *pids;          /* MPI worker i's pid (on its host) */
    unsigned n;
    size_t max_payload;
    bool mpirun;          /* the broker is mpirun's rank 0 (mpi_run.c) */
    int mpirun_fd;        /* its control socket until broker_start */
    pthread_mutex_t ctl_lock; /* proxies' MPI_CTL_KILL against the end */
} mpi_ctx;

/* ------------------------------------------------------------ sockets */

/* Waits up to dl (absolute, -1 none) for fd to be readable: 0, or
 * EX_ETIMEDOUT. */
static int wait_readable(int fd, int64_t dl)
{
    for (;;) {
        int ms = -1;
        if (dl >= 0) {
            int64_t left = dl - (int64_t)ex_now_ns();
            if (left <= 0)
                return EX_ETIMEDOUT;
            ms = (int)((left + 999999) / 1000000);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return 0; /* the read that follows reports it */
    }
}

/* One byte to the broker (MPI_CTL_*), if it is still there. */
static void ctl_send(mpi_ctx *c, char op)
{
    pthread_mutex_lock(&c->ctl_lock);
    if (c->ctl >= 0)
        while (send(c->ctl, &op, 1, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
    pthread_mutex_unlock(&c->ctl_lock);
}

/* ------------------------------------------------------------ proxies */

/* f fails without a run (error), counted as failed. */
static void proxy_fail(ex_probe *chain, ex_future *f, int error)
{
    ex__count(chain->counts, &chain->counts->failed);
    ex__future_finish(f, error, 0);
}

/* The request for f on socket fd: 0, EX_EINVAL (not registered, or too
 * large for one MPI message) or EX_ESYS (the broker is gone). */
static int proxy_send(mpi_ctx *c, int fd, ex_future *f)
{
    char name[EX_TASK_NAME_MAX + 1];
    mpi_req rq = {.magic = MPI_MAGIC, .in_len = f->in_len};
    ex_task_fn fn = f->fn;
    if (fn == ex__chunk_task) {
        fn = ex__chunk_fn(f->in, f->in_len);
        rq.flags = MPI_REQ_CHUNK;
    }
    if (!fn || !ex__task_name(fn, name) || f->in_len > c->max_payload)
        return EX_EINVAL;
    rq.name_len = (uint32_t)strlen(name);
    struct iovec iov[3] = {
        {.iov_base = &rq, .iov_len = sizeof rq},
        {.iov_base = name, .iov_len = rq.name_len},
        {.iov_base = (void *)f->in, .iov_len = f->in_len},
    };
    return ex__send_full(fd, iov, 3);
}

/* The reply to the request sent at sent_ns: 0 with *rp and out filled,
 * EX_ETIMEDOUT (the task's timeout ran out), or EX_EBROKEN. */
static int proxy_receive(mpi_ctx *c, int fd, mpi_rep *rp, ex_buf *out)
{
    int64_t t = c->ex->cfg.timeout_ns;
    if (t > 0 && wait_readable(fd, (int64_t)ex_now_ns() + t) != 0)
        return EX_ETIMEDOUT;
    if (ex__read_full(fd, rp, sizeof *rp) != 0 || rp->magic != MPI_MAGIC ||
        rp->out_len > c->max_payload)
        return EX_EBROKEN;
    if (rp->out_len && !ex_buf_extend(out, (size_t)rp->out_len))
        return EX_EBROKEN; /* the stream cannot be resynchronised */
    if (rp->out_len && ex__read_full(fd, out->data, (size_t)rp->out_len) != 0)
        return EX_EBROKEN;
    return 0;
}

/* Records the worker's measurements and output, then finishes f. */
static void proxy_finish(ex_probe *chain, unsigned index, ex_future *f,
                         const mpi_rep *rp, uint64_t sent_ns, ex_buf *out)
{
    uint64_t now = ex_now_ns();
    ex_task_stats st = {
        .flags = rp->flags, .start_ns = rp->start_ns, .end_ns = rp->end_ns,
        .cpu_ns = rp->cpu_ns, .nvcsw = rp->nvcsw, .nivcsw = rp->nivcsw,
        .worker = (int)index, .cpu = rp->cpu, .worker_pid = rp->pid,
        .ipc_send_ns = rp->start_ns > sent_ns ? rp->start_ns - sent_ns : 0,
        .ipc_recv_ns = now > rp->end_ns ? now - rp->end_ns : 0,
    };
    /* Another host's clock: keep start <= end <= now on ours. */
    if (st.end_ns > now || st.start_ns > st.end_ns || st.start_ns < sent_ns) {
        uint64_t wall = rp->end_ns >= rp->start_ns ? rp->end_ns - rp->start_ns : 0;
        st.end_ns = now;
        st.start_ns = now - wall > sent_ns ? now - wall : sent_ns;
    }
    ex__future_record(f, &st, out);
    int error = rp->error ? rp->error : rp->status ? EX_ETASK : 0;
    ex__count(chain->counts, error ? &chain->counts->failed : &chain->counts->completed);
    ex__future_finish(f, error, rp->error ? 0 : rp->status);
}

/* ex__proxy_fn: runs f on MPI worker index through the broker. */
static void proxy_run(void *ctx, unsigned index, ex_future *f, ex_probe *chain)
{
    mpi_ctx *c = ctx;
    if (atomic_load(&c->ex->broken)) {
        proxy_fail(chain, f, EX_EBROKEN);
        return;
    }
    int fd = c->sock[index];
    uint64_t sent_ns = ex_now_ns();
    int rc = proxy_send(c, fd, f);
    if (rc == EX_EINVAL) {
        proxy_fail(chain, f, EX_EINVAL);
        return;
    }
    mpi_rep rp;
    ex_buf out = {0};
    if (rc == 0)
        rc = proxy_receive(c, fd, &rp, &out);
    else
        rc = EX_EBROKEN;
    if (rc == 0) {
        proxy_finish(chain, index, f, &rp, sent_ns, &out);
        return;
    }
    ex_buf_free(&out);
    atomic_store(&c->ex->broken, true);
    if (rc == EX_ETIMEDOUT) /* no fault tolerance: the whole job ends */
        ctl_send(c, MPI_CTL_KILL);
    proxy_fail(chain, f, rc);
}

/* ------------------------------------------------------------- broker */

/* Sends the hello and the broker's ends of the proxies' sockets. */
static int send_hello(mpi_ctx *c, const int *ends)
{
    mpi_hello h = {.magic = MPI_MAGIC, .workers = c->n, .max_payload = c->max_payload};
    struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
    size_t fdbytes = c->n * sizeof(int);
    char *cbuf = calloc(1, CMSG_SPACE(fdbytes));
    if (!cbuf)
        return EX_ENOMEM;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = CMSG_SPACE(fdbytes)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(fdbytes);
    memcpy(CMSG_DATA(cm), ends, fdbytes);
    ssize_t k;
    while ((k = sendmsg(c->ctl, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    free(cbuf);
    return k == (ssize_t)sizeof h ? 0 : EX_ESYS;
}

/* posix_spawn of this executable in the broker role, its control socket
 * at MPI_CTL_FD.  0 or EX_ESYS / EX_ENOMEM. */
static int spawn_broker(mpi_ctx *c, int child_ctl)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return EX_ENOMEM;
    for (size_t i = 0, j = 0; i < n; i++)
        if (strncmp(environ[i], MPI_ROLE_ENV "=", sizeof MPI_ROLE_ENV) != 0)
            env[j++] = environ[i];
    size_t last = 0;
    while (env[last])
        last++;
    env[last] = MPI_ROLE_ENV "=" MPI_ROLE_BROKER;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, child_ctl, MPI_CTL_FD);
    char *argv[] = {"poolbench-mpi-broker", NULL};
    int err = posix_spawn(&c->broker, "/proc/self/exe", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    if (err) {
        errno = err;
        c->broker = 0;
        return EX_ESYS;
    }
    return 0;
}

/* The broker's answer: its workers' pids.  0, or EX_EBROKEN. */
static int await_ready(mpi_ctx *c)
{
    mpi_ready r;
    if (wait_readable(c->ctl, (int64_t)ex_now_ns() + MPI_START_NS) != 0 ||
        ex__read_full(c->ctl, &r, sizeof r) != 0 || r.magic != MPI_MAGIC ||
        r.status != 0 || r.workers != c->n)
        return EX_EBROKEN;
    for (unsigned i = 0; i < c->n; i++) {
        int32_t pid;
        if (ex__read_full(c->ctl, &pid, sizeof pid) != 0)
            return EX_EBROKEN;
        c->pids[i] = pid;
    }
    return 0;
}

/* ------------------------------------------------------ mpirun's broker */

/* Under mpirun (mpi_run.c) the broker rank's control socket and its
 * workers, from MPI_RUN_ENV; the first EX_MPI executor takes them. */
static pthread_once_t run_once = PTHREAD_ONCE_INIT;
static atomic_int run_fd = -1;
static unsigned run_workers;

static void run_parse(void)
{
    const char *v = getenv(MPI_RUN_ENV);
    int fd, n;
    if (v && sscanf(v, "%d:%d", &fd, &n) == 2 && fd >= 0 && n >= 1) {
        run_workers = (unsigned)n;
        atomic_store(&run_fd, fd);
    }
    unsetenv(MPI_RUN_ENV);
}

/* The mpirun job's workers if they are still free (then *n), else 0. */
static unsigned run_available(void)
{
    pthread_once(&run_once, run_parse);
    return atomic_load(&run_fd) >= 0 ? run_workers : 0;
}

/* Socket pairs, the broker spawned with its ends (or, under mpirun, the
 * broker rank's control socket), and its workers up. */
static int broker_start(mpi_ctx *c)
{
    int ctl[2], rc = 0;
    int *ends = calloc(c->n, sizeof *ends);
    if (!ends)
        return EX_ENOMEM;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0) {
        free(ends);
        return EX_ESYS;
    }
    c->ctl = ctl[0];
    /* Not MPI_CTL_FD itself: dup2 onto the same fd would keep CLOEXEC. */
    int child_ctl = fcntl(ctl[1], F_DUPFD_CLOEXEC, MPI_CTL_FD + 1);
    ex__close(&ctl[1]);
    for (unsigned i = 0; i < c->n && rc == 0; i++) {
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
            rc = EX_ESYS;
            break;
        }
        c->sock[i] = sp[0];
        ends[i] = sp[1];
    }
    if (rc == 0 && c->mpirun) {
        ex__close(&c->ctl); /* the broker rank is there already */
        c->ctl = c->mpirun_fd;
        c->mpirun_fd = -1;
    } else if (rc == 0) {
        rc = child_ctl < 0 ? EX_ESYS : spawn_broker(c, child_ctl);
    }
    ex__close(&child_ctl);
    if (rc == 0)
        rc = send_hello(c, ends);
    for (unsigned i = 0; i < c->n; i++)
        ex__close(&ends[i]);
    free(ends);
    if (rc == 0)
        rc = await_ready(c);
    return rc;
}

/* Asks the broker to end (exit: cleanly; else at once), waits for it up to
 * MPI_STOP_NS, then kills it, and reaps it.  The broker reaps its own
 * descendants (it is their subreaper). */
static void broker_stop(mpi_ctx *c, bool clean)
{
    if (c->broker > 0) {
        ctl_send(c, clean ? MPI_CTL_EXIT : MPI_CTL_KILL);
        int pfd = ex__pidfd_open(c->broker);
        bool gone = pfd >= 0 && wait_readable(pfd, (int64_t)ex_now_ns() + MPI_STOP_NS) == 0;
        if (!gone)
            kill(c->broker, SIGKILL);
        ex__close(&pfd);
        while (waitpid(c->broker, NULL, 0) < 0 && errno == EINTR)
            ;
        c->broker = 0;
    }
    pthread_mutex_lock(&c->ctl_lock);
    ex__close(&c->ctl);
    pthread_mutex_unlock(&c->ctl_lock);
    for (unsigned i = 0; i < c->n; i++)
        ex__close(&c->sock[i]);
}

/* -------------------------------------------------------------- vtable */

static int mpi_start(ex_executor *ex)
{
    mpi_ctx *c = ex__threads_proxy_ctx(ex);
    int rc = broker_start(c);
    if (rc) {
        broker_stop(c, false);
        return rc == EX_ENOMEM ? rc : EX_EBROKEN;
    }
    return ex__threads_vtable.start(ex);
}

/* Only named tasks can travel (ex_map's chunks: the function inside). */
static int mpi_submit(ex_executor *ex, ex_future *f, bool force)
{
    char name[EX_TASK_NAME_MAX + 1];
    ex_task_fn fn = f->fn == ex__chunk_task ? ex__chunk_fn(f->in, f->in_len) : f->fn;
    if (!fn || !ex__task_name(fn, name))
        return EX_EINVAL;
    return ex__threads_vtable.submit(ex, f, force);
}

static void mpi_destroy(ex_executor *ex)
{
    mpi_ctx *c = ex__threads_proxy_ctx(ex);
    ex__threads_vtable.destroy(ex); /* joins the proxies */
    broker_stop(c, true);
    ex__close(&c->mpirun_fd);
    pthread_mutex_destroy(&c->ctl_lock);
    free(c->sock);
    free(c->pids);
    free(c);
}

static pid_t mpi_worker_pid(ex_executor *ex, unsigned index)
{
    mpi_ctx *c = ex__threads_proxy_ctx(ex);
    return index < c->n ? c->pids[index] : 0;
}

/* What mpi does not change is the threads pool's own. */
static int mpi_shutdown(ex_executor *ex, bool wait, bool cancel_pending)
{
    return ex__threads_vtable.shutdown(ex, wait, cancel_pending);
}

static int mpi_inside(ex_executor *ex)
{
    return ex__threads_vtable.inside(ex);
}

static const ex__run_counts *mpi_run_counts(const ex_executor *ex, unsigned *n)
{
    return ex__threads_vtable.run_counts(ex, n);
}

static unsigned mpi_workers_alive(const ex_executor *ex)
{
    return ex__threads_vtable.workers_alive(ex);
}

static const ex_vtable mpi_vtable = {
    .name = "mpi",
    .start = mpi_start,
    .submit = mpi_submit,
    .shutdown = mpi_shutdown,
    .destroy = mpi_destroy,
    .worker_pid = mpi_worker_pid,
    .inside = mpi_inside,
    .run_counts = mpi_run_counts,
    .workers_alive = mpi_workers_alive,
};

static mpi_ctx *ctx_new(const ex_config *cfg, unsigned n)
{
    mpi_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->n = n;
    c->ctl = -1;
    c->mpirun_fd = -1;
    /* One MPI message (an int count of bytes) carries a task. */
    size_t cap = cfg->max_payload ? cfg->max_payload : MPI_DEFAULT_MAX_PAYLOAD;
    c->max_payload = cap < MPI_DEFAULT_MAX_PAYLOAD ? cap : MPI_DEFAULT_MAX_PAYLOAD;
    c->sock = malloc(n * sizeof *c->sock);
    c->pids = calloc(n, sizeof *c->pids);
    if (!c->sock || !c->pids || pthread_mutex_init(&c->ctl_lock, NULL) != 0) {
        free(c->sock);
        free(c->pids);
        free(c);
        return NULL;
    }
    for (unsigned i = 0; i < n; i++)
        c->sock[i] = -1;
    return c;
}

int ex__mpi_new(const ex_config *cfg, ex_executor **out)
{
    const char *why;
    if (!ex_mpi_available(&why))
        return EX_EUNAVAIL;
    if (getenv(MPI_ROLE_ENV)) {
        /* We are a broker whose main did not call ex_worker_main: starting
         * another would start brokers without end. */
        fprintf(stderr, "executors: EX_MPI: this program is an mpi broker but "
                        "its main does not call ex_worker_main first\n");
        return EX_EINVAL;
    }
    unsigned job = run_available();
    unsigned n = cfg->max_workers ? cfg->max_workers : job ? job : ex_default_workers();
    if (cfg->on_full == EX_ON_FULL_CALLER_RUNS || n > MPI_MAX_WORKERS)
        return EX_EINVAL;
    if (job && n != job) {
        fprintf(stderr, "executors: EX_MPI under mpirun: this job has %u workers "
                        "(mpirun -n %u), max_workers asks %u\n", job, job + 1, n);
        return EX_EINVAL;
    }
    mpi_ctx *c = ctx_new(cfg, n);
    if (!c)
        return EX_ENOMEM;
    if (job) {
        c->mpirun_fd = atomic_exchange(&run_fd, -1);
        c->mpirun = c->mpirun_fd >= 0; /* else another took it: spawn */
    }
    ex_config mc = *cfg;
    mc.max_workers = n;
    int rc = ex__threads_new_proxy(&mc, &mpi_vtable, proxy_run, c, out);
    if (rc) {
        pthread_mutex_destroy(&c->ctl_lock);
        free(c->sock);
        free(c->pids);
        free(c);
        return rc;
    }
    c->ex = *out;
    return EX_OK;
}
