/*
 * test_future.c: a future's life on every backend: results of many tasks,
 * cancel (only while PENDING), result timeouts, the per-task stats (CPU
 * inside [start, end], sleeping is blocked time), and futures that outlive
 * their executor.  Blocking tasks wait on the gate (util.h), so nothing
 * depends on how fast a loaded machine runs.  Every test covers mpi too
 * where it can run (test_kinds): this binary is its broker and workers.
 */
#include "util.h"

static int task_spin(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < 20000000; i++)
        x += i;
    return ex_buf_append(out, (const void *)&x, sizeof x) ? 9 : 0;
}

static void test_many_tasks(void **state)
{
    (void)state;
    enum { N = 10000 };
    static uint32_t in[N];
    static ex_future *fs[N];
    kind_list kinds = test_kinds(KINDS_ALL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make(kinds.kind[k], 2);
        for (uint32_t i = 0; i < N; i++) {
            in[i] = i;
            assert_int_equal(ex_submit(ex, task_double, &in[i], sizeof in[i], &fs[i]), 0);
        }
        size_t ndone = 0;
        assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, EX_FOREVER, &ndone), 0);
        assert_int_equal(ndone, N);
        for (uint32_t i = 0; i < N; i++) {
            assert_int_equal(ex_future_state(fs[i]), EX_DONE);
            assert_int_equal(u32_of(fs[i]), 2 * i + 1);
            ex_future_release(fs[i]);
        }
        ex_destroy(ex);
    }
}

static void test_cancel(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make_unpipelined(kinds.kind[k], 1);
        ex_future *run, *pend;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &run), 0);
        uint32_t v = 5;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &pend), 0);
        wait_running(run);
        assert_int_equal(ex_future_cancel(run), EX_EINVAL);
        assert_int_equal(ex_future_cancel(pend), 0);
        assert_int_equal(ex_future_state(pend), EX_CANCELLED);
        assert_int_equal(ex_future_result(pend, NULL, NULL, 0), EX_ECANCELLED);
        assert_int_equal(ex_future_cancel(pend), EX_EINVAL); /* already final */
        gate_open(1);
        assert_int_equal(ex_future_result(run, NULL, NULL, EX_FOREVER), 0);
        assert_int_equal(ex_future_cancel(run), EX_EINVAL);
        ex_future_release(run);
        ex_future_release(pend);
        ex_destroy(ex);
    }
    /* seq: the task ran inside submit, so it can no longer be cancelled. */
    ex_executor *ex = make(EX_SEQ, 1);
    uint32_t v = 1;
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), 0);
    assert_int_equal(ex_future_state(f), EX_DONE);
    assert_int_equal(ex_future_cancel(f), EX_EINVAL);
    ex_future_release(f);
    ex_destroy(ex);
}

static void test_result_timeout(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make(kinds.kind[k], 1);
        ex_future *f;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
        uint64_t t0 = ex_now_ns();
        assert_int_equal(ex_future_result(f, NULL, NULL, 20 * 1000000LL), EX_ETIMEDOUT);
        assert_true(ex_now_ns() - t0 >= 20 * 1000000ULL);
        assert_int_equal(ex_future_result(f, NULL, NULL, 0), EX_ETIMEDOUT);
        assert_int_equal(ex_future_wait(f, 0), EX_ETIMEDOUT);
        gate_open(1);
        const void *out;
        size_t len;
        assert_int_equal(ex_future_result(f, &out, &len, EX_FOREVER), 0);
        assert_memory_equal(out, "gated", 5);
        ex_future_release(f);
        ex_destroy(ex);
    }
}

static void test_stats(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_ALL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make(kinds.kind[k], 2);
        ex_future *f;
        assert_int_equal(ex_submit(ex, task_spin, NULL, 0, &f), 0);
        assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(f, &st), 0);
        assert_true(st.submit_ns <= st.start_ns);
        assert_true(st.start_ns <= st.end_ns);
        assert_true(st.cpu_ns > 0);
        /* CPU is measured inside [start, end]: blocked is not negative
         * beyond the thread clock's granularity. */
        assert_true(st.cpu_ns <= st.end_ns - st.start_ns + 1000000);
        assert_true(st.worker >= 0 && st.worker < 2);
        assert_true(st.cpu >= 0);
        assert_true(st.worker_pid > 0);
        if (kind_in_other_process(kinds.kind[k]))
            assert_int_not_equal(st.worker_pid, getpid());
        else
            assert_int_equal(st.worker_pid, getpid());
        assert_true(st.flags & EX_STATS_CPU);
        ex_future_release(f);
        /* A sleeping task: its time is blocked, not CPU, and the three
         * parts are each non-negative and add up to the latency. */
        uint32_t ms = 30;
        assert_int_equal(ex_submit(ex, task_sleep_ms, &ms, sizeof ms, &f), 0);
        assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
        assert_int_equal(ex_future_stats(f, &st), 0);
        uint64_t run = st.end_ns - st.start_ns;
        assert_true(run >= 30 * 1000000ULL);
        assert_true(st.cpu_ns <= run);
        uint64_t wait = st.start_ns - st.submit_ns, blocked = run - st.cpu_ns;
        assert_true(blocked >= 20 * 1000000ULL); /* sleeping is not CPU */
        assert_true(st.cpu_ns < 10 * 1000000ULL);
        assert_int_equal(wait + st.cpu_ns + blocked, st.end_ns - st.submit_ns);
        assert_true(st.nvcsw >= 1); /* nanosleep blocks: a voluntary switch */
        ex_future_release(f);
        ex_destroy(ex);
    }
    /* measure_cpu off: timestamps stay, CPU is marked unmeasured. */
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    cfg.max_workers = 1;
    cfg.measure_cpu = false;
    ex_executor *ex;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_spin, NULL, 0, &f), 0);
    assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
    ex_task_stats st;
    assert_int_equal(ex_future_stats(f, &st), 0);
    assert_false(st.flags & EX_STATS_CPU);
    assert_int_equal(st.cpu_ns, 0);
    assert_true(st.end_ns > st.start_ns);
    ex_future_release(f);
    ex_destroy(ex);
}

/* Futures come from the executor's cache and may outlive it: results,
 * stats and chains stay readable after ex_destroy, and releasing them
 * afterwards frees everything (ASan and valgrind check the rest). */
static void test_futures_outlive_executor(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_ALL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make(kinds.kind[k], 2);
        enum { N = 64 };
        ex_future *fs[N], *chained;
        uint32_t in[N];
        /* Twice: the second round reuses the first round's futures. */
        for (int round = 0; round < 2; round++) {
            for (uint32_t i = 0; i < N; i++) {
                in[i] = i;
                assert_int_equal(ex_submit(ex, task_double, &in[i], sizeof in[i], &fs[i]), 0);
            }
            assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, EX_FOREVER, NULL), 0);
            if (round == 0)
                for (int i = 0; i < N; i++)
                    ex_future_release(fs[i]);
        }
        assert_int_equal(ex_future_then(fs[3], ex, task_double, &chained), 0);
        assert_int_equal(ex_future_wait(chained, EX_FOREVER), 0);
        ex_destroy(ex);
        for (uint32_t i = 0; i < N; i++) {
            assert_int_equal(u32_of(fs[i]), 2 * i + 1);
            ex_task_stats st;
            assert_int_equal(ex_future_stats(fs[i], &st), 0);
            ex_future_release(fs[i]);
        }
        assert_int_equal(u32_of(chained), 2 * 7 + 1);
        ex_future_release(chained);
    }
}

static void register_tasks(void)
{
    ex_task_register("test_future.spin", task_spin);
}

int main(int argc, char **argv)
{
    if (test_start(&argc, &argv, register_tasks))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_tasks),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_result_timeout),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_futures_outlive_executor),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
