/*
 * cmd_noise.c: `poolbench noise`, the machine's state right now: the CPUs
 * a parallel spin actually gets, the load average, runnable processes,
 * steal, iowait and the CPU other processes took meanwhile.  The same
 * figures every sweep row carries (noise.h), on demand: bench.sh records
 * one before and one after the sweeps, and anyone quoting a figure can
 * record the state it was taken in.
 */
#include "cli.h"
#include "json.h"
#include "commands.h"
#include "noise.h"
#include "run.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: poolbench noise [--ms N] [--json] [--label TEXT]\n"
    "\n"
    "Spins one thread per allowed CPU for N ms (default 200) and prints the\n"
    "CPUs it got, with the 1-minute load average and procs_running read just\n"
    "before, and the steal, iowait and other processes' CPU over the spin.\n"
    "\n"
    "      --ms N   spin length, 1..60000 ms (default 200)\n"
    "      --json   one JSON object on one line\n"
    "      --label TEXT  a name for this reading, printed with it\n"
    "  -h, --help   this text\n";

static double rusage_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A line for a reader, or one JSON object (null where not measured).
 * 0, or -1 when the JSON could not be written. */
static int print(const pb_noise *n, bool json, const char *label)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (json) {
        json_t *j = json_object();
        int rc = pb_json_str(j, "label", label ? label : "");
        rc |= pb_json_str(j, "timestamp", ts);
        rc |= pb_json_int(j, "online_cpus", online);
        rc |= pb_json_num(j, "capacity_cpus", n->capacity_cpus, "%.3f");
        rc |= pb_json_num(j, "loadavg_1m", n->loadavg_1m, "%.2f");
        rc |= pb_json_int(j, "procs_running", n->procs_running);
        rc |= pb_json_num(j, "window_s", n->window_s, "%.3f");
        rc |= pb_json_num(j, "steal_pct", n->steal_pct, "%.2f");
        rc |= pb_json_num(j, "iowait_pct", n->iowait_pct, "%.2f");
        rc |= pb_json_num(j, "others_cpu_s", n->others_cpu_s, "%.3f");
        return pb_json_finish(stdout, j, rc, 0);
    }
    printf("%s%s%s: %.2f of %ld CPUs available to a parallel spin; load %.2f, %ld runnable "
           "before; over %.2f s: steal %.1f%%, iowait %.1f%%, other processes %.2f CPU s\n",
           label ? label : "", label ? " " : "", ts, n->capacity_cpus, online, n->loadavg_1m,
           n->procs_running, n->window_s, n->steal_pct, n->iowait_pct, n->others_cpu_s);
    return 0;
}

int pb_cmd_noise(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ms", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"label", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    uint64_t ms = 200;
    bool json = false;
    const char *label = NULL;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            if (!pb_parse_u64("noise", "--ms", optarg, 1, 60000, false, &ms))
                return PB_EXIT_USAGE;
            break;
        case 'j': json = true; break;
        case 'l': label = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        case ':': return pb_usage_error("noise", "option %s needs a value", argv[optind - 1]);
        default:
            return pb_usage_error("noise", "unknown option '%s' (see poolbench noise --help)",
                                  argv[optind - 1]);
        }
    }
    if (optind < argc)
        return pb_usage_error("noise", "unexpected argument '%s'", argv[optind]);
    pb_noise n;
    pb_noise_before(&n, 0);
    pb_noise_window w;
    double own0 = rusage_cpu_s();
    pb_noise_window_begin(&w, 0);
    n.capacity_cpus = pb_capacity_probe((double)ms);
    pb_noise_window_end(&w);
    pb_noise_account(&w, rusage_cpu_s() - own0, &n);
    return print(&n, json, label) == 0 ? 0 : 1;
}
