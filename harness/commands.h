/*
 * commands.h: the subcommands of the poolbench program.  Each takes argv
 * with argv[0] = the subcommand's name and returns the exit status (0 ok,
 * 1 failure, 2 bad usage).
 */
#ifndef POOLBENCH_COMMANDS_H
#define POOLBENCH_COMMANDS_H

#include "noise.h"
#include "pin.h"
#include "run.h"
#include "server_proc.h"
#include "workload.h"

int pb_cmd_run(int argc, char **argv);
int pb_cmd_list(int argc, char **argv);
int pb_cmd_overhead(int argc, char **argv);
/* Registers overhead's empty task by name (the mpi executor's workers run
 * it): 0 or an ex_ error. */
int pb_overhead_register(void);
int pb_cmd_footprint(int argc, char **argv);
int pb_cmd_sweep(int argc, char **argv);
int pb_cmd_advise(int argc, char **argv);
int pb_cmd_transport(int argc, char **argv);
int pb_cmd_noise(int argc, char **argv);

/* `poolbench serve`: --port N (0..65535, default 0), --bind ADDR (IPv4,
 * default 127.0.0.1), --loops N, --help.  Prints "poolbench serve:
 * listening on http://ADDR:PORT" and serves until SIGINT or SIGTERM, which
 * it blocks in the calling thread meanwhile (call it before creating other
 * threads).  0 after a clean stop, 1 if it cannot listen, 2 for bad usage. */
int pb_cmd_serve(int argc, char **argv);

/* Shared by run, sweep and advise: parse -p KEY=VALUE (and --url) into a
 * parameter set (0, or 2 after printing the message); start the loopback
 * server when the workload needs it and fill base_url (0, or 1 after
 * printing; srv->pid is -1 when none was started). */
int pb_build_params(const char *cmd, const wl_workload *w, const char *const *kvs,
                    size_t nkv, const char *url, wl_params **out);
/* Pins o's workers per policy (and --cpus): makes the plan (before any
 * fork), sets o->worker_start, and describes the binding in desc.  With
 * PB_PIN_NONE and no cpus: nothing, desc "none".  0 or a negative errno
 * with err.  Destroy *plan after the run. */
int pb_pin_attach(pb_run_opts *o, pb_pin_policy pin, const char *cpus, pb_pin_plan **plan,
                  char *desc, size_t desclen, char *err, size_t errlen);

/* One run in a forked child process (fresh state, its own rusage and peak
 * RSS; a crash costs that run only), pinned per pin/cpus, with the
 * machine's noise recorded around it (noise.h: load and a capacity probe of
 * probe_ms just before, steal, iowait and other processes' CPU over the
 * run, the HTTP server's CPU counted as the run's own).  ok = 1 and r
 * filled, or ok = 0 and err says why.  Blocks for the run. */
typedef struct pb_measure_opts {
    pb_pin_policy pin;
    const char *cpus;    /* NULL: all */
    double probe_ms;     /* <= 0: no capacity probe */
    pid_t server_pid;    /* <= 0: no server */
} pb_measure_opts;
typedef struct pb_measured {
    pb_run_result r;
    char pinning[256];
    pb_noise noise;
    int ok;
    char err[512];
} pb_measured;
void pb_measure(const pb_run_opts *o, const pb_measure_opts *mo, pb_measured *m);

/* Whether the parameters make tasks hang (fault hang_rate > 0), so that a
 * run needs a per-task timeout to end. */
int pb_needs_timeout(const wl_params *p);
/* Whether a task that crashes or hangs leaves the submitter standing:
 * procs (that task fails) and mpi (the MPI job ends, every pending task
 * fails with EX_EBROKEN). */
int pb_isolates(ex_kind kind);
/* Whether the parameters make tasks hang and no timeout ends them: 1 with
 * why, else 0. */
int pb_timeout_refusal(const wl_params *p, int64_t timeout_ns, char *why, size_t len);
/* Whether kind cannot run this configuration with this per-task timeout
 * (0 = none): 1 with why (a crashing or hanging task on a kind that does
 * not isolate it, a hanging task without a timeout, or a workload reading
 * this process's memory on mpi), else 0. */
int pb_executor_refusal(ex_kind kind, const wl_params *p, int64_t timeout_ns, char *why,
                        size_t len);
/* The getopt_long codes of --window and --transport, the procs options
 * run and sweep share (past every character code, so that they never
 * collide with a short option). */
enum { PB_OPT_WINDOW = 0x100, PB_OPT_TRANSPORT = 0x101 };
/* The load options run and sweep share: how tasks arrive and what a full
 * queue does (codes past PB_OPT_TRANSPORT). */
enum {
    PB_OPT_RATE = 0x110, PB_OPT_ARRIVAL, PB_OPT_ON_FULL, PB_OPT_CHUNKSIZE, PB_OPT_SAMPLE_MS,
    PB_OPT_TIMELINE
};
/* run's --mpi-btl. */
enum { PB_OPT_MPI_BTL = 0x120 };
/* The getopt_long entries of the options above, for run's and sweep's
 * tables (their files include <getopt.h>). */
#define PB_SHARED_LONG_OPTIONS                                   \
    {"window", required_argument, NULL, PB_OPT_WINDOW},          \
    {"transport", required_argument, NULL, PB_OPT_TRANSPORT},    \
    {"rate", required_argument, NULL, PB_OPT_RATE},              \
    {"arrival", required_argument, NULL, PB_OPT_ARRIVAL},        \
    {"on-full", required_argument, NULL, PB_OPT_ON_FULL},        \
    {"chunksize", required_argument, NULL, PB_OPT_CHUNKSIZE},    \
    {"sample-ms", required_argument, NULL, PB_OPT_SAMPLE_MS}
/* Accepted values, for the messages and the usage texts. */
#define PB_RATE_MAX 10000000.0
#define PB_CHUNKSIZE_MAX 1000000
#define PB_SAMPLE_MS_MAX 60000
/* One value of --rate, --arrival, --on-full, --chunksize or --sample-ms
 * into o: 0, or PB_EXIT_USAGE after one line on stderr. */
int pb_parse_load_option(const char *cmd, int opt, const char *value, pb_run_opts *o);
/* --window (PB_OPT_WINDOW) or --transport (PB_OPT_TRANSPORT) of run and
 * sweep into o: 0, or PB_EXIT_USAGE after one line on stderr. */
int pb_parse_procs_option(const char *cmd, int opt, const char *value,
                          pb_run_opts *o);
int pb_start_server_if_needed(const char *cmd, wl_params *p, pb_server *srv);
/* One line on stderr if the server did not get real-time priority. */
void pb_server_note(const char *cmd, const pb_server *srv);
/* What pb_run_opts.server says for these params and that server. */
const char *pb_server_label(const wl_params *p, const pb_server *srv);

#endif
