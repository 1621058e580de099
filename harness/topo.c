/*
 * topo.c - `poolbench topo`: the machine as hwloc sees it, and what each pin
 * policy would do with N workers on it.
 *
 * The summary is what a reader of a results directory needs to interpret
 * scaling curves: packages, NUMA nodes, shared caches, cores and PUs with
 * their OS indexes, and the CPU model. --xml writes the full lstopo-style
 * XML (I/O devices and instruction caches included, as lstopo shows them)
 * for machine.json.
 */
#include "cli.h"
#include "pin.h"

#include <errno.h>
#include <getopt.h>
#include <hwloc/export.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOPO_USAGE                                                            \
    "usage: poolbench topo [--workers N] [--cpus LIST] [--xml FILE]\n"        \
    "  Prints the hwloc topology (packages, NUMA nodes, caches, cores, PUs\n" \
    "  with OS indexes, CPU model) and what each pin policy (none, compact,\n" \
    "  scatter) does with N workers.\n"                                       \
    "  --workers N   workers to place, 1..4096 (default: PUs + 2, to show\n"  \
    "                how indexes wrap)\n"                                     \
    "  --cpus LIST   restrict the policies to these PUs (OS indexes: 0-3,\n"  \
    "                0,2, 1)\n"                                               \
    "  --xml FILE    also write the topology as lstopo XML to FILE\n"         \
    "                (\"-\": only the XML, on stdout)\n"                      \
    "  --help        this text\n"

#define TOPO_ACCEPTED "--workers N, --cpus LIST, --xml FILE, --help"
#define TOPO_MAX_WORKERS 4096


static const char *cpu_model(hwloc_topology_t topo, char *buf, size_t len)
{
    hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
    const char *m = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
    if (m && *m) {
        snprintf(buf, len, "%s", m);
        return buf;
    }
    /* Fallback: the first "model name" (x86) or "cpu model"/"Processor". */
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return buf;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) && strncmp(line, "cpu model", 9) &&
            strncmp(line, "Processor", 9))
            continue;
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, len, "%s", colon);
        break;
    }
    fclose(f);
    return buf;
}

static void print_size(FILE *out, uint64_t bytes)
{
    if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
        fprintf(out, " (%" PRIu64 " GiB)", bytes >> 30);
    else if (bytes >= (1ull << 20))
        fprintf(out, " (%" PRIu64 " MiB)", bytes >> 20);
    else if (bytes >= 1024)
        fprintf(out, " (%" PRIu64 " KiB)", bytes >> 10);
    else if (bytes)
        fprintf(out, " (%" PRIu64 " B)", bytes);
}

/* "Core L#1 P#1 (...)". OS indexes are meaningful for packages, NUMA
 * nodes, cores and PUs; caches get a size. */
static void print_obj(FILE *out, hwloc_obj_t obj)
{
    char type[64];
    if (hwloc_obj_type_snprintf(type, sizeof type, obj, 0) < 0)
        snprintf(type, sizeof type, "?");
    fprintf(out, "%s L#%u", type, obj->logical_index);
    if (obj->os_index != HWLOC_UNKNOWN_INDEX &&
        (obj->type == HWLOC_OBJ_PACKAGE || obj->type == HWLOC_OBJ_NUMANODE ||
         obj->type == HWLOC_OBJ_CORE || obj->type == HWLOC_OBJ_PU ||
         obj->type == HWLOC_OBJ_DIE))
        fprintf(out, " P#%u", obj->os_index);
    if (hwloc_obj_type_is_cache(obj->type) && obj->attr)
        print_size(out, obj->attr->cache.size);
    if (obj->type == HWLOC_OBJ_NUMANODE && obj->attr)
        print_size(out, obj->attr->numanode.local_memory);
}

/* lstopo-like tree: a chain of single children on one line ("L2 + L1d +
 * Core + PU"), memory children listed first under their parent. */
static void print_tree(FILE *out, hwloc_obj_t obj, int depth)
{
    fprintf(out, "%*s", 2 * depth + 2, "");
    print_obj(out, obj);
    while (obj->arity == 1 && obj->memory_arity == 0) {
        obj = obj->children[0];
        fputs(" + ", out);
        print_obj(out, obj);
    }
    fputc('\n', out);
    for (hwloc_obj_t m = obj->memory_first_child; m; m = m->next_sibling)
        print_tree(out, m, depth + 1);
    for (unsigned i = 0; i < obj->arity; i++)
        print_tree(out, obj->children[i], depth + 1);
}

static void print_summary(FILE *out, hwloc_topology_t topo)
{
    char model[256];
    hwloc_obj_t root = hwloc_get_root_obj(topo);
    const char *os = hwloc_obj_get_info_by_name(root, "OSName");
    const char *rel = hwloc_obj_get_info_by_name(root, "OSRelease");
    const char *arch = hwloc_obj_get_info_by_name(root, "Architecture");
    const char *host = hwloc_obj_get_info_by_name(root, "HostName");
    char pus[256];
    if (hwloc_bitmap_list_snprintf(pus, sizeof pus,
                                   hwloc_topology_get_topology_cpuset(topo)) < 0)
        snprintf(pus, sizeof pus, "?");
    unsigned v = hwloc_get_api_version();

    fprintf(out, "Host:      %s\n", host ? host : "?");
    fprintf(out, "CPU model: %s\n", cpu_model(topo, model, sizeof model));
    fprintf(out, "OS:        %s %s %s\n", os ? os : "?", rel ? rel : "",
            arch ? arch : "");
    fprintf(out, "hwloc:     %s (built against), API %u.%u.%u (runtime)\n",
            HWLOC_VERSION, v >> 16, (v >> 8) & 0xff, v & 0xff);
    fprintf(out, "Counts:    %d package(s), %d NUMA node(s), %d L3, %d L2, "
            "%d core(s), %d PU(s) (online: %s)\n",
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE),
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE),
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_L3CACHE),
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_L2CACHE),
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE),
            hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU), pus);
    fprintf(out, "Topology (L# logical index, P# OS index):\n");
    print_tree(out, root, 0);
}

/* Loads a topology the way lstopo does (I/O and instruction caches kept)
 * and exports it; runs in the child forked by export_xml. Returns 0 or -1
 * with a message on stderr. */
static int export_xml_here(const char *path)
{
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) < 0) {
        fprintf(stderr, "poolbench topo: hwloc_topology_init: %s\n", strerror(errno));
        return -1;
    }
    int rc = -1;
    if (hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_IMPORTANT) < 0 ||
        hwloc_topology_set_icache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_ALL) < 0) {
        fprintf(stderr, "poolbench topo: hwloc filters: %s\n", strerror(errno));
        goto out;
    }
    if (hwloc_topology_load(t) < 0) {
        fprintf(stderr, "poolbench topo: hwloc_topology_load: %s\n", strerror(errno));
        goto out;
    }
    if (hwloc_topology_export_xml(t, path, 0) < 0) {
        fprintf(stderr, "poolbench topo: cannot write XML to %s: %s\n", path,
                strerror(errno));
        goto out;
    }
    rc = 0;
out:
    hwloc_topology_destroy(t);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "poolbench topo: writing stdout: %s\n", strerror(errno));
        rc = -1;
    }
    return rc;
}

/* The I/O discovery (hwloc's PCI backend, libpciaccess) does not free all
 * it allocates, and it is not needed for anything but this file: so the
 * XML is produced in a short-lived child, which leaves the caller's heap
 * exactly as it was (and LeakSanitizer quiet). Returns 0 or -1. */
static int export_xml(const char *path)
{
    fflush(stdout); /* or the child would write our buffered output again */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "poolbench topo: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0)
        _exit(export_xml_here(path) == 0 ? 0 : 1);
    int status;
    pid_t w;
    while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (w < 0) {
        fprintf(stderr, "poolbench topo: waitpid: %s\n", strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "poolbench topo: the XML export died (signal %d)\n",
                WTERMSIG(status));
    return -1; /* the child said why */
}

/* The command line. */
typedef struct topo_opts {
    unsigned workers;
    const char *cpus, *xml;
} topo_opts;

/* An option given without its value: one line naming it and what it takes. */
static int missing_value(int opt)
{
    switch (opt) {
    case 'w':
        return pb_usage_error("topo", "--workers: missing value (accepted: an integer in 1..%d)",
                              TOPO_MAX_WORKERS);
    case 'c':
        return pb_usage_error("topo", "--cpus: missing value (accepted: a CPU list such as 0-3, "
                              "0,2 or 1)");
    default:
        return pb_usage_error("topo", "--xml: missing value (accepted: a file path, or - for "
                              "stdout)");
    }
}

/* The command line into *o: 0 to go on, -1 after --help, or 2. */
static int parse_cli(int argc, char **argv, topo_opts *o)
{
    static const struct option opts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"cpus", required_argument, NULL, 'c'},
        {"xml", required_argument, NULL, 'x'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    *o = (topo_opts){0};
    uint64_t v;
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'h': fputs(TOPO_USAGE, stdout); return -1;
        case ':': return missing_value(optopt);
        case 'w':
            if (!pb_parse_u64("topo", "--workers", optarg, 1, TOPO_MAX_WORKERS, false, &v))
                return PB_EXIT_USAGE;
            o->workers = (unsigned)v;
            break;
        case 'c': o->cpus = optarg; break;
        case 'x':
            if (!*optarg)
                return missing_value('x');
            o->xml = optarg;
            break;
        default:
            return pb_usage_error("topo", "unknown option '%s' (accepted: %s)", argv[optind - 1],
                                  TOPO_ACCEPTED);
        }
    }
    if (optind < argc)
        return pb_usage_error("topo", "unexpected argument '%s' (accepted: %s)", argv[optind],
                              TOPO_ACCEPTED);
    return 0;
}

/* How many PUs the plans spread over: all of them, or those of --cpus
 * (checked before anything is printed: a bad list is a usage error).
 * 0, or the exit status. */
static int plan_pus(hwloc_topology_t topo, const char *cpus, int *npus)
{
    *npus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    if (!cpus)
        return 0;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    hwloc_bitmap_t online = hwloc_bitmap_alloc();
    if (!set || !online ||
        hwloc_bitmap_and(online, hwloc_topology_get_topology_cpuset(topo),
                         hwloc_topology_get_allowed_cpuset(topo)) < 0) {
        hwloc_bitmap_free(set);
        hwloc_bitmap_free(online);
        fprintf(stderr, "poolbench topo: out of memory\n");
        return 1;
    }
    char err[256];
    int prc = pb_cpuset_parse(cpus, online, set, err, sizeof err);
    *npus = hwloc_bitmap_weight(set);
    hwloc_bitmap_free(set);
    hwloc_bitmap_free(online);
    if (prc < 0) {
        fprintf(stderr, "poolbench topo: --cpus: %s\n", err);
        return prc == -EINVAL ? 2 : 1;
    }
    return 0;
}

/* Where each pin policy puts the workers; 0 or 1. */
static int print_policies(const char *cpus, unsigned workers, int npus)
{
    static const pb_pin_policy policies[] = {PB_PIN_NONE, PB_PIN_COMPACT, PB_PIN_SCATTER};
    printf("\nPin policies with %u worker(s)%s%s%s:\n", workers, cpus ? " over --cpus " : "",
           cpus ? cpus : "", workers > (unsigned)npus ? " (indexes wrap past the PUs)" : "");
    for (size_t p = 0; p < sizeof policies / sizeof policies[0]; p++) {
        pb_pin_plan *plan;
        char err[256];
        if (pb_pin_plan_create(policies[p], cpus, workers, 0, &plan, err, sizeof err) < 0) {
            fprintf(stderr, "poolbench topo: %s plan: %s\n", pb_pin_policy_name(policies[p]),
                    err);
            return 1;
        }
        char desc[8192];
        pb_pin_describe(plan, desc, sizeof desc);
        printf("  %-8s %s\n", pb_pin_policy_name(policies[p]), desc);
        pb_pin_plan_destroy(plan);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "poolbench topo: writing stdout: %s\n", strerror(errno));
        return 1;
    }
    return 0;
}

/* The summary, or the XML export, and the plans; 0 or the exit status. */
static int topo_report(hwloc_topology_t topo, const topo_opts *o)
{
    int npus;
    int rc = plan_pus(topo, o->cpus, &npus);
    if (rc)
        return rc;
    if (o->xml) {
        if (export_xml(o->xml) < 0)
            return 1;
        if (strcmp(o->xml, "-") == 0)
            return 0;
    }
    print_summary(stdout, topo);
    unsigned workers = o->workers ? o->workers : (unsigned)(npus > 0 ? npus : 1) + 2;
    return print_policies(o->cpus, workers, npus);
}

int pb_cmd_topo(int argc, char **argv)
{
    topo_opts o;
    int rc = parse_cli(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) < 0) {
        fprintf(stderr, "poolbench topo: hwloc_topology_init: %s\n", strerror(errno));
        return 1;
    }
    if (hwloc_topology_load(topo) < 0) {
        fprintf(stderr, "poolbench topo: hwloc_topology_load: %s\n", strerror(errno));
        hwloc_topology_destroy(topo);
        return 1;
    }
    rc = topo_report(topo, &o);
    hwloc_topology_destroy(topo);
    return rc;
}
