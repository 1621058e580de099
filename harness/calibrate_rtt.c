/*
 * calibrate_rtt.c - the hand-off measures of `poolbench calibrate`: a
 * 1-byte ping-pong over two pipes between two processes, the same between
 * two threads through a mutex and condition variables, the write + read
 * pair of one thread on one pipe (no switch: the baseline), and the
 * context switch derived from them as lmbench's lat_ctx does.  These are
 * the floors under a process pool's and a thread pool's per-task cost.
 *
 * Each function runs one repetition and cleans up after itself whatever
 * happens: the child is reaped (SIGKILLed if it cannot be told to stop),
 * the thread joined, fds closed, the caller's affinity restored, SIGPIPE
 * blocked in the calling thread and consumed (calibrate_sys.c).
 */
#include "calibrate.h"
#include "calibrate_int.h"

#include "executor.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------ pipe rtt */

/* The child of pb_cal_pipe_rtt: echoes bytes until EOF. Never returns. */
static void __attribute__((noreturn))
echo_child(const pb_pin_plan *pair, int in_fd, int out_fd)
{
    if (pair && pb_pin_worker_start(1, (void *)pair) != 0)
        _exit(2);
    unsigned char b;
    for (;;) {
        int rc = pb_cal__read_byte(in_fd, &b);
        if (rc == -EPIPE)
            _exit(0); /* the parent closed its end: done */
        if (rc < 0)
            _exit(3);
        if (pb_cal__write_byte(out_fd, b) < 0)
            _exit(4);
    }
}

int pb_cal_pipe_rtt(const pb_pin_plan *pair, unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    int p2c[2] = {-1, -1}, c2p[2] = {-1, -1};
    sigpipe_guard guard;
    int rc = pb_cal__sigpipe_block(&guard);
    if (rc < 0)
        return rc;
    if (pipe2(p2c, O_CLOEXEC) != 0 || pipe2(c2p, O_CLOEXEC) != 0) {
        rc = -errno;
        pb_cal__close_fd(&p2c[0]);
        pb_cal__close_fd(&p2c[1]);
        pb_cal__sigpipe_unblock(&guard);
        return rc;
    }
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        pb_cal__close_fd(&p2c[0]);
        pb_cal__close_fd(&p2c[1]);
        pb_cal__close_fd(&c2p[0]);
        pb_cal__close_fd(&c2p[1]);
        pb_cal__sigpipe_unblock(&guard);
        return rc;
    }
    if (pid == 0) {
        close(p2c[1]);
        close(c2p[0]);
        echo_child(pair, p2c[0], c2p[1]);
    }
    pb_cal__close_fd(&p2c[0]);
    pb_cal__close_fd(&c2p[1]);

    pb_pin_saved *saved = NULL;
    rc = pb_cal__pin_self(pair, 0, &saved);
    unsigned char b = 0;
    /* One untimed round trip: the child is up and pinned after it. */
    if (rc == 0 && (rc = pb_cal__write_byte(p2c[1], b)) == 0)
        rc = pb_cal__read_byte(c2p[0], &b);
    uint64_t t0 = ex_now_ns(), t1;
    for (unsigned i = 0; rc == 0 && i < iters; i++) {
        rc = pb_cal__write_byte(p2c[1], (unsigned char)i);
        if (rc == 0)
            rc = pb_cal__read_byte(c2p[0], &b);
    }
    t1 = ex_now_ns();
    int urc = pb_cal__unpin_self(saved);

    /* EOF tells the child to exit; if it is stuck elsewhere, kill it. */
    pb_cal__close_fd(&p2c[1]);
    pb_cal__close_fd(&c2p[0]);
    if (rc < 0)
        kill(pid, SIGKILL);
    int st = pb_cal__reap(pid);
    pb_cal__sigpipe_unblock(&guard);
    /* A child that exited on its own (exit 2: it could not pin) explains
     * the broken pipe the parent saw. */
    if (st != 0 && (rc == 0 || (rc == -EPIPE && st > 0 && st < 128)))
        rc = st < 0 ? st : -ECHILD;
    if (rc == 0)
        rc = urc;
    if (rc == 0)
        *ns = (double)(t1 - t0) / (double)iters;
    return rc;
}

int pb_cal_pipe_syscall_pair(unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -errno;
    int rc = 0;
    unsigned char b = 0;
    uint64_t t0 = ex_now_ns();
    for (unsigned i = 0; rc == 0 && i < iters; i++) {
        rc = pb_cal__write_byte(p[1], (unsigned char)i);
        if (rc == 0)
            rc = pb_cal__read_byte(p[0], &b);
    }
    uint64_t t1 = ex_now_ns();
    close(p[0]);
    close(p[1]);
    if (rc == 0)
        *ns = (double)(t1 - t0) / (double)iters;
    return rc;
}

int pb_cal_context_switch(const pb_pin_plan *same, unsigned iters, double *ns)
{
    if (iters == 0 || !ns || !same)
        return -EINVAL;
    /* The baseline runs pinned like party 0, as the minimum of four short
     * runs: its cost is fixed and noise (preemption on a loaded machine)
     * only adds to it, and an inflated baseline would push the difference
     * towards zero or below. */
    pb_pin_saved *saved;
    double self = 0.0, rtt;
    int rc = pb_cal__pin_self(same, 0, &saved);
    if (rc < 0)
        return rc;
    unsigned chunk = iters / 4 ? iters / 4 : 1;
    for (int k = 0; rc == 0 && k < 4; k++) {
        double one;
        rc = pb_cal_pipe_syscall_pair(chunk, &one);
        if (rc == 0 && (k == 0 || one < self))
            self = one;
    }
    int urc = pb_cal__unpin_self(saved);
    if (rc == 0)
        rc = urc;
    if (rc == 0)
        rc = pb_cal_pipe_rtt(same, iters, &rtt);
    if (rc == 0)
        *ns = (rtt - 2.0 * self) / 2.0;
    return rc;
}

/* ------------------------------------------------------------ condvar rtt */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t to_a, to_b;
    int turn;   /* 1: B's move, 0: A's move */
    int stop;
    int pin_rc; /* B's pinning result, valid once B has answered once */
    const pb_pin_plan *pair;
} condvar_pingpong;

static void *condvar_b(void *arg)
{
    condvar_pingpong *pp = arg;
    int rc = pp->pair ? pb_pin_worker_start(1, (void *)pp->pair) : 0;
    pthread_mutex_lock(&pp->lock);
    pp->pin_rc = rc;
    for (;;) {
        while (pp->turn != 1 && !pp->stop)
            pthread_cond_wait(&pp->to_b, &pp->lock);
        if (pp->stop)
            break;
        pp->turn = 0;
        pthread_cond_signal(&pp->to_a);
    }
    pthread_mutex_unlock(&pp->lock);
    return NULL;
}

int pb_cal_condvar_rtt(const pb_pin_plan *pair, unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    condvar_pingpong pp;
    memset(&pp, 0, sizeof pp);
    pp.pair = pair;
    int rc;
    if ((rc = pthread_mutex_init(&pp.lock, NULL)) != 0)
        return -rc;
    if ((rc = pthread_cond_init(&pp.to_a, NULL)) != 0) {
        pthread_mutex_destroy(&pp.lock);
        return -rc;
    }
    if ((rc = pthread_cond_init(&pp.to_b, NULL)) != 0) {
        pthread_cond_destroy(&pp.to_a);
        pthread_mutex_destroy(&pp.lock);
        return -rc;
    }
    pb_pin_saved *saved = NULL;
    pthread_t tb;
    rc = pb_cal__pin_self(pair, 0, &saved);
    if (rc == 0) {
        rc = -pthread_create(&tb, NULL, condvar_b, &pp);
        if (rc < 0)
            pb_cal__unpin_self(saved);
    }
    if (rc < 0) {
        pthread_cond_destroy(&pp.to_b);
        pthread_cond_destroy(&pp.to_a);
        pthread_mutex_destroy(&pp.lock);
        return rc;
    }

    uint64_t t0 = 0, t1 = 0;
    pthread_mutex_lock(&pp.lock);
    /* Round 0 is the untimed warm-up: B is up (and pinned) after it. */
    for (unsigned i = 0; i <= iters; i++) {
        if (i == 1)
            t0 = ex_now_ns();
        pp.turn = 1;
        pthread_cond_signal(&pp.to_b);
        while (pp.turn != 0)
            pthread_cond_wait(&pp.to_a, &pp.lock);
        if (i == 0 && pp.pin_rc != 0)
            break;
    }
    t1 = ex_now_ns();
    rc = pp.pin_rc;
    pp.stop = 1;
    pthread_cond_signal(&pp.to_b);
    pthread_mutex_unlock(&pp.lock);

    int jrc = pthread_join(tb, NULL);
    int urc = pb_cal__unpin_self(saved);
    pthread_cond_destroy(&pp.to_b);
    pthread_cond_destroy(&pp.to_a);
    pthread_mutex_destroy(&pp.lock);
    if (rc == 0 && jrc != 0)
        rc = -jrc;
    if (rc == 0)
        rc = urc;
    if (rc == 0)
        *ns = (double)(t1 - t0) / (double)iters;
    return rc;
}
