/*
 * mpi_role.c: ex_worker_main, which tells a process started by the mpi
 * backend (mpi_internal.h) its role, and ex_mpi_available.  Built with or
 * without Open MPI: without it no process of the backend can exist (ex_create
 * refuses EX_MPI with EX_EUNAVAIL), so a process that still claims a role
 * was started by another build and is told so.
 */
#include "mpi_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ex_mpi_available(const char **why)
{
#ifdef EX_HAVE_MPI
    if (why)
        *why = "";
    return 1;
#else
    if (why)
        *why = "built without Open MPI (make HAVE_MPI=0, or pkg-config found no ompi-c: "
               "install libopenmpi-dev and openmpi-bin, or run `make deps`, and rebuild)";
    return 0;
#endif
}

int ex_worker_main(int *argc, char ***argv)
{
    const char *role = getenv(MPI_ROLE_ENV);
    const char *lifeline = NULL;
    if (argc && argv && *argc > 1 && (*argv)[1] &&
        strncmp((*argv)[1], MPI_WORKER_ARG, strlen(MPI_WORKER_ARG)) == 0)
        lifeline = (*argv)[1] + strlen(MPI_WORKER_ARG);
    bool broker = role && strcmp(role, MPI_ROLE_BROKER) == 0;
    if (!broker && !lifeline)
        return ex__mpirun_start(argc, argv);
    /* Neither the broker's children nor the application's see it. */
    unsetenv(MPI_ROLE_ENV);
#ifdef EX_HAVE_MPI
    if (broker)
        ex__mpi_broker_main(argc, argv);
    else
        ex__mpi_worker_main(argc, argv, lifeline);
#else
    fprintf(stderr, "executors: started as an mpi %s, but %s\n",
            broker ? "broker" : "worker",
            "this build has no Open MPI");
#endif
    fflush(stdout);
    fflush(stderr);
    return 1;
}
