/*
 * mpi_worker.c: an MPI worker of an mpi executor (mpi_internal.h), this
 * executable started by the broker's MPI_Comm_spawn with argv[1] =
 * MPI_WORKER_ARG + the broker's lifeline address.
 *
 * It connects its lifeline first (a TCP socket to the broker that it never
 * writes again: its death, on any host, closes it, and the broker sees
 * that where MPI would not), and watches it from a thread: when the broker
 * goes, the worker goes, unless it is already ending cleanly.  Then it
 * serves: a TASK message from rank 0 of its parent is a request (name and
 * input), answered by one RESULT message (the reply header with the
 * task's measurements, then its output); STOP ends it.  The function is
 * found by name in this process's registry (ex_task_register, which the
 * program's main filled before ex_worker_main).  It waits for messages with
 * MPI_Iprobe and a backoff (ex__mpi_backoff), never a spinning receive,
 * woken early by the broker's doorbell byte on the lifeline.
 */
/* Only with Open MPI (the Makefile defines EX_HAVE_MPI): without it no
 * broker or worker exists (mpi_role.c). */
#ifdef EX_HAVE_MPI
#include "mpi_internal.h"

#include <mpi.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t ex__mpi_backoff(uint64_t quiet_since, int64_t backoff)
{
    if (ex_now_ns() - quiet_since < MPI_SPIN_NS)
        return 0;
    if (backoff < MPI_BACKOFF_MIN_NS)
        return MPI_BACKOFF_MIN_NS;
    return backoff * 2 < MPI_BACKOFF_MAX_NS ? backoff * 2 : MPI_BACKOFF_MAX_NS;
}

typedef struct lifeline {
    int fd;
    int wake_fd;           /* eventfd: the broker rang (a task follows) */
    atomic_bool ending;    /* the clean end began: EOF is expected */
} lifeline;

/* Connects to "host:port" and says rank and pid.  The fd, or -1. */
static int lifeline_connect(const char *addr, int rank)
{
    char host[300];
    snprintf(host, sizeof host, "%s", addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0)
            ex__close(&fd);
    }
    freeaddrinfo(res);
    mpi_life_hello h = {.magic = MPI_MAGIC, .rank = rank, .pid = getpid()};
    if (fd >= 0 && ex__write_full(fd, &h, sizeof h) != 0)
        ex__close(&fd);
    return fd;
}

/* The lifeline's reader: the broker's doorbell bytes wake the main
 * thread (wake_fd); EOF means the broker is gone, and with it the job. */
static void *lifeline_watch(void *arg)
{
    lifeline *l = arg;
    char buf[64];
    for (;;) {
        ssize_t k = read(l->fd, buf, sizeof buf);
        if (atomic_load(&l->ending))
            return NULL;
        if (k > 0) {
            uint64_t one = 1;
            (void)!write(l->wake_fd, &one, sizeof one);
        } else if (k == 0 || errno != EINTR) {
            _exit(1);
        }
    }
}

/* Runs the request in req (len bytes) into rep and out. */
static void run_request(unsigned char *req, size_t len, ex_probe *probe,
                        mpi_rep *rep, ex_buf *out)
{
    mpi_req rq;
    memcpy(&rq, req, sizeof rq);
    char name[EX_TASK_NAME_MAX + 1];
    ex_task_fn fn = NULL;
    snprintf(name, sizeof name, "(malformed request)");
    if (rq.magic == MPI_MAGIC && rq.name_len >= 1 && rq.name_len <= EX_TASK_NAME_MAX &&
        sizeof rq + rq.name_len + rq.in_len == len) {
        memcpy(name, req + sizeof rq, rq.name_len);
        name[rq.name_len] = '\0';
        fn = ex__task_fn(name);
    }
    *rep = (mpi_rep){.magic = MPI_MAGIC, .pid = getpid(), .cpu = -1};
    if (!fn) {
        rep->error = EX_EINVAL;
        fprintf(stderr, "poolbench mpi worker: no task registered as '%s'\n",
                name);
        return;
    }
    unsigned char *in = req + sizeof rq + rq.name_len;
    if (rq.flags & MPI_REQ_CHUNK) {
        ex__chunk_set_fn(in, (size_t)rq.in_len, fn);
        fn = ex__chunk_task;
    }
    ex_mark m0, m1;
    ex__probe_mark(probe, &m0);
    rep->status = fn(in, (size_t)rq.in_len, out);
    ex__probe_mark(probe, &m1);
    ex_task_stats ts = {0};
    ex__stats_measure(&ts, &m0, &m1);
    rep->cpu = sched_getcpu();
    rep->flags = ts.flags;
    rep->start_ns = ts.start_ns;
    rep->end_ns = ts.end_ns;
    rep->cpu_ns = ts.cpu_ns;
    rep->nvcsw = ts.nvcsw;
    rep->nivcsw = ts.nivcsw;
    rep->out_len = out->len;
    fflush(stdout); /* what the task printed, before its result */
}

/* The next message from the broker (MPI_Iprobe with a backoff, cut short
 * by the broker's doorbell): 0 with *st, or -1 on an MPI error. */
static int await_message(MPI_Comm parent, int wake_fd, MPI_Status *st)
{
    uint64_t quiet_since = ex_now_ns();
    int64_t backoff = 0;
    for (;;) {
        int flag = 0;
        if (MPI_Iprobe(0, MPI_ANY_TAG, parent, &flag, st) != MPI_SUCCESS)
            return -1;
        if (flag)
            return 0;
        backoff = ex__mpi_backoff(quiet_since, backoff);
        if (backoff) {
            struct timespec ts = {0, backoff};
            struct pollfd p = {.fd = wake_fd, .events = POLLIN};
            if (ppoll(&p, 1, &ts, NULL) > 0) {
                uint64_t n;
                (void)!read(wake_fd, &n, sizeof n);
                quiet_since = ex_now_ns(); /* rung: spin for the message */
                backoff = 0;
            }
        }
    }
}

/* One RESULT message: the reply header, then the output. */
static int send_reply(MPI_Comm parent, int life_fd, const mpi_rep *rep, const ex_buf *out,
                      ex_buf *msg)
{
    msg->len = 0;
    if (ex_buf_append(msg, rep, sizeof *rep) != 0 ||
        ex_buf_append(msg, out->data, rep->error ? 0 : out->len) != 0)
        return -1;
    if (rep->error)
        ((mpi_rep *)msg->data)->out_len = 0;
    char ring = MPI_LIFE_RESULT; /* the broker's doorbell */
    (void)!send(life_fd, &ring, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    return MPI_Send(msg->data, (int)msg->len, MPI_BYTE, 0, MPI_TAG_RESULT, parent) ==
                   MPI_SUCCESS ? 0 : -1;
}

/* Serves requests until STOP (0) or an error (-1). */
static int serve(MPI_Comm parent, const lifeline *l)
{
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    ex_probe probe;
    ex__probe_init(&probe, &cfg);
    ex_buf req = {0}, msg = {0};
    int rc = -1;
    for (;;) {
        MPI_Status st;
        int count = 0;
        if (await_message(parent, l->wake_fd, &st) != 0 || MPI_Get_count(&st, MPI_BYTE, &count) != MPI_SUCCESS ||
            count < 0 || (req.len = 0, ex_buf_reserve(&req, (size_t)count + 1) != 0))
            break;
        if (MPI_Recv(req.data, count, MPI_BYTE, 0, st.MPI_TAG, parent, MPI_STATUS_IGNORE) !=
            MPI_SUCCESS)
            break;
        if (st.MPI_TAG == MPI_TAG_STOP) {
            rc = 0;
            break;
        }
        mpi_rep rep;
        ex_buf out = {0};
        run_request(req.data, (size_t)count, &probe, &rep, &out);
        int sent = send_reply(parent, l->fd, &rep, &out, &msg);
        ex_buf_free(&out);
        if (sent != 0)
            break;
    }
    ex_buf_free(&req);
    ex_buf_free(&msg);
    return rc;
}

int ex__mpirun_intercomm(MPI_Comm *inter)
{
    int rank = 0;
    MPI_Comm local;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? 0 : 1, rank, &local) != MPI_SUCCESS)
        return -1;
    int rc = MPI_Intercomm_create(local, 0, MPI_COMM_WORLD, rank == 0 ? 1 : 0,
                                  MPI_TAG_ADDR, inter);
    MPI_Comm_free(&local);
    return rc == MPI_SUCCESS ? 0 : -1;
}

/* MPI_Init and the broker's communicator: the spawn parent, or under
 * mpirun rank 0 (addr NULL), which then sends its lifeline address into
 * addr_buf.  The lifeline's address, or NULL. */
static const char *worker_init(int *argc, char ***argv, const char *addr, MPI_Comm *parent,
                               char *addr_buf, int addr_size)
{
    *parent = MPI_COMM_NULL;
    if (MPI_Init(argc, argv) != MPI_SUCCESS)
        return NULL;
    if (addr) {
        if (MPI_Comm_get_parent(parent) != MPI_SUCCESS || *parent == MPI_COMM_NULL)
            return NULL;
        return addr;
    }
    if (ex__mpirun_intercomm(parent) != 0)
        return NULL;
    MPI_Status st;
    int count = 0;
    if (MPI_Recv(addr_buf, addr_size - 1, MPI_CHAR, 0, MPI_TAG_ADDR, *parent, &st) !=
        MPI_SUCCESS || MPI_Get_count(&st, MPI_CHAR, &count) != MPI_SUCCESS || count <= 0)
        return NULL;
    addr_buf[count] = '\0';
    return addr_buf;
}

void ex__mpi_worker_main(int *argc, char ***argv, const char *addr)
{
    MPI_Comm parent = MPI_COMM_NULL;
    char addr_buf[300];
    addr = worker_init(argc, argv, addr, &parent, addr_buf, (int)sizeof addr_buf);
    if (!addr) {
        fprintf(stderr, "poolbench mpi worker: not started by an mpi broker\n");
        _exit(1);
    }
    MPI_Comm_set_errhandler(parent, MPI_ERRORS_RETURN);
    int rank = 0; /* in our group: the broker's rank for us */
    MPI_Comm_rank(parent, &rank);
    static lifeline l; /* the watcher may outlive this frame at _exit */
    l.fd = lifeline_connect(addr, rank);
    l.wake_fd = eventfd(0, EFD_CLOEXEC);
    pthread_t th;
    if (l.fd < 0 || l.wake_fd < 0 || pthread_create(&th, NULL, lifeline_watch, &l) != 0) {
        fprintf(stderr, "poolbench mpi worker: no lifeline to the broker at %s\n", addr);
        _exit(1);
    }
    pthread_detach(th);
    int rc = serve(parent, &l);
    atomic_store(&l.ending, true);
    if (rc != 0)
        _exit(1); /* an MPI error: the job cannot end collectively */
    MPI_Comm_disconnect(&parent);
    MPI_Finalize();
}

#endif /* EX_HAVE_MPI */
