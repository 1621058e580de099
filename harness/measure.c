/*
 * measure.c: pb_measure (commands.h), one run in a forked child process.
 *
 * Every measured run of sweep and advise happens in a child of its own, so
 * each starts from the same state (no allocator or page-cache warmth
 * carried from the previous configuration, a fresh peak RSS, rusage of its
 * own) and a run that crashes the harness costs one row, not the sweep.
 * The child pins, samples the machine's noise around the run and sends its
 * pb_measured back over a pipe.
 */
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* pb_run's window hook: snapshots at pool creation and destruction. */
static void on_window(void *arg, int phase)
{
    pb_noise_window *w = arg;
    if (phase == 0)
        pb_noise_window_begin(w, w->server_pid);
    else
        pb_noise_window_end(w);
}

/* The child: pin, note the machine's state, run, report; never returns. */
static void child(const pb_run_opts *o, const pb_measure_opts *mo, int fd)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    pb_measured res;
    memset(&res, 0, sizeof res);
    pb_run_opts ro = *o;
    pb_pin_plan *plan = NULL;
    pb_noise_window win = {.server_pid = mo->server_pid};
    ro.window = on_window;
    ro.window_arg = &win;
    int rc = pb_pin_attach(&ro, mo->pin, mo->cpus, &plan, res.pinning, sizeof res.pinning,
                           res.err, sizeof res.err);
    pb_noise_before(&res.noise, mo->probe_ms);
    if (rc == 0 && pb_run(&ro, &res.r, false, res.err, sizeof res.err) == 0) {
        res.ok = 1;
        pb_noise_account(&win, res.r.window_cpu_s, &res.noise);
    }
    res.r.latencies = NULL;
    _exit(write_full(fd, &res, sizeof res) ? 3 : 0);
}

void pb_measure(const pb_run_opts *o, const pb_measure_opts *mo, pb_measured *m)
{
    memset(m, 0, sizeof *m);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        snprintf(m->err, sizeof m->err, "pipe: %s", strerror(errno));
        return;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(m->err, sizeof m->err, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        child(o, mo, fds[1]);
    }
    close(fds[1]);
    int got = read_full(fds[0], m, sizeof *m);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got) {
        m->ok = 0;
        if (WIFSIGNALED(status))
            snprintf(m->err, sizeof m->err, "the run's process died of signal %d", WTERMSIG(status));
        else
            snprintf(m->err, sizeof m->err, "the run's process exited with status %d without a result",
                     WEXITSTATUS(status));
    }
}
