/*
 * calibrate_bw.c - the bandwidth measures of `poolbench calibrate`: memcpy
 * between warm buffers, and a pipe between two processes at its best, so
 * that the process pool's two transports (pipes, shared memory) can be
 * read against what this machine can move at all.
 *
 * As in calibrate_rtt.c, each function is one repetition that cleans up after
 * itself: the child is reaped (SIGKILLed if it cannot be told to stop),
 * fds closed, the caller's affinity restored, SIGPIPE blocked in the
 * calling thread and consumed.  Buffers are touched before the clock
 * starts, so no page fault is timed.
 */
#include "calibrate.h"
#include "calibrate_int.h"

#include "executor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pb_cal_memcpy_bw(size_t bytes, unsigned iters, double *ns)
{
    if (iters == 0 || bytes == 0 || !ns)
        return -EINVAL;
    unsigned char *a = malloc(bytes), *b = malloc(bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return -ENOMEM;
    }
    memset(a, 0x5a, bytes);
    memset(b, 0xa5, bytes);
    uint64_t t0 = ex_now_ns();
    for (unsigned i = 0; i < iters; i++) {
        a[i % bytes] = (unsigned char)i; /* each copy has work to do */
        memcpy(b, a, bytes);
    }
    uint64_t t1 = ex_now_ns();
    /* Keeps the copies from being optimised away. */
    volatile unsigned char sink = b[bytes - 1];
    (void)sink;
    free(a);
    free(b);
    *ns = (double)(t1 - t0) / (double)iters;
    return 0;
}

/* The pipe as large as this system lets an unprivileged process make it
 * (pipe-max-size); best effort: the default size stays otherwise. */
static void pipe_enlarge(int fd)
{
    long max = 1 << 20;
    int f = open("/proc/sys/fs/pipe-max-size", O_RDONLY | O_CLOEXEC);
    if (f >= 0) {
        char buf[32] = {0};
        if (read(f, buf, sizeof buf - 1) > 0)
            max = strtol(buf, NULL, 10);
        close(f);
    }
    (void)fcntl(fd, F_SETPIPE_SZ, (int)max);
}

/* The child: reads iters x bytes (plus one untimed transfer first) into a
 * warm buffer, and acknowledges each round with one byte.  It frees the
 * buffer before every exit: under valgrind a forked child's leak is an
 * error, and its exit status is what the parent checks. */
static void __attribute__((noreturn))
sink_child(const pb_pin_plan *pair, int in_fd, int ack_fd, size_t bytes,
           unsigned iters)
{
    if (pair && pb_pin_worker_start(1, (void *)pair) != 0)
        _exit(2);
    unsigned char *buf = malloc(bytes);
    if (!buf)
        _exit(3);
    memset(buf, 0, bytes);
    for (unsigned round = 0; round < 2; round++) {
        size_t want = (round == 0 ? 1 : (size_t)iters) * bytes, got = 0;
        while (got < want) {
            size_t ask = want - got < bytes ? want - got : bytes;
            ssize_t k = read(in_fd, buf, ask);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                free(buf);
                _exit(4);
            }
            got += (size_t)k;
        }
        if (pb_cal__write_byte(ack_fd, 1) != 0) {
            free(buf);
            _exit(5);
        }
    }
    free(buf);
    _exit(0);
}

/* Writes n bytes from buf, again and again, count times; 0 or -errno. */
static int pump(int fd, const unsigned char *buf, size_t n, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        size_t off = 0;
        while (off < n) {
            ssize_t k = write(fd, buf + off, n - off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return -errno;
            off += (size_t)k;
        }
    }
    return 0;
}

/* One untimed transfer (the child is up and pinned after it), then iters
 * timed ones.  0 or -errno. */
static int pipe_rounds(int out_fd, int ack_fd, const unsigned char *buf,
                       size_t bytes, unsigned iters, uint64_t *dt)
{
    unsigned char b;
    int rc = pump(out_fd, buf, bytes, 1);
    if (rc == 0)
        rc = pb_cal__read_byte(ack_fd, &b);
    uint64_t t0 = ex_now_ns();
    if (rc == 0)
        rc = pump(out_fd, buf, bytes, iters);
    if (rc == 0)
        rc = pb_cal__read_byte(ack_fd, &b);
    *dt = ex_now_ns() - t0;
    return rc;
}

/* The parent's side once the child runs: pinned, warm buffer, rounds. */
static int pipe_parent(const pb_pin_plan *pair, int out_fd, int ack_fd,
                       size_t bytes, unsigned iters, uint64_t *dt)
{
    unsigned char *buf = malloc(bytes);
    if (!buf)
        return -ENOMEM;
    memset(buf, 0x3c, bytes);
    pb_pin_saved *saved = NULL;
    int rc = pb_cal__pin_self(pair, 0, &saved);
    if (rc == 0)
        rc = pipe_rounds(out_fd, ack_fd, buf, bytes, iters, dt);
    int urc = pb_cal__unpin_self(saved);
    free(buf);
    return rc ? rc : urc;
}

int pb_cal_pipe_bw(const pb_pin_plan *pair, size_t bytes, unsigned iters,
                   double *ns)
{
    if (iters == 0 || bytes == 0 || !ns)
        return -EINVAL;
    int data[2] = {-1, -1}, ack[2] = {-1, -1};
    sigpipe_guard guard;
    int rc = pb_cal__sigpipe_block(&guard);
    if (rc < 0)
        return rc;
    pid_t pid = -1;
    if (pipe2(data, O_CLOEXEC) != 0 || pipe2(ack, O_CLOEXEC) != 0 ||
        (pid = fork()) < 0) {
        rc = -errno;
        goto out;
    }
    if (pid == 0) {
        close(data[1]);
        close(ack[0]);
        sink_child(pair, data[0], ack[1], bytes, iters);
    }
    pb_cal__close_fd(&data[0]);
    pb_cal__close_fd(&ack[1]);
    pipe_enlarge(data[1]);
    uint64_t dt = 0;
    rc = pipe_parent(pair, data[1], ack[0], bytes, iters, &dt);
    pb_cal__close_fd(&data[1]);
    if (rc < 0)
        kill(pid, SIGKILL);
    int st = pb_cal__reap(pid);
    if (rc == 0 && st != 0)
        rc = st < 0 ? st : -ECHILD;
    if (rc == 0)
        *ns = (double)dt / (double)iters;
out:
    for (int i = 0; i < 2; i++) {
        pb_cal__close_fd(&data[i]);
        pb_cal__close_fd(&ack[i]);
    }
    pb_cal__sigpipe_unblock(&guard);
    return rc;
}
