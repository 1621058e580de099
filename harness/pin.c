/*
 * pin.c - pin plans: which PU each worker gets, and the hook that binds it.
 *
 * The plan owns an hwloc topology loaded once by the parent (and restricted
 * to --cpus), plus one cpuset per distinct "slot"; worker i uses slot
 * i mod nslots. After pb_pin_plan_create() returns, nothing in the plan is
 * ever written again until pb_pin_plan_destroy(): that is what makes
 * pb_pin_worker_start() safe from N threads at once (hwloc allows
 * concurrent readers of one topology) and in forked children (they read
 * their fork-time copy).
 */
#include "cli.h"
#include "pin.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest CPU number a list may name (hwloc and the kernel go further, but
 * a typo such as 1000000 should be an error, not a huge bitmap). */
#define PB_CPU_MAX 65535

struct pb_pin_plan {
    hwloc_topology_t topo;
    pb_pin_policy policy;
    unsigned nworkers;
    int for_processes;
    int restricted;          /* --cpus was given */
    unsigned npus;           /* PUs in the (restricted) topology */
    hwloc_bitmap_t pus;      /* their cpuset */
    unsigned nslots;         /* 0 for none without --cpus */
    hwloc_bitmap_t *slots;   /* nslots cpusets */
};


const char *pb_pin_policy_name(pb_pin_policy policy)
{
    switch (policy) {
    case PB_PIN_NONE:
        return "none";
    case PB_PIN_COMPACT:
        return "compact";
    case PB_PIN_SCATTER:
        return "scatter";
    }
    return "?";
}

int pb_pin_policy_parse(const char *s, pb_pin_policy *out, char *err,
                        size_t errlen)
{
    static const pb_pin_policy all[] = {PB_PIN_NONE, PB_PIN_COMPACT,
                                        PB_PIN_SCATTER};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, pb_pin_policy_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    pb_set_err(err, errlen, "bad pin policy '%s' (accepted: none, compact, scatter)",
            s ? s : "(null)");
    return -EINVAL;
}

/* Reads a decimal CPU number at *p (advancing it). -1 if there is no digit,
 * -2 if it exceeds PB_CPU_MAX. */
static long read_cpu(const char **p)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return -1;
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        if (v <= PB_CPU_MAX)
            v = v * 10 + (*s - '0');
        s++;
    }
    *p = s;
    return v > PB_CPU_MAX ? -2 : v;
}

/* One CPU number of a list item at *q: 0, or -EINVAL with the message. */
static int cpu_number(const char **q, const char *item, long *v, char *err, size_t errlen)
{
    *v = read_cpu(q);
    if (*v == -1) {
        pb_set_err(err, errlen, "CPU list item '%s' is not a CPU number or "
                "range (accepted: N or N-M, e.g. 0-3,5)", item);
        return -EINVAL;
    }
    if (*v == -2) {
        pb_set_err(err, errlen, "CPU list item '%s' has a CPU number above "
                "%d (accepted: N or N-M, e.g. 0-3,5)", item, PB_CPU_MAX);
        return -EINVAL;
    }
    return 0;
}

/* The item of len bytes at start ("N" or "N-M") into lo..hi; item is its
 * text for messages.  0 or -EINVAL. */
static int parse_item(const char *start, size_t len, const char *item, long *lo, long *hi,
                      char *err, size_t errlen)
{
    const char *q = start;
    if (cpu_number(&q, item, lo, err, errlen))
        return -EINVAL;
    *hi = *lo;
    if (q < start + len && *q == '-') {
        q++;
        if (q == start + len) {
            pb_set_err(err, errlen, "CPU list item '%s' has no range end "
                    "(accepted: N or N-M, e.g. 0-3,5)", item);
            return -EINVAL;
        }
        if (cpu_number(&q, item, hi, err, errlen))
            return -EINVAL;
    }
    if (q != start + len) {
        pb_set_err(err, errlen, "CPU list item '%s' is not a CPU number or "
                "range (accepted: N or N-M, e.g. 0-3,5)", item);
        return -EINVAL;
    }
    if (*lo > *hi) {
        pb_set_err(err, errlen, "CPU list item '%s' is a reversed range "
                "(%ld > %ld; accepted: N-M with N <= M)", item, *lo, *hi);
        return -EINVAL;
    }
    return 0;
}

/* Every CPU of lo..hi online, or -EINVAL naming the first that is not. */
static int check_online(hwloc_const_cpuset_t online, long lo, long hi, const char *item,
                        char *err, size_t errlen)
{
    for (long c = lo; online && c <= hi; c++) {
        if (hwloc_bitmap_isset(online, (unsigned)c))
            continue;
        char on[128];
        if (hwloc_bitmap_list_snprintf(on, sizeof on, online) < 0)
            snprintf(on, sizeof on, "?");
        pb_set_err(err, errlen, "CPU %ld in CPU list item '%s' is not "
                "an online PU (accepted: online PUs %s)", c, item, on);
        return -EINVAL;
    }
    return 0;
}

int pb_cpuset_parse(const char *list, hwloc_const_cpuset_t online,
                    hwloc_bitmap_t out, char *err, size_t errlen)
{
    if (!list || !out) {
        pb_set_err(err, errlen, "no CPU list");
        return -EINVAL;
    }
    hwloc_bitmap_zero(out);
    if (*list == 0) {
        pb_set_err(err, errlen, "empty CPU list (accepted: N or N-M items separated by commas, e.g. 0-3,5)");
        return -EINVAL;
    }
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t itemlen = end ? (size_t)(end - p) : strlen(p);
        /* The item, for messages (shortened if absurdly long). */
        char item[40];
        snprintf(item, sizeof item, "%.*s", (int)(itemlen < 32 ? itemlen : 32), p);
        if (itemlen == 0) {
            pb_set_err(err, errlen, "empty item in CPU list '%s' (accepted: N or "
                    "N-M items separated by commas, e.g. 0-3,5)", list);
            return -EINVAL;
        }
        long lo, hi;
        if (parse_item(p, itemlen, item, &lo, &hi, err, errlen) ||
            check_online(online, lo, hi, item, err, errlen))
            return -EINVAL;
        if (hwloc_bitmap_set_range(out, (unsigned)lo, (int)hi) < 0) {
            pb_set_err(err, errlen, "out of memory");
            return -ENOMEM;
        }
        if (!end)
            return 0;
        p = end + 1;
    }
}

void pb_pin_plan_destroy(pb_pin_plan *plan)
{
    if (!plan)
        return;
    if (plan->slots) {
        for (unsigned i = 0; i < plan->nslots; i++)
            hwloc_bitmap_free(plan->slots[i]);
        free(plan->slots);
    }
    hwloc_bitmap_free(plan->pus);
    if (plan->topo)
        hwloc_topology_destroy(plan->topo);
    free(plan);
}

/* Fills plan->slots per policy. The topology is already restricted. */
static int compute_slots(pb_pin_plan *plan, char *err, size_t errlen)
{
    if (plan->policy == PB_PIN_NONE) {
        if (!plan->restricted)
            return 0; /* no binding at all */
        plan->nslots = 1;
    } else {
        plan->nslots = plan->nworkers < plan->npus ? plan->nworkers : plan->npus;
    }
    plan->slots = calloc(plan->nslots, sizeof *plan->slots);
    if (!plan->slots)
        goto nomem;

    switch (plan->policy) {
    case PB_PIN_NONE:
        plan->slots[0] = hwloc_bitmap_dup(plan->pus);
        if (!plan->slots[0])
            goto nomem;
        break;
    case PB_PIN_COMPACT:
        /* Logical PU order is the tree order: all PUs of core 0 first. */
        for (unsigned i = 0; i < plan->nslots; i++) {
            hwloc_obj_t pu = hwloc_get_obj_by_type(plan->topo, HWLOC_OBJ_PU, i);
            if (!pu) {
                pb_set_err(err, errlen, "hwloc: PU L#%u missing", i);
                return -EIO;
            }
            plan->slots[i] = hwloc_bitmap_dup(pu->cpuset);
            if (!plan->slots[i])
                goto nomem;
        }
        break;
    case PB_PIN_SCATTER: {
        hwloc_obj_t root = hwloc_get_root_obj(plan->topo);
        if (hwloc_distrib(plan->topo, &root, 1, plan->slots, plan->nslots,
                          INT_MAX, 0) < 0) {
            pb_set_err(err, errlen, "hwloc_distrib: %s", strerror(errno));
            return errno ? -errno : -EIO;
        }
        for (unsigned i = 0; i < plan->nslots; i++) {
            /* hwloc_distrib does not check its hwloc_bitmap_dup calls. */
            if (!plan->slots[i])
                goto nomem;
            /* An item that got a whole core (or more) keeps its first PU so
             * the worker never migrates inside it. */
            if (hwloc_bitmap_singlify(plan->slots[i]) < 0)
                goto nomem;
        }
        break;
    }
    }
    return 0;
nomem:
    pb_set_err(err, errlen, "out of memory");
    return -ENOMEM;
}

/* The plan's topology and its usable PUs: online (in the topology) and
 * allowed (cgroup cpuset).  0 or -errno with the message. */
static int load_topology(pb_pin_plan *plan, char *err, size_t errlen)
{
    int rc;
    if (hwloc_topology_init(&plan->topo) < 0) {
        plan->topo = NULL;
        rc = errno ? -errno : -ENOMEM;
        pb_set_err(err, errlen, "hwloc_topology_init: %s", strerror(-rc));
        return rc;
    }
    if (hwloc_topology_load(plan->topo) < 0) {
        rc = errno ? -errno : -EIO;
        pb_set_err(err, errlen, "hwloc_topology_load: %s", strerror(-rc));
        return rc;
    }
    plan->pus = hwloc_bitmap_alloc();
    if (!plan->pus || hwloc_bitmap_and(plan->pus, hwloc_topology_get_topology_cpuset(plan->topo),
                                       hwloc_topology_get_allowed_cpuset(plan->topo)) < 0) {
        pb_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* --cpus: the topology and the usable PUs restricted to the list. */
static int restrict_to(pb_pin_plan *plan, const char *cpus, char *err, size_t errlen)
{
    hwloc_bitmap_t subset = hwloc_bitmap_alloc();
    int rc = 0;
    if (!subset) {
        pb_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = pb_cpuset_parse(cpus, plan->pus, subset, err, errlen);
    if (rc == 0 && hwloc_topology_restrict(plan->topo, subset, 0) < 0) {
        rc = errno ? -errno : -EIO;
        pb_set_err(err, errlen, "hwloc_topology_restrict to %s: %s", cpus, strerror(-rc));
    }
    if (rc == 0 && hwloc_bitmap_copy(plan->pus, subset) < 0) {
        rc = -ENOMEM;
        pb_set_err(err, errlen, "out of memory");
    }
    if (rc == 0)
        plan->restricted = 1;
    hwloc_bitmap_free(subset);
    return rc;
}

/* The topology, the PUs and the slots of a new plan. */
static int build_plan(pb_pin_plan *plan, const char *cpus, char *err, size_t errlen)
{
    int rc = load_topology(plan, err, errlen);
    if (rc == 0 && cpus && *cpus)
        rc = restrict_to(plan, cpus, err, errlen);
    if (rc < 0)
        return rc;
    int npus = hwloc_get_nbobjs_by_type(plan->topo, HWLOC_OBJ_PU);
    if (npus <= 0 || hwloc_bitmap_weight(plan->pus) <= 0) {
        pb_set_err(err, errlen, "hwloc found no usable PU");
        return -EIO;
    }
    plan->npus = (unsigned)npus;
    return compute_slots(plan, err, errlen);
}

int pb_pin_plan_create(pb_pin_policy policy, const char *cpus,
                       unsigned nworkers, int for_processes,
                       pb_pin_plan **out, char *err, size_t errlen)
{
    if (!out) {
        pb_set_err(err, errlen, "no output pointer");
        return -EINVAL;
    }
    *out = NULL;
    if (policy != PB_PIN_NONE && policy != PB_PIN_COMPACT &&
        policy != PB_PIN_SCATTER) {
        pb_set_err(err, errlen, "bad pin policy %d (accepted: none, compact, "
                "scatter)", (int)policy);
        return -EINVAL;
    }
    if (nworkers == 0) {
        pb_set_err(err, errlen, "a pin plan needs at least 1 worker");
        return -EINVAL;
    }
    pb_pin_plan *plan = calloc(1, sizeof *plan);
    if (!plan) {
        pb_set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    plan->policy = policy;
    plan->nworkers = nworkers;
    plan->for_processes = for_processes != 0;
    int rc = build_plan(plan, cpus, err, errlen);
    if (rc < 0) {
        pb_pin_plan_destroy(plan);
        return rc;
    }
    *out = plan;
    return 0;
}

static hwloc_const_cpuset_t slot_of(const pb_pin_plan *plan, unsigned index)
{
    if (!plan || plan->nslots == 0)
        return NULL;
    return plan->slots[index % plan->nslots];
}

int pb_pin_worker_start(unsigned index, void *arg)
{
    const pb_pin_plan *plan = arg;
    if (!plan)
        return -EINVAL;
    hwloc_const_cpuset_t set = slot_of(plan, index);
    if (!set)
        return 0; /* policy none, whole machine: leave the OS in charge */
    int flags = plan->for_processes ? HWLOC_CPUBIND_PROCESS : HWLOC_CPUBIND_THREAD;
    errno = 0;
    if (hwloc_set_cpubind(plan->topo, set, flags) < 0)
        return errno ? -errno : -EIO;
    return 0;
}

int pb_pin_cpu_of(const pb_pin_plan *plan, unsigned index)
{
    if (!plan || plan->policy == PB_PIN_NONE)
        return -1;
    hwloc_const_cpuset_t set = slot_of(plan, index);
    return set ? hwloc_bitmap_first(set) : -1;
}

int pb_pin_worker_cpus(const pb_pin_plan *plan, unsigned index, char *buf,
                       size_t len)
{
    if (!plan || (len && !buf))
        return -EINVAL;
    hwloc_const_cpuset_t set = slot_of(plan, index);
    if (!set) {
        if (len)
            buf[0] = 0;
        return 0;
    }
    int n = hwloc_bitmap_list_snprintf(buf, len, set);
    return n < 0 ? -ENOMEM : n;
}

int pb_pin_describe(const pb_pin_plan *plan, char *buf, size_t len)
{
    if (!plan || !buf || len == 0)
        return -EINVAL;
    char pus[128];
    if (hwloc_bitmap_list_snprintf(pus, sizeof pus, plan->pus) < 0)
        snprintf(pus, sizeof pus, "?");
    if (plan->policy == PB_PIN_NONE) {
        if (plan->restricted)
            snprintf(buf, len, "none: every worker on PUs %s", pus);
        else
            snprintf(buf, len, "none: unbound");
        return 0;
    }
    size_t used;
    if (plan->restricted)
        used = (size_t)snprintf(buf, len, "%s over PUs %s:",
                                pb_pin_policy_name(plan->policy), pus);
    else
        used = (size_t)snprintf(buf, len, "%s:", pb_pin_policy_name(plan->policy));
    if (used >= len)
        return 0; /* truncated already; snprintf terminated it */
    for (unsigned i = 0; i < plan->nworkers; i++) {
        char item[32];
        int n = snprintf(item, sizeof item, " w%u->PU%d", i, pb_pin_cpu_of(plan, i));
        /* Keep room for " ..." unless this is the last item. */
        size_t reserve = i + 1 < plan->nworkers ? 4 : 0;
        if (used + (size_t)n + reserve >= len) {
            if (used + 4 < len)
                memcpy(buf + used, " ...", 5);
            return 0;
        }
        memcpy(buf + used, item, (size_t)n + 1);
        used += (size_t)n;
    }
    return 0;
}

pb_pin_policy pb_pin_plan_policy(const pb_pin_plan *plan)
{
    return plan->policy;
}

unsigned pb_pin_plan_workers(const pb_pin_plan *plan)
{
    return plan->nworkers;
}

unsigned pb_pin_plan_npus(const pb_pin_plan *plan)
{
    return plan->npus;
}

hwloc_topology_t pb_pin_plan_topology(const pb_pin_plan *plan)
{
    return plan->topo;
}

/* ------------------------------------------------ the calling thread */

struct pb_pin_saved {
    cpu_set_t *set;
    size_t size;
};

/* Gets the calling thread's affinity into a CPU_ALLOC'd set big enough for
 * the kernel's mask (it fails with EINVAL while the set is too small). */
static int get_affinity(cpu_set_t **out, size_t *outsize)
{
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    int ncpus = conf > 1024 ? (int)conf : 1024;
    for (; ncpus <= (1 << 20); ncpus *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpus);
        if (!set)
            return -ENOMEM;
        size_t size = CPU_ALLOC_SIZE(ncpus);
        CPU_ZERO_S(size, set);
        int rc = pthread_getaffinity_np(pthread_self(), size, set);
        if (rc == 0) {
            *out = set;
            *outsize = size;
            return 0;
        }
        CPU_FREE(set);
        if (rc != EINVAL)
            return -rc;
    }
    return -EINVAL;
}

int pb_pin_current_cpus(char *buf, size_t len)
{
    if (len && !buf)
        return -EINVAL;
    cpu_set_t *set;
    size_t size;
    int rc = get_affinity(&set, &size);
    if (rc < 0)
        return rc;
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    if (!b) {
        CPU_FREE(set);
        return -ENOMEM;
    }
    for (size_t c = 0; c < size * 8; c++)
        if (CPU_ISSET_S(c, size, set) && hwloc_bitmap_set(b, (unsigned)c) < 0) {
            rc = -ENOMEM;
            break;
        }
    CPU_FREE(set);
    if (rc == 0) {
        rc = hwloc_bitmap_list_snprintf(buf, len, b);
        if (rc < 0)
            rc = -ENOMEM;
    }
    hwloc_bitmap_free(b);
    return rc;
}

int pb_pin_thread_save(pb_pin_saved **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    pb_pin_saved *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = get_affinity(&s->set, &s->size);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int pb_pin_thread_restore(pb_pin_saved *saved)
{
    if (!saved)
        return 0;
    int rc = pthread_setaffinity_np(pthread_self(), saved->size, saved->set);
    CPU_FREE(saved->set);
    free(saved);
    return -rc;
}
