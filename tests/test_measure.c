/*
 * test_measure.c: the per-task measurements (measure.c): a task's CPU time
 * lies inside its wall time by construction, on every task, whichever way
 * its readings were taken (exact, estimated through rseq switch detection,
 * or a mix); a task that leaves the CPU shows its switch; and a reading
 * that does fall outside is cut and flagged, never hidden.
 */
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------- the cut, on its own */

static ex_mark mark(uint64_t start_ns, uint64_t end_ns, uint64_t cpu_ns)
{
    ex_mark m = {.start_ns = start_ns, .end_ns = end_ns, .u = {.cpu_ns = cpu_ns}};
    return m;
}

/* Inside [0, wall]: taken as read, no flag.  Outside: cut to the range and
 * flagged.  The wall runs from the start mark's first timestamp to the end
 * mark's second. */
static void test_stats_measure_cut(void **state)
{
    (void)state;
    struct { ex_mark s, e; uint64_t cpu; unsigned cut; } cases[] = {
        {mark(1000, 1300, 500), mark(2000, 2200, 1400), 900, 0},
        {mark(1000, 1300, 500), mark(2000, 2200, 1700), 1200, 0}, /* == wall */
        {mark(1000, 1300, 500), mark(2000, 2200, 1701), 1200, EX_STATS_CPU_OVER_WALL},
        {mark(1000, 1300, 500), mark(2000, 2200, 499), 0, EX_STATS_CPU_UNDER_ZERO},
        {mark(1000, 1000, 500), mark(1000, 1000, 500), 0, 0},
    };
    for (size_t i = 0; i < NKINDS(cases); i++) {
        ex_task_stats st = {0};
        st.nvcsw = 99;
        cases[i].e.u.nvcsw = 3;
        cases[i].s.u.nvcsw = 1;
        ex__stats_measure(&st, &cases[i].s, &cases[i].e);
        assert_int_equal(st.start_ns, 1000);
        assert_int_equal(st.end_ns, cases[i].e.end_ns);
        assert_int_equal(st.cpu_ns, cases[i].cpu);
        assert_true(st.flags & EX_STATS_CPU);
        assert_int_equal(st.flags, EX_STATS_CPU | cases[i].cut);
        assert_int_equal(st.nvcsw, 2);
    }
    /* An exact reading brackets its CPU sample. */
    ex_mark a, b;
    ex__mark_exact(&a);
    ex__mark_exact(&b);
    assert_true(a.start_ns <= a.end_ns && a.end_ns <= b.start_ns && b.start_ns <= b.end_ns);
    assert_true(a.u.cpu_ns <= b.u.cpu_ns);
    assert_true(b.u.cpu_ns - a.u.cpu_ns <= b.end_ns - a.start_ns);
}

/* --------------------------------------------- a switch shorter than 50 us */

/* A context switch that ends well inside EX_EXACT_EVERY_NS: the task and
 * an echo thread share CPU 0, so the task's write wakes the echo thread,
 * which takes the CPU (or the task's read blocks until it does) and
 * answers at once.  (A short nanosleep is no good: the timer often fires
 * before the thread sleeps, and then nothing switched.) */
static int echo_a[2], echo_b[2];

static void pin_cpu0(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void *echo_main(void *arg)
{
    (void)arg;
    pin_cpu0();
    char c;
    while (read(echo_a[0], &c, 1) == 1 && c != 'q')
        if (write(echo_b[1], &c, 1) != 1)
            break;
    return NULL;
}

static int task_brief_block(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    pin_cpu0();
    char c = 'x';
    if (write(echo_a[1], &c, 1) != 1 || read(echo_b[0], &c, 1) != 1)
        return 5;
    return 0;
}

static void echo_start(pthread_t *echo)
{
    assert_int_equal(pipe(echo_a), 0);
    assert_int_equal(pipe(echo_b), 0);
    assert_int_equal(pthread_create(echo, NULL, echo_main, NULL), 0);
}

static void echo_stop(pthread_t echo)
{
    char q = 'q';
    assert_int_equal(write(echo_a[1], &q, 1), 1);
    assert_int_equal(pthread_join(echo, NULL), 0);
    for (int i = 0; i < 2; i++) {
        close(echo_a[i]);
        close(echo_b[i]);
    }
}

/* Per-task CPU with rseq switch detection (the default) and with exact
 * readings: whichever way a reading is taken, a task that blocked shows its
 * switch and its off-CPU time, and none is cut.  The first switching task
 * of each pool follows an estimated reading of a fresh worker: the case
 * that once read CPU = wall. */
static void test_cpu_switch_detection(void **state)
{
    (void)state;
    int d = ex_cpu_switch_detection();
    assert_int_equal(ex_cpu_switch_detection(), d); /* tested once */
    if (test_under_valgrind())
        assert_int_equal(d, 0); /* valgrind refuses rseq registration */
    cpu_set_t saved;
    assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
    pthread_t echo;
    echo_start(&echo);
    static const ex_kind kinds[] = {EX_SEQ, EX_THREADS};
    size_t brief = 0; /* switching tasks shorter than EX_EXACT_EVERY_NS */
    for (size_t k = 0; k < NKINDS(kinds); k++)
        for (int exact = 0; exact <= 1; exact++) {
            ex_config cfg;
            ex_config_init(&cfg, kinds[k]);
            cfg.max_workers = 1;
            cfg.exact_cpu = exact;
            ex_executor *ex;
            assert_int_equal(ex_create(&cfg, &ex), 0);
            enum { N = 40 };
            ex_future *fs[2 * N];
            /* Alternate: an empty task (no switch, the estimate serves)
             * right before each blocking one, so a missed switch would
             * show up as nvcsw == 0. */
            for (int i = 0; i < N; i++) {
                assert_int_equal(ex_submit(ex, task_empty, NULL, 0, &fs[2 * i]), 0);
                assert_int_equal(ex_submit(ex, task_brief_block, NULL, 0, &fs[2 * i + 1]), 0);
            }
            assert_int_equal(ex_wait(fs, 2 * N, EX_ALL_COMPLETED, EX_FOREVER, NULL), 0);
            for (int i = 0; i < 2 * N; i++) {
                ex_task_stats st;
                assert_int_equal(ex_future_state(fs[i]), EX_DONE);
                assert_int_equal(ex_future_stats(fs[i], &st), 0);
                assert_int_equal(st.flags, EX_STATS_CPU);
                assert_true(st.start_ns <= st.end_ns);
                assert_true(st.cpu_ns <= st.end_ns - st.start_ns);
                assert_true(st.nvcsw >= 0 && st.nivcsw >= 0);
                if (i % 2) {
                    /* Either the echo thread preempted the task when it
                     * woke (involuntary) or the read blocked (voluntary):
                     * one switch at least, and off-CPU time. */
                    assert_true(st.nvcsw + st.nivcsw >= 1);
                    assert_true(st.cpu_ns < st.end_ns - st.start_ns);
                    brief += st.end_ns - st.start_ns < EX_EXACT_EVERY_NS;
                }
                ex_future_release(fs[i]);
            }
            ex_destroy(ex);
        }
    echo_stop(echo);
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    print_message("switch detection %s; %zu of 160 switching tasks shorter than %d ns\n",
                  d ? "on" : "unavailable", brief, EX_EXACT_EVERY_NS);
}

/* ----------------------------------------------- every task, 10k of them */

/* Mostly empty tasks (readings chain and estimates serve), some that spin
 * a few microseconds, some that sleep (a switch mid-task: an estimated
 * start against an exact end). */
static int task_mixed(const void *in, size_t len, ex_buf *out)
{
    (void)len;
    (void)out;
    unsigned i = *(const unsigned *)in;
    if (i % 16 == 15) {
        sleep_ns(20 * 1000);
    } else if (i % 16 == 7) {
        uint64_t until = ex_now_ns() + 3000;
        while (ex_now_ns() < until)
            ;
    }
    return 0;
}

static int pin_worker(unsigned index, void *arg)
{
    const cpu_set_t *allowed = arg;
    int n = CPU_COUNT(allowed), k = (int)index % n;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, allowed) && k-- == 0) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(c, &one);
            return sched_setaffinity(0, sizeof one, &one) != 0;
        }
    return 1;
}

/* Runs n mixed tasks on one configuration, checks the bound on every task
 * and counts the readings cut (over the wall time; below zero). */
static void run_mixed(ex_kind kind, bool exact, cpu_set_t *pin, size_t n, unsigned *in,
                      size_t *over, size_t *under)
{
    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = 2;
    cfg.exact_cpu = exact;
    if (pin) {
        cfg.worker_start = pin_worker;
        cfg.worker_start_arg = pin;
    }
    ex_executor *ex;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    ex_future **fs = calloc(n, sizeof *fs);
    assert_non_null(fs);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ex_submit(ex, task_mixed, &in[i], sizeof in[i], &fs[i]), 0);
    assert_int_equal(ex_wait(fs, n, EX_ALL_COMPLETED, EX_FOREVER, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        ex_task_stats st;
        assert_int_equal(ex_future_stats(fs[i], &st), 0);
        assert_true(st.flags & EX_STATS_CPU);
        assert_true(st.start_ns <= st.end_ns);
        assert_true(st.cpu_ns <= st.end_ns - st.start_ns);
        *over += (st.flags & EX_STATS_CPU_OVER_WALL) != 0;
        /* Exact readings never go below zero: the thread clock is monotonic. */
        if (exact || !ex_cpu_switch_detection())
            assert_false(st.flags & EX_STATS_CPU_UNDER_ZERO);
        *under += (st.flags & EX_STATS_CPU_UNDER_ZERO) != 0;
        ex_future_release(fs[i]);
    }
    free(fs);
    ex_destroy(ex);
}

/* seq and threads, switch detection on and off, workers pinned or not,
 * on every CPU this process may use and on one: no raw reading of any
 * task exceeds its wall time, so the over-wall counter stays 0.  (Below
 * zero is possible with switch detection only, when interrupt or steal
 * time lands just before a task's estimated start: counted, printed.) */
static void test_cpu_within_wall(void **state)
{
    (void)state;
    size_t n = test_under_valgrind() ? 1000 : 10000;
    unsigned *in = malloc(n * sizeof *in);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned)i;
    cpu_set_t saved, one;
    assert_int_equal(sched_getaffinity(0, sizeof saved, &saved), 0);
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    static const ex_kind kinds[] = {EX_SEQ, EX_THREADS};
    size_t over = 0, under = 0, runs = 0;
    for (int single = 0; single <= 1; single++) {
        cpu_set_t *allowed = single ? &one : &saved;
        assert_int_equal(sched_setaffinity(0, sizeof *allowed, allowed), 0);
        for (size_t k = 0; k < NKINDS(kinds); k++)
            for (int exact = 0; exact <= 1; exact++)
                for (int pinned = 0; pinned <= 1; pinned++) {
                    run_mixed(kinds[k], exact, pinned ? allowed : NULL, n, in, &over, &under);
                    runs++;
                    /* seq's worker_start pinned this very thread. */
                    assert_int_equal(sched_setaffinity(0, sizeof *allowed, allowed), 0);
                }
    }
    assert_int_equal(sched_setaffinity(0, sizeof saved, &saved), 0);
    free(in);
    print_message("%zu runs of %zu tasks: %zu CPU readings over the wall time, %zu below zero\n",
                  runs, n, over, under);
    assert_int_equal(over, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_measure_cut),
        cmocka_unit_test(test_cpu_switch_detection),
        cmocka_unit_test(test_cpu_within_wall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
