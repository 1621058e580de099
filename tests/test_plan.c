/*
 * test_plan.c: harness/plan.c, the run-length rule and the shuffled order,
 * against values worked out by hand in the comment above each assertion,
 * and the generator against splitmix64's published first outputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "plan.h"

#include <string.h>

static void test_rounds(void **state)
{
    (void)state;
    /* 400 tasks on 64 workers: 6 full rounds (384) and a partial 7th */
    assert_int_equal(pb_rounds(400, 64), 7);
    assert_int_equal(pb_rounds(384, 64), 6);
    assert_int_equal(pb_rounds(0, 4), 0);
    assert_int_equal(pb_rounds(1, 4), 1);
    /* no workers: every task is a round of its own */
    assert_int_equal(pb_rounds(5, 0), 5);
}

static void test_floor(void **state)
{
    (void)state;
    pb_rule r = {10, 0.2};
    /* 10 rounds of 64 workers = 640 > 5 */
    assert_int_equal(pb_rule_floor(&r, 5, 64), 640);
    /* the -n floor wins when it is larger */
    assert_int_equal(pb_rule_floor(&r, 1000, 64), 1000);
    pb_rule none = {0, 0};
    assert_int_equal(pb_rule_floor(&none, 7, 64), 7);
    /* 100000 rounds x 4096 workers = 409.6M: capped */
    pb_rule huge = {100000, 0};
    assert_int_equal(pb_rule_floor(&huge, 1, 4096), PB_MAX_TASKS);
    assert_int_equal(pb_rule_floor(&none, PB_MAX_TASKS + 5, 1), PB_MAX_TASKS);
}

static void test_rescale(void **state)
{
    (void)state;
    pb_rule r = {10, 0.2};
    /* 640 tasks in 0.05 s: x 1.1 x 0.2 / 0.05 = x 4.4 -> 2816 = 44 rounds of 64 */
    assert_int_equal(pb_rule_rescale(&r, 640, 64, 0.05), 2816);
    /* 0.19 s: x 1.1 x 0.2 / 0.19 = x 1.158 -> 742, up to whole rounds: 12 x 64 = 768 */
    assert_int_equal(pb_rule_rescale(&r, 640, 64, 0.19), 768);
    /* a pilot of no time grows 100x at most: 64000 */
    assert_int_equal(pb_rule_rescale(&r, 640, 64, 0), 64000);
    assert_int_equal(pb_rule_rescale(&r, 640, 64, 1e-9), 64000);
    /* 10 tasks on 3 workers in 0.1 s: x 2.2 -> 22 -> 8 rounds of 3 = 24 */
    assert_int_equal(pb_rule_rescale(&r, 10, 3, 0.1), 24);
    /* at least one round more, even when the pilot was nearly long enough:
     * 100 tasks in 0.2199 s on 1 worker: x 1.0005 -> 101 */
    assert_int_equal(pb_rule_rescale(&r, 100, 1, 0.2199), 101);
    /* never above the cap */
    assert_int_equal(pb_rule_rescale(&r, PB_MAX_TASKS - 1, 1, 0.1), PB_MAX_TASKS);
}

static void test_met(void **state)
{
    (void)state;
    pb_rule r = {10, 0.2};
    assert_true(pb_rule_met(&r, 640, 64, 0.2));
    assert_false(pb_rule_met(&r, 640, 64, 0.199));
    /* 639 tasks are still 10 rounds (the last one partial) */
    assert_true(pb_rule_met(&r, 639, 64, 0.3));
    /* 576 = 9 rounds */
    assert_false(pb_rule_met(&r, 576, 64, 0.3));
    pb_rule none = {0, 0};
    assert_true(pb_rule_met(&none, 1, 64, 0));
}

static void test_rng(void **state)
{
    (void)state;
    /* splitmix64 from state 0: its published first three outputs */
    uint64_t s = 0;
    assert_true(pb_rng_next(&s) == 0xe220a8397b1dcdafull);
    assert_true(pb_rng_next(&s) == 0x6e789e6aa1b965f4ull);
    assert_true(pb_rng_next(&s) == 0x06c45d188009454full);
}

static void test_shuffle(void **state)
{
    (void)state;
    enum { N = 20 };
    size_t a[N], b[N], c[N];
    for (size_t i = 0; i < N; i++)
        a[i] = b[i] = c[i] = i;
    uint64_t s1 = 42, s2 = 42, s3 = 43;
    pb_shuffle(a, N, &s1);
    pb_shuffle(b, N, &s2);
    pb_shuffle(c, N, &s3);
    /* the same seed gives the same order */
    assert_memory_equal(a, b, sizeof a);
    /* another seed another order (equal with probability 1 / 20!) */
    assert_true(memcmp(a, c, sizeof a) != 0);
    /* a permutation: every index once */
    unsigned seen[N] = {0};
    for (size_t i = 0; i < N; i++)
        seen[a[i]]++;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    /* not the identity (probability 1 / 20!) */
    size_t fixed = 0;
    for (size_t i = 0; i < N; i++)
        fixed += a[i] == i;
    assert_true(fixed < N);
    /* the state moved on: the next round is shuffled differently */
    pb_shuffle(b, N, &s2);
    assert_true(memcmp(a, b, sizeof a) != 0);
    /* 0 and 1 elements: nothing to do */
    size_t one = 7;
    pb_shuffle(&one, 1, &s3);
    assert_int_equal(one, 7);
    pb_shuffle(NULL, 0, &s3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounds),  cmocka_unit_test(test_floor),
        cmocka_unit_test(test_rescale), cmocka_unit_test(test_met),
        cmocka_unit_test(test_rng),     cmocka_unit_test(test_shuffle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
