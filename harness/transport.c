/*
 * transport.c: `poolbench transport`, what moving a payload costs on each
 * executor: the round trip of one task in flight that echoes its input,
 * per payload size, on seq (the copy alone), threads, and the process pool
 * over its pipes and over its shared-memory regions.  Bandwidth both ways
 * = 2 x payload / round trip, to be read against `poolbench calibrate`'s
 * memcpy and pipe bandwidth.
 *
 * The executors are measured interleaved: each repetition runs one round
 * trip on each of them in turn, so that a noisy neighbour on a shared
 * machine slows all of them alike instead of one.  Two untimed round trips
 * per executor and size come first (pipes grown, regions and buffers
 * faulted in): the figures are the steady state.
 */
#include "cli.h"
#include "json.h"
#include "commands.h"
#include "stats.h"

#include "executor.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIZES 16
#define NSTRATEGIES 4
/* A size gets fewer repetitions when they would move more than this. */
#define BYTES_PER_SIZE ((uint64_t)2 << 30)
#define WARMUP 2

typedef struct strategy {
    const char *label;
    ex_kind kind;
    ex_transport transport;
    ex_executor *ex;
} strategy;

static int echo_task(const void *in, size_t len, ex_buf *out)
{
    return ex_buf_append(out, in, len) ? 1 : 0;
}

/* One round trip of buf on ex: ns, or a negative value on failure. */
static double round_trip(ex_executor *ex, const unsigned char *buf, size_t n)
{
    ex_future *f;
    uint64_t t0 = ex_now_ns();
    if (ex_submit(ex, echo_task, buf, n, &f) != 0)
        return -1;
    const void *out;
    size_t len;
    int rc = ex_future_result(f, &out, &len, EX_FOREVER);
    uint64_t t1 = ex_now_ns();
    bool ok = rc == 0 && len == n && (n == 0 || memcmp(out, buf, n) == 0);
    ex_future_release(f);
    return ok ? (double)(t1 - t0) : -1;
}

static unsigned reps_for(size_t n, unsigned reps)
{
    uint64_t cap = BYTES_PER_SIZE / (2 * (uint64_t)(n ? n : 1));
    if (cap < 5)
        cap = 5;
    return reps < cap ? reps : (unsigned)cap;
}

/* One line for s at size n: a table row, or a JSON object.  0, or -1
 * when the JSON could not be written. */
static int print_result(const strategy *s, size_t n, unsigned window,
                        const pb_summary *sum, bool json)
{
    double gbps = sum->median > 0 ? 2.0 * (double)n / sum->median : NAN;
    if (!json) {
        printf("%-14s %12zu %12.0f %12.0f %12.0f %10.2f\n", s->label, n,
               sum->median, sum->p5, sum->p95, gbps);
        return 0;
    }
    json_t *j = json_object();
    int rc = pb_json_str(j, "executor", ex_kind_name(s->kind));
    rc |= pb_json_str(j, "transport", s->kind == EX_PROCS ? ex_transport_name(s->transport) : "");
    rc |= pb_json_int(j, "window", s->kind == EX_PROCS ? window : 0);
    rc |= pb_json_int(j, "payload_bytes", (long long)n);
    rc |= pb_json_int(j, "reps", (long long)sum->n);
    rc |= pb_json_num(j, "round_trip_median_ns", sum->median, "%.0f");
    rc |= pb_json_num(j, "round_trip_p5_ns", sum->p5, "%.0f");
    rc |= pb_json_num(j, "round_trip_p95_ns", sum->p95, "%.0f");
    rc |= pb_json_num(j, "round_trip_min_ns", sum->min, "%.0f");
    rc |= pb_json_num(j, "gbps_both_ways_median", gbps, "%.4f");
    return pb_json_finish(stdout, j, rc, 0);
}

/* Every strategy at one size, interleaved; prints one line each.  0, or
 * 1 when a round trip failed. */
static int measure_size(strategy *st, size_t ns, size_t n, unsigned reps,
                        unsigned window, bool json)
{
    unsigned char *buf = malloc(n ? n : 1);
    double *samples = calloc((size_t)reps * ns, sizeof *samples);
    int rc = buf && samples ? 0 : 1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        buf[i] = (unsigned char)(i * 131u + 7u);
    for (unsigned r = 0; rc == 0 && r < WARMUP + reps; r++)
        for (size_t k = 0; rc == 0 && k < ns; k++) {
            double t = round_trip(st[k].ex, buf, n);
            if (t < 0)
                rc = 1;
            else if (r >= WARMUP)
                samples[k * reps + (r - WARMUP)] = t;
        }
    for (size_t k = 0; rc == 0 && k < ns; k++) {
        pb_summary sum;
        if (pb_summarize(samples + k * reps, reps, &sum) != 0 ||
            print_result(&st[k], n, window, &sum, json) != 0)
            rc = 1;
    }
    fflush(stdout);
    free(buf);
    free(samples);
    return rc;
}

static const char usage[] =
    "usage: poolbench transport [options]\n"
    "\n"
    "Round trip of one task in flight that echoes its payload (in and out),\n"
    "per payload size, on seq (the copy alone), threads, procs over pipes\n"
    "and procs over shared memory, measured interleaved (one round trip on\n"
    "each in turn per repetition) after two untimed ones.  Bandwidth both\n"
    "ways = 2 x payload / round trip; compare with `poolbench calibrate`'s\n"
    "memcpy_bw_* and pipe_bw_*.\n"
    "\n"
    "  -s, --sizes LIST   payload bytes, comma-separated (k, M, G suffixes;\n"
    "                     default 64,4k,64k,1M,16M,64M)\n"
    "  -r, --reps N       repetitions per size, 1..100000 (default 20; fewer\n"
    "                     for large sizes, 2 GiB moved at most per size)\n"
    "      --window N     procs: tasks in flight per worker (default 64)\n"
    "      --json         one JSON object per executor and size\n"
    "  -h, --help         this text\n";

/* "64,4k,1M" -> sizes. */
static int parse_sizes(const char *text, size_t *sizes, size_t *n)
{
    static const pb_list_rule rule = {.max = (uint64_t)1 << 30, .suffixes = true,
                                      .cap = MAX_SIZES};
    uint64_t v[MAX_SIZES];
    int rc = pb_parse_u64_list("transport", "--sizes", text, &rule, v, n);
    for (size_t i = 0; rc == 0 && i < *n; i++)
        sizes[i] = (size_t)v[i];
    return rc;
}

typedef struct transport_cli {
    size_t sizes[MAX_SIZES], nsizes;
    unsigned reps, window;
    bool json;
} transport_cli;

static int parse_cli(int argc, char **argv, transport_cli *c)
{
    static const struct option opts[] = {
        {"sizes", required_argument, NULL, 's'},
        {"reps", required_argument, NULL, 'r'},
        {"window", required_argument, NULL, PB_OPT_WINDOW},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    uint64_t v;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":s:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (parse_sizes(optarg, c->sizes, &c->nsizes))
                return PB_EXIT_USAGE;
            break;
        case 'r':
            if (!pb_parse_u64("transport", "--reps", optarg, 1, 100000, false, &v))
                return PB_EXIT_USAGE;
            c->reps = (unsigned)v;
            break;
        case PB_OPT_WINDOW: {
            pb_run_opts procs = {.procs_window = c->window};
            if (pb_parse_procs_option("transport", ch, optarg, &procs) != 0)
                return PB_EXIT_USAGE;
            c->window = procs.procs_window;
            break;
        }
        case 'j': c->json = true; break;
        case 'h': fputs(usage, stdout); return -1;
        case ':': return pb_usage_error("transport", "option %s needs a value", argv[optind - 1]);
        default:
            return pb_usage_error("transport", "unknown option '%s' (see poolbench transport --help)",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pb_usage_error("transport", "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* One worker each: one task in flight needs no more. */
static int strategies_create(strategy *st, unsigned window)
{
    for (size_t k = 0; k < NSTRATEGIES; k++) {
        ex_config cfg;
        ex_config_init(&cfg, st[k].kind);
        cfg.max_workers = 1;
        cfg.transport = st[k].transport;
        cfg.window = window;
        int rc = ex_create(&cfg, &st[k].ex);
        if (rc) {
            fprintf(stderr, "poolbench transport: cannot create %s: %s\n", st[k].label,
                    ex_strerror(rc));
            return 1;
        }
    }
    return 0;
}

int pb_cmd_transport(int argc, char **argv)
{
    transport_cli c = {.sizes = {64, 4096, 65536, 1 << 20, 16 << 20, 64 << 20},
                       .nsizes = 6, .reps = 20};
    int rc = parse_cli(argc, argv, &c);
    if (rc)
        return rc < 0 ? 0 : rc;
    strategy st[NSTRATEGIES] = {
        {"seq", EX_SEQ, EX_TRANSPORT_PIPE, NULL},
        {"threads", EX_THREADS, EX_TRANSPORT_PIPE, NULL},
        {"procs/pipe", EX_PROCS, EX_TRANSPORT_PIPE, NULL},
        {"procs/shm", EX_PROCS, EX_TRANSPORT_SHM, NULL},
    };
    rc = strategies_create(st, c.window);
    if (!c.json && rc == 0)
        printf("%-14s %12s %12s %12s %12s %10s\n", "executor", "bytes", "median ns",
               "p5 ns", "p95 ns", "GB/s both");
    unsigned window = c.window ? c.window : EX_DEFAULT_WINDOW;
    for (size_t i = 0; rc == 0 && i < c.nsizes; i++)
        if (measure_size(st, NSTRATEGIES, c.sizes[i], reps_for(c.sizes[i], c.reps),
                         window, c.json) != 0) {
            fprintf(stderr, "poolbench transport: a round trip of %zu bytes failed\n",
                    c.sizes[i]);
            rc = 1;
        }
    for (size_t k = 0; k < NSTRATEGIES; k++)
        ex_destroy(st[k].ex);
    return rc;
}
