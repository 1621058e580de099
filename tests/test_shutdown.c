/*
 * test_shutdown.c: the shutdown matrix (wait x cancel_pending, GLib's
 * immediate x wait) on the pools and seq, and ex_destroy leaving exactly
 * the fds, threads and children the process had before; mpi too where
 * it can run (test_kinds), on the whole matrix (4 executors, about 1 s
 * each to start).
 */
#include "util.h"

typedef struct opener {
    int n;
} opener;

static void *open_later(void *p)
{
    opener *o = p;
    sleep_ms(30);
    gate_open(o->n);
    return NULL;
}

/* The shutdown matrix: 1 worker, one gated task running, 5 pending. */
static void test_shutdown_matrix(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        for (int wait = 0; wait <= 1; wait++) {
            for (int cancel = 0; cancel <= 1; cancel++) {
                ex_executor *ex = make(kinds.kind[k], 1);
                ex_future *fs[6];
                uint32_t v = 1;
                uint64_t begun = gate_starts();
                assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &fs[0]), 0);
                wait_gate_starts(begun + 1); /* begun: never cancelled */
                for (int i = 1; i < 6; i++)
                    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &fs[i]), 0);
                pthread_t th;
                opener o = {1};
                if (wait)
                    assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
                assert_int_equal(ex_shutdown(ex, wait, cancel), 0);
                ex_future *late;
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &late), EX_ESHUTDOWN);
                int done = 0, cancelled = 0, other = 0;
                if (wait) {
                    pthread_join(th, NULL);
                    for (int i = 0; i < 6; i++) {
                        ex_state s = ex_future_state(fs[i]);
                        done += s == EX_DONE;
                        cancelled += s == EX_CANCELLED;
                        other += s != EX_DONE && s != EX_CANCELLED;
                    }
                } else {
                    assert_int_equal(ex_future_state(fs[0]), EX_RUNNING);
                    /* A pool that sends tasks ahead into its worker's
                     * window (RUNNING for the API, though not begun) does
                     * so as soon as its dispatcher takes them. */
                    for (int i = 1; i < 6; i++) {
                        ex_state s = ex_future_state(fs[i]);
                        if (cancel)
                            assert_int_equal(s, EX_CANCELLED);
                        else if (!kind_sends_ahead(kinds.kind[k]) || s != EX_RUNNING)
                            assert_int_equal(s, EX_PENDING);
                    }
                    gate_open(1);
                    ex_destroy(ex);
                    ex = NULL;
                    for (int i = 0; i < 6; i++) {
                        ex_state s = ex_future_state(fs[i]);
                        done += s == EX_DONE;
                        cancelled += s == EX_CANCELLED;
                        other += s != EX_DONE && s != EX_CANCELLED;
                    }
                }
                assert_int_equal(other, 0);
                assert_int_equal(done, cancel ? 1 : 6);
                assert_int_equal(cancelled, cancel ? 5 : 0);
                for (int i = 0; i < 6; i++)
                    ex_future_release(fs[i]);
                ex_destroy(ex);
            }
        }
    }
    ex_executor *ex = make(EX_SEQ, 1);
    assert_int_equal(ex_shutdown(ex, 1, 1), 0);
    assert_int_equal(ex_shutdown(ex, 1, 0), 0); /* again: allowed */
    uint32_t v = 0;
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), EX_ESHUTDOWN);
    ex_destroy(ex);
}

static void test_resources_released(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_ALL);
    for (size_t k = 0; k < kinds.n; k++) {
        int fds = pc_open_fds(), threads = pc_threads(), kids = pc_children();
        ex_executor *ex = make(kinds.kind[k], 3);
        ex_future *f;
        uint32_t v = 1;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), 0);
        assert_int_equal(u32_of(f), 3);
        ex_future_release(f);
        if (kind_has_worker_threads(kinds.kind[k]))
            assert_int_equal(pc_threads(), threads + 3);
        ex_destroy(ex);
        assert_int_equal(pc_open_fds(), fds);
        assert_int_equal(pc_threads(), threads);
        assert_int_equal(pc_children(), kids);
    }
}

int main(int argc, char **argv)
{
    if (test_start(&argc, &argv, NULL))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shutdown_matrix),
        cmocka_unit_test(test_resources_released),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
