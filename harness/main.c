/*
 * main.c: the poolbench program: dispatches to the subcommands.
 */
#include "build_info.h"
#include "cli.h"
#include "calibrate.h"
#include "commands.h"
#include "pin.h"
#include "executor.h"

#include <stdio.h>
#include <string.h>

#define PB_VERSION "0.1.0"

static const char usage[] =
    "usage: poolbench COMMAND [options]   (poolbench COMMAND --help for each)\n"
    "\n"
    "Which executor strategy should this workload use on this machine, with\n"
    "how many workers?  poolbench runs the same tasks sequentially, on a\n"
    "pthread pool and on a fork+pipe process pool, and measures them.\n"
    "\n"
    "commands:\n"
    "  run        run one configuration and print its numbers\n"
    "  list       list the workloads and their parameters\n"
    "  overhead   per-task cost of an empty task on each executor\n"
    "  transport  what a payload costs in and out, per size and executor\n"
    "  noise      the machine's state now: CPUs available, load, steal\n"
    "  serve      run the loopback HTTP server in the foreground\n"
    "\n"
    "  --help     this text\n"
    "  --version  the version\n";

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
} command;

static const command commands[] = {
    {"run", pb_cmd_run},
    {"list", pb_cmd_list},
    {"overhead", pb_cmd_overhead},
    {"transport", pb_cmd_transport},
    {"sweep", pb_cmd_sweep},
    {"advise", pb_cmd_advise},
    {"calibrate", pb_calibrate_main},
    {"topo", pb_topo_main},
    {"serve", pb_serve_main},
    {"noise", pb_cmd_noise},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return PB_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("poolbench %s (libexecutors %s; build: %s)\n", PB_VERSION, EX_VERSION,
               pb_build_kind());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "poolbench: unknown command '%s' (accepted: run, sweep, advise, calibrate, topo, list, overhead, transport, serve, noise; "
                    "see poolbench --help)\n", cmd);
    return PB_EXIT_USAGE;
}
