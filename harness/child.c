/*
 * child.c - the harness's helper programs in process groups of their own
 * (child.h): the Python runner (pyexec.c) and mpirun (calibrate_mpi.c).
 */
#include "child.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* In the child, after fork: never returns. */
static void exec_child(char *const argv[], const pb_child_opts *o, int wr)
{
    /* A group of its own (killed whole at the end), gone with us. */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (dup2(wr, STDOUT_FILENO) < 0 || (o->merge_stderr && dup2(wr, STDERR_FILENO) < 0))
        _exit(127);
    if (o->null_stdin) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, STDIN_FILENO) < 0)
            _exit(127);
    }
    for (const char *const *e = o->env; e && *e; e++)
        putenv((char *)*e); /* the child's own copy of the environment */
    execvp(argv[0], argv);
    fprintf(o->merge_stderr ? stdout : stderr, "poolbench: cannot run %s: %s\n", argv[0],
            strerror(errno));
    fflush(NULL);
    _exit(127);
}

pid_t pb_child_spawn(char *const argv[], const pb_child_opts *o, int *rd, char *err,
                     size_t errlen)
{
    static const pb_child_opts none = {0};
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        pb_set_err(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        pb_set_err(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0)
        exec_child(argv, o ? o : &none, fds[1]);
    setpgid(pid, pid); /* also here, so that the group exists before any kill */
    close(fds[1]);
    *rd = fds[0];
    return pid;
}

int pb_child_kill_group(pid_t pid)
{
    kill(-pid, SIGKILL); /* the child is unreaped: the group id is still ours */
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}
