/*
 * calibrate_sys.c - the plumbing every measure of `poolbench calibrate`
 * shares (calibrate_int.h): one-byte pipe I/O retrying EINTR, closing and
 * reaping, the SIGPIPE guard of the pipe measures, pinning the calling
 * thread, and the "pair" plans that place the two parties of a round trip
 * on one PU or on two cores.
 *
 * Writing to a pipe whose reader died would raise SIGPIPE in the whole
 * process; the pipe measures block SIGPIPE in the calling thread for their
 * duration and consume any SIGPIPE they caused (sigpipe_guard), so that a
 * library function never changes the process's signal dispositions.
 */
#include "cli.h"
#include "calibrate.h"
#include "calibrate_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>



int pb_cal__write_byte(int fd, unsigned char b)
{
    for (;;) {
        ssize_t w = write(fd, &b, 1);
        if (w == 1)
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        return w < 0 ? -errno : -EIO;
    }
}

/* 0 on a byte, -EPIPE on end of file, or -errno. */
int pb_cal__read_byte(int fd, unsigned char *b)
{
    for (;;) {
        ssize_t r = read(fd, b, 1);
        if (r == 1)
            return 0;
        if (r == 0)
            return -EPIPE;
        if (errno == EINTR)
            continue;
        return -errno;
    }
}

void pb_cal__close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Waits for pid; returns its exit status (0..255), or -ECHILD etc., or
 * 128 + signal if it was killed. */
int pb_cal__reap(pid_t pid)
{
    int status;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (w < 0)
        return -errno;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

int pb_cal__sigpipe_block(sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    if (sigpending(&pending) != 0)
        return -errno;
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    int rc = pthread_sigmask(SIG_BLOCK, &set, &g->old);
    return -rc;
}

void pb_cal__sigpipe_unblock(sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    if (!g->was_pending && sigpending(&pending) == 0 &&
        sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Binds the calling thread as worker `index` of plan, after saving its
 * affinity in *saved (NULL plan: nothing to do). */
int pb_cal__pin_self(const pb_pin_plan *plan, unsigned index, pb_pin_saved **saved)
{
    *saved = NULL;
    if (!plan)
        return 0;
    int rc = pb_pin_thread_save(saved);
    if (rc < 0)
        return rc;
    rc = pb_pin_worker_start(index, (void *)plan);
    if (rc < 0) {
        pb_pin_thread_restore(*saved);
        *saved = NULL;
    }
    return rc;
}

int pb_cal__unpin_self(pb_pin_saved *saved)
{
    return pb_pin_thread_restore(saved);
}

/* ------------------------------------------------------------ pair plans */

int pb_cal_pair_plan(int cross, const char *cpus, pb_pin_plan **out,
                     char *err, size_t errlen)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    pb_pin_plan *all;
    /* The topology restricted to cpus: its cores are the usable ones. */
    int rc = pb_pin_plan_create(PB_PIN_COMPACT, cpus, 1, 0, &all, err, errlen);
    if (rc < 0)
        return rc;
    hwloc_topology_t topo = pb_pin_plan_topology(all);
    int ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    int a = -1, b = -1;
    if (ncores >= 1) {
        hwloc_obj_t c0 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, 0);
        a = c0 ? hwloc_bitmap_first(c0->cpuset) : -1;
        if (ncores >= 2) {
            hwloc_obj_t c1 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, 1);
            b = c1 ? hwloc_bitmap_first(c1->cpuset) : -1;
        }
    } else {
        /* No core objects (some platforms): treat PUs as cores. */
        hwloc_obj_t p0 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, 0);
        hwloc_obj_t p1 = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, 1);
        a = p0 ? (int)p0->os_index : -1;
        b = p1 ? (int)p1->os_index : -1;
        ncores = p1 ? 2 : 1;
    }
    pb_pin_plan_destroy(all);
    if (a < 0) {
        pb_set_err(err, errlen, "hwloc found no PU");
        return -EIO;
    }
    char pair[32];
    if (cross) {
        if (b < 0) {
            pb_set_err(err, errlen, "needs two cores; %s %d",
                    cpus && *cpus ? "--cpus covers" : "this machine has",
                    ncores);
            return -ENODEV;
        }
        snprintf(pair, sizeof pair, "%d,%d", a, b);
    } else {
        snprintf(pair, sizeof pair, "%d", a);
    }
    return pb_pin_plan_create(PB_PIN_COMPACT, pair, 2, 0, out, err, errlen);
}
