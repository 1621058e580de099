/*
 * test_callbacks.c: completion callbacks (in the order added, at once when
 * already done), then-chains (results, failures and cancellation
 * propagate), and callbacks that re-enter their executor (submit to a full
 * BLOCK queue, shutdown(wait) from the pool's own thread), on every
 * backend, mpi too where it can run (test_kinds).  Callbacks run in this
 * process whatever the backend (mpi: in the worker's proxy thread).
 */
#include "util.h"

static int task_fail7(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    return 7;
}

typedef struct cb_log {
    pthread_mutex_t lock;
    int order[8];
    int n;
} cb_log;

static cb_log cblog = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void cb_record(ex_future *f, void *arg)
{
    (void)f;
    pthread_mutex_lock(&cblog.lock);
    cblog.order[cblog.n++] = (int)(intptr_t)arg;
    pthread_mutex_unlock(&cblog.lock);
}

static void test_callbacks(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        cblog.n = 0;
        ex_executor *ex = make(kinds.kind[k], 1);
        ex_future *f;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
        for (intptr_t i = 1; i <= 3; i++)
            assert_int_equal(ex_future_on_done(f, cb_record, (void *)i), 0);
        /* Under the log's lock: to a race detector, nothing else orders
         * this read before the callbacks (the gate is a pipe to another
         * process for procs). */
        pthread_mutex_lock(&cblog.lock);
        int before = cblog.n;
        pthread_mutex_unlock(&cblog.lock);
        assert_int_equal(before, 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
        /* Callbacks run after waiters are woken: wait for the third. */
        for (int i = 0; i < 10000; i++) {
            pthread_mutex_lock(&cblog.lock);
            int n = cblog.n;
            pthread_mutex_unlock(&cblog.lock);
            if (n == 3)
                break;
            sleep_ms(1);
        }
        /* The completer sets n = 3 inside the third callback; until it has
         * left its callback loop, a new callback is appended to that loop
         * (still in order) rather than run here.  Wait for it to leave. */
        for (int i = 0; i < 10000; i++) {
            if (!ex__future_callbacks_running(f))
                break;
            sleep_ms(1);
        }
        /* Added after completion: runs at once, in this thread, last. */
        assert_int_equal(ex_future_on_done(f, cb_record, (void *)4), 0);
        pthread_mutex_lock(&cblog.lock);
        assert_int_equal(cblog.n, 4);
        for (int i = 0; i < 4; i++)
            assert_int_equal(cblog.order[i], i + 1);
        pthread_mutex_unlock(&cblog.lock);
        ex_future_release(f);
        ex_destroy(ex);
    }
    /* seq: done inside submit, so a callback runs immediately. */
    cblog.n = 0;
    ex_executor *ex = make(EX_SEQ, 1);
    uint32_t v = 3;
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), 0);
    assert_int_equal(ex_future_on_done(f, cb_record, (void *)9), 0);
    assert_int_equal(cblog.n, 1);
    assert_int_equal(cblog.order[0], 9);
    assert_int_equal(ex_future_on_done(f, NULL, NULL), EX_EINVAL);
    ex_future_release(f);
    ex_destroy(ex);
}

static void test_then(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_ALL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make(kinds.kind[k], 2);
        uint32_t v = 3;
        ex_future *a, *b, *c;
        /* Success: ((3*2+1)*2+1)*2+1 = 31 */
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &a), 0);
        assert_int_equal(ex_future_then(a, ex, task_double, &b), 0);
        assert_int_equal(ex_future_then(b, ex, task_double, &c), 0);
        assert_int_equal(u32_of(c), 31);
        assert_int_equal(u32_of(b), 15);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        /* A failure in the middle propagates with its code. */
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &a), 0);
        assert_int_equal(ex_future_then(a, ex, task_fail7, &b), 0);
        assert_int_equal(ex_future_then(b, ex, task_double, &c), 0);
        assert_int_equal(ex_future_result(c, NULL, NULL, EX_FOREVER), EX_ETASK);
        assert_int_equal(ex_future_state(c), EX_FAILED);
        assert_int_equal(ex_future_task_code(c), 7);
        assert_int_equal(ex_future_task_code(b), 7);
        assert_int_equal(ex_future_state(a), EX_DONE);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        ex_destroy(ex);
    }
    /* Cancellation propagates along the chain. */
    kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make_unpipelined(kinds.kind[k], 1);
        ex_future *g, *a, *b, *c;
        uint32_t v = 1;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &g), 0);
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &a), 0);
        assert_int_equal(ex_future_then(a, ex, task_double, &b), 0);
        assert_int_equal(ex_future_then(b, ex, task_double, &c), 0);
        assert_int_equal(ex_future_cancel(a), 0);
        assert_int_equal(ex_future_state(b), EX_CANCELLED);
        assert_int_equal(ex_future_state(c), EX_CANCELLED);
        assert_int_equal(ex_future_result(c, NULL, NULL, 0), EX_ECANCELLED);
        gate_open(1);
        ex_future_release(g);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        ex_destroy(ex);
    }
}

typedef struct reentry {
    ex_executor *ex;
    ex_future *submitted;          /* published by the store to submit_rc */
    atomic_int submit_rc, shutdown_rc;
} reentry;

static void cb_submit_again(ex_future *f, void *arg)
{
    (void)f;
    reentry *r = arg;
    static uint32_t v = 20;
    int rc = ex_submit(r->ex, task_double, &v, sizeof v, &r->submitted);
    atomic_store(&r->submit_rc, rc);
}

static void cb_shutdown_wait(ex_future *f, void *arg)
{
    (void)f;
    reentry *r = arg;
    atomic_store(&r->shutdown_rc, ex_shutdown(r->ex, 1, 0));
}

/* Callbacks run on a worker (threads), the dispatcher (procs) or a proxy
 * thread (mpi): submitting to the same full BLOCK queue must not wait
 * forever, and shutdown(wait) from there cannot join itself. */
static void test_callback_reentry(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_POOLS);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_config cfg;
        ex_config_init(&cfg, kinds.kind[k]);
        cfg.max_workers = 1;
        cfg.queue_capacity = 1;
        cfg.on_full = EX_ON_FULL_BLOCK;
        ex_executor *ex;
        assert_int_equal(ex_create(&cfg, &ex), 0);
        ex_future *a, *b;
        uint32_t v = 1;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &a), 0);
        wait_running(a);
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &b), 0); /* full now */
        reentry r = {.ex = ex};
        atomic_init(&r.submit_rc, 99);
        atomic_init(&r.shutdown_rc, 99);
        assert_int_equal(ex_future_on_done(a, cb_submit_again, &r), 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(b, EX_FOREVER), 0);
        for (int i = 0; i < 10000 && atomic_load(&r.submit_rc) == 99; i++)
            sleep_ms(1);
        assert_int_equal(atomic_load(&r.submit_rc), 0);
        assert_int_equal(u32_of(r.submitted), 41);
        ex_future_release(r.submitted);
        /* shutdown(wait=1) from a callback: EX_EINVAL, the pool still stops. */
        ex_future *c;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &c), 0);
        wait_running(c);
        assert_int_equal(ex_future_on_done(c, cb_shutdown_wait, &r), 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(c, EX_FOREVER), 0);
        for (int i = 0; i < 10000 && atomic_load(&r.shutdown_rc) == 99; i++)
            sleep_ms(1);
        assert_int_equal(atomic_load(&r.shutdown_rc), EX_EINVAL);
        ex_future *late;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &late), EX_ESHUTDOWN);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        ex_destroy(ex);
    }
}

static void register_tasks(void)
{
    ex_task_register("test_callbacks.fail7", task_fail7);
}

int main(int argc, char **argv)
{
    if (test_start(&argc, &argv, register_tasks))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks),
        cmocka_unit_test(test_then),
        cmocka_unit_test(test_callback_reentry),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
