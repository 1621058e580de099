/*
 * mpi_run.c: the mpirun start of the mpi backend (EX_MPI), for
 * `mpirun -n N+1 prog ...` as `mpiexec -n N+1 python -m mpi4py.futures`.
 *
 * ex_worker_main sees the rank mpirun gave (OMPI_COMM_WORLD_RANK) and:
 *
 *   - ranks 1..N become MPI workers, the spawn mode's worker loop, their
 *     "parent" rank 0 through an intercommunicator split from
 *     MPI_COMM_WORLD (ex__mpirun_intercomm);
 *   - rank 0 forks before MPI_Init.  The parent, the pid mpirun launched,
 *     becomes the broker rank: MPI_Init, the workers' lifelines, then it
 *     waits for the application's first EX_MPI executor on a socket pair,
 *     relays its tasks, and exits with the application's status.  The
 *     child returns 0 from ex_worker_main and runs the program: in its own
 *     session, so that when mpirun ends the job (a rank died on a signal,
 *     which takes every rank) its kill does not reach the application,
 *     which sees the broker's sockets close (EX_EBROKEN) and ends normally.
 *
 * The application's stdout and stderr are mpirun's own, not the pty and
 * pipe that mpirun reads for its ranks (take_launcher_stdio): when a
 * worker dies, mpirun kills the job and exits, and what the application
 * prints afterwards (its summary, with the tasks that failed) would meet a
 * closed pty (EIO) or pipe (SIGPIPE).
 *
 * The application's environment loses what mpirun set for its ranks
 * (OMPI_* but OMPI_MCA_btl* and the run-as-root pair, PMIX_*), so that a
 * second EX_MPI executor starts its own broker as in the spawn mode.
 */
#include "mpi_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

/* mpirun's variables for a rank, which the application must not keep. */
static bool rank_var(const char *v)
{
    if (strncmp(v, "PMIX_", 5) == 0)
        return true;
    if (strncmp(v, "OMPI_", 5) != 0)
        return false;
    return strncmp(v, "OMPI_MCA_btl", 12) != 0 && strncmp(v, "OMPI_ALLOW_RUN_AS_ROOT", 22) != 0;
}

static void scrub_env(void)
{
    size_t j = 0;
    for (size_t i = 0; environ[i]; i++)
        if (!rank_var(environ[i]))
            environ[j++] = environ[i];
    environ[j] = NULL;
}

/* The rank and size mpirun gave, or -1. */
static int env_int(const char *name)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return -1;
    long x = strtol(v, &end, 10);
    return *end || x < 0 || x > 1000000 ? -1 : (int)x;
}

#ifdef EX_HAVE_MPI
/* fd of process pid, as its own open file (pidfd_getfd, same offset), or
 * reopened through /proc (appending).  The new fd, or -1. */
static int launcher_fd(pid_t pid, int pfd, int fd)
{
    int nfd = -1;
#ifdef SYS_pidfd_getfd
    if (pfd >= 0)
        nfd = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
#else
    (void)pfd;
#endif
    if (nfd < 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
        nfd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC);
    }
    return nfd;
}

/* When pp, rank 0's parent, is mpirun (rank 0 on mpirun's host: not an orted, whose
 * stdout is nowhere), its stdout and stderr become ours.  Best effort:
 * else the application keeps what mpirun gave rank 0. */
static void take_launcher_stdio(pid_t pp)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pp);
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
    }
    comm[strcspn(comm, "\n")] = '\0';
    if (strcmp(comm, "mpirun") != 0 && strcmp(comm, "mpiexec") != 0 &&
        strcmp(comm, "orterun") != 0)
        return;
    int pfd = ex__pidfd_open(pp);
    for (int fd = 1; fd <= 2; fd++) {
        int nfd = launcher_fd(pp, pfd, fd);
        if (nfd >= 0) {
            dup2(nfd, fd);
            close(nfd);
        }
    }
    if (pfd >= 0)
        close(pfd);
}
#endif

int ex__mpirun_start(int *argc, char ***argv)
{
    int rank = env_int("OMPI_COMM_WORLD_RANK"), size = env_int("OMPI_COMM_WORLD_SIZE");
    if (rank < 0 || size < 2 || (unsigned)size - 1 > MPI_MAX_WORKERS) {
        if (rank >= 0)
            scrub_env(); /* one rank: no workers; the spawn mode as usual */
        return 0;
    }
#ifdef EX_HAVE_MPI
    if (rank >= 1) {
        ex__mpi_worker_main(argc, argv, NULL);
        return 1;
    }
    int sp[2];
    fflush(stdout);
    fflush(stderr);
    pid_t app = -1, launcher = getppid();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0)
        app = fork();
    if (app < 0) {
        fprintf(stderr, "executors: mpirun rank 0: cannot start the application: %s\n",
                strerror(errno));
        _exit(1);
    }
    if (app > 0) {
        close(sp[1]);
        ex__mpirun_broker_main(argc, argv, sp[0], (unsigned)size - 1, app);
    }
    close(sp[0]);
    take_launcher_stdio(launcher);
    setsid();
    scrub_env();
    char v[64];
    snprintf(v, sizeof v, "%d:%d", sp[1], size - 1);
    setenv(MPI_RUN_ENV, v, 1);
    return 0;
#else
    (void)argc;
    (void)argv;
    scrub_env();
    if (rank == 0)
        return 0; /* the program; its EX_MPI is refused (EX_EUNAVAIL) */
    fprintf(stderr, "executors: rank %d of an mpirun job, but this build has no Open MPI: "
                    "only rank 0 runs the program\n", rank);
    return 1;
#endif
}
