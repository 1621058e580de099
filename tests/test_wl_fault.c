/*
 * test_wl_fault.c: the fault-injection workload: the faults (error,
 * crash, hang) drawn per task from the seed and baked into each input,
 * their rates, the isolation they require, and each one happening as
 * drawn, run in a forked child.
 */
#include "wl_util.h"

/* ----------------------------------------------------------------- fault */

static void test_fault(void **state)
{
    (void)state;
    const char *kv[] = {"crash_rate=0.2", "hang_rate=0.2", "error_rate=0.2",
                        "latency_ms=0"};
    wl_ctx *ctx = prepare("fault", kv, 4, 200, 7);
    char why[256];
    assert_int_equal(wl_requires_isolation(wl_ctx_params(ctx), why,
                                           sizeof why),
                     1);
    assert_non_null(strstr(why, "crash_rate=0.2"));
    assert_non_null(strstr(why, "process isolation"));

    size_t count[4] = {0};
    size_t first[4] = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    for (size_t i = 0; i < 200; i++) {
        wl_fault f = wl_expected_fault(ctx, i);
        assert_true(f <= WL_FAULT_HANG);
        const void *in;
        size_t len;
        assert_int_equal(wl_input(ctx, i, &in, &len), 0);
        assert_int_equal(((const unsigned char *)in)[8], f); /* baked in */
        if (first[f] == SIZE_MAX)
            first[f] = i;
        count[f]++;
    }
    /* 40 expected of each; a seeded draw, loose bounds. */
    for (int f = 0; f < 4; f++)
        assert_true(count[f] >= 15 && count[f] <= 120);

    const void *in;
    size_t len;
    ex_buf out = {0};
    /* Success: its index.  Error: code 77, in this very process. */
    assert_int_equal(wl_input(ctx, first[WL_FAULT_NONE], &in, &len), 0);
    assert_int_equal(wl_fault_task(in, len, &out), 0);
    assert_int_equal(wl_get_le64(out.data), first[WL_FAULT_NONE]);
    assert_int_equal(wl_check(ctx, first[WL_FAULT_NONE], out.data, out.len,
                              err, sizeof err),
                     0);
    assert_int_equal(wl_check(ctx, first[WL_FAULT_ERROR], out.data, out.len,
                              err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&out);
    assert_int_equal(wl_input(ctx, first[WL_FAULT_ERROR], &in, &len), 0);
    assert_int_equal(wl_fault_task(in, len, &out), WL_FAULT_ERROR_CODE);
    ex_buf_free(&out);

    /* Crash and hang, each in a child of its own. */
    assert_int_equal(wl_input(ctx, first[WL_FAULT_CRASH], &in, &len), 0);
    int st = run_in_child(wl_fault_task, in, len, 30000);
    assert_true(st != -1 && WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_int_equal(wl_input(ctx, first[WL_FAULT_HANG], &in, &len), 0);
    assert_int_equal(run_in_child(wl_fault_task, in, len, 300), -1);
    wl_cleanup(ctx);

    /* The same seed bakes the same fates; another seed others. */
    wl_ctx *a = prepare("fault", kv, 4, 200, 7);
    wl_ctx *b = prepare("fault", kv, 4, 200, 8);
    size_t same = 0;
    for (size_t i = 0; i < 200; i++)
        same += wl_expected_fault(a, i) == wl_expected_fault(b, i);
    assert_true(same < 200);
    wl_cleanup(a);
    wl_cleanup(b);

    /* Errors only: no isolation needed; hang alone needs it. */
    const char *errors[] = {"error_rate=1", "latency_ms=0"};
    ctx = prepare("fault", errors, 2, 5, 1);
    assert_int_equal(wl_requires_isolation(wl_ctx_params(ctx), why,
                                           sizeof why),
                     0);
    assert_string_equal(why, "");
    char hex[65];
    run_all(ctx, hex); /* every task fails with 77 */
    wl_cleanup(ctx);
    const char *hang[] = {"hang_rate=0.01"};
    wl_params *p = params_of("fault", hang, 1);
    assert_int_equal(wl_requires_isolation(p, why, sizeof why), 1);
    assert_non_null(strstr(why, "timeout"));
    wl_params_destroy(p);
    p = params_of("sha256", NULL, 0);
    assert_int_equal(wl_requires_isolation(p, why, sizeof why), 0);
    wl_params_destroy(p);

    assert_int_equal(wl_fault_task("x", 1, &out), WL_CODE_EINPUT);
    unsigned char unknown[17] = {0};
    unknown[8] = 9;
    assert_int_equal(wl_fault_task(unknown, 17, &out), WL_CODE_EINPUT);
    ex_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
