/*
 * test_create.c: ex_create and its hooks (worker_start in every worker
 * before it returns; a failing initializer breaks the executor), argument
 * errors across the API, status names, and ex_buf.
 */
#include "util.h"

static atomic_int started_mask;

static int hook_start(unsigned index, void *arg)
{
    (void)arg;
    atomic_fetch_or(&started_mask, 1 << index);
    return 0;
}

static void test_hooks_and_broken(void **state)
{
    (void)state;
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    cfg.max_workers = 4;
    cfg.worker_start = hook_start;
    atomic_store(&started_mask, 0);
    ex_executor *ex;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    /* ex_create returns once every worker ran its hook. */
    assert_int_equal(atomic_load(&started_mask), 0xf);
    assert_int_equal(ex_workers(ex), 4);
    assert_false(ex_is_broken(ex));
    ex_destroy(ex);
    kind_list kinds = test_kinds(KINDS_LOCAL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_config_init(&cfg, kinds.kind[k]);
        cfg.max_workers = 2;
        cfg.initializer = init_fail;
        assert_int_equal(ex_create(&cfg, &ex), 0);
        assert_true(ex_is_broken(ex));
        ex_future *f = NULL;
        uint32_t v = 0;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), EX_EBROKEN);
        assert_null(f);
        ex_destroy(ex);
    }
}

static void test_errors(void **state)
{
    (void)state;
    ex_executor *ex = NULL;
    ex_config cfg;
    assert_int_equal(ex_create(NULL, &ex), EX_EINVAL);
    ex_config_init(&cfg, EX_THREADS);
    cfg.kind = (ex_kind)7;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
    ex_config_init(&cfg, EX_THREADS);
    cfg.on_full = (ex_on_full)9;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
    ex_config_init(&cfg, EX_PROCS);
    cfg.timeout_ns = -5;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
    assert_null(ex);
    ex = make(EX_THREADS, 1);
    ex_future *f;
    assert_int_equal(ex_submit(ex, NULL, NULL, 0, &f), EX_EINVAL);
    assert_int_equal(ex_submit(ex, task_empty, NULL, 5, &f), EX_EINVAL);
    assert_int_equal(ex_submit(NULL, task_empty, NULL, 0, &f), EX_EINVAL);
    assert_int_equal(ex_future_then(NULL, ex, task_empty, &f), EX_EINVAL);
    assert_int_equal(ex_future_wait(NULL, 0), EX_EINVAL);
    assert_int_equal(ex_future_cancel(NULL), EX_EINVAL);
    ex_task_stats st;
    assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
    assert_int_equal(ex_future_stats(f, &st), EX_EINVAL); /* not final yet */
    gate_open(1);
    assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
    assert_int_equal(ex_future_stats(f, &st), 0);
    ex_future_release(f);
    assert_int_equal(ex_shutdown(NULL, 1, 1), EX_EINVAL);
    ex_destroy(ex);
    ex_destroy(NULL);
    ex_future_release(NULL);
    for (int s = 0; s >= -10; s--)
        assert_true(strncmp(ex_strerror(s), "EX_", 3) == 0);
    assert_string_equal(ex_strerror(-99), "EX_E?: unknown status");
    ex_kind kind;
    assert_int_equal(ex_kind_parse("procs", &kind), 0);
    assert_int_equal(kind, EX_PROCS);
    assert_int_equal(ex_kind_parse("fibers", &kind), EX_EINVAL);
    assert_int_equal(ex_default_workers() >= 5, 1);
    assert_true(ex_default_workers() <= 32);
}

static void test_buf(void **state)
{
    (void)state;
    ex_buf b = {0};
    assert_int_equal(ex_buf_append(&b, "abc", 3), 0);
    char *p = ex_buf_extend(&b, 1000);
    assert_non_null(p);
    memset(p, 'x', 1000);
    assert_int_equal(b.len, 1003);
    assert_memory_equal(b.data, "abcx", 4);
    assert_int_equal(ex_buf_reserve(&b, SIZE_MAX), EX_ENOMEM);
    assert_int_equal(ex_buf_reserve(NULL, 1), EX_EINVAL);
    ex_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks_and_broken),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
