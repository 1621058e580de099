/*
 * cmd_calibrate.c - `poolbench calibrate`'s command line: the options
 * (getopt_long, numbers through pb_parse_u64), where the JSON goes (stdout
 * or a file replaced atomically) and the table on stderr.  The measuring
 * is calibrate.c's.
 */
#include "cli.h"
#include "calibrate.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------ the CLI */

#define CAL_USAGE                                                              \
    "usage: poolbench calibrate [--reps N] [--iters N] [--json FILE] [--cpus LIST]\n" \
    "                           [--only LIST] [--quick] [--table]\n"                        \
    "  Measures this machine's limits, each the median of N repetitions:\n"    \
    "  pipe and condition-variable round trips (on one PU and across two\n"    \
    "  cores), context switch, pthread create+join, fork+wait at 1 MiB and\n"  \
    "  256 MiB of heap, memcpy bandwidth (1 MiB, 64 MiB) and the pipe's\n"    \
    "  bandwidth across cores (64 KiB, 1 MiB, 64 MiB), and the MPI round trip\n" \
    "  (8 B) and bandwidth (1 MiB) between two ranks over TCP and shared\n"   \
    "  memory (mpirun -n 2; skipped without Open MPI). Writes JSON\n"         \
    "  (schema_version 1) to stdout or FILE.\n"                              \
    "  --reps N     repetitions per measure, 1..1000 (default 11; 5 with --quick)\n" \
    "  --iters N    iterations per repetition for every measure, 1..100000000\n" \
    "               (default: per measure, e.g. 2000 round trips, 20 forks)\n" \
    "  --json FILE  write the JSON to FILE (atomically) instead of stdout\n"   \
    "  --cpus LIST  place the parties within these PUs (default: the first\n"  \
    "               two cores)\n"                                              \
    "  --only LIST  these measures only (names as in the JSON, comma-separated)\n" \
    "  --quick      fewer repetitions and iterations: a few seconds instead\n" \
    "               of 10-20 s\n"                         \
    "  --table      print the table on stderr even when it is not a terminal\n" \
    "  --help       this text\n"

#define CAL_ACCEPTED \
    "--reps N, --iters N, --json FILE, --cpus LIST, --only LIST, --quick, --table, --help"


/* Where the JSON goes: stdout, or a temporary file next to `path` that is
 * renamed over it once complete, so a reader never sees half a file. It is
 * created before measuring: an unwritable destination fails at once. */
typedef struct {
    const char *path; /* NULL: stdout */
    char *tmp;
    FILE *f;
} json_output;

static int json_output_open(json_output *o, const char *path)
{
    memset(o, 0, sizeof *o);
    if (!path || strcmp(path, "-") == 0) {
        o->f = stdout;
        return 0;
    }
    o->path = path;
    size_t len = strlen(path) + 32;
    o->tmp = malloc(len);
    if (!o->tmp) {
        fprintf(stderr, "poolbench calibrate: out of memory\n");
        return -1;
    }
    snprintf(o->tmp, len, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || !(o->f = fdopen(fd, "w"))) {
        fprintf(stderr, "poolbench calibrate: cannot create %s: %s\n", o->tmp,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(o->tmp);
        }
        free(o->tmp);
        o->tmp = NULL;
        return -1;
    }
    return 0;
}

/* Writes (results != NULL) and commits, or discards (results == NULL). */
static int json_output_close(json_output *o, const pb_cal_options *opt,
                             const pb_cal_result *results, size_t n)
{
    int rc = 0;
    if (results)
        rc = pb_cal_write_json(o->f, opt, results, n);
    if (!o->path) {
        if (rc < 0)
            fprintf(stderr, "poolbench calibrate: writing stdout: %s\n",
                    strerror(errno));
        return rc < 0 ? -1 : 0;
    }
    if (results && rc == 0 && fsync(fileno(o->f)) != 0)
        rc = -errno;
    if (fclose(o->f) != 0 && rc == 0)
        rc = -errno;
    if (results && rc == 0 && rename(o->tmp, o->path) != 0)
        rc = -errno;
    if (rc < 0)
        fprintf(stderr, "poolbench calibrate: cannot write %s: %s\n", o->path,
                strerror(-rc));
    if (rc < 0 || !results)
        unlink(o->tmp);
    free(o->tmp);
    return rc < 0 ? -1 : 0;
}

typedef struct cal_cli {
    pb_cal_options opt;
    const char *json;   /* --json: a path, "-" or NULL for stdout */
    bool table;
} cal_cli;

/* One option: 0, -1 (--help printed) or the exit status after one
 * message. */
static int parse_option(int ch, const char *arg, char **argv, cal_cli *c)
{
    switch (ch) {
    case 'Q': c->opt.quick = 1; return 0;
    case 'T': c->table = true; return 0;
    case 'r':
        return pb_parse_unsigned("calibrate", "--reps", arg, 1, 1000, false, &c->opt.reps)
                   ? 0 : PB_EXIT_USAGE;
    case 'i':
        return pb_parse_unsigned("calibrate", "--iters", arg, 1, 100000000, false, &c->opt.iters)
                   ? 0 : PB_EXIT_USAGE;
    case 'c': c->opt.cpus = arg; return 0;
    case 'o':
        if (!pb_cal_only_valid(arg)) {
            char names[1024] = "";
            const char *name;
            for (size_t i = 0; (name = pb_cal_measure_name(i)); i++)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         i ? ", " : "", name);
            return pb_usage_error("calibrate", "--only: '%s' names no measure (accepted: "
                                  "a comma-separated list of %s)", arg, names);
        }
        c->opt.only = arg;
        return 0;
    case 'j':
        if (!*arg)
            return pb_usage_error("calibrate", "--json: empty value (accepted: a file path, "
                                  "or - for stdout)");
        c->json = arg;
        return 0;
    case 'h': fputs(CAL_USAGE, stdout); return -1;
    case ':':
        return pb_usage_error("calibrate", "option %s needs a value (accepted: %s)",
                              argv[optind - 1], CAL_ACCEPTED);
    default:
        return pb_usage_error("calibrate", "unknown option '%s' (accepted: %s)",
                              argv[optind - 1], CAL_ACCEPTED);
    }
}

/* The command line into c; a bad --cpus list is a usage error found
 * before measuring.  0, -1 (--help) or the exit status. */
static int parse_cli(int argc, char **argv, cal_cli *c)
{
    static const struct option opts[] = {
        {"reps", required_argument, NULL, 'r'},
        {"iters", required_argument, NULL, 'i'},
        {"json", required_argument, NULL, 'j'},
        {"cpus", required_argument, NULL, 'c'},
        {"only", required_argument, NULL, 'o'},
        {"quick", no_argument, NULL, 'Q'},
        {"table", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    int ch, rc;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
        if ((rc = parse_option(ch, optarg, argv, c)))
            return rc;
    if (optind < argc)
        return pb_usage_error("calibrate", "unexpected argument '%s' (accepted: %s)",
                              argv[optind], CAL_ACCEPTED);
    if (c->opt.cpus) {
        pb_pin_plan *probe;
        char perr[256];
        int prc = pb_cal_pair_plan(0, c->opt.cpus, &probe, perr, sizeof perr);
        if (prc < 0) {
            fprintf(stderr, "poolbench calibrate: --cpus: %s\n", perr);
            return prc == -EINVAL ? PB_EXIT_USAGE : 1;
        }
        pb_pin_plan_destroy(probe);
    }
    return 0;
}

/* One line on stderr when the MPI measures were skipped (the first
 * reason: they share it), since the table may not be printed. */
static void say_mpi_skipped(const pb_cal_result *results, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(results[i].name, "mpi_", 4) == 0 && results[i].skipped) {
            fprintf(stderr, "poolbench calibrate: MPI round trip: %s\n", results[i].note);
            return;
        }
}

int pb_cmd_calibrate(int argc, char **argv)
{
    cal_cli c;
    int rc = parse_cli(argc, argv, &c);
    if (rc)
        return rc < 0 ? 0 : rc;
    json_output out;
    if (json_output_open(&out, c.json) < 0)
        return 1;
    int tty = isatty(STDERR_FILENO);
    c.opt.progress = tty;
    pb_cal_result results[PB_CAL_NMEASURES];
    size_t n = 0;
    char err[256] = "";
    rc = pb_calibrate_run(&c.opt, results, &n, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "poolbench calibrate: %s\n", err);
        json_output_close(&out, &c.opt, NULL, 0);
        return 1;
    }
    if (c.table || tty)
        pb_cal_write_table(stderr, results, n);
    say_mpi_skipped(results, n);
    return json_output_close(&out, &c.opt, results, n) < 0 ? 1 : 0;
}
