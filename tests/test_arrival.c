/*
 * test_arrival.c: the arrival schedules (arrival.h) and what pb_run does
 * with them: an open loop at a rate, latency from the intended arrival
 * (a stall injected in the submitter shows in it), a bounded queue that
 * rejects (rejected counted apart from failed), ex_map submission
 * (--chunksize) computing what ex_submit computes, and the gauges'
 * timeline.
 */
#include "util.h"

#include "arrival.h"
#include "run.h"

#include <math.h>

static void test_names(void **state)
{
    (void)state;
    pb_arrival a;
    for (int k = PB_ARRIVAL_BATCH; k <= PB_ARRIVAL_POISSON; k++) {
        assert_int_equal(pb_arrival_parse(pb_arrival_name((pb_arrival)k), &a), 0);
        assert_int_equal(a, k);
    }
    assert_int_equal(pb_arrival_parse("uniform", &a), -1);
    assert_int_equal(pb_arrival_parse(NULL, &a), -1);
}

static void test_fixed_schedule(void **state)
{
    (void)state;
    uint64_t at[5];
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_FIXED, 1000, 7, 5, at), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(at[i], (uint64_t)i * 1000000u);
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_FIXED, 0, 7, 5, at), -1);
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_POISSON, -1, 7, 5, at), -1);
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_POISSON, NAN, 7, 5, at), -1);
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_BATCH, 0, 7, 5, at), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(at[i], 0);
}

/* Poisson arrivals: nondecreasing, the right count and mean interval (the
 * standard error of the mean of n exponential intervals is mean/sqrt(n):
 * 0.3% at n = 100000, so 2% is over six of them), a coefficient of
 * variation near 1 (an exponential's), and the same schedule for the
 * same seed, another for another. */
static void test_poisson_schedule(void **state)
{
    (void)state;
    enum { N = 100000 };
    uint64_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_POISSON, 2000, 42, N, a), 0);
    assert_int_equal(a[0], 0);
    double sum = 0, sq = 0;
    for (size_t i = 1; i < N; i++) {
        assert_true(a[i] >= a[i - 1]);
        double d = (double)(a[i] - a[i - 1]);
        sum += d;
        sq += d * d;
    }
    double mean = sum / (N - 1), sd = sqrt(sq / (N - 1) - mean * mean);
    assert_true(fabs(mean - 500000.0) < 0.02 * 500000.0);
    assert_true(fabs(sd / mean - 1.0) < 0.03);
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_POISSON, 2000, 42, N, b), 0);
    assert_memory_equal(a, b, N * sizeof *a);
    assert_int_equal(pb_arrival_schedule(PB_ARRIVAL_POISSON, 2000, 43, N, b), 0);
    assert_memory_not_equal(a, b, N * sizeof *a);
    free(a);
    free(b);
}

/* A run of `workload` (default parameters but those given). */
typedef struct run_case {
    pb_run_opts o;
    wl_params *p;
} run_case;

static void case_init(run_case *c, const char *workload, ex_kind kind, unsigned workers,
                      size_t tasks, const char *kv)
{
    memset(c, 0, sizeof *c);
    const wl_workload *w = wl_find(workload);
    assert_non_null(w);
    assert_int_equal(wl_params_create(w, &c->p), 0);
    char err[256];
    if (kv)
        assert_int_equal(wl_params_set_kv(c->p, kv, err, sizeof err), 0);
    c->o.kind = kind;
    c->o.workers = workers;
    c->o.workload = w;
    c->o.params = c->p;
    c->o.tasks = tasks;
    c->o.seed = 1;
}

static void case_run(run_case *c, pb_run_result *r)
{
    char err[512] = "";
    int rc = pb_run(&c->o, r, true, err, sizeof err);
    if (rc)
        fail_msg("pb_run: %s", err);
}

/* Open loop at 500 tasks/s: the submitter keeps the schedule (it may run
 * late on a loaded machine, never early), so 40 tasks take at least the
 * 78 ms their arrivals span, and the achieved rate is at most the offered
 * one (a 1 ms timer margin). */
static void test_open_loop_rate(void **state)
{
    (void)state;
    run_case c;
    case_init(&c, "noop", EX_THREADS, 2, 40, NULL);
    c.o.arrival = PB_ARRIVAL_FIXED;
    c.o.rate = 500;
    pb_run_result r;
    case_run(&c, &r);
    assert_int_equal(r.tasks_ok, 40);
    assert_true(r.wall_s >= 0.078);
    assert_true(r.achieved_rate > 0);
    assert_true(r.achieved_rate <= 500.0 * 78.0 / 77.0);
    pb_run_result_free(&r);
    wl_params_destroy(c.p);
}

/* Latency from the intended arrival includes a stall of the submitter:
 * tasks arrive every 1 ms, the submitter sleeps 300 ms after task 5, so
 * task 6, due at 6 ms, is submitted after 305 ms and its latency is at
 * least 299 ms, however fast the pool, while from its submit it would be
 * microseconds.  The queue wait holds the stall too. */
static void test_stall_counts(void **state)
{
    (void)state;
    run_case c;
    case_init(&c, "noop", EX_THREADS, 2, 20, NULL);
    c.o.arrival = PB_ARRIVAL_FIXED;
    c.o.rate = 1000;
    c.o.stall_at = 5;
    c.o.stall_ns = 300 * MS;
    pb_run_result r;
    case_run(&c, &r);
    assert_int_equal(r.tasks_ok, 20);
    assert_true(r.lat_max_ns >= 299e6);
    assert_true(r.lat_p50_ns >= 280e6); /* tasks 6..19 all waited */
    assert_true(r.wait_mean_ns >= 0.5 * 280e6);
    pb_run_result_free(&r);
    wl_params_destroy(c.p);
}

/* A bounded queue that rejects: one worker held by a long first task, a
 * queue of 2, so of 10 tasks submitted at once at most 3 (one running, two
 * queued) are accepted unless the submitter stalls for a whole task; the
 * rest are rejected, counted apart from the failures, and their count is
 * the executor's own (its gauges, sampled to the end). */
static void test_reject_counted(void **state)
{
    (void)state;
    run_case c;
    case_init(&c, "sleep", EX_THREADS, 1, 10, "latency_ms=300");
    c.o.queue_capacity = 2;
    c.o.on_full = EX_ON_FULL_REJECT;
    c.o.sample_ms = 50;
    pb_run_result r;
    case_run(&c, &r);
    assert_int_equal(r.tasks_failed, 0);
    assert_true(r.tasks_rejected >= 1);
    assert_int_equal(r.tasks_ok + r.tasks_rejected, 10);
    assert_int_equal(r.nerrors, 0);
    assert_true(r.nsamples >= 1);
    assert_int_equal(r.samples[r.nsamples - 1].g.rejected, r.tasks_rejected);
    assert_int_equal(r.samples[r.nsamples - 1].g.completed, r.tasks_ok);
    pb_run_result_free(&r);
    wl_params_destroy(c.p);
}

/* ex_map submission computes what ex_submit computes: the same digest. */
static void test_map_same_digest(void **state)
{
    (void)state;
    for (int kind = EX_SEQ; kind <= EX_PROCS; kind++) {
        run_case c;
        case_init(&c, "primes", (ex_kind)kind, 2, 24, "span=2000");
        pb_run_result a, b;
        case_run(&c, &a);
        c.o.chunksize = 5;
        case_run(&c, &b);
        assert_string_equal(a.digest, b.digest);
        assert_int_equal(b.tasks_ok, 24);
        assert_int_equal(b.nlatencies, 24);
        pb_run_result_free(&a);
        pb_run_result_free(&b);
        wl_params_destroy(c.p);
    }
}

/* The timeline: samples in time order, the last one after every task is
 * final (nothing queued or running, everything completed). */
static void test_timeline(void **state)
{
    (void)state;
    run_case c;
    case_init(&c, "sleep", EX_THREADS, 2, 20, "latency_ms=10");
    c.o.sample_ms = 5;
    pb_run_result r;
    case_run(&c, &r);
    assert_true(r.nsamples >= 2);
    for (size_t i = 1; i < r.nsamples; i++)
        assert_true(r.samples[i].t_s >= r.samples[i - 1].t_s);
    const ex_pool_stats *last = &r.samples[r.nsamples - 1].g;
    assert_int_equal(last->queued, 0);
    assert_int_equal(last->running, 0);
    assert_true(last->completed >= 20);
    pb_run_result_free(&r);
    wl_params_destroy(c.p);
}

/* A stop does not wait out the interval: sampled every 60 s, a run of a
 * few empty tasks ends in far less than that (30 s leaves a run of
 * milliseconds room for any machine, valgrind included). */
static void test_sampler_stops_at_once(void **state)
{
    (void)state;
    run_case c;
    case_init(&c, "noop", EX_THREADS, 2, 10, NULL);
    c.o.sample_ms = 60000;
    pb_run_result r;
    uint64_t t0 = ex_now_ns();
    case_run(&c, &r);
    assert_true(ex_now_ns() - t0 < 30 * (uint64_t)SEC);
    assert_true(r.nsamples >= 2); /* the first, at the start, and the last */
    pb_run_result_free(&r);
    wl_params_destroy(c.p);
}

/* Options that do not go together are refused with a message. */
static void test_bad_options(void **state)
{
    (void)state;
    run_case c;
    case_init(&c, "noop", EX_THREADS, 2, 4, NULL);
    pb_run_result r;
    char err[512] = "";
    c.o.arrival = PB_ARRIVAL_POISSON;
    assert_int_equal(pb_run(&c.o, &r, false, err, sizeof err), EX_EINVAL);
    assert_non_null(strstr(err, "rate"));
    c.o.rate = 100;
    c.o.chunksize = 2;
    assert_int_equal(pb_run(&c.o, &r, false, err, sizeof err), EX_EINVAL);
    assert_non_null(strstr(err, "chunksize"));
    wl_params_destroy(c.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_fixed_schedule),
        cmocka_unit_test(test_poisson_schedule),
        cmocka_unit_test(test_open_loop_rate),
        cmocka_unit_test(test_stall_counts),
        cmocka_unit_test(test_reject_counted),
        cmocka_unit_test(test_map_same_digest),
        cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_sampler_stops_at_once),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
