/*
 * test_noise.c: harness/noise.c.  The /proc/stat parser and the window
 * arithmetic against values worked out by hand; the readers of the live
 * files and the capacity probe against bounds that hold on any machine,
 * loaded or not (a probe can find anything between nothing and the CPUs
 * it may use, never more).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "noise.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

static const char stat_text[] =
    "cpu  1000 3 200 5000 50 7 10 5 0 0\n"
    "cpu0 500 1 100 2500 25 3 5 2 0 0\n"
    "intr 12345 0 1 2 3\n"
    "ctxt 999\n"
    "procs_running 3\n"
    "procs_blocked 0\n";

static void test_parse(void **state)
{
    (void)state;
    pb_cpu_ticks t;
    long running = -1;
    assert_int_equal(pb_proc_stat_parse(stat_text, &t, &running), 0);
    assert_true(t.user == 1000 && t.nice == 3 && t.system == 200 && t.idle == 5000);
    assert_true(t.iowait == 50 && t.irq == 7 && t.softirq == 10 && t.steal == 5);
    assert_int_equal(running, 3);
    /* busy = user + nice + system + irq + softirq = 1000 + 3 + 200 + 7 + 10 */
    assert_true(pb_ticks_busy(&t) == 1220);
    /* total = busy + idle + iowait + steal = 1220 + 5000 + 50 + 5 */
    assert_true(pb_ticks_total(&t) == 6275);
    /* procs_running not asked for */
    assert_int_equal(pb_proc_stat_parse(stat_text, &t, NULL), 0);
    /* a kernel before steal (2.6.11): the fields it has, steal 0 */
    assert_int_equal(pb_proc_stat_parse("cpu 1 2 3 4\nprocs_running 1\n", &t, &running), 0);
    assert_true(t.user == 1 && t.idle == 4 && t.steal == 0);
    /* missing lines or fields */
    assert_int_equal(pb_proc_stat_parse("cpu0 1 2 3 4\n", &t, NULL), -EINVAL);
    assert_int_equal(pb_proc_stat_parse("cpu 1 2\n", &t, NULL), -EINVAL);
    assert_int_equal(pb_proc_stat_parse("cpu 1 2 3 4\n", &t, &running), -EINVAL);
    assert_int_equal(pb_proc_stat_parse("", &t, NULL), -EINVAL);
}

static void test_account(void **state)
{
    (void)state;
    long hz = sysconf(_SC_CLK_TCK);
    assert_true(hz > 0);
    pb_noise_window w = {
        .t0 = {.user = 1000, .system = 200, .idle = 5000, .iowait = 50, .softirq = 10, .steal = 5},
        .t1 = {.user = 1100, .system = 220, .idle = 5160, .iowait = 60, .softirq = 10, .steal = 15},
        .ns0 = 1000000000, .ns1 = 2500000000, .server_cpu0 = 3.0, .server_cpu1 = 3.2,
        .server_pid = 1, .ok = 1,
    };
    pb_noise n = {.steal_pct = NAN, .iowait_pct = NAN, .others_cpu_s = NAN, .window_s = NAN};
    pb_noise_account(&w, 0.5, &n);
    /* all ticks: 100 + 20 + 160 + 10 + 10 = 300; steal 10, iowait 10 */
    assert_true(fabs(n.steal_pct - 100.0 * 10 / 300) < 1e-9);
    assert_true(fabs(n.iowait_pct - 100.0 * 10 / 300) < 1e-9);
    assert_true(fabs(n.window_s - 1.5) < 1e-9);
    /* busy 120 ticks, minus the run's own 0.5 s and the server's 0.2 s */
    assert_true(fabs(n.others_cpu_s - (120.0 / (double)hz - 0.5 - 0.2)) < 1e-9);
    /* a server that vanished counts as nothing */
    w.server_cpu1 = NAN;
    pb_noise_account(&w, 0.5, &n);
    assert_true(fabs(n.others_cpu_s - (120.0 / (double)hz - 0.5)) < 1e-9);
    /* a counter that went backwards (iowait does) counts as no increase */
    w.server_cpu1 = 3.2;
    w.t1.iowait = 40;
    pb_noise_account(&w, 0.5, &n);
    assert_true(fabs(n.iowait_pct) < 1e-12);
    /* all ticks now 100 + 20 + 160 + 0 + 10 = 290 */
    assert_true(fabs(n.steal_pct - 100.0 * 10 / 290) < 1e-9);
    /* a window whose snapshot failed fills nothing */
    pb_noise m = {.steal_pct = NAN, .iowait_pct = NAN, .others_cpu_s = NAN, .window_s = NAN};
    w.ok = 0;
    pb_noise_account(&w, 0.5, &m);
    assert_true(isnan(m.steal_pct) && isnan(m.others_cpu_s) && isnan(m.window_s));
}

static void test_live_files(void **state)
{
    (void)state;
    pb_cpu_ticks t;
    long running = 0;
    assert_int_equal(pb_proc_stat_read(&t, &running), 0);
    /* the reader itself is running */
    assert_true(running >= 1);
    assert_true(pb_ticks_total(&t) > 0);
    pb_noise n;
    pb_noise_before(&n, 0);
    assert_true(isfinite(n.loadavg_1m) && n.loadavg_1m >= 0);
    assert_true(n.procs_running >= 1);
    assert_true(isnan(n.capacity_cpus) && isnan(n.steal_pct) && isnan(n.others_cpu_s));
    assert_true(isnan(pb_process_cpu_s(-1)));
}

static double process_cpu_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* /proc/PID/stat's CPU time follows the process clock (to its 1/HZ ticks). */
static void test_process_cpu(void **state)
{
    (void)state;
    double a = pb_process_cpu_s(getpid()), c0 = process_cpu_clock();
    assert_true(isfinite(a) && a >= 0);
    volatile unsigned long sink = 0;
    while (process_cpu_clock() - c0 < 0.2)
        sink++;
    double used = process_cpu_clock() - c0;
    double b = pb_process_cpu_s(getpid());
    long hz = sysconf(_SC_CLK_TCK);
    double tick = 1.0 / (double)hz;
    assert_true(b - a >= used - 3 * tick);
    assert_true(b - a <= used + 3 * tick);
}

static void test_capacity(void **state)
{
    (void)state;
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    int ncpu = CPU_COUNT(&set);
    double cap = pb_capacity_probe(20);
    /* more than nothing, never more than the CPUs it may run on (5% for the
     * clocks' granularity) */
    assert_true(cap > 0);
    assert_true(cap <= ncpu * 1.05);
    assert_true(isnan(pb_capacity_probe(0)));
    assert_true(isnan(pb_capacity_probe(-1)));
    pb_noise n;
    pb_noise_before(&n, 10);
    assert_true(n.capacity_cpus > 0 && n.capacity_cpus <= ncpu * 1.05);
}

/* A real window around some work of this process: steal and iowait are
 * shares, the others' CPU cannot be less than minus the ticks' error. */
static void test_window(void **state)
{
    (void)state;
    pb_noise_window w;
    pb_noise n;
    pb_noise_before(&n, 0);
    pb_noise_window_begin(&w, 0);
    /* This thread's clock, from inside the window: a thread's CPU time
     * cannot exceed the wall time (the process's can: sanitizers run
     * threads of their own). */
    double c0 = thread_cpu_clock(), p0 = process_cpu_clock();
    volatile unsigned long sink = 0;
    while (thread_cpu_clock() - c0 < 0.1)
        sink++;
    pb_noise_window_end(&w);
    pb_noise_account(&w, process_cpu_clock() - p0, &n);
    assert_true(n.window_s >= 0.1);
    assert_true(n.steal_pct >= 0 && n.steal_pct <= 100);
    assert_true(n.iowait_pct >= 0 && n.iowait_pct <= 100);
    long hz = sysconf(_SC_CLK_TCK);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(n.others_cpu_s >= -2.0 * (double)ncpu / (double)hz - 0.02);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),       cmocka_unit_test(test_account),
        cmocka_unit_test(test_live_files),  cmocka_unit_test(test_process_cpu),
        cmocka_unit_test(test_capacity),    cmocka_unit_test(test_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
