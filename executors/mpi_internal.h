/*
 * mpi_internal.h: what the three roles of the mpi backend (EX_MPI) share.
 *
 *   mpi.c         the application's side: the executor (threads.c's pool,
 *                 each worker thread the proxy of one MPI worker), the
 *                 broker's start and end; never calls MPI
 *   mpi_broker.c  the broker: a child of the application running the same
 *                 executable (ex_worker_main), MPI singleton that spawns
 *                 the workers and relays tasks and results
 *   mpi_worker.c  an MPI worker: runs the tasks by name
 *   mpi_role.c    ex_worker_main: which role this process has
 *   mpi_run.c     the mpirun start (`mpirun -n N+1 prog`): rank 0 forks,
 *                 the parent is the broker rank, the child (its own
 *                 session) the application; ranks 1..N are the workers
 *
 * Why a broker: MPI can be initialised once per process and never again
 * after MPI_Finalize, while an application creates and destroys many
 * executors; Open MPI dislikes fork() after MPI_Init; and when a spawned
 * rank dies Open MPI 4.1 leaves the parent spinning in MPI_Recv.  So the
 * application keeps MPI in a process of its own, one per executor, and
 * watches it through sockets: whatever goes wrong there ends as EOF.
 *
 * A request (proxy -> broker -> worker) and a reply (worker -> broker ->
 * proxy) are the same bytes on the proxy's socket and in the MPI message:
 * a fixed header, then the name and input, or the output.  Every process
 * runs the same executable on the same architecture (MPI_Comm_spawn
 * starts the broker's executable), so the headers are plain structs.
 */
#ifndef POOLBENCH_MPI_INTERNAL_H
#define POOLBENCH_MPI_INTERNAL_H

#include "ex_internal.h"

#include <stdint.h>

/* The broker is told its role by this variable (removed at once). */
#define MPI_ROLE_ENV "POOLBENCH_EX_MPI_ROLE"
#define MPI_ROLE_BROKER "broker"
/* A worker is told its role by argv[1]: this prefix, then the broker's
 * lifeline address "host:port". */
#define MPI_WORKER_ARG "--poolbench-mpi-worker="
/* Under mpirun, the application (rank 0's child) finds the broker rank's
 * control socket here: "fd:workers" (taken by the first EX_MPI executor,
 * mpi.c). */
#define MPI_RUN_ENV "POOLBENCH_EX_MPI_RUN"
/* The broker's control socket (dup2'd there by the application). */
#define MPI_CTL_FD 3
/* Most workers one executor may have (one SCM_RIGHTS message carries
 * their sockets). */
#define MPI_MAX_WORKERS 128u

#define MPI_MAGIC 0x3149504du /* "MPI1" */

/* MPI tags between the broker and a worker. */
enum { MPI_TAG_TASK = 1, MPI_TAG_RESULT = 2, MPI_TAG_STOP = 3, MPI_TAG_ADDR = 4 };

/* Request flag: the task is ex_map's chunk; name is the user function's,
 * which the worker writes into the chunk input (ex__chunk_set_fn). */
#define MPI_REQ_CHUNK 1u

typedef struct mpi_req {
    uint32_t magic;
    uint32_t flags;     /* MPI_REQ_* */
    uint32_t name_len;  /* 1..EX_TASK_NAME_MAX, no NUL on the wire */
    uint32_t reserved;
    uint64_t in_len;
} mpi_req;

typedef struct mpi_rep {
    uint32_t magic;
    int32_t status;     /* the task's return code */
    int32_t error;      /* EX_E* raised by the worker itself (an unknown
                           name: EX_EINVAL), 0 if the task ran */
    uint32_t flags;     /* EX_STATS_* */
    int32_t cpu;        /* sched_getcpu after the task */
    int32_t pid;        /* the worker's pid */
    uint64_t start_ns, end_ns, cpu_ns;
    int64_t nvcsw, nivcsw;
    uint64_t out_len;
} mpi_rep;

/* Control socket, application -> broker: this, with the proxies' sockets
 * (SCM_RIGHTS), then one byte: MPI_CTL_EXIT (or EOF) to end cleanly,
 * MPI_CTL_KILL to end the MPI job at once (a task's timeout). */
typedef struct mpi_hello {
    uint32_t magic;
    uint32_t workers;
    uint64_t max_payload;
} mpi_hello;
enum { MPI_CTL_EXIT = 'X', MPI_CTL_KILL = 'K' };

/* Broker -> application once the workers are up (status 0, then workers
 * pids as int32) or could not start (status EX_E*, nothing follows). */
typedef struct mpi_ready {
    uint32_t magic;
    int32_t status;
    uint32_t workers;
    uint32_t reserved;
} mpi_ready;

/* The lifeline: a worker's first bytes on its TCP connection to the
 * broker; after that it only ever closes (by dying or finishing). */
typedef struct mpi_life_hello {
    uint32_t magic;
    int32_t rank;
    int32_t pid;
    uint32_t reserved;
} mpi_life_hello;

/* Polling MPI without spinning a CPU: busy for MPI_SPIN_NS after the
 * last event, then sleeps that double from MPI_BACKOFF_MIN_NS up to
 * MPI_BACKOFF_MAX_NS (the most a result waits to be seen when idle).
 * The next sleep, given when things last moved and the sleep before. */
#define MPI_SPIN_NS 50000
/* The lifeline's doorbell bytes (mpi_broker.c): a result follows (worker
 * -> broker), a task follows (broker -> worker). */
#define MPI_LIFE_RESULT 'R'
#define MPI_LIFE_TASK 'T'
#define MPI_BACKOFF_MIN_NS 10000
#define MPI_BACKOFF_MAX_NS 1000000
int64_t ex__mpi_backoff(uint64_t quiet_since, int64_t backoff);

#ifdef EX_HAVE_MPI
#include <mpi.h>
#include <sys/types.h>
/* The two roles (mpi_broker.c, mpi_worker.c): return once done. */
void ex__mpi_broker_main(int *argc, char ***argv);
/* lifeline NULL: a rank >= 1 of an mpirun job, whose broker is rank 0. */
void ex__mpi_worker_main(int *argc, char ***argv, const char *lifeline);
/* Rank 0 of an mpirun job, after the fork: serves n workers and the
 * application (pid app) on ctl; exits with the application's status. */
_Noreturn void ex__mpirun_broker_main(int *argc, char ***argv, int ctl, unsigned n,
                                      pid_t app);
/* MPI_COMM_WORLD split into rank 0 and the rest, as an intercommunicator
 * (what MPI_Comm_spawn gives in the spawn mode). */
int ex__mpirun_intercomm(MPI_Comm *inter);
#endif
/* ex_worker_main's mpirun start (mpi_run.c): 0 in the application, 1 in a
 * rank that has done its part. */
int ex__mpirun_start(int *argc, char ***argv);

#endif
