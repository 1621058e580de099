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
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
    /* The result, then its gauge samples (res.r.nsamples of them). */
    pb_sample *samples = res.r.samples;
    res.r.latencies = NULL;
    res.r.samples = NULL;
    if (ex__write_full(fd, &res, sizeof res) ||
        (res.r.nsamples && ex__write_full(fd, samples, res.r.nsamples * sizeof *samples)))
        _exit(3);
    _exit(0);
}

/* The samples that follow the result; none if they do not all arrive. */
static void read_samples(int fd, pb_run_result *r)
{
    size_t n = r->nsamples;
    r->samples = NULL;
    r->nsamples = 0;
    if (n == 0 || n > SIZE_MAX / sizeof *r->samples)
        return;
    pb_sample *v = malloc(n * sizeof *v);
    if (v && ex__read_full(fd, v, n * sizeof *v) == 0) {
        r->samples = v;
        r->nsamples = n;
        return;
    }
    free(v);
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
    int got = ex__read_full(fds[0], m, sizeof *m);
    if (got == 0)
        read_samples(fds[0], &m->r);
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
