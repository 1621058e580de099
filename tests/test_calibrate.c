/*
 * test_calibrate.c: harness/calibrate*.c and cmd_calibrate.c with tiny
 * iteration counts.  Timings are only checked against wide plausibility
 * ranges (a loaded 2-core VM, sanitizers and valgrind must all pass); what
 * is checked exactly is that every child is reaped, every fd closed, every
 * thread joined, the caller's affinity restored, the JSON well-formed and
 * complete, and that every bad option makes `poolbench calibrate` print
 * one line and return 2.
 */
#include "util.h"

#include "calibrate.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void assert_between(const char *what, double v, double lo, double hi)
{
    if (!(v >= lo && v <= hi)) {
        print_error("%s = %.1f ns, expected within [%.0f, %.0f]\n", what, v, lo, hi);
        fail();
    }
}

static int affinity_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    return CPU_COUNT(&set);
}

typedef struct {
    int fds, threads, children, affinity;
} snapshot;

static snapshot take(void)
{
    return (snapshot){pc_open_fds(), pc_threads(), pc_children(), affinity_count()};
}

static void assert_same(snapshot a)
{
    snapshot b = take();
    assert_int_equal(b.fds, a.fds);
    assert_int_equal(b.threads, a.threads);
    assert_int_equal(b.children, 0);
    assert_int_equal(b.affinity, a.affinity);
}

/* The OS index of the first PU in logical order. */
static int first_pu(void)
{
    pb_pin_plan *plan;
    char err[256];
    if (pb_pin_plan_create(PB_PIN_COMPACT, NULL, 1, 0, &plan, err, sizeof err) != 0)
        return -1;
    int cpu = pb_pin_cpu_of(plan, 0);
    pb_pin_plan_destroy(plan);
    return cpu;
}

static void test_pair_plans(void **state)
{
    (void)state;
    pb_pin_plan *same, *cross;
    char err[256];
    assert_int_equal(pb_cal_pair_plan(0, NULL, &same, err, sizeof err), 0);
    assert_true(pb_pin_cpu_of(same, 0) >= 0);
    assert_int_equal(pb_pin_cpu_of(same, 0), pb_pin_cpu_of(same, 1));
    int rc = pb_cal_pair_plan(1, NULL, &cross, err, sizeof err);
    if (sysconf(_SC_NPROCESSORS_ONLN) >= 2 && rc == 0) {
        assert_int_not_equal(pb_pin_cpu_of(cross, 0), pb_pin_cpu_of(cross, 1));
        pb_pin_plan_destroy(cross);
    } else {
        /* one core (or SMT siblings only): skipped with a reason */
        assert_int_equal(rc, -ENODEV);
        assert_null(cross);
        assert_non_null(strstr(err, "two cores"));
    }
    pb_pin_plan_destroy(same);

    /* restricted to one PU: the pair shares it, across-cores is skipped */
    char one[16];
    snprintf(one, sizeof one, "%d", first_pu());
    assert_int_equal(pb_cal_pair_plan(0, one, &same, err, sizeof err), 0);
    assert_int_equal(pb_pin_cpu_of(same, 0), first_pu());
    assert_int_equal(pb_pin_cpu_of(same, 1), first_pu());
    pb_pin_plan_destroy(same);
    assert_int_equal(pb_cal_pair_plan(1, one, &cross, err, sizeof err), -ENODEV);
    assert_null(cross);
    assert_non_null(strstr(err, "--cpus covers 1"));
    /* a bad list */
    assert_int_equal(pb_cal_pair_plan(0, "0-", &same, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'0-'"));
    assert_int_equal(pb_cal_pair_plan(0, NULL, NULL, err, sizeof err), -EINVAL);
}

static void test_pipe_and_condvar(void **state)
{
    (void)state;
    snapshot s0 = take();
    pb_pin_plan *same, *cross = NULL;
    char err[256];
    assert_int_equal(pb_cal_pair_plan(0, NULL, &same, err, sizeof err), 0);
    if (pb_cal_pair_plan(1, NULL, &cross, err, sizeof err) != 0)
        cross = NULL;
    const pb_pin_plan *plans[] = {NULL, same, cross};
    for (size_t i = 0; i < 3; i++) {
        if (i == 2 && !cross)
            continue;
        double ns = -1;
        assert_int_equal(pb_cal_pipe_rtt(plans[i], 20, &ns), 0);
        assert_between("pipe rtt", ns, 100, 10e6 * test_slow());
        ns = -1;
        assert_int_equal(pb_cal_condvar_rtt(plans[i], 20, &ns), 0);
        assert_between("condvar rtt", ns, 20, 10e6 * test_slow());
    }
    double ns = -1;
    assert_int_equal(pb_cal_pipe_syscall_pair(50, &ns), 0);
    assert_between("pipe write+read", ns, 20, 1e6 * test_slow());
    ns = NAN;
    assert_int_equal(pb_cal_context_switch(same, 50, &ns), 0);
    /* derived (a difference): finite and below the round trip's bound; it
     * is positive on any machine where a switch costs more than a syscall */
    assert_true(isfinite(ns));
    assert_between("context switch", ns, -1e6, 10e6 * test_slow());

    /* errors: zero iterations, no output, no plan for the switch */
    assert_int_equal(pb_cal_pipe_rtt(same, 0, &ns), -EINVAL);
    assert_int_equal(pb_cal_pipe_rtt(same, 1, NULL), -EINVAL);
    assert_int_equal(pb_cal_condvar_rtt(NULL, 0, &ns), -EINVAL);
    assert_int_equal(pb_cal_pipe_syscall_pair(0, &ns), -EINVAL);
    assert_int_equal(pb_cal_context_switch(NULL, 10, &ns), -EINVAL);

    pb_pin_plan_destroy(same);
    pb_pin_plan_destroy(cross);
    /* every child reaped, fd closed, thread joined, affinity restored */
    assert_same(s0);
}

/* The bandwidth measures: bytes move (a positive time per transfer, under
 * a generous bound), the child is reaped, and bad arguments are refused. */
static void test_bandwidth(void **state)
{
    (void)state;
    snapshot s0 = take();
    pb_pin_plan *cross = NULL;
    char err[256];
    if (pb_cal_pair_plan(1, NULL, &cross, err, sizeof err) != 0)
        cross = NULL;
    double ns = -1;
    assert_int_equal(pb_cal_memcpy_bw(1 << 20, 10, &ns), 0);
    assert_between("memcpy 1 MiB", ns, 1000, 1e9 * test_slow());
    const pb_pin_plan *plans[] = {NULL, cross};
    for (size_t i = 0; i < 2; i++) {
        if (i == 1 && !cross)
            continue;
        ns = -1;
        assert_int_equal(pb_cal_pipe_bw(plans[i], 1 << 20, 5, &ns), 0);
        assert_between("pipe 1 MiB", ns, 1000, 10e9 * test_slow());
        assert_int_equal(pb_cal_pipe_bw(plans[i], 100, 50, &ns), 0);
    }
    assert_int_equal(pb_cal_memcpy_bw(0, 1, &ns), -EINVAL);
    assert_int_equal(pb_cal_memcpy_bw(1, 0, &ns), -EINVAL);
    assert_int_equal(pb_cal_pipe_bw(NULL, 1, 1, NULL), -EINVAL);
    assert_int_equal(pb_cal_pipe_bw(NULL, 0, 1, &ns), -EINVAL);
    pb_pin_plan_destroy(cross);
    assert_same(s0);
}

static void test_create_and_fork(void **state)
{
    (void)state;
    snapshot s0 = take();
    double ns = -1;
    assert_int_equal(pb_cal_thread_create(20, &ns), 0);
    assert_between("thread create+join", ns, 500, 100e6 * test_slow());

    void *ballast;
    assert_int_equal(pb_cal_ballast(1 << 20, &ballast), 0);
    assert_non_null(ballast);
    /* touched: every page reads back the byte written */
    assert_int_equal(((unsigned char *)ballast)[4096 * 7], 1);
    ns = -1;
    assert_int_equal(pb_cal_fork_wait(5, &ns), 0);
    assert_between("fork+wait", ns, 5e3, 1e9 * test_slow());
    pb_cal_ballast_free(ballast, 1 << 20);
    pb_cal_ballast_free(NULL, 0);

    assert_int_equal(pb_cal_ballast(0, &ballast), -EINVAL);
    assert_int_equal(pb_cal_thread_create(0, &ns), -EINVAL);
    assert_int_equal(pb_cal_fork_wait(0, &ns), -EINVAL);
    assert_same(s0);
}

/* ------------------------------------------------ a tiny JSON checker */

/* Balanced {} and [] outside strings, valid escapes, nothing after the top
 * value, no NaN/Infinity spelled out. Returns 1 if well-formed. */
static int json_well_formed(const char *s)
{
    char stack[64];
    int depth = 0, in_str = 0, seen_top = 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (in_str) {
            if (c == '\\') {
                p++;
                if (!*p || !strchr("\"\\/bfnrtu", *p))
                    return 0;
            } else if (c == '"') {
                in_str = 0;
            } else if ((unsigned char)c < 0x20) {
                return 0;
            }
            continue;
        }
        if (depth == 0 && seen_top && !strchr(" \n\r\t", c))
            return 0; /* trailing garbage */
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '{':
        case '[':
            if (depth == (int)sizeof stack)
                return 0;
            stack[depth++] = c;
            seen_top = 1;
            break;
        case '}':
            if (depth == 0 || stack[--depth] != '{')
                return 0;
            break;
        case ']':
            if (depth == 0 || stack[--depth] != '[')
                return 0;
            break;
        case 'n':
            if (strncmp(p, "null", 4) != 0 && strncmp(p, "nan", 3) == 0)
                return 0;
            break;
        case 'N':
        case 'I':
        case 'i':
            return 0; /* NaN, Infinity, inf */
        default:
            break;
        }
    }
    return depth == 0 && !in_str && seen_top;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Whether name is in the comma-separated list (NULL: every measure). */
static bool in_list(const char *list, const char *name)
{
    if (!list)
        return true;
    char l[1100], n[80];
    snprintf(l, sizeof l, ",%s,", list);
    snprintf(n, sizeof n, ",%s,", name);
    return strstr(l, n) != NULL;
}

/* json has the top-level keys, every measure of the --only list only
 * (NULL: every measure) by name, and nmeasures of each per-measure key. */
static void check_calibrate_json(const char *json, unsigned nmeasures, const char *only)
{
    if (!json_well_formed(json)) {
        print_error("malformed JSON:\n%s\n", json);
        fail();
    }
    static const char *top[] = {"\"schema_version\": 1", "\"hostname\": \"",
                                "\"timestamp_utc\": \"", "\"measures\": ["};
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        assert_non_null(strstr(json, top[i]));
    static const char *names[] = {
        "pipe_rtt_same_pu", "pipe_rtt_cross_core", "condvar_rtt_same_pu",
        "condvar_rtt_cross_core", "pipe_syscall_pair", "context_switch",
        "thread_create_join", "fork_wait_1mib", "fork_wait_256mib",
        "memcpy_bw_1mib", "memcpy_bw_64mib", "pipe_bw_64kib", "pipe_bw_1mib",
        "pipe_bw_64mib"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!in_list(only, names[i]))
            continue;
        char want[64];
        snprintf(want, sizeof want, "\"name\": \"%s\"", names[i]);
        assert_non_null(strstr(json, want));
    }
    static const char *keys[] = {"\"unit\": \"ns\"", "\"median\": ", "\"p5\": ",
                                 "\"p95\": ", "\"min\": ", "\"reps\": ",
                                 "\"iters\": ", "\"pinning\": ", "\"ci_low\": ",
                                 "\"ci_level\": ", "\"skipped\": ", "\"bytes\": "};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_int_equal(count(json, keys[i]), nmeasures);
}

/* The measures a test runs: every one, but under valgrind not the 64 MiB
 * copies, which take minutes there. The --only list (NULL: every
 * measure); *n gets how many measures it names. */
static const char *measures_run(size_t *n)
{
    static char list[1024];
    *n = PB_CAL_NMEASURES;
    if (test_slow() == 1)
        return NULL;
    list[0] = 0;
    *n = 0;
    const char *name;
    for (size_t i = 0; (name = pb_cal_measure_name(i)); i++)
        if (!strstr(name, "64mib"))
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     (*n)++ ? "," : "", name);
    return list;
}

static void test_run_and_json(void **state)
{
    (void)state;
    snapshot s0 = take();
    size_t nrun;
    pb_cal_options opt = {.reps = 3, .iters = 3, .big_fork_bytes = 4u << 20,
                          .only = measures_run(&nrun)};
    pb_cal_result res[PB_CAL_NMEASURES];
    size_t n = 0;
    char err[256] = "";
    int rc = pb_calibrate_run(&opt, res, &n, err, sizeof err);
    if (rc != 0)
        print_error("calibrate: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(n, nrun);
    for (size_t i = 0; i < n; i++) {
        if (res[i].skipped) {
            assert_non_null(strstr(res[i].note, "skipped"));
            continue;
        }
        assert_int_equal(res[i].reps, 3);
        assert_int_equal(res[i].iters, 3);
        assert_int_equal(res[i].s.n, 3);
        assert_true(res[i].s.min <= res[i].s.median);
        assert_true(res[i].s.median <= res[i].s.max);
        assert_true(res[i].pinning[0] != 0);
        if (strcmp(res[i].name, "context_switch") != 0)
            assert_true(res[i].s.min > 0);
    }
    /* the small ballast is said in the note */
    assert_non_null(strstr(res[n - 1].note, "instead of 256 MiB"));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(pb_cal_write_json(f, &opt, res, n), 0);
    assert_int_equal(fclose(f), 0);
    check_calibrate_json(buf, (unsigned)n, opt.only);
    free(buf);

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    pb_cal_write_table(f, res, n);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(buf, "median"));
    assert_non_null(strstr(buf, "fork_wait_256mib"));
    free(buf);

    assert_int_equal(pb_calibrate_run(NULL, res, &n, err, sizeof err), -EINVAL);
    assert_same(s0);
}

static void test_run_skipped(void **state)
{
    (void)state;
    /* on one PU the across-cores measures are skipped, with a reason, and
     * the JSON still has every measure (numbers null) */
    char one[16];
    snprintf(one, sizeof one, "%d", first_pu());
    size_t nrun;
    pb_cal_options opt = {.reps = 2, .iters = 2, .big_fork_bytes = 1u << 20,
                          .cpus = one, .only = measures_run(&nrun)};
    pb_cal_result res[PB_CAL_NMEASURES];
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(pb_calibrate_run(&opt, res, &n, err, sizeof err), 0);
    assert_int_equal(n, nrun);
    size_t skipped = 0, mpi_skipped = 0;
    for (size_t i = 0; i < n; i++) {
        if (strstr(res[i].name, "cross_core")) {
            assert_true(res[i].skipped);
            assert_non_null(strstr(res[i].note, "skipped: needs two cores"));
            skipped++;
        } else if (strncmp(res[i].name, "mpi_", 4) == 0) {
            /* MPI: not pinned by --cpus; skipped here unless mpi_pingpong
             * is beside the test binary (test_mpi_pingpong_paths) */
            if (res[i].skipped) {
                assert_non_null(strstr(res[i].note, "skipped: "));
                mpi_skipped++;
            }
        } else {
            assert_false(res[i].skipped);
        }
    }
    assert_int_equal(skipped, 2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(pb_cal_write_json(f, &opt, res, n), 0);
    assert_int_equal(fclose(f), 0);
    check_calibrate_json(buf, (unsigned)n, opt.only);
    assert_int_equal(count(buf, "\"skipped\": true"), 2 + mpi_skipped);
    assert_int_equal(count(buf, "\"median\": null"), 2 + mpi_skipped);
    char want[32];
    snprintf(want, sizeof want, "\"cpus\": \"%s\"", one);
    assert_non_null(strstr(buf, want));
    free(buf);
    /* a bad list fails the run with the reason */
    opt.cpus = "a";
    assert_int_equal(pb_calibrate_run(&opt, res, &n, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'a'"));
}

static void test_json_checker(void **state)
{
    (void)state;
    /* the checker itself must reject what it is there to catch */
    assert_true(json_well_formed("{\"a\": [1, 2, {\"b\": \"}\"}]}\n"));
    assert_false(json_well_formed("{\"a\": [1, 2}"));
    assert_false(json_well_formed("{\"a\": 1}}"));
    assert_false(json_well_formed("{\"a\": \"x}"));
    assert_false(json_well_formed("{\"a\": nan}"));
    assert_false(json_well_formed("{\"a\": -inf}"));
    assert_false(json_well_formed("{\"a\": \"\\q\"}"));
    assert_false(json_well_formed(""));
}

/* ------------------------------------------------ the CLI */

/* pb_cmd_calibrate(argv) with stderr captured into err (stdout, the JSON,
 * is discarded); returns its status. */
static int run_main(char **argv, int argc, char *err, size_t errlen)
{
    static char out[1 << 16];
    return capture_main(pb_cmd_calibrate, argc, argv, out, sizeof out, err, errlen);
}

/* run_main for a calibration that measures: argv (NULL-terminated, at most
 * 12 arguments) and measures_run's --only list. */
static int run_measuring(char **argv, char *err, size_t errlen)
{
    char *args[16];
    int argc = 0;
    while (argc < 12 && argv[argc]) {
        args[argc] = argv[argc];
        argc++;
    }
    size_t n;
    const char *only = measures_run(&n);
    if (only) {
        args[argc++] = "--only";
        args[argc++] = (char *)only;
    }
    args[argc] = NULL;
    return run_main(args, argc, err, errlen);
}



static void test_main_bad_options(void **state)
{
    (void)state;
    struct { const char *argv[4]; const char *names; } bad[] = {
        {{"calibrate", "--reps", "0", NULL}, "--reps"},
        {{"calibrate", "--reps", "x", NULL}, "--reps"},
        {{"calibrate", "--reps=1001", NULL, NULL}, "--reps"},
        {{"calibrate", "--reps", NULL, NULL}, "--reps"},
        {{"calibrate", "--iters", "-5", NULL}, "--iters"},
        {{"calibrate", "--iters", "12abc", NULL}, "--iters"},
        {{"calibrate", "--iters", "100000001", NULL}, "--iters"},
        {{"calibrate", "--json", NULL, NULL}, "--json"},
        {{"calibrate", "--json=", NULL, NULL}, "--json"},
        {{"calibrate", "--bogus", NULL, NULL}, "'--bogus'"},
        {{"calibrate", "--quick", "extra", NULL}, "'extra'"},
        {{"calibrate", "-q", NULL, NULL}, "'-q'"},
        {{"calibrate", "--cpus", "5-2", NULL}, "'5-2'"},
        {{"calibrate", "--cpus", "99999", NULL}, "--cpus"},
        {{"calibrate", "--cpus", NULL, NULL}, "--cpus"},
        {{"calibrate", "--only", "pipe_rtt", NULL}, "accepted: a comma-separated list of "
                                                    "pipe_rtt_same_pu, pipe_rtt_cross_core"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int argc = 0;
        while (argc < 4 && bad[i].argv[argc])
            argc++;
        char err[1024];
        int rc = run_main((char **)bad[i].argv, argc, err, sizeof err);
        /* one line of ours (hwloc itself may warn, e.g. under valgrind) */
        if (rc != 2 || count_prefixed_lines(err, "poolbench calibrate: ") != 1 ||
            !strstr(err, bad[i].names) ||
            (!strstr(err, "accepted") && !strstr(err, "must be an integer in"))) {
            print_error("case %zu: rc %d, stderr \"%s\"\n", i, rc, err);
            fail();
        }
    }
}

static void test_main_json_file(void **state)
{
    (void)state;
    snapshot s0 = take();
    char dir[] = "/tmp/pb_test_calibrate_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/cal.json", dir);
    char *argv[] = {"calibrate", "--quick", "--reps", "1", "--iters=1",
                    "--json", path, NULL};
    char err[4096];
    assert_int_equal(run_measuring(argv, err, sizeof err), 0);
    /* not a terminal and no --table: no table on stderr (hwloc may warn
     * there under valgrind, so do not insist on silence) */
    assert_null(strstr(err, "median"));

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *json = calloc(1, 65536);
    assert_non_null(json);
    size_t len = fread(json, 1, 65535, f);
    fclose(f);
    assert_true(len > 0);
    size_t nrun;
    const char *only = measures_run(&nrun);
    check_calibrate_json(json, (unsigned)nrun, only);
    assert_non_null(strstr(json, "\"quick\": true"));
    free(json);

    /* --table prints the table on stderr too */
    char *argv2[] = {"calibrate", "--reps", "1", "--iters", "1", "--table",
                     "--json", path, NULL};
    assert_int_equal(run_measuring(argv2, err, sizeof err), 0);
    assert_non_null(strstr(err, "measure"));
    assert_non_null(strstr(err, "pipe_rtt_same_pu"));

    /* an unwritable destination is a runtime error (1), not usage */
    char bad[160];
    snprintf(bad, sizeof bad, "%s/no/such/dir/cal.json", dir);
    char *argv3[] = {"calibrate", "--quick", "--reps", "1", "--iters", "1",
                     "--json", bad, NULL};
    assert_int_equal(run_measuring(argv3, err, sizeof err), 1);
    assert_non_null(strstr(err, "cannot"));

    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
    assert_same(s0);
}

static void *noop_thread(void *arg)
{
    return arg;
}

/* A fake mpirun (a shell script in dir) printing body; PATH and the
 * pingpong path point at it.  The old PATH in old (malloc'd). */
static char *fake_mpirun(const char *dir, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "%s/mpirun", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0755), 0);
    char *old = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    char newpath[1024];
    snprintf(newpath, sizeof newpath, "%s:%s", dir, old);
    setenv("PATH", newpath, 1);
    setenv("POOLBENCH_MPI_PINGPONG", "/bin/true", 1);
    return old;
}

static void test_mpi_pingpong_paths(void **state)
{
    (void)state;
    snapshot s0 = take();
    char dir[] = "/tmp/pb_test_mpi_XXXXXX";
    assert_non_null(mkdtemp(dir));
    double samples[3] = {0};
    char note[192];

    /* three samples printed, status 0: measured */
    char *old = fake_mpirun(dir, "echo noise; echo 'sample 5.5'; echo 'sample 7'; "
                                 "echo 'sample 6'; echo 'transport tcp,self'");
    assert_int_equal(pb_cal_mpi_pingpong("tcp", 0, 8, 10, 3, 30, samples, note, sizeof note), 0);
    assert_true(samples[0] == 5.5 && samples[1] == 7 && samples[2] == 6);
    /* fewer samples than reps: skipped, the last line in the note */
    note[0] = 0;
    assert_int_equal(pb_cal_mpi_pingpong("tcp", 0, 8, 10, 4, 30, samples, note, sizeof note), 1);
    assert_non_null(strstr(note, "skipped: mpirun --mca btl tcp,self failed: transport tcp,self"));
    setenv("PATH", old, 1);

    /* an mpirun that fails: its last line */
    free(fake_mpirun(dir, "echo 'It looks like MPI_INIT failed' >&2; exit 1"));
    assert_int_equal(pb_cal_mpi_pingpong("vader", 1, 1 << 20, 10, 3, 30, samples, note,
                                         sizeof note), 1);
    assert_non_null(strstr(note, "btl vader,self failed: It looks like MPI_INIT failed"));
    /* the program missing */
    setenv("POOLBENCH_MPI_PINGPONG", "/nonexistent/mpi_pingpong", 1);
    assert_int_equal(pb_cal_mpi_pingpong("tcp", 0, 8, 10, 3, 30, samples, note, sizeof note), 1);
    assert_non_null(strstr(note, "skipped: /nonexistent/mpi_pingpong is not built"));
    /* no mpirun at all */
    setenv("PATH", dir, 1);
    char mpirun[256];
    snprintf(mpirun, sizeof mpirun, "%s/mpirun", dir);
    assert_int_equal(unlink(mpirun), 0);
    assert_int_equal(pb_cal_mpi_pingpong("tcp", 0, 8, 10, 3, 30, samples, note, sizeof note), 1);
    assert_string_equal(note, "skipped: Open MPI not installed (libopenmpi-dev, openmpi-bin)");

    setenv("PATH", old, 1);
    unsetenv("POOLBENCH_MPI_PINGPONG");
    free(old);
    assert_int_equal(rmdir(dir), 0);
    assert_same(s0);
}

int main(void)
{
    /* ThreadSanitizer starts a helper thread with the first pthread_create:
     * start it now so that the thread counts compare like with like. */
    pthread_t t;
    if (pthread_create(&t, NULL, noop_thread, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_plans),
        cmocka_unit_test(test_pipe_and_condvar),
        cmocka_unit_test(test_bandwidth),
        cmocka_unit_test(test_create_and_fork),
        cmocka_unit_test(test_json_checker),
        cmocka_unit_test(test_run_and_json),
        cmocka_unit_test(test_run_skipped),
        cmocka_unit_test(test_main_bad_options),
        cmocka_unit_test(test_main_json_file),
        cmocka_unit_test(test_mpi_pingpong_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
