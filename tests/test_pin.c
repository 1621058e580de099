/*
 * test_pin.c: harness/pin.c. Every binding is read back from the kernel
 * (sched_getcpu, sched_getaffinity, hwloc_get_cpubind), in threads that bind
 * concurrently, in a forked child, and end to end through the ex_ API with
 * pb_pin_worker_start as the worker_start hook. CPU-list and policy errors
 * are checked for their status and for naming the offending item.
 */
#include "util.h"

#include "pin.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* PUs the test process could run on when it started (taskset may narrow
 * it); every "unbound again" check compares against this. */
static int start_count;

static int npus_online(void)
{
    pb_pin_plan *plan;
    char err[256];
    int rc = pb_pin_plan_create(PB_PIN_COMPACT, NULL, 1, 0, &plan, err, sizeof err);
    if (rc != 0) {
        print_error("plan: %s\n", err);
        return -1;
    }
    int n = (int)pb_pin_plan_npus(plan);
    pb_pin_plan_destroy(plan);
    return n;
}

/* The calling thread's affinity as a CPU list (via pin.c) and as a set. */
static int affinity_is_exactly(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    return CPU_COUNT(&set) == 1 && CPU_ISSET(cpu, &set);
}

static void test_policy_parse(void **state)
{
    (void)state;
    pb_pin_policy p = PB_PIN_SCATTER;
    char err[128];
    assert_int_equal(pb_pin_policy_parse("none", &p, err, sizeof err), 0);
    assert_int_equal(p, PB_PIN_NONE);
    assert_int_equal(pb_pin_policy_parse("compact", &p, err, sizeof err), 0);
    assert_int_equal(p, PB_PIN_COMPACT);
    assert_int_equal(pb_pin_policy_parse("scatter", &p, err, sizeof err), 0);
    assert_int_equal(p, PB_PIN_SCATTER);
    assert_string_equal(pb_pin_policy_name(PB_PIN_COMPACT), "compact");
    assert_string_equal(pb_pin_policy_name((pb_pin_policy)42), "?");

    const char *bad[] = {"Compact", "", "spread", "none "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        p = PB_PIN_SCATTER;
        assert_int_equal(pb_pin_policy_parse(bad[i], &p, err, sizeof err), -EINVAL);
        assert_int_equal(p, PB_PIN_SCATTER); /* untouched */
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
        assert_non_null(strstr(err, quoted));
        assert_non_null(strstr(err, "none, compact, scatter"));
    }
    /* NULL input, no error buffer */
    assert_int_equal(pb_pin_policy_parse(NULL, &p, NULL, 0), -EINVAL);
}

static void test_cpuset_parse(void **state)
{
    (void)state;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    assert_non_null(set);
    char err[256], list[64];

    struct { const char *in, *want; } good[] = {
        {"0-3", "0-3"}, {"0,2", "0,2"}, {"1", "1"}, {"0-1,4", "0-1,4"},
        {"3,1,2", "1-3"}, {"5-5", "5"}, {"0010", "10"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(pb_cpuset_parse(good[i].in, NULL, set, err, sizeof err), 0);
        assert_true(hwloc_bitmap_list_snprintf(list, sizeof list, set) >= 0);
        assert_string_equal(list, good[i].want);
    }

    /* Each bad list, and the text its message must contain. */
    struct { const char *in, *names; } bad[] = {
        {"0-", "'0-'"},        {"a", "'a'"},          {"5-2", "'5-2'"},
        {"0,,1", "'0,,1'"},    {"", "empty"},         {"1x", "'1x'"},
        {"-1", "'-1'"},        {"1-a", "'1-a'"},      {"0,", "'0,'"},
        {"99999", "'99999'"},  {"1-99999", "'1-99999'"}, {" 1", "' 1'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = pb_cpuset_parse(bad[i].in, NULL, set, err, sizeof err);
        if (rc != -EINVAL || !strstr(err, bad[i].names)) {
            print_error("'%s': rc %d, message \"%s\" should name %s\n",
                        bad[i].in, rc, err, bad[i].names);
            fail();
        }
    }
    assert_int_equal(pb_cpuset_parse("5-2", NULL, set, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "reversed"));
    assert_int_equal(pb_cpuset_parse(NULL, NULL, set, NULL, 0), -EINVAL);

    /* Against an "online" set {0,1}: CPU 2 is named, with the online list. */
    hwloc_bitmap_t online = hwloc_bitmap_alloc();
    assert_non_null(online);
    assert_int_equal(hwloc_bitmap_set_range(online, 0, 1), 0);
    assert_int_equal(pb_cpuset_parse("0-1", online, set, err, sizeof err), 0);
    assert_int_equal(pb_cpuset_parse("0-2", online, set, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "CPU 2"));
    assert_non_null(strstr(err, "'0-2'"));
    assert_non_null(strstr(err, "online PUs 0-1"));
    hwloc_bitmap_free(online);
    hwloc_bitmap_free(set);
}

static void test_plan_errors(void **state)
{
    (void)state;
    int n = npus_online();
    assert_true(n >= 1);
    pb_pin_plan *plan = (pb_pin_plan *)&plan;
    char err[256], cpus[32];

    /* A CPU past the last online PU is named. */
    snprintf(cpus, sizeof cpus, "0-%d", n);
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, cpus, 2, 0, &plan, err,
                                        sizeof err), -EINVAL);
    assert_null(plan);
    char want[32];
    snprintf(want, sizeof want, "CPU %d", n);
    assert_non_null(strstr(err, want));

    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, "0-", 2, 0, &plan, err,
                                        sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'0-'"));
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, NULL, 0, 0, &plan, err,
                                        sizeof err), -EINVAL);
    assert_non_null(strstr(err, "at least 1 worker"));
    assert_int_equal(pb_pin_plan_create((pb_pin_policy)7, NULL, 1, 0, &plan, err,
                                        sizeof err), -EINVAL);
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, NULL, 1, 0, NULL, err,
                                        sizeof err), -EINVAL);
    assert_int_equal(pb_pin_worker_start(0, NULL), -EINVAL);
    pb_pin_plan_destroy(NULL);
}

/* ------------------------------------------------ threads bind at once */

typedef struct {
    pb_pin_plan *plan;
    unsigned index;
    pthread_barrier_t *barrier;
    int rc, cpu_after, affinity_ok, hwloc_ok;
} bind_job;

static void *bind_thread(void *arg)
{
    bind_job *j = arg;
    /* Start together: N threads inside pb_pin_worker_start at once. */
    pthread_barrier_wait(j->barrier);
    j->rc = pb_pin_worker_start(j->index, j->plan);
    j->cpu_after = sched_getcpu();
    int want = pb_pin_cpu_of(j->plan, j->index);
    j->affinity_ok = affinity_is_exactly(want);
    hwloc_topology_t topo = pb_pin_plan_topology(j->plan);
    hwloc_bitmap_t got = hwloc_bitmap_alloc();
    if (got && hwloc_get_cpubind(topo, got, HWLOC_CPUBIND_THREAD) == 0)
        j->hwloc_ok = hwloc_bitmap_weight(got) == 1 &&
                      hwloc_bitmap_first(got) == want;
    hwloc_bitmap_free(got);
    return NULL;
}

static void bind_all_threads(pb_pin_policy policy, unsigned nworkers)
{
    pb_pin_plan *plan;
    char err[256];
    assert_int_equal(pb_pin_plan_create(policy, NULL, nworkers, 0, &plan, err,
                                        sizeof err), 0);
    bind_job *jobs = calloc(nworkers, sizeof *jobs);
    pthread_t *tids = calloc(nworkers, sizeof *tids);
    assert_non_null(jobs);
    assert_non_null(tids);
    pthread_barrier_t barrier;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, nworkers), 0);
    for (unsigned i = 0; i < nworkers; i++) {
        jobs[i] = (bind_job){.plan = plan, .index = i, .barrier = &barrier,
                             .rc = -999};
        assert_int_equal(pthread_create(&tids[i], NULL, bind_thread, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < nworkers; i++)
        assert_int_equal(pthread_join(tids[i], NULL), 0);
    for (unsigned i = 0; i < nworkers; i++) {
        int want = pb_pin_cpu_of(plan, i);
        assert_true(want >= 0);
        assert_int_equal(jobs[i].rc, 0);
        /* The kernel migrates the caller before sched_setaffinity returns. */
        assert_int_equal(jobs[i].cpu_after, want);
        assert_true(jobs[i].affinity_ok);
        assert_true(jobs[i].hwloc_ok);
    }
    assert_int_equal(pthread_barrier_destroy(&barrier), 0);
    free(jobs);
    free(tids);
    pb_pin_plan_destroy(plan);
}

static void test_threads_every_pu(void **state)
{
    (void)state;
    int n = npus_online();
    assert_true(n >= 1);
    /* compact with one worker per PU: worker k lands on the k-th PU, and
     * every PU is used once */
    bind_all_threads(PB_PIN_COMPACT, (unsigned)n);
    bind_all_threads(PB_PIN_SCATTER, (unsigned)n);
    /* more workers than PUs: bound concurrently, wrapping */
    bind_all_threads(PB_PIN_COMPACT, (unsigned)n * 2 + 1);
}

static void test_compact_scatter_layout(void **state)
{
    (void)state;
    int n = npus_online();
    assert_true(n >= 1);
    pb_pin_plan *plan;
    char err[256];
    unsigned nw = (unsigned)n + 2;
    for (int pol = PB_PIN_COMPACT; pol <= PB_PIN_SCATTER; pol++) {
        assert_int_equal(pb_pin_plan_create((pb_pin_policy)pol, NULL, nw, 0,
                                            &plan, err, sizeof err), 0);
        assert_int_equal(pb_pin_plan_workers(plan), nw);
        assert_int_equal(pb_pin_plan_policy(plan), pol);
        /* the first n workers get n distinct PUs; then they wrap */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++)
                assert_int_not_equal(pb_pin_cpu_of(plan, (unsigned)i),
                                     pb_pin_cpu_of(plan, (unsigned)j));
        assert_int_equal(pb_pin_cpu_of(plan, (unsigned)n), pb_pin_cpu_of(plan, 0));
        assert_int_equal(pb_pin_cpu_of(plan, (unsigned)n + 1), pb_pin_cpu_of(plan, 1 % (unsigned)n));
        /* an index beyond nworkers (a replacement worker) still maps */
        assert_true(pb_pin_cpu_of(plan, 1000) >= 0);
        char cpus[32];
        assert_true(pb_pin_worker_cpus(plan, 0, cpus, sizeof cpus) > 0);
        char want[16];
        snprintf(want, sizeof want, "%d", pb_pin_cpu_of(plan, 0));
        assert_string_equal(cpus, want);
        pb_pin_plan_destroy(plan);
    }
    /* compact with 2 workers on this machine: distinct PUs when there are 2 */
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, NULL, 2, 0, &plan, err,
                                        sizeof err), 0);
    if (n >= 2)
        assert_int_not_equal(pb_pin_cpu_of(plan, 0), pb_pin_cpu_of(plan, 1));
    else
        assert_int_equal(pb_pin_cpu_of(plan, 0), pb_pin_cpu_of(plan, 1));
    pb_pin_plan_destroy(plan);
}

static void test_restricted_and_none(void **state)
{
    (void)state;
    int n = npus_online();
    assert_true(n >= 1);
    int last = -1;
    {
        /* the last online PU's OS index */
        pb_pin_plan *all;
        char err[256];
        assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, NULL, (unsigned)n, 0,
                                            &all, err, sizeof err), 0);
        last = pb_pin_cpu_of(all, (unsigned)n - 1);
        pb_pin_plan_destroy(all);
    }
    char cpus[16], err[256];
    snprintf(cpus, sizeof cpus, "%d", last);

    pb_pin_saved *saved;
    assert_int_equal(pb_pin_thread_save(&saved), 0);

    /* compact restricted to one PU: every worker there, and binding the
     * restricted set yields exactly that PU (not "the whole machine"). */
    pb_pin_plan *plan;
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, cpus, 3, 0, &plan, err,
                                        sizeof err), 0);
    assert_int_equal(pb_pin_plan_npus(plan), 1);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(pb_pin_cpu_of(plan, i), last);
    assert_int_equal(pb_pin_worker_start(2, plan), 0);
    assert_int_equal(sched_getcpu(), last);
    assert_true(affinity_is_exactly(last));
    char cur[64];
    assert_true(pb_pin_current_cpus(cur, sizeof cur) > 0);
    assert_string_equal(cur, cpus);
    char desc[256];
    assert_int_equal(pb_pin_describe(plan, desc, sizeof desc), 0);
    char want[64];
    snprintf(want, sizeof want, "compact over PUs %d: w0->PU%d", last, last);
    assert_non_null(strstr(desc, want));
    pb_pin_plan_destroy(plan);

    /* none + --cpus: bound to the subset, no single PU */
    assert_int_equal(pb_pin_plan_create(PB_PIN_NONE, cpus, 2, 0, &plan, err,
                                        sizeof err), 0);
    assert_int_equal(pb_pin_cpu_of(plan, 0), -1);
    assert_int_equal(pb_pin_thread_restore(saved), 0);
    assert_int_equal(pb_pin_thread_save(&saved), 0);
    assert_int_equal(pb_pin_worker_start(0, plan), 0);
    assert_true(affinity_is_exactly(last));
    assert_int_equal(pb_pin_describe(plan, desc, sizeof desc), 0);
    snprintf(want, sizeof want, "none: every worker on PUs %d", last);
    assert_string_equal(desc, want);
    pb_pin_plan_destroy(plan);

    /* restore: back to the original (unbound) affinity */
    assert_int_equal(pb_pin_thread_restore(saved), 0);
    assert_int_equal(pb_pin_thread_restore(NULL), 0);
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(CPU_COUNT(&set), start_count);

    /* none without --cpus: a no-op that leaves the affinity alone */
    assert_int_equal(pb_pin_plan_create(PB_PIN_NONE, NULL, 4, 0, &plan, err,
                                        sizeof err), 0);
    assert_int_equal(pb_pin_worker_start(3, plan), 0);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(CPU_COUNT(&set), start_count);
    assert_int_equal(pb_pin_cpu_of(plan, 0), -1);
    assert_int_equal(pb_pin_worker_cpus(plan, 0, cur, sizeof cur), 0);
    assert_string_equal(cur, "");
    assert_int_equal(pb_pin_describe(plan, desc, sizeof desc), 0);
    assert_string_equal(desc, "none: unbound");
    pb_pin_plan_destroy(plan);
}

static void test_describe(void **state)
{
    (void)state;
    int n = npus_online();
    pb_pin_plan *plan;
    char err[256], desc[512];
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, NULL, (unsigned)n + 2, 0,
                                        &plan, err, sizeof err), 0);
    assert_int_equal(pb_pin_describe(plan, desc, sizeof desc), 0);
    char want[64];
    snprintf(want, sizeof want, "compact: w0->PU%d w1->PU%d", pb_pin_cpu_of(plan, 0),
             pb_pin_cpu_of(plan, 1));
    assert_memory_equal(desc, want, strlen(want));
    snprintf(want, sizeof want, " w%d->PU%d", n + 1, pb_pin_cpu_of(plan, (unsigned)n + 1));
    assert_non_null(strstr(desc, want));
    /* too small: truncated with " ...", always terminated and within len */
    char small[20];
    memset(small, 'x', sizeof small);
    assert_int_equal(pb_pin_describe(plan, small, sizeof small), 0);
    assert_true(strlen(small) < sizeof small);
    assert_non_null(strstr(small, "..."));
    assert_int_equal(pb_pin_describe(plan, small, 0), -EINVAL);
    pb_pin_plan_destroy(plan);
}

/* ------------------------------------------------ a forked worker */

static void test_forked_child(void **state)
{
    (void)state;
    int fds0 = pc_open_fds();
    pb_pin_plan *plan;
    char err[256];
    int n = npus_online();
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, NULL, (unsigned)n, 1,
                                        &plan, err, sizeof err), 0);
    for (unsigned k = 0; k < (unsigned)n; k++) {
        int want = pb_pin_cpu_of(plan, k);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* the child: bind as worker k with the topology loaded before
             * fork, read back the process affinity */
            if (pb_pin_worker_start(k, plan) != 0)
                _exit(10);
            cpu_set_t set;
            CPU_ZERO(&set);
            if (sched_getaffinity(0, sizeof set, &set) != 0)
                _exit(11);
            if (CPU_COUNT(&set) != 1 || !CPU_ISSET(want, &set))
                _exit(12);
            if (sched_getcpu() != want)
                _exit(13);
            _exit(0);
        }
        int status;
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
        }
        assert_int_equal(w, pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* the parent is untouched: still on every PU */
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(CPU_COUNT(&set), start_count);
    pb_pin_plan_destroy(plan);
    assert_int_equal(pc_children(), 0);
    assert_int_equal(pc_open_fds(), fds0);
}

/* ------------------------------------------------ through the ex_ API */

static int task_cpu(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    int cpu = sched_getcpu();
    return ex_buf_append(out, &cpu, sizeof cpu) == 0 ? 0 : 1;
}

static void run_pinned_pool(ex_kind kind, pb_pin_policy policy, unsigned nworkers)
{
    pb_pin_plan *plan;
    char err[256];
    assert_int_equal(pb_pin_plan_create(policy, NULL, nworkers,
                                        kind == EX_PROCS, &plan, err, sizeof err), 0);
    pb_pin_saved *saved;
    assert_int_equal(pb_pin_thread_save(&saved), 0); /* EX_SEQ binds us */

    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = nworkers;
    cfg.worker_start = pb_pin_worker_start;
    cfg.worker_start_arg = plan;
    ex_executor *ex;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    assert_false(ex_is_broken(ex));

    enum { NTASKS = 40 };
    ex_future *fs[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        assert_int_equal(ex_submit(ex, task_cpu, "", 0, &fs[i]), 0);
    for (int i = 0; i < NTASKS; i++) {
        const void *out;
        size_t len;
        assert_int_equal(ex_future_result(fs[i], &out, &len, EX_FOREVER), 0);
        assert_int_equal(len, sizeof(int));
        int cpu;
        memcpy(&cpu, out, sizeof cpu);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(fs[i], &st), 0);
        assert_true(st.worker >= 0);
        int want = pb_pin_cpu_of(plan, (unsigned)st.worker);
        assert_int_equal(cpu, want);
        assert_int_equal(st.cpu, want);
        ex_future_release(fs[i]);
    }
    ex_destroy(ex);
    assert_int_equal(pb_pin_thread_restore(saved), 0);
    pb_pin_plan_destroy(plan);
}

static void test_executor_end_to_end(void **state)
{
    (void)state;
    int n = npus_online();
    int threads0 = pc_threads();
    run_pinned_pool(EX_THREADS, PB_PIN_COMPACT, (unsigned)n);
    run_pinned_pool(EX_THREADS, PB_PIN_SCATTER, (unsigned)n + 1);
    run_pinned_pool(EX_SEQ, PB_PIN_COMPACT, 1);
    run_pinned_pool(EX_PROCS, PB_PIN_COMPACT, (unsigned)n);
    /* the caller is unbound again after the EX_SEQ run */
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(CPU_COUNT(&set), start_count);
    assert_int_equal(pc_threads(), threads0);
    assert_int_equal(pc_children(), 0);
}

/* ------------------------------------------------ poolbench topo */

/* pb_cmd_topo(argv) with stdout and stderr captured into out / err. */
static int run_topo(char **argv, char *out, size_t outlen, char *err, size_t errlen)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return capture_main(pb_cmd_topo, argc, argv, out, outlen, err, errlen);
}



static void test_topo_main(void **state)
{
    (void)state;
    static char out[1 << 16], err[4096];
    int fds0 = pc_open_fds();

    char *ok[] = {"topo", "--workers", "3", NULL};
    assert_int_equal(run_topo(ok, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "Pin policies with 3 worker(s)"));
    assert_non_null(strstr(out, "PU(s)"));
    assert_non_null(strstr(out, "CPU model:"));
    assert_non_null(strstr(out, "PU L#0 P#"));
    assert_non_null(strstr(out, "none: unbound"));
    assert_non_null(strstr(out, "compact: w0->PU"));
    assert_non_null(strstr(out, "scatter: w0->PU"));

    /* default worker count: PUs + 2 */
    char *dflt[] = {"topo", NULL};
    assert_int_equal(run_topo(dflt, out, sizeof out, err, sizeof err), 0);
    char want[64];
    snprintf(want, sizeof want, "with %d worker(s)", npus_online() + 2);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "wrap"));

    /* restricted to the first PU: every policy puts both workers there */
    pb_pin_plan *plan;
    char perr[256];
    assert_int_equal(pb_pin_plan_create(PB_PIN_COMPACT, NULL, 1, 0, &plan, perr,
                                        sizeof perr), 0);
    int pu = pb_pin_cpu_of(plan, 0);
    pb_pin_plan_destroy(plan);
    char one[32];
    snprintf(one, sizeof one, "--cpus=%d", pu);
    char *sub[] = {"topo", one, "--workers=2", NULL};
    assert_int_equal(run_topo(sub, out, sizeof out, err, sizeof err), 0);
    snprintf(want, sizeof want, "compact over PUs %d: w0->PU%d w1->PU%d", pu, pu, pu);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "none: every worker on PUs %d", pu);
    assert_non_null(strstr(out, want));

    char dir[] = "/tmp/pb_test_topo_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char xml[128], badxml[160];
    snprintf(xml, sizeof xml, "%s/topo.xml", dir);
    snprintf(badxml, sizeof badxml, "%s/missing/topo.xml", dir);
    char *wx[] = {"topo", "--xml", xml, NULL};
    assert_int_equal(run_topo(wx, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "Pin policies"));
    FILE *f = fopen(xml, "r");
    assert_non_null(f);
    char head[256] = "";
    size_t n = fread(head, 1, sizeof head - 1, f);
    head[n] = 0;
    fclose(f);
    assert_non_null(strstr(head, "<?xml"));
    assert_non_null(strstr(head, "<topology"));
    assert_int_equal(unlink(xml), 0);

    char *stdout_xml[] = {"topo", "--xml", "-", NULL};
    assert_int_equal(run_topo(stdout_xml, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "<topology"));
    assert_null(strstr(out, "Pin policies"));

    char *bx[] = {"topo", "--xml", badxml, NULL};
    assert_int_equal(run_topo(bx, out, sizeof out, err, sizeof err), 1);
    assert_non_null(strstr(err, "cannot write XML"));
    assert_int_equal(rmdir(dir), 0);

    char *help[] = {"topo", "--help", NULL};
    assert_int_equal(run_topo(help, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "usage: poolbench topo"));

    struct { char *argv[4]; const char *names; } bad[] = {
        {{"topo", "--workers", "0", NULL}, "--workers"},
        {{"topo", "--workers", "x", NULL}, "--workers"},
        {{"topo", "--workers=4097", NULL, NULL}, "--workers"},
        {{"topo", "--workers", NULL, NULL}, "--workers"},
        {{"topo", "--cpus", "0-", NULL}, "'0-'"},
        {{"topo", "--cpus", "5-2", NULL}, "'5-2'"},
        {{"topo", "--cpus", "4096", NULL}, "CPU 4096"},
        {{"topo", "--cpus", NULL, NULL}, "--cpus"},
        {{"topo", "--xml", NULL, NULL}, "--xml"},
        {{"topo", "--bogus", NULL, NULL}, "'--bogus'"},
        {{"topo", "extra", NULL, NULL}, "'extra'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = run_topo(bad[i].argv, out, sizeof out, err, sizeof err);
        /* one line of ours (hwloc itself may warn, e.g. under valgrind) */
        if (rc != 2 || count_prefixed_lines(err, "poolbench topo: ") != 1 ||
            !strstr(err, bad[i].names) ||
            (!strstr(err, "accepted") && !strstr(err, "must be an integer in [1, 4096]"))) {
            print_error("case %zu: rc %d, stderr \"%s\"\n", i, rc, err);
            fail();
        }
    }
    assert_int_equal(pc_open_fds(), fds0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_parse),
        cmocka_unit_test(test_cpuset_parse),
        cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_threads_every_pu),
        cmocka_unit_test(test_compact_scatter_layout),
        cmocka_unit_test(test_restricted_and_none),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_forked_child),
        cmocka_unit_test(test_executor_end_to_end),
        cmocka_unit_test(test_topo_main),
    };
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    start_count = CPU_COUNT(&set);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
