/*
 * child.h - a helper program run by the harness (the Python runner,
 * mpirun): started in a process group of its own with its output on a
 * pipe, and ended by killing the whole group (the pool's workers, the MPI
 * ranks) before it is reaped, so that the group id cannot have been
 * reused.  It dies with the harness too (PR_SET_PDEATHSIG).
 */
#ifndef PB_CHILD_H
#define PB_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct pb_child_opts {
    const char *const *env; /* "NAME=value" set in the child; NULL-terminated
                               (NULL: none) */
    bool merge_stderr;      /* stderr into the pipe too (else inherited) */
    bool null_stdin;        /* stdin from /dev/null (else inherited) */
} pb_child_opts;

/* Forks and execs argv (PATH searched) in a new process group, its stdout
 * on a pipe whose read end (close-on-exec) goes to *rd.  The pid, or -1
 * with the reason in err.  An exec that fails prints why on the child's
 * stdout or stderr and exits 127.  Does not block. */
pid_t pb_child_spawn(char *const argv[], const pb_child_opts *o, int *rd, char *err,
                     size_t errlen);

/* SIGKILL to the child's whole group, then waits for the child: its wait
 * status.  Blocks until the child is reaped. */
int pb_child_kill_group(pid_t pid);

#endif /* PB_CHILD_H */
