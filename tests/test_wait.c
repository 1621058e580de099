/*
 * test_wait.c: waiting for groups of futures: ex_wait in its three modes
 * with and without timeouts, and the as_completed iterator, whose order
 * the test decides with one gate per task; on every backend, mpi too
 * where it can run (test_kinds).
 */
#include "util.h"

static void test_wait_modes(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make(kinds.kind[k], 2);
        ex_future *fs[2];
        uint32_t v = 4;
        /* FIRST_COMPLETED: one quick, one gated. */
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &fs[0]), 0);
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &fs[1]), 0);
        size_t nd = 99;
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_COMPLETED, EX_FOREVER, &nd), 0);
        assert_int_equal(nd, 1);
        assert_int_equal(ex_future_state(fs[1]), EX_DONE);
        /* ALL_COMPLETED times out while the gate is shut. */
        assert_int_equal(ex_wait(fs, 2, EX_ALL_COMPLETED, 10 * 1000000LL, &nd), EX_ETIMEDOUT);
        assert_int_equal(nd, 1);
        assert_int_equal(ex_wait(fs, 2, EX_ALL_COMPLETED, 0, &nd), EX_ETIMEDOUT);
        /* FIRST_FAILED: already satisfied? No failure yet, so it waits. */
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_FAILED, 10 * 1000000LL, &nd), EX_ETIMEDOUT);
        gate_open(1);
        assert_int_equal(ex_wait(fs, 2, EX_ALL_COMPLETED, EX_FOREVER, &nd), 0);
        assert_int_equal(nd, 2);
        /* FIRST_FAILED with no failure behaves as ALL_COMPLETED. */
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_FAILED, EX_FOREVER, &nd), 0);
        ex_future_release(fs[0]);
        ex_future_release(fs[1]);
        /* FIRST_FAILED returns on the failure while another still runs. */
        uint32_t odd = 3;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &fs[0]), 0);
        assert_int_equal(ex_submit(ex, task_fail_odd, &odd, sizeof odd, &fs[1]), 0);
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_FAILED, EX_FOREVER, &nd), 0);
        assert_int_equal(ex_future_state(fs[1]), EX_FAILED);
        assert_int_equal(ex_future_task_code(fs[1]), 3);
        assert_int_not_equal(ex_future_state(fs[0]), EX_DONE);
        gate_open(1);
        ex_future_release(fs[0]);
        ex_future_release(fs[1]);
        assert_int_equal(ex_wait(NULL, 0, EX_ALL_COMPLETED, 0, &nd), 0);
        assert_int_equal(ex_wait(fs, 2, (ex_wait_mode)9, 0, &nd), EX_EINVAL);
        ex_destroy(ex);
    }
}

/* Task i of test_as_completed blocks on its own gate channel (1 + i) and
 * returns i, so the test decides the completion order, however the
 * machine schedules. */
static int task_order_gate(const void *in, size_t len, ex_buf *out)
{
    uint32_t i;
    if (len != sizeof i)
        return 22;
    memcpy(&i, in, sizeof i);
    if (i >= GATE_CHANNELS - 1 || gate_pass((int)i + 1) != 0)
        return 9;
    return ex_buf_append(out, &i, sizeof i) ? 9 : 0;
}

static void order_gate_open(uint32_t i)
{
    gate_open_channel((int)i + 1, 1);
}

static void test_as_completed(void **state)
{
    (void)state;
    const uint32_t order[3] = {1, 2, 0}; /* the completion order the test makes */
    kind_list kinds = test_kinds(KINDS_ALL);
    for (size_t k = 0; k < kinds.n; k++) {
        bool seq = kind_runs_inline(kinds.kind[k]);
        ex_executor *ex = make(kinds.kind[k], 3);
        uint32_t in[3] = {0, 1, 2};
        ex_future *fs[3];
        for (uint32_t i = 0; seq && i < 3; i++)
            order_gate_open(i); /* seq runs each task inside its submit */
        for (int i = 0; i < 3; i++)
            assert_int_equal(ex_submit(ex, task_order_gate, &in[i], sizeof in[i], &fs[i]), 0);
        ex_as_completed *it;
        assert_int_equal(ex_as_completed_create(fs, 3, &it), 0);
        for (int i = 0; i < 3; i++) {
            /* Pools: let exactly the next one finish, then it must be the
             * one as_completed yields.  seq: everything is done, in array
             * order. */
            uint32_t want = seq ? (uint32_t)i : order[i];
            if (!seq)
                order_gate_open(want);
            ex_future *f;
            assert_int_equal(ex_as_completed_next(it, &f, EX_FOREVER), 0);
            assert_ptr_equal(f, fs[want]);
            assert_int_equal(u32_of(f), want);
        }
        ex_future *end;
        assert_int_equal(ex_as_completed_next(it, &end, 0), 0);
        assert_null(end);
        ex_as_completed_destroy(it);
        for (int i = 0; i < 3; i++)
            ex_future_release(fs[i]);
        ex_destroy(ex);
    }
    /* Timeout while nothing is final. */
    ex_executor *ex = make(EX_THREADS, 1);
    ex_future *f, *out;
    assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
    ex_as_completed *it;
    assert_int_equal(ex_as_completed_create(&f, 1, &it), 0);
    assert_int_equal(ex_as_completed_next(it, &out, 5 * 1000000LL), EX_ETIMEDOUT);
    gate_open(1);
    assert_int_equal(ex_as_completed_next(it, &out, EX_FOREVER), 0);
    assert_ptr_equal(out, f);
    ex_as_completed_destroy(it);
    ex_future_release(f);
    ex_destroy(ex);
}

static void register_tasks(void)
{
    ex_task_register("test_wait.order_gate", task_order_gate);
}

int main(int argc, char **argv)
{
    if (test_start(&argc, &argv, register_tasks))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_modes),
        cmocka_unit_test(test_as_completed),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
