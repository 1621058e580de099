/*
 * mpi_pingpong.c - the MPI limits `poolbench calibrate` draws the mpi rows
 * against, measured between two ranks (osu_latency / osu_bw style):
 *
 *   mpirun -n 2 [--mca btl tcp,self] mpi_pingpong rtt|bw BYTES ITERS REPS
 *
 *   rtt  BYTES sent by rank 0, the same BYTES sent back by rank 1: one
 *        round trip; ns per round trip
 *   bw   ITERS messages of BYTES sent back to back by rank 0 (blocking
 *        MPI_Send), one byte of acknowledgement from rank 1 at the end;
 *        ns per message
 *
 * Rank 0 prints one line per repetition, "sample NS", after one untimed
 * warm-up of ITERS / 4 operations (at least 1), and "transport BTL" naming
 * the btl components Open MPI selected (the OMPI_MCA_btl it was given).
 * The harness (harness/calibrate_mpi.c) starts it under mpirun with a
 * deadline and turns the samples into the same summary as every other
 * measure.  Bad usage: a message and exit status 2.  Built only when
 * Open MPI's development files are installed (pkg-config ompi-c), outside
 * the harness, since the harness must build without them.
 */
#include <mpi.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ITERS round trips of bytes between ranks 0 and 1. */
static void rtt_loop(int rank, char *buf, int bytes, unsigned iters)
{
    for (unsigned i = 0; i < iters; i++) {
        if (rank == 0) {
            MPI_Send(buf, bytes, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
            MPI_Recv(buf, bytes, MPI_CHAR, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(buf, bytes, MPI_CHAR, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, bytes, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
        }
    }
}

/* ITERS messages of bytes from rank 0 to rank 1, then one byte back. */
static void bw_loop(int rank, char *buf, int bytes, unsigned iters)
{
    char ack = 0;
    for (unsigned i = 0; i < iters; i++) {
        if (rank == 0)
            MPI_Send(buf, bytes, MPI_CHAR, 1, 2, MPI_COMM_WORLD);
        else
            MPI_Recv(buf, bytes, MPI_CHAR, 0, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    if (rank == 0)
        MPI_Recv(&ack, 1, MPI_CHAR, 1, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    else
        MPI_Send(&ack, 1, MPI_CHAR, 0, 3, MPI_COMM_WORLD);
}

/* An unsigned number in [lo, hi] from text, or 0 for bad text. */
static unsigned long parse_num(const char *text, unsigned long lo, unsigned long hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < lo || v > hi)
        return 0;
    return v;
}

static int usage(int rank, const char *why)
{
    if (rank == 0)
        fprintf(stderr, "mpi_pingpong: %s (usage: mpirun -n 2 mpi_pingpong rtt|bw "
                        "BYTES 1..67108864 ITERS 1..100000000 REPS 1..1000)\n", why);
    return 2;
}

static void run(int rank, int bw, char *buf, int bytes, unsigned iters, unsigned reps)
{
    void (*loop)(int, char *, int, unsigned) = bw ? bw_loop : rtt_loop;
    loop(rank, buf, bytes, iters / 4 ? iters / 4 : 1);
    for (unsigned r = 0; r < reps; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        uint64_t t0 = now_ns();
        loop(rank, buf, bytes, iters);
        uint64_t t1 = now_ns();
        if (rank == 0)
            printf("sample %.1f\n", (double)(t1 - t0) / iters);
    }
    if (rank == 0) {
        const char *btl = getenv("OMPI_MCA_btl");
        printf("transport %s\n", btl ? btl : "default");
        fflush(stdout);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size, status = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    unsigned long bytes = 0, iters = 0, reps = 0;
    int bw = argc == 5 && strcmp(argv[1], "bw") == 0;
    if (argc != 5 || (!bw && strcmp(argv[1], "rtt") != 0))
        status = usage(rank, "expected a kind, rtt or bw, and three numbers");
    else if (!(bytes = parse_num(argv[2], 1, 64ul << 20)) ||
             !(iters = parse_num(argv[3], 1, 100000000)) ||
             !(reps = parse_num(argv[4], 1, 1000)))
        status = usage(rank, "BYTES, ITERS or REPS out of range");
    else if (size != 2)
        status = usage(rank, "needs exactly two ranks");
    char *buf = status ? NULL : calloc(1, bytes);
    if (!status && !buf) {
        fprintf(stderr, "mpi_pingpong: out of memory (%lu bytes)\n", bytes);
        status = 1;
    }
    if (!status)
        run(rank, bw, buf, (int)bytes, (unsigned)iters, (unsigned)reps);
    free(buf);
    MPI_Finalize();
    return status;
}
