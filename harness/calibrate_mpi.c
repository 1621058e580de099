/*
 * calibrate_mpi.c - the MPI limits of `poolbench calibrate`: the round
 * trip of a small message and the streaming rate of a large one between
 * two MPI ranks, over TCP (`--mca btl tcp,self`, the network path the mpi
 * executor's rows are measured on) and over shared memory (`vader,self`).
 *
 * The harness builds without Open MPI, so the ranks are a separate program,
 * tools/mpi_pingpong.c (built as mpi_pingpong beside poolbench when
 * pkg-config finds ompi-c), started here as
 *   mpirun -n 2 --mca btl BTL [--oversubscribe] mpi_pingpong rtt|bw BYTES ITERS REPS
 * with Open MPI's allow-run-as-root settings in the child's environment
 * only.  It prints one "sample NS" line per repetition; the caller turns
 * them into the usual summary.  No Open MPI (no mpirun on PATH), no
 * mpi_pingpong, or an mpirun that fails: the measure is skipped with the
 * reason, never an error of the whole calibration.
 *
 * mpirun runs in a process group of its own with its ranks (child.h; Open
 * MPI keeps local ranks in mpirun's group), its output read with a
 * deadline: past it, the group gets SIGTERM (mpirun then tears its job
 * down), and SIGKILL two seconds later if anything is left; mpirun is
 * reaped after the kill, so the group id cannot have been reused.  POOLBENCH_MPI_TIMEOUT_S overrides the deadline
 * (seconds; the tests make it short).
 */
#include "calibrate.h"
#include "child.h"
#include "cli.h"

#include "executor.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MPI_MISSING "Open MPI not installed (libopenmpi-dev, openmpi-bin)"

/* Whether an executable file named name is in a directory of PATH. */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char full[PATH_MAX + 64];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        int len = (int)strcspn(p, ":");
        if (len >= PATH_MAX)
            len = PATH_MAX - 1;
        snprintf(full, sizeof full, "%.*s/%s", len ? len : 1, len ? p : ".", name);
        if (access(full, X_OK) == 0)
            return true;
        p += len + (p[len] == ':');
    }
    return false;
}

int pb_cal_mpi_pingpong_path(char *out, size_t len)
{
    const char *env = getenv("POOLBENCH_MPI_PINGPONG");
    if (env && *env) {
        snprintf(out, len, "%s", env);
        return access(out, X_OK) == 0 ? 0 : -ENOENT;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -errno;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = 0;
    snprintf(out, len, "%s/../lib/poolbench/mpi_pingpong", self); /* installed */
    if (access(out, X_OK) == 0)
        return 0;
    snprintf(out, len, "%s/mpi_pingpong", self); /* the build tree */
    return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

/* Reads fd into buf (NUL-terminated, the tail kept when it fills) until end
 * of file (0) or deadline_ns (1). */
static int read_output(int fd, char *buf, size_t cap, uint64_t deadline_ns)
{
    size_t len = 0;
    buf[0] = 0;
    for (;;) {
        uint64_t now = ex_now_ns();
        if (now >= deadline_ns)
            return 1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)((deadline_ns - now) / 1000000 + 1));
        if (pr <= 0)
            continue; /* EINTR, or the deadline: checked above */
        if (len + 1 >= cap) { /* keep the second half: the last lines */
            memmove(buf, buf + cap / 2, len - cap / 2);
            len -= cap / 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = 0;
    }
}

/* Ends mpirun's group: SIGTERM, SIGKILL after 2 s if it is still there,
 * then reaps mpirun.  Its wait status. */
static int end_mpirun(pid_t pid, bool late)
{
    int status = 0;
    if (late) {
        kill(-pid, SIGTERM);
        uint64_t until = ex_now_ns() + 2000000000ull;
        while (waitpid(pid, &status, WNOHANG) == 0 && ex_now_ns() < until)
            usleep(20000);
        kill(-pid, SIGKILL); /* its ranks too, if mpirun left any */
        if (waitpid(pid, &status, WNOHANG) != 0)
            return status;
    }
    return pb_child_kill_group(pid);
}

/* The "sample NS" lines of out into samples; how many. */
static unsigned parse_samples(const char *out, double *samples, unsigned reps)
{
    unsigned got = 0;
    for (const char *p = out; p && *p && got < reps; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        double v;
        if (sscanf(p, "sample %lf", &v) == 1 && v > 0)
            samples[got++] = v;
    }
    return got;
}

/* The last non-empty line of out, for a note. */
static void last_line(const char *out, char *buf, size_t len)
{
    const char *end = out + strlen(out);
    while (end > out && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    const char *start = end;
    while (start > out && start[-1] != '\n')
        start--;
    snprintf(buf, len, "%.*s", (int)(end - start), start);
}

/* The mpirun command line in a (argv[] pointing into its buffers). */
typedef struct {
    char mca[64], bytes[32], iters[32], reps[32];
    char *argv[16];
} mpirun_cmd;

static void mpirun_argv(mpirun_cmd *c, char *prog, const char *btl, int bw, size_t bytes,
                        unsigned iters, unsigned reps)
{
    snprintf(c->mca, sizeof c->mca, "%s,self", btl);
    snprintf(c->bytes, sizeof c->bytes, "%zu", bytes);
    snprintf(c->iters, sizeof c->iters, "%u", iters);
    snprintf(c->reps, sizeof c->reps, "%u", reps);
    /* one PU: two ranks need --oversubscribe, and cannot be bound apart */
    bool one_cpu = sysconf(_SC_NPROCESSORS_ONLN) < 2;
    int k = 0;
    char **a = c->argv;
    a[k++] = "mpirun", a[k++] = "-n", a[k++] = "2", a[k++] = "--mca", a[k++] = "btl";
    a[k++] = c->mca, a[k++] = "--bind-to", a[k++] = one_cpu ? "none" : "core";
    if (one_cpu)
        a[k++] = "--oversubscribe";
    a[k++] = prog, a[k++] = bw ? "bw" : "rtt";
    a[k++] = c->bytes, a[k++] = c->iters, a[k++] = c->reps, a[k] = NULL;
}

int pb_cal_mpi_pingpong(const char *btl, int bw, size_t bytes, unsigned iters,
                        unsigned reps, double timeout_s, double *samples,
                        char *note, size_t notelen)
{
    char prog[PATH_MAX];
    if (!on_path("mpirun")) {
        snprintf(note, notelen, "skipped: " MPI_MISSING);
        return 1;
    }
    if (pb_cal_mpi_pingpong_path(prog, sizeof prog) < 0) {
        snprintf(note, notelen, "skipped: %.96s is not built (make, with libopenmpi-dev "
                 "installed)", prog);
        return 1;
    }
    mpirun_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    mpirun_argv(&cmd, prog, btl, bw, bytes, iters, reps);
    int rd;
    char err[160], out[4096], line[160];
    static const char *const env[] = {"OMPI_ALLOW_RUN_AS_ROOT=1",
                                      "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1", NULL};
    const pb_child_opts opts = {.env = env, .merge_stderr = true, .null_stdin = true};
    pid_t pid = pb_child_spawn(cmd.argv, &opts, &rd, err, sizeof err);
    if (pid < 0) {
        snprintf(note, notelen, "skipped: mpirun: %s", err);
        return 1;
    }
    const char *t = getenv("POOLBENCH_MPI_TIMEOUT_S"); /* tests: a short deadline */
    if (t && atof(t) > 0)
        timeout_s = atof(t);
    int late = read_output(rd, out, sizeof out, ex_now_ns() + (uint64_t)(timeout_s * 1e9));
    close(rd);
    int status = end_mpirun(pid, late);
    last_line(out, line, sizeof line);
    if (late)
        snprintf(note, notelen, "skipped: mpirun took over %.0f s and was killed", timeout_s);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
             parse_samples(out, samples, reps) != reps)
        snprintf(note, notelen, "skipped: mpirun --mca btl %s failed: %.120s", cmd.mca,
                 line[0] ? line : "no output");
    else
        return 0;
    return 1;
}
