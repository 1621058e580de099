/*
 * pin.h - where every worker runs: pin policies, CPU subsets, and the
 * `poolbench topo` subcommand (topo.c).
 *
 * A pin plan is computed once, in the parent, before any worker exists:
 * pb_pin_plan_create() loads the hwloc topology (restricted to --cpus when
 * given) and decides the cpuset of every worker index. The executors stay
 * hwloc-free: the plan is handed to them as ex_config.worker_start =
 * pb_pin_worker_start, worker_start_arg = plan, and each worker binds
 * itself before its first task. A forked worker uses the topology its
 * parent loaded (a fork-time copy), so children never reload it.
 *
 * Policies (worker i of n, over the allowed PUs P, |P| = m):
 *   none     no binding; with --cpus every worker is bound to the whole
 *            subset and the OS schedules inside it;
 *   compact  worker i -> the (i mod m)-th PU in hwloc's logical order, which
 *            fills core 0's PUs, then core 1's, ... (SMT siblings first);
 *   scatter  hwloc_distrib() of min(n, m) items over the topology (spread
 *            across packages, NUMA nodes, caches, cores; one PU each), then
 *            worker i -> item (i mod min(n, m)).
 * Indexes beyond n - 1 wrap the same way, so a replacement worker that
 * reuses an index gets the same PU.
 *
 * CPU numbers in lists and descriptions are OS indexes (what taskset,
 * sched_getcpu() and /proc use; hwloc's "P#").
 *
 * Errors are negative errno values (-EINVAL with a one-line message in err
 * for bad input, -ENOMEM, -ENOSYS when binding is not supported, or the
 * errno of the failed call).
 */
#ifndef PB_PIN_H
#define PB_PIN_H

#include <stddef.h>

#include <hwloc.h>

typedef enum {
    PB_PIN_NONE = 0,
    PB_PIN_COMPACT = 1,
    PB_PIN_SCATTER = 2,
} pb_pin_policy;

/* "none", "compact", "scatter" ("?" for anything else). Does not block. */
const char *pb_pin_policy_name(pb_pin_policy policy);

/* Parses a policy name. Returns 0, or -EINVAL with "bad pin policy 'x'
 * (accepted: none, compact, scatter)" in err (err may be NULL when errlen
 * is 0). Does not block. */
int pb_pin_policy_parse(const char *s, pb_pin_policy *out, char *err,
                        size_t errlen);

/* Parses a CPU list: comma-separated items, each N or N-M (N <= M), OS
 * indexes below 65536, e.g. "0-3", "0,2", "1", "0-1,4". Then, if online
 * is not NULL, checks that every CPU is in it. Fills out (a caller-allocated
 * bitmap, emptied first). Returns 0, or -EINVAL with a message naming the
 * bad item and what is accepted ("CPU list item '5-2' is a reversed range
 * (5 > 2; accepted: N-M with N <= M)", "CPU 7 in CPU list item '4-7' is not
 * an online PU (accepted: online PUs 0-3)"), or -ENOMEM. Does not block. */
int pb_cpuset_parse(const char *list, hwloc_const_cpuset_t online,
                    hwloc_bitmap_t out, char *err, size_t errlen);

typedef struct pb_pin_plan pb_pin_plan;

/* Loads the topology and computes the cpuset of each of nworkers workers
 * (nworkers >= 1) under policy, over the PUs in `cpus` (a CPU list as
 * above, validated against the online and allowed PUs; NULL or "" means
 * all of them). for_processes selects how pb_pin_worker_start binds:
 * 0 binds the calling thread (EX_THREADS, EX_SEQ), 1 the calling process
 * (EX_PROCS workers). Call it before forking any worker. Returns 0 and
 * *out, or a negative errno with a one-line message in err. Blocks while
 * hwloc reads /sys (a few ms). */
int pb_pin_plan_create(pb_pin_policy policy, const char *cpus,
                       unsigned nworkers, int for_processes,
                       pb_pin_plan **out, char *err, size_t errlen);

/* Frees the plan and its topology. NULL is a no-op. No worker may be
 * inside pb_pin_worker_start() at that time. Does not block. */
void pb_pin_plan_destroy(pb_pin_plan *plan);

/* The ex_config.worker_start hook: binds the calling thread (or, for a
 * for_processes plan, the calling process) to worker `index`'s cpuset.
 * `plan` is a pb_pin_plan *. Policy none without --cpus does nothing.
 * Safe to call from many threads at once (it only reads the plan) and in a
 * forked child. Returns 0, or a negative errno (the binding failed; errno is
 * left as hwloc set it). Does not block. */
int pb_pin_worker_start(unsigned index, void *plan);

/* The OS index of the first PU of worker index's cpuset, or -1 when the
 * policy is none (no single PU). Does not block. */
int pb_pin_cpu_of(const pb_pin_plan *plan, unsigned index);

/* Writes worker index's cpuset as a CPU list ("3", "0-3") into buf, or "" for
 * policy none without --cpus. Returns the length snprintf would have
 * written, or a negative errno. Does not block. */
int pb_pin_worker_cpus(const pb_pin_plan *plan, unsigned index, char *buf,
                       size_t len);

/* One line: what the plan does, e.g. "compact: w0->PU0 w1->PU1 w2->PU0",
 * "scatter over PUs 0,2: w0->PU0 w1->PU2", "none: unbound",
 * "none: every worker on PUs 0-1". Truncated with "..." to fit len.
 * Returns 0, or -EINVAL (len == 0). Does not block. */
int pb_pin_describe(const pb_pin_plan *plan, char *buf, size_t len);

/* Accessors. Do not block. */
pb_pin_policy pb_pin_plan_policy(const pb_pin_plan *plan);
unsigned pb_pin_plan_workers(const pb_pin_plan *plan);
/* Number of PUs the plan spreads over (the --cpus subset, or every allowed
 * PU): the "Ncpu" of pool sizing formulas. */
unsigned pb_pin_plan_npus(const pb_pin_plan *plan);
/* The plan's topology (restricted to --cpus), read-only, owned by the plan;
 * for callers that need more than the accessors above. */
hwloc_topology_t pb_pin_plan_topology(const pb_pin_plan *plan);

/* The calling thread's current binding as a CPU list ("0-1") into buf:
 * what a worker actually obtained, to record next to the plan. Returns the
 * snprintf length or a negative errno. Does not block. */
int pb_pin_current_cpus(char *buf, size_t len);

/* A saved thread affinity, so that the caller of an EX_SEQ run (whose
 * worker_start binds the caller itself) can be unbound afterwards; threads
 * created later inherit the creating thread's affinity, so a sweep MUST
 * restore it. pb_pin_thread_save() allocates *out; pb_pin_thread_restore()
 * applies and frees it (NULL is a no-op returning 0). Both return 0 or a
 * negative errno. Do not block. */
typedef struct pb_pin_saved pb_pin_saved;
int pb_pin_thread_save(pb_pin_saved **out);
int pb_pin_thread_restore(pb_pin_saved *saved);

/* The `poolbench topo` subcommand (topo.c): argv[0] is "topo"; options
 * --workers N (1..4096, default PUs + 2), --cpus LIST, --xml FILE ("-" for
 * stdout: then only the XML is printed), --help. Prints the topology
 * summary and what each policy does with N workers on stdout. Returns 0,
 * 1 on a runtime error, 2 for bad usage (one line on stderr). Blocks
 * while hwloc reads the machine. */
int pb_cmd_topo(int argc, char **argv);

#endif /* PB_PIN_H */
