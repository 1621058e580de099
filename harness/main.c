/*
 * main.c: the poolbench program: dispatches to the subcommands.
 */
#include "build_info.h"
#include "cli.h"
#include "calibrate.h"
#include "commands.h"
#include "pin.h"
#include "executor.h"
#include "workload.h"

#include <stdio.h>
#include <string.h>

#define PB_VERSION "0.1.0"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

/* Every command, in the order --help lists them. */
static const command commands[] = {
    {"run", pb_cmd_run, "run one configuration and print its numbers"},
    {"sweep", pb_cmd_sweep, "run executors x workers x workloads, repeated: runs.csv"},
    {"advise", pb_cmd_advise, "the pool size of Goetz's formula, checked by a short sweep"},
    {"overhead", pb_cmd_overhead, "per-task cost of an empty task on each executor"},
    {"transport", pb_cmd_transport, "what a payload costs in and out, per size, executor "
                                    "and transport"},
    {"footprint", pb_cmd_footprint, "memory per pending future of the thread pool"},
    {"calibrate", pb_cmd_calibrate, "the machine's limits: round trips, switches, fork, "
                                     "bandwidths"},
    {"topo", pb_cmd_topo, "the machine as hwloc sees it, and where each pin policy puts "
                           "workers"},
    {"noise", pb_cmd_noise, "the machine's state now: CPUs available, load, steal"},
    {"list", pb_cmd_list, "list the workloads and their parameters"},
    {"serve", pb_cmd_serve, "run the loopback HTTP server in the foreground"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fputs("usage: poolbench COMMAND [options]   (poolbench COMMAND --help for each)\n"
          "\n"
          "Which executor strategy should this workload use on this machine, with\n"
          "how many workers?  poolbench runs the same tasks sequentially, on a\n"
          "pthread pool and on a fork+pipe process pool, and measures them.\n"
          "\n"
          "commands:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "  --help     this text\n"
          "  --version  the version\n", f);
}

int main(int argc, char **argv)
{
    /* The tasks by name, then the mpi backend's roles: this program is
     * also its broker and its MPI workers (executor.h). */
    if (wl_register_tasks() != 0 || pb_overhead_register() != 0) {
        fputs("poolbench: cannot register the workloads' tasks\n", stderr);
        return 1;
    }
    if (ex_worker_main(&argc, &argv))
        return 0;
    if (argc < 2) {
        usage(stderr);
        return PB_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("poolbench %s (libexecutors %s; build: %s)\n", PB_VERSION, EX_VERSION,
               pb_build_kind());
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "poolbench: unknown command '%s' (accepted:", cmd);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(stderr, "%s %s", i ? "," : "", commands[i].name);
    fputs("; see poolbench --help)\n", stderr);
    return PB_EXIT_USAGE;
}
