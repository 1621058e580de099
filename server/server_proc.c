/*
 * server_proc.c - run pb_httpd in a child process (pb_server_*) or in the
 * foreground (`poolbench serve`, harness/cmd_serve.c).
 *
 * Start-up handshake: the child starts the server, then writes one int32 to a
 * CLOEXEC pipe: the bound port, or a negative errno if it could not start.
 * The parent reads it with a deadline (EOF means the child died), then polls
 * GET /health over a plain socket until it answers 200, so that a caller never
 * races the server.
 *
 * The child keeps its end of that pipe open until it exits, and it is the
 * only holder (it never forks or execs; the parent closed its copy), so the
 * parent's end reads EOF exactly when the child is gone: a bounded wait for
 * the exit is a poll() on it. No pidfd (which valgrind does not know), no
 * SIGCHLD handler, no sleep loop. Shutdown: SIGTERM by pid, that bounded
 * wait, SIGKILL if it runs out, and always a waitpid on that pid. (If another
 * thread of the parent forks between our pipe2() and close(), its child holds
 * a copy of the write end too; stopping then takes the SIGKILL path after the
 * timeout, and still reaps.)
 *
 * The child never returns into the caller's code: it ends with _exit(), so it
 * neither runs the parent's atexit handlers nor flushes stdio buffers it
 * copied from the parent.
 */
#include "server_proc.h"

#include "httpd.h"
#include "sys.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* In the handshake, beside the port (which fits in 16 bits). */
#define HANDSHAKE_REALTIME (1 << 16)

/* From fork to a 200 on /health; generous for valgrind and loaded boxes. */
#define START_TIMEOUT_MS 10000
/* From SIGTERM to exit before SIGKILL. */
#define STOP_TIMEOUT_MS 5000
/* Per-attempt bound on one /health request. */
#define HEALTH_ATTEMPT_MS 1000

static int64_t now_ms(void)
{
    return (int64_t)(ex_now_ns() / 1000000u);
}

static int remaining_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - now_ms();
    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Waits for events on fd until deadline_ms. Returns 1 ready, 0 timed out,
 * -errno on error. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, remaining_ms(deadline_ms));
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

/* Raises the soft descriptor limit to the hard one: every connection is a
 * descriptor, and the server is meant for thousands of them. Best effort:
 * without it the server just accepts fewer connections at once. */
void pb_raise_nofile_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* ---- the child --------------------------------------------------------- */

static void report_and_exit(int wfd, int32_t msg, int status)
{
    (void)ex__write_full(wfd, &msg, sizeof msg); /* EOF tells the parent anyway */
    _exit(status);
}

__attribute__((noreturn)) static void server_child(const char *bind_addr,
                                                   int port, int wfd,
                                                   pid_t parent)
{
    /* PDEATHSIG fires when the *thread* that forked us exits, not only the
     * process: fork from a thread that lives as long as the server. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0)
        report_and_exit(wfd, -errno, 1);
    if (getppid() != parent)
        _exit(0); /* the parent died before prctl took effect */
    /* Descriptors inherited from the parent would otherwise stay open for
     * the server's lifetime: a worker pool's pipe end held here, for one,
     * would hide that worker's EOF from the parent. */
    ex__close_fds_except(&wfd, 1, 0);

    /* SIGTERM and SIGINT are taken by sigwait below, so they are blocked in
     * every thread (the server's threads inherit this mask) and their
     * handlers, whatever the parent installed, are reset. */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigset_t set;
    if (sigaction(SIGTERM, &dfl, NULL) != 0 ||
        sigaction(SIGINT, &dfl, NULL) != 0 ||
        sigaction(SIGPIPE, &ign, NULL) != 0 || sigemptyset(&set) != 0 ||
        sigaddset(&set, SIGTERM) != 0 || sigaddset(&set, SIGINT) != 0)
        report_and_exit(wfd, -errno, 1);
    int rc = pthread_sigmask(SIG_SETMASK, &set, NULL);
    if (rc != 0)
        report_and_exit(wfd, -rc, 1);

    pb_raise_nofile_limit();
    /* Before the server's threads exist, so that they inherit it. */
    struct sched_param sp = {.sched_priority = 1};
    bool realtime = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
    pb_httpd *h;
    rc = pb_httpd_start(bind_addr, port, &h);
    if (rc != 0)
        report_and_exit(wfd, rc, 1);
    int32_t msg = pb_httpd_port(h) | (realtime ? HANDSHAKE_REALTIME : 0);
    bool told = ex__write_full(wfd, &msg, sizeof msg) == 0;
    /* wfd stays open: its EOF is how the parent sees this process exit. */
    if (told) {
        int sig;
        /* sigwait fails only for an invalid set. */
        (void)sigwait(&set, &sig);
    }
    pb_httpd_stop(h);
    _exit(told ? 0 : 1);
}

/* ---- the parent -------------------------------------------------------- */

/* Reads the child's int32 before deadline_ms. Returns 0, -ETIMEDOUT, -ECHILD
 * (EOF: the child died first) or -errno. */
static int read_handshake(int fd, int64_t deadline_ms, int32_t *msg)
{
    char *p = (char *)msg;
    size_t got = 0;
    while (got < sizeof *msg) {
        int r = wait_fd(fd, POLLIN, deadline_ms);
        if (r < 0)
            return r;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t n = read(fd, p + got, sizeof *msg - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ECHILD;
        got += (size_t)n;
    }
    return 0;
}

/* One GET /health on a fresh connection. Returns 0 if the answer is 200. */
static int health_once(const struct sockaddr_in *sa, int64_t deadline_ms)
{
    static const char request[] =
        "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char reply[64];
    size_t got = 0;
    int rc;

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto out;
        }
        rc = wait_fd(fd, POLLOUT, deadline_ms);
        if (rc <= 0) {
            rc = rc == 0 ? -ETIMEDOUT : rc;
            goto out;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            rc = -errno;
            goto out;
        }
        if (err != 0) {
            rc = -err;
            goto out;
        }
    }
    /* The request fits any fresh socket buffer: one send, or failure. */
    ssize_t sent = send(fd, request, sizeof request - 1, MSG_NOSIGNAL);
    if (sent != (ssize_t)(sizeof request - 1)) {
        rc = sent < 0 ? -errno : -EIO;
        goto out;
    }
    /* "HTTP/1.1 200" is all we need. */
    while (got < 12) {
        rc = wait_fd(fd, POLLIN, deadline_ms);
        if (rc <= 0) {
            rc = rc == 0 ? -ETIMEDOUT : rc;
            goto out;
        }
        ssize_t n = recv(fd, reply + got, sizeof reply - got, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -ECONNRESET;
            goto out;
        }
        got += (size_t)n;
    }
    rc = (memcmp(reply, "HTTP/1.", 7) == 0 && memcmp(reply + 8, " 200", 4) == 0)
             ? 0
             : -EPROTO;
out:
    (void)close(fd); /* a socket we only read from: nothing to lose */
    return rc;
}

/* Waits until the child has exited or deadline_ms, and reaps it. exit_fd
 * reads EOF once the child is gone (see the top of the file). Returns 0
 * (reaped, *status set), -ETIMEDOUT (still running), -ECHILD (someone else
 * reaped it) or -errno. */
static int reap_by(pid_t pid, int exit_fd, int64_t deadline_ms, int *status)
{
    char c;
    for (;;) {
        int r = wait_fd(exit_fd, POLLIN, deadline_ms);
        if (r < 0)
            return r;
        if (r == 0)
            return -ETIMEDOUT;
        ssize_t n = read(exit_fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0)
            break; /* EOF: the child closed its descriptors, i.e. exited */
        if (n < 0)
            return -errno;
        /* A stray byte (the handshake is read already): keep waiting. */
    }
    /* The descriptors close during exit, just before the child becomes a
     * zombie: this waitpid returns within microseconds. */
    pid_t r;
    do
        r = waitpid(pid, status, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? 0 : -ECHILD;
}

/* Has the child exited? If so it is reaped. */
static bool child_gone(pid_t pid, int exit_fd)
{
    int status;
    int rc = reap_by(pid, exit_fd, 0, &status);
    return rc == 0 || rc == -ECHILD;
}

/* Polls /health until it answers 200 or deadline_ms. */
static int wait_healthy(pb_server *s, const struct sockaddr_in *sa,
                        int64_t deadline_ms)
{
    int rc;
    int backoff_ms = 2;
    for (;;) {
        int64_t attempt_deadline = now_ms() + HEALTH_ATTEMPT_MS;
        if (attempt_deadline > deadline_ms)
            attempt_deadline = deadline_ms;
        rc = health_once(sa, attempt_deadline);
        if (rc == 0)
            return 0;
        if (child_gone(s->pid, s->exit_fd))
            return -ECHILD;
        if (remaining_ms(deadline_ms) == 0)
            return -ETIMEDOUT;
        sleep_ms(backoff_ms);
        if (backoff_ms < 50)
            backoff_ms *= 2;
    }
}

/* Ends the child: SIGTERM, bounded wait, SIGKILL, reap; closes exit_fd. */
static int stop_child(pid_t pid, int exit_fd)
{
    int status = 0;
    int rc;

    if (kill(pid, SIGTERM) != 0 && errno != ESRCH) {
        rc = -errno;
        goto out;
    }
    rc = reap_by(pid, exit_fd, now_ms() + STOP_TIMEOUT_MS, &status);
    if (rc == -ETIMEDOUT) {
        if (kill(pid, SIGKILL) != 0 && errno != ESRCH) {
            rc = -errno;
            goto out;
        }
        /* SIGKILL cannot be caught: wait for as long as the kernel takes. */
        pid_t r;
        do
            r = waitpid(pid, &status, 0);
        while (r < 0 && errno == EINTR);
        rc = r == pid ? -ETIMEDOUT : -ECHILD;
    } else if (rc == 0) {
        rc = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -EIO;
    }
out:
    (void)close(exit_fd); /* read end of a pipe: nothing to flush */
    return rc;
}

int pb_server_start(const char *bind_addr, int port, pb_server *out)
{
    struct sockaddr_in sa;
    int pipefd[2];
    int32_t msg = 0;

    if (out == NULL)
        return -EINVAL;
    out->pid = -1;
    out->port = 0;
    out->url[0] = '\0';
    out->exit_fd = -1;
    out->realtime = false;
    if (bind_addr == NULL)
        bind_addr = "127.0.0.1";
    if (port < 0 || port > 65535)
        return -EINVAL;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1)
        return -EINVAL;
    if (sa.sin_addr.s_addr == htonl(INADDR_ANY))
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    int64_t deadline = now_ms() + START_TIMEOUT_MS;
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return -errno;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        (void)close(pipefd[0]);
        (void)close(pipefd[1]);
        return rc;
    }
    if (pid == 0) {
        (void)close(pipefd[0]);
        server_child(bind_addr, port, pipefd[1], parent);
    }
    (void)close(pipefd[1]);
    int rc = read_handshake(pipefd[0], deadline, &msg);
    if (rc == 0 && msg <= 0)
        rc = msg < 0 ? msg : -EIO; /* the child's start error */
    if (rc != 0) {
        (void)stop_child(pid, pipefd[0]);
        return rc;
    }

    out->pid = pid;
    out->exit_fd = pipefd[0];
    out->realtime = (msg & HANDSHAKE_REALTIME) != 0;
    out->port = msg & 0xffff;
    sa.sin_port = htons((uint16_t)out->port);
    char addr[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr) == NULL) {
        rc = -errno;
        (void)pb_server_stop(out);
        return rc;
    }
    snprintf(out->url, sizeof out->url, "http://%s:%d", addr, out->port);

    rc = wait_healthy(out, &sa, deadline);
    if (rc == -ECHILD) {
        /* Already reaped by wait_healthy. */
        (void)close(out->exit_fd);
        out->exit_fd = -1;
        out->pid = -1;
    }
    if (rc != 0) {
        (void)pb_server_stop(out);
        out->port = 0;
        out->url[0] = '\0';
        return rc;
    }
    return 0;
}

const char *pb_server_url(const pb_server *s)
{
    return s->url;
}

int pb_server_stop(pb_server *s)
{
    if (s == NULL || s->pid <= 0)
        return 0;
    int rc = stop_child(s->pid, s->exit_fd);
    s->pid = -1;
    s->exit_fd = -1;
    return rc;
}
