/*
 * test_queue.c: the bounded queue and its on_full policies (block, reject,
 * caller-runs) on the pools, and several threads submitting at once while
 * the pool is shut down under them.  The policies run on mpi too where
 * it can run (test_kinds).
 */
#include "util.h"

typedef struct submitter {
    ex_executor *ex;
    ex_future *f;
    int rc;
    atomic_bool returned;
} submitter;

static void *submit_thread(void *p)
{
    submitter *s = p;
    static uint32_t v = 8;
    s->rc = ex_submit(s->ex, task_double, &v, sizeof v, &s->f);
    atomic_store(&s->returned, true);
    return NULL;
}

static void test_on_full(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        for (int policy = 0; policy < 3; policy++) {
            ex_config cfg;
            ex_config_init(&cfg, kinds.kind[k]);
            cfg.max_workers = 1;
            cfg.queue_capacity = 2;
            cfg.on_full = (ex_on_full)policy;
            /* The bound counts tasks waiting in the queue: the process
             * pool's windows hold more, sent ahead (test_window.c). */
            cfg.window = 1;
            ex_executor *ex;
            if (kind_in_other_process(kinds.kind[k]) && policy == EX_ON_FULL_CALLER_RUNS) {
                /* No isolation in the caller: refused (test_faults). */
                assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
                continue;
            }
            assert_int_equal(ex_create(&cfg, &ex), 0);
            ex_future *blk, *q[2];
            uint32_t v = 2;
            assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &blk), 0);
            wait_running(blk);
            for (int i = 0; i < 2; i++)
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &q[i]), 0);
            ex_future *extra = NULL;
            if (policy == EX_ON_FULL_REJECT) {
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &extra), EX_EFULL);
                assert_null(extra);
                gate_open(1);
            } else if (policy == EX_ON_FULL_CALLER_RUNS) {
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &extra), 0);
                assert_int_equal(ex_future_state(extra), EX_DONE);
                ex_task_stats st;
                ex_future_stats(extra, &st);
                assert_int_equal(st.worker, EX_WORKER_CALLER);
                assert_int_equal(st.worker_pid, getpid());
                assert_int_equal(u32_of(extra), 5);
                ex_future_release(extra);
                gate_open(1);
            } else {
                submitter s = {.ex = ex};
                atomic_init(&s.returned, false);
                pthread_t th;
                assert_int_equal(pthread_create(&th, NULL, submit_thread, &s), 0);
                sleep_ms(50);
                assert_false(atomic_load(&s.returned)); /* blocked: no room */
                gate_open(1);
                pthread_join(th, NULL);
                assert_int_equal(s.rc, 0);
                assert_int_equal(u32_of(s.f), 17);
                ex_future_release(s.f);
            }
            for (int i = 0; i < 2; i++) {
                assert_int_equal(u32_of(q[i]), 5);
                ex_future_release(q[i]);
            }
            ex_future_release(blk);
            ex_destroy(ex);
        }
    }
}

/* Several threads submit at once, to an unbounded and to a bounded BLOCK
 * queue, while the pool is shut down under them: every submission either
 * fails with EX_ESHUTDOWN or gives a future that ends final (run, or
 * cancelled by cancel_pending), and nothing is stranded. */
typedef struct burst {
    ex_executor *ex;
    ex_future **fs;
    size_t n, accepted;
    int bad_rc; /* a submit result other than 0 or EX_ESHUTDOWN */
    atomic_size_t *accepted_all; /* every submitter's accepted tasks */
} burst;

static void *submit_burst(void *p)
{
    burst *s = p;
    for (size_t i = 0; i < s->n; i++) {
        int rc = ex_submit(s->ex, task_empty, NULL, 0, &s->fs[s->accepted]);
        if (rc == EX_ESHUTDOWN)
            break;
        if (rc != 0) { /* checked by the test thread: no assert here */
            s->bad_rc = rc;
            break;
        }
        s->accepted++;
        atomic_fetch_add(s->accepted_all, 1);
    }
    return NULL;
}

static void test_concurrent_submitters(void **state)
{
    (void)state;
    enum { T = 4, N = 5000 };
    for (int variant = 0; variant < 4; variant++) {
        bool bounded = variant & 1, shut_early = variant & 2;
        ex_config cfg;
        ex_config_init(&cfg, EX_THREADS);
        cfg.max_workers = 2;
        cfg.queue_capacity = bounded ? 8 : 0;
        ex_executor *ex;
        assert_int_equal(ex_create(&cfg, &ex), 0);
        burst subs[T];
        pthread_t th[T];
        atomic_size_t accepted_all = 0;
        for (int i = 0; i < T; i++) {
            subs[i] = (burst){.ex = ex, .n = N, .fs = calloc(N, sizeof(ex_future *)),
                              .accepted_all = &accepted_all};
            assert_non_null(subs[i].fs);
            assert_int_equal(pthread_create(&th[i], NULL, submit_burst, &subs[i]), 0);
        }
        if (shut_early) {
            /* Shut down while they submit: once some task got in, however
             * slowly a loaded machine schedules the submitters. */
            for (int i = 0; i < 60000 && atomic_load(&accepted_all) == 0; i++)
                sleep_ms(1);
            assert_int_not_equal(atomic_load(&accepted_all), 0);
            assert_int_equal(ex_shutdown(ex, 0, 1), 0);
        }
        for (int i = 0; i < T; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_int_equal(subs[i].bad_rc, 0);
        }
        ex_destroy(ex);
        size_t total = 0;
        for (int i = 0; i < T; i++) {
            if (!shut_early)
                assert_int_equal(subs[i].accepted, N);
            for (size_t j = 0; j < subs[i].accepted; j++) {
                ex_state st = ex_future_state(subs[i].fs[j]);
                assert_true(st == EX_DONE || (shut_early && st == EX_CANCELLED));
                ex_future_release(subs[i].fs[j]);
            }
            total += subs[i].accepted;
            free(subs[i].fs);
        }
        assert_true(total > 0);
    }
}

int main(int argc, char **argv)
{
    if (test_start(&argc, &argv, NULL))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on_full),
        cmocka_unit_test(test_concurrent_submitters),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
