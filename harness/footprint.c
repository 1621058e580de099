/*
 * footprint.c: `poolbench footprint`, the memory a future of the thread
 * pool costs: the growth of this process's resident set while N empty
 * tasks are pending (every worker held by a gate task), divided by N; then the same once
 * they are all done and still held, after they are released, and after
 * the executor is destroyed.  The caller's own array of N future pointers
 * is allocated and touched before the first reading, so it is not counted.
 * scripts/scale.py puts it beside GLib's pool (scripts/peers/glib_rss.c).
 */
#include "cli.h"
#include "json.h"
#include "commands.h"
#include "executor.h"

#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int gate_open;

/* Holds its worker until the gate opens. */
static int gate_task(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000};
    while (!atomic_load(&gate_open))
        nanosleep(&ts, NULL);
    return 0;
}

static int empty_task(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    return 0;
}

/* Resident set in bytes (/proc/self/statm), or -1. */
static double rss_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (fp) {
        if (fscanf(fp, "%ld %ld", &size, &resident) != 2)
            resident = -1;
        fclose(fp);
    }
    return resident < 0 ? -1 : (double)resident * (double)sysconf(_SC_PAGESIZE);
}

typedef struct readings {
    double before, pending, done, released, destroyed; /* RSS, bytes */
} readings;

/* Every worker runs a gate task (0), or -1 if one failed to start. */
static int hold_workers(ex_executor *ex, ex_future **gates, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (ex_submit(ex, gate_task, NULL, 0, &gates[i]))
            return -1;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000};
    for (unsigned i = 0; i < n; i++)
        while (ex_future_state(gates[i]) == EX_PENDING)
            nanosleep(&ts, NULL);
    return 0;
}

/* The readings for n pending futures, ending with ex destroyed; 0 or -1
 * (a submit failed). */
static int measure(ex_executor *ex, size_t n, readings *r)
{
    unsigned w = ex_workers(ex);
    ex_future **fs = calloc(n + w, sizeof *fs);
    if (!fs)
        return -1;
    /* Resident before the first reading (a plain memset of calloc'd
     * memory is optimised away). */
    explicit_bzero(fs, (n + w) * sizeof *fs);
    atomic_store(&gate_open, 0);
    int rc = hold_workers(ex, fs + n, w);
    r->before = rss_bytes();
    size_t k = 0;
    for (; rc == 0 && k < n; k++)
        if (ex_submit(ex, empty_task, NULL, 0, &fs[k]))
            rc = -1;
    r->pending = rss_bytes();
    atomic_store(&gate_open, 1);
    for (size_t i = 0; i < n + w; i++)
        if (fs[i])
            ex_future_wait(fs[i], EX_FOREVER);
    r->done = rss_bytes();
    for (size_t i = 0; i < n + w; i++)
        ex_future_release(fs[i]);
    r->released = rss_bytes();
    ex_destroy(ex);
    r->destroyed = rss_bytes();
    free(fs);
    return rc;
}

static const char usage[] =
    "usage: poolbench footprint [options]\n"
    "\n"
    "Memory per future of the thread pool: the growth of the resident set while N empty tasks\n"
    "are pending (every worker held by a gate task), divided by N; then\n"
    "with all done and still held, after they are released, and after the\n"
    "executor is destroyed (the caller's pointer array is not counted).\n"
    "\n"
    "  -w, --workers N       pool size, 1..256 (default 2)\n"
    "  -n, --tasks N         pending futures, 1..100000000 (default 1000000)\n"
    "      --json            one JSON object\n"
    "  -h, --help            this text\n";

/* The readings per future: a line for a reader, or one JSON object.  0,
 * or -1 when the JSON could not be written. */
static int print(const char *kind, unsigned w, size_t n, const readings *r, bool json)
{
    double pn = (r->pending - r->before) / (double)n, dn = (r->done - r->before) / (double)n;
    double rn = (r->released - r->before) / (double)n;
    double xn = (r->destroyed - r->before) / (double)n;
    if (!json) {
        printf("%s, %u workers, %zu futures: RSS growth per future %.1f B pending, %.1f B "
               "done, %.1f B after release, %.1f B after destroy\n",
               kind, w, n, pn, dn, rn, xn);
        return 0;
    }
    json_t *j = json_object();
    int rc = pb_json_str(j, "executor", kind);
    rc |= pb_json_int(j, "workers", w);
    rc |= pb_json_int(j, "tasks", (long long)n);
    rc |= pb_json_num(j, "rss_before", r->before, "%.0f");
    rc |= pb_json_num(j, "rss_pending_bytes_per_future", pn, "%.1f");
    rc |= pb_json_num(j, "rss_done_bytes_per_future", dn, "%.1f");
    rc |= pb_json_num(j, "rss_released_bytes_per_future", rn, "%.1f");
    rc |= pb_json_num(j, "rss_destroyed_bytes_per_future", xn, "%.1f");
    return pb_json_finish(stdout, j, rc, 0);
}

/* The options: 0, -1 after --help (exit 0), or PB_EXIT_USAGE. */
static int parse_opts(int argc, char **argv, unsigned *workers, size_t *tasks, bool *json)
{
    static const struct option opts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"tasks", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    uint64_t v;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":w:n:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'w':
            if (!pb_parse_u64("footprint", "--workers", optarg, 1, 256, false, &v))
                return PB_EXIT_USAGE;
            *workers = (unsigned)v;
            break;
        case 'n':
            if (!pb_parse_u64("footprint", "--tasks", optarg, 1, 100000000, true, &v))
                return PB_EXIT_USAGE;
            *tasks = (size_t)v;
            break;
        case 'j': *json = true; break;
        case 'h': fputs(usage, stdout); return -1;
        case ':': return pb_usage_error("footprint", "option %s needs a value", argv[optind - 1]);
        default:
            return pb_usage_error("footprint", "unknown option '%s' (see poolbench footprint --help)",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pb_usage_error("footprint", "unexpected argument '%s'", argv[optind]);
    return 0;
}

int pb_cmd_footprint(int argc, char **argv)
{
    unsigned workers = 2;
    size_t tasks = 1000000;
    bool json = false;
    int rc = parse_opts(argc, argv, &workers, &tasks, &json);
    if (rc)
        return rc < 0 ? 0 : rc;
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    cfg.max_workers = workers;
    ex_executor *ex;
    if ((rc = ex_create(&cfg, &ex)) != 0) {
        fprintf(stderr, "poolbench footprint: cannot create threads: %s\n", ex_strerror(rc));
        return 1;
    }
    readings r;
    unsigned w = ex_workers(ex);
    if (measure(ex, tasks, &r)) {
        fprintf(stderr, "poolbench footprint: a submit failed\n");
        return 1;
    }
    return print("threads", w, tasks, &r, json) == 0 ? 0 : 1;
}
