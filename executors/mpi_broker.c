/*
 * mpi_broker.c: the broker of an mpi executor (mpi_internal.h says why
 * there is one).  A child of the application, running its executable, it
 * is the only process of the executor that is an MPI parent:
 *
 *   1. it takes the proxies' sockets from its control socket, MPI_Init's as
 *      a singleton and MPI_Comm_spawn's one worker per proxy (this
 *      executable, argv[1] = MPI_WORKER_ARG + its lifeline address);
 *   2. each worker connects a TCP lifeline to it and says its rank and
 *      pid; then it tells the application READY with the pids;
 *   3. it relays: a request read from proxy i goes to rank i (MPI_Isend),
 *      a result from rank i goes back to proxy i; one task per rank at a
 *      time, since a proxy waits for its result before it sends again;
 *   4. it ends cleanly on MPI_CTL_EXIT or EOF from the application (STOP
 *      to every rank, disconnect, MPI_Finalize), or at once when a
 *      lifeline closes (a worker died: Open MPI 4.1 would leave us
 *      spinning in a receive, and has no way to replace a rank) or the
 *      application says MPI_CTL_KILL (a task's timeout).
 *
 * Either way it reaps what it started: it is the child subreaper of its
 * descendants (Open MPI's orted, and the workers orted started), so when
 * it ends them nothing is left to init, which may not reap here.
 *
 * The relay never spins a CPU for long: it waits in ppoll on the sockets,
 * and while tasks are out it polls MPI (MPI_Iprobe) with a backoff that
 * grows from a short busy spell to MPI_BACKOFF_MAX_NS.  Open MPI gives no
 * fd to wait on, so the lifelines double as doorbells: a worker writes a
 * byte on its lifeline just before it sends a result, the broker one after
 * it sends a task, and the sleeper wakes at once instead of at the end of
 * its backoff (which only bounds the delay when a byte and its message
 * cross).
 */
/* Only with Open MPI (the Makefile defines EX_HAVE_MPI): without it no
 * broker or worker exists (mpi_role.c). */
#ifdef EX_HAVE_MPI
#include "mpi_internal.h"

#include <mpi.h>

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the workers may take to connect their lifelines. */
#define LIFELINE_WAIT_NS ((int64_t)60 * 1000000000)

enum { END_CLEAN = 1, END_KILL = 2, END_BROKEN = 3 };

typedef struct broker {
    int ctl;
    unsigned n;
    size_t max_payload;
    int *proxy;            /* the application's proxy i */
    int *life;             /* rank i's lifeline, -1 until it connects */
    pid_t *pids;
    int listen_fd;
    char addr[300];        /* "host:port" of listen_fd */
    MPI_Comm inter;
    bool spawned;
    unsigned char **sbuf;  /* the request being sent to rank i */
    MPI_Request *sreq;
    bool *busy;            /* rank i has a task */
    unsigned inflight;
    struct pollfd *pfd;    /* ctl, proxies, lifelines */
} broker;

static void say(const char *what)
{
    fprintf(stderr, "poolbench mpi broker: %s\n", what);
    fflush(stderr);
}

/* ----------------------------------------------------------- start-up */

/* The hello and the proxies' sockets (SCM_RIGHTS).  0 or -1. */
static int take_hello(broker *b)
{
    mpi_hello h;
    struct iovec iov = {.iov_base = &h, .iov_len = sizeof h};
    size_t fdbytes = MPI_MAX_WORKERS * sizeof(int);
    char *cbuf = calloc(1, CMSG_SPACE(fdbytes));
    if (!cbuf)
        return -1;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = CMSG_SPACE(fdbytes)};
    ssize_t k;
    while ((k = recvmsg(b->ctl, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
        ;
    struct cmsghdr *cm = k == (ssize_t)sizeof h ? CMSG_FIRSTHDR(&mh) : NULL;
    int rc = -1;
    if (cm && b->n && h.workers != b->n) { /* under mpirun: the job's ranks */
        fprintf(stderr, "poolbench mpi broker: the application asks for %u workers, "
                        "but this mpirun job has %u (mpirun -n %u)\n",
                (unsigned)h.workers, b->n, b->n + 1);
        cm = NULL;
    }
    if (cm && h.magic == MPI_MAGIC && h.workers >= 1 && h.workers <= MPI_MAX_WORKERS &&
        cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(h.workers * sizeof(int))) {
        b->n = h.workers;
        b->max_payload = (size_t)h.max_payload;
        b->proxy = malloc(b->n * sizeof(int));
        if (b->proxy) {
            memcpy(b->proxy, CMSG_DATA(cm), b->n * sizeof(int));
            rc = 0;
        }
    }
    free(cbuf);
    return rc;
}

static int alloc_slots(broker *b)
{
    b->life = malloc(b->n * sizeof *b->life);
    b->pids = calloc(b->n, sizeof *b->pids);
    b->sbuf = calloc(b->n, sizeof *b->sbuf);
    b->sreq = calloc(b->n, sizeof *b->sreq);
    b->busy = calloc(b->n, sizeof *b->busy);
    b->pfd = calloc(1 + 2 * b->n, sizeof *b->pfd);
    if (!b->life || !b->pids || !b->sbuf || !b->sreq || !b->busy || !b->pfd)
        return -1;
    for (unsigned i = 0; i < b->n; i++)
        b->life[i] = -1;
    return 0;
}

/* Whether some rank of this mpirun job runs on another host. */
static bool job_spans_hosts(void)
{
    const char *all = getenv("OMPI_COMM_WORLD_SIZE"), *here = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    return all && here && strcmp(all, here) != 0;
}

/* The lifelines' listening socket: loopback unless workers may be on
 * other hosts (POOLBENCH_MPI_HOSTS, a hostfile, or mpirun's ranks). */
static int listen_lifelines(broker *b)
{
    bool remote = getenv("POOLBENCH_MPI_HOSTS") || getenv("OMPI_MCA_orte_default_hostfile") ||
                  job_spans_hosts();
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(remote ? INADDR_ANY : INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    b->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b->listen_fd < 0 || bind(b->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(b->listen_fd, (int)b->n) != 0 ||
        getsockname(b->listen_fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    char host[256] = "127.0.0.1";
    if (remote && gethostname(host, sizeof host) != 0)
        return -1;
    host[sizeof host - 1] = '\0';
    snprintf(b->addr, sizeof b->addr, "%s:%u", host, (unsigned)ntohs(sa.sin_port));
    return 0;
}

/* MPI_Comm_spawn of n workers of this executable.  0 or -1 (said). */
static int spawn_workers(broker *b)
{
    char path[4096];
    ssize_t k = readlink("/proc/self/exe", path, sizeof path - 1);
    if (k <= 0)
        return -1;
    path[k] = '\0';
    char arg[sizeof MPI_WORKER_ARG + sizeof b->addr];
    snprintf(arg, sizeof arg, "%s%s", MPI_WORKER_ARG, b->addr);
    char *argv[] = {arg, NULL};
    MPI_Info info = MPI_INFO_NULL;
    const char *hosts = getenv("POOLBENCH_MPI_HOSTS");
    if (hosts && *hosts) {
        MPI_Info_create(&info);
        MPI_Info_set(info, "host", hosts);
    }
    int *errs = calloc(b->n, sizeof *errs);
    if (!errs)
        return -1;
    int rc = MPI_Comm_spawn(path, argv, (int)b->n, info, 0, MPI_COMM_SELF, &b->inter, errs);
    if (info != MPI_INFO_NULL)
        MPI_Info_free(&info);
    for (unsigned i = 0; rc == MPI_SUCCESS && i < b->n; i++)
        if (errs[i] != MPI_SUCCESS)
            rc = errs[i];
    free(errs);
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING + 64] = "MPI_Comm_spawn failed: ";
        int len = 0;
        MPI_Error_string(rc, msg + strlen(msg), &len);
        say(msg);
        return -1;
    }
    b->spawned = true;
    MPI_Comm_set_errhandler(b->inter, MPI_ERRORS_RETURN);
    return 0;
}

/* One lifeline accepted: the rank and pid it says.  0 or -1. */
static int accept_lifeline(broker *b)
{
    int fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EINTR ? 0 : -1;
    mpi_life_hello h;
    if (ex__read_full(fd, &h, sizeof h) != 0 || h.magic != MPI_MAGIC ||
        h.rank < 0 || (unsigned)h.rank >= b->n || b->life[h.rank] >= 0) {
        close(fd);
        return -1;
    }
    b->life[h.rank] = fd;
    b->pids[h.rank] = h.pid;
    return 0;
}

/* Every rank's lifeline, within LIFELINE_WAIT_NS.  0 or -1. */
static int accept_lifelines(broker *b)
{
    int64_t dl = (int64_t)ex_now_ns() + LIFELINE_WAIT_NS;
    for (unsigned got = 0; got < b->n;) {
        int64_t left = dl - (int64_t)ex_now_ns();
        struct pollfd p = {.fd = b->listen_fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)(left / 1000000) + 1) < 0) {
            if (left > 0 && errno == EINTR)
                continue;
            say("the MPI workers did not connect their lifelines in time");
            return -1;
        }
        if (p.revents) {
            if (accept_lifeline(b) != 0) {
                say("a bad lifeline connection");
                return -1;
            }
            got = 0;
            for (unsigned i = 0; i < b->n; i++)
                got += b->life[i] >= 0;
        }
    }
    return 0;
}

/* READY (status 0 and the pids) or the failure to the application. */
static void tell_ready(broker *b, int status)
{
    mpi_ready r = {.magic = MPI_MAGIC, .status = status, .workers = b->n};
    struct iovec iov[2] = {{.iov_base = &r, .iov_len = sizeof r},
                           {.iov_base = b->pids, .iov_len = status ? 0 : b->n * sizeof(int32_t)}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    while (sendmsg(b->ctl, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
}

/* ---------------------------------------------------------------- end */

/* sig to each of our children, those of every thread (orted leaves our
 * process group: setsid; and an MPI thread may have forked it). */
static void signal_children(int sig)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/children", e->d_name);
        FILE *f = fopen(path, "r");
        int child;
        while (f && fscanf(f, "%d", &child) == 1)
            kill(child, sig);
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
}

/* Sends sig (unless 0) to our children and reaps every descendant (we are
 * their subreaper) until none is left; past grace_ns, SIGKILL for what
 * remains, again and again (orphans of a killed orted come to us). */
static void reap_all(int sig, int64_t grace_ns)
{
    int64_t dl = (int64_t)ex_now_ns() + grace_ns;
    if (sig)
        signal_children(sig);
    bool hard = sig == SIGKILL;
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0 && errno != EINTR)
            return; /* ECHILD: none left */
        if (pid > 0)
            continue;
        if (hard || (int64_t)ex_now_ns() > dl) {
            signal_children(SIGKILL);
            hard = true;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

/* A worker died or the application said kill: the MPI job ends now.
 * Remote workers see their lifeline close; orted and the local workers
 * are our descendants: killed, and the workers, orphaned, come to us
 * (their subreaper) to be killed in turn.  Never by a remembered pid,
 * which may have been reused. */
_Noreturn static void end_now(broker *b)
{
    for (unsigned i = 0; b->life && i < b->n; i++)
        ex__close(&b->life[i]);
    reap_all(SIGKILL, 0);
    _exit(3);
}

/* STOP to every rank, then the collective end of MPI. */
static void end_mpi(broker *b)
{
    /* The last resort if MPI's collective end hangs: the default action
     * of SIGALRM ends us, orted sees its singleton gone and ends too. */
    alarm(60);
    for (unsigned i = 0; i < b->n; i++)
        MPI_Send(NULL, 0, MPI_BYTE, (int)i, MPI_TAG_STOP, b->inter);
    MPI_Comm_disconnect(&b->inter);
    MPI_Finalize();
    for (unsigned i = 0; i < b->n; i++)
        ex__close(&b->life[i]);
    alarm(0);
}

/* The spawn mode's clean end: MPI's, then orted's. */
static void end_clean(broker *b)
{
    end_mpi(b);
    /* orted outlives its job until its singleton dies, which it learns
     * from EOF on a pipe we hold ("--singleton-died-pipe"; it ignores
     * SIGTERM): closing every fd we have but stdio ends it, and we reap it
     * (SIGKILL after a grace period). */
    ex__close_fds_except(NULL, 0, 0);
    reap_all(0, (int64_t)5 * 1000000000);
}

/* -------------------------------------------------------------- relay */

/* Request from proxy i, whole, to rank i.  0, or END_CLEAN (the
 * application is gone), END_BROKEN (MPI failed). */
static int forward(broker *b, unsigned i)
{
    mpi_req rq;
    if (ex__read_full(b->proxy[i], &rq, sizeof rq) != 0)
        return END_CLEAN;
    if (rq.magic != MPI_MAGIC || rq.name_len == 0 || rq.name_len > EX_TASK_NAME_MAX ||
        rq.in_len > b->max_payload) {
        say("a malformed request from the application");
        return END_CLEAN;
    }
    size_t total = sizeof rq + rq.name_len + (size_t)rq.in_len;
    unsigned char *buf = malloc(total);
    if (!buf) {
        say("out of memory for a request");
        return END_BROKEN;
    }
    memcpy(buf, &rq, sizeof rq);
    if (ex__read_full(b->proxy[i], buf + sizeof rq, total - sizeof rq) != 0) {
        free(buf);
        return END_CLEAN;
    }
    if (MPI_Isend(buf, (int)total, MPI_BYTE, (int)i, MPI_TAG_TASK, b->inter,
                  &b->sreq[i]) != MPI_SUCCESS) {
        free(buf);
        say("MPI_Isend failed");
        return END_BROKEN;
    }
    b->sbuf[i] = buf;
    b->busy[i] = true;
    b->inflight++;
    /* Wake the worker from its wait (a lost byte costs only latency). */
    char wake = MPI_LIFE_TASK;
    (void)!send(b->life[i], &wake, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    return 0;
}

/* One result from rank src, relayed to its proxy.  0 or END_*. */
static int relay_result(broker *b, const MPI_Status *st)
{
    int count = 0, src = st->MPI_SOURCE;
    MPI_Get_count(st, MPI_BYTE, &count);
    unsigned char *buf = malloc(count > 0 ? (size_t)count : 1);
    if (!buf || src < 0 || (unsigned)src >= b->n || !b->busy[src]) {
        free(buf);
        say(buf ? "a result from an idle rank" : "out of memory for a result");
        return END_BROKEN;
    }
    if (MPI_Recv(buf, count, MPI_BYTE, src, MPI_TAG_RESULT, b->inter,
                 MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        free(buf);
        say("MPI_Recv failed");
        return END_BROKEN;
    }
    int rc = ex__write_full(b->proxy[src], buf, (size_t)count) == 0 ? 0 : END_CLEAN;
    free(buf);
    b->busy[src] = false;
    b->inflight--;
    return rc;
}

/* Sends completed and results relayed: *moved says whether anything did.
 * 0 or END_*. */
static int mpi_progress(broker *b, bool *moved)
{
    for (unsigned i = 0; i < b->n; i++) {
        int done = 0;
        if (b->sbuf[i] && MPI_Test(&b->sreq[i], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS &&
            done) {
            free(b->sbuf[i]);
            b->sbuf[i] = NULL;
        }
    }
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_TAG_RESULT, b->inter, &flag, &st) != MPI_SUCCESS) {
            say("MPI_Iprobe failed");
            return END_BROKEN;
        }
        if (!flag)
            return 0;
        int rc = relay_result(b, &st);
        if (rc)
            return rc;
        *moved = true;
    }
}

/* The poll set: ctl, the idle proxies, every lifeline. */
static nfds_t poll_set(broker *b)
{
    b->pfd[0] = (struct pollfd){.fd = b->ctl, .events = POLLIN};
    for (unsigned i = 0; i < b->n; i++) {
        b->pfd[1 + i] = (struct pollfd){.fd = b->busy[i] ? -1 : b->proxy[i], .events = POLLIN};
        b->pfd[1 + b->n + i] = (struct pollfd){.fd = b->life[i], .events = POLLIN};
    }
    return 1 + 2 * b->n;
}

/* Rank i's lifeline is readable: MPI_LIFE_RESULT bytes (a result is on
 * its way: *moved, so that the relay polls MPI at once) and true, or EOF
 * or an error: false, the worker is gone. */
static bool lifeline_wake(broker *b, unsigned i, bool *moved)
{
    char buf[64];
    ssize_t k = read(b->life[i], buf, sizeof buf);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (k <= 0)
        return false;
    *moved = true;
    return true;
}

/* What the sockets said after a ppoll.  0 or END_*. */
static int handle_fds(broker *b, bool *moved)
{
    if (b->pfd[0].revents) {
        char op = 0;
        ssize_t k = read(b->ctl, &op, 1);
        if (k < 0 && errno == EINTR)
            return 0;
        return k == 1 && op == MPI_CTL_KILL ? END_KILL : END_CLEAN;
    }
    for (unsigned i = 0; i < b->n; i++)
        if (b->pfd[1 + b->n + i].revents && !lifeline_wake(b, i, moved)) {
            fprintf(stderr, "poolbench mpi broker: MPI worker %u (pid %d) died; Open MPI "
                            "cannot go on without a rank: ending the MPI job, every "
                            "pending task fails with EX_EBROKEN\n", i, (int)b->pids[i]);
            return END_BROKEN;
        }
    for (unsigned i = 0; i < b->n; i++)
        if (b->pfd[1 + i].revents) {
            int rc = forward(b, i);
            if (rc)
                return rc;
            *moved = true;
        }
    return 0;
}

/* Relays until the end: END_CLEAN, END_KILL or END_BROKEN. */
static int relay(broker *b)
{
    uint64_t quiet_since = ex_now_ns();
    int64_t backoff = 0;
    for (;;) {
        nfds_t nf = poll_set(b);
        struct timespec ts = {0, backoff}, *tp = b->inflight ? &ts : NULL;
        if (ppoll(b->pfd, nf, tp, NULL) < 0 && errno != EINTR) {
            say("ppoll failed");
            return END_BROKEN;
        }
        bool moved = false;
        int rc = handle_fds(b, &moved);
        if (!rc && b->inflight)
            rc = mpi_progress(b, &moved);
        if (rc)
            return rc;
        if (moved)
            quiet_since = ex_now_ns();
        backoff = ex__mpi_backoff(quiet_since, backoff);
    }
}

void ex__mpi_broker_main(int *argc, char ***argv)
{
    broker b = {.ctl = MPI_CTL_FD, .listen_fd = -1};
    /* Only stdio and our control socket: no fd of the application's
     * keeps a pipe of its open through us, orted or the workers. */
    int keep = MPI_CTL_FD;
    ex__close_fds_except(&keep, 1, 0);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (take_hello(&b) != 0 || alloc_slots(&b) != 0) {
        say("no hello from the application");
        _exit(1);
    }
    /* A singleton has one slot; its workers need more. */
    setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 0);
    int rc = MPI_Init(argc, argv);
    if (rc == MPI_SUCCESS) {
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_set_errhandler(MPI_COMM_SELF, MPI_ERRORS_RETURN);
    } else {
        say("MPI_Init failed");
    }
    if (rc != MPI_SUCCESS || listen_lifelines(&b) != 0 || spawn_workers(&b) != 0 ||
        accept_lifelines(&b) != 0) {
        tell_ready(&b, EX_EBROKEN);
        end_now(&b);
    }
    ex__close(&b.listen_fd);
    tell_ready(&b, 0);
    int end = relay(&b);
    /* A task still out (the application went away without waiting for
     * it) would keep MPI's collective end waiting: end it now. */
    if (end != END_CLEAN || b.inflight)
        end_now(&b);
    end_clean(&b);
}

/* ----------------------------------------------------- mpirun's rank 0 */

/* Under mpirun the ranks are not ours to kill: MPI_Abort asks mpirun to
 * end the job (this rank too; the application, in its own session, stays). */
_Noreturn static void mpirun_abort(broker *b)
{
    for (unsigned i = 0; b->life && i < b->n; i++)
        ex__close(&b->life[i]);
    ex__close(&b->ctl);
    MPI_Abort(MPI_COMM_WORLD, 3);
    _exit(3);
}

/* The lifeline address to every worker rank, and their lifelines.  0 or -1. */
static int mpirun_lifelines(broker *b)
{
    if (listen_lifelines(b) != 0)
        return -1;
    for (unsigned i = 0; i < b->n; i++)
        if (MPI_Send(b->addr, (int)strlen(b->addr), MPI_CHAR, (int)i, MPI_TAG_ADDR,
                     b->inter) != MPI_SUCCESS)
            return -1;
    int rc = accept_lifelines(b);
    ex__close(&b->listen_fd);
    return rc;
}

/* Waits for the application and exits with its status (what mpirun
 * reports for rank 0). */
_Noreturn static void mpirun_exit(pid_t app)
{
    int st = 0;
    while (waitpid(app, &st, 0) < 0 && errno == EINTR)
        ;
    fflush(stdout);
    fflush(stderr);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1);
}

_Noreturn void ex__mpirun_broker_main(int *argc, char ***argv, int ctl, unsigned n,
                                      pid_t app)
{
    broker b = {.ctl = ctl, .listen_fd = -1, .n = n};
    signal(SIGPIPE, SIG_IGN);
    if (alloc_slots(&b) != 0 || MPI_Init(argc, argv) != MPI_SUCCESS) {
        say("MPI_Init failed");
        mpirun_abort(&b);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (ex__mpirun_intercomm(&b.inter) != 0 || mpirun_lifelines(&b) != 0) {
        say("the mpirun job's workers did not come up");
        mpirun_abort(&b);
    }
    MPI_Comm_set_errhandler(b.inter, MPI_ERRORS_RETURN);
    /* Until the application's first EX_MPI executor says hello, or it
     * closes the socket (it exited, or never wanted MPI). */
    if (take_hello(&b) != 0) {
        if (b.proxy == NULL)
            tell_ready(&b, EX_EINVAL);
        end_mpi(&b);
        ex__close(&b.ctl);
        mpirun_exit(app);
    }
    tell_ready(&b, 0);
    int end = relay(&b);
    if (end != END_CLEAN || b.inflight)
        mpirun_abort(&b);
    end_mpi(&b);
    ex__close(&b.ctl);
    for (unsigned i = 0; i < b.n; i++)
        ex__close(&b.proxy[i]);
    mpirun_exit(app);
}

#endif /* EX_HAVE_MPI */
