/*
 * test_stats.c: harness/stats.c against values computed by hand (each
 * expected value is derived in the comment above its assertion), including
 * the agreement with numpy.percentile's default method and the exact
 * binomial coverage of the median's order-statistic interval.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "stats.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define EPS 1e-9

static void assert_near(double got, double want, double eps)
{
    if (!(fabs(got - want) <= eps)) {
        print_error("got %.12g, want %.12g (+-%g)\n", got, want, eps);
        fail();
    }
}

static void test_percentile(void **state)
{
    (void)state;
    const double x[] = {1, 2, 3, 4};
    /* h = (n-1) p/100 = 3 * 0.5 = 1.5 -> x[1] + 0.5 (x[2] - x[1]) = 2.5 */
    assert_near(pb_percentile_sorted(x, 4, 50), 2.5, EPS);
    /* h = 3 * 0.95 = 2.85 -> 3 + 0.85 * (4 - 3) = 3.85 (numpy: 3.85) */
    assert_near(pb_percentile_sorted(x, 4, 95), 3.85, EPS);
    /* h = 3 * 0.25 = 0.75 -> 1 + 0.75 = 1.75 */
    assert_near(pb_percentile_sorted(x, 4, 25), 1.75, EPS);
    /* the ends are the extremes */
    assert_near(pb_percentile_sorted(x, 4, 0), 1, EPS);
    assert_near(pb_percentile_sorted(x, 4, 100), 4, EPS);
    /* h = 3 * 0.99 = 2.97 -> 3.97 */
    assert_near(pb_percentile_sorted(x, 4, 99), 3.97, EPS);
    /* one value: every percentile is that value */
    const double one[] = {7};
    assert_near(pb_percentile_sorted(one, 1, 37), 7, EPS);
    /* {10, 20, 30, 40, 50} at 10: h = 4 * 0.1 = 0.4 -> 10 + 0.4*10 = 14 */
    const double five[] = {10, 20, 30, 40, 50};
    assert_near(pb_percentile_sorted(five, 5, 10), 14, EPS);
    /* errors */
    assert_true(isnan(pb_percentile_sorted(x, 0, 50)));
    assert_true(isnan(pb_percentile_sorted(x, 4, -1)));
    assert_true(isnan(pb_percentile_sorted(x, 4, 100.5)));
    assert_true(isnan(pb_percentile_sorted(x, 4, NAN)));
}

static void test_median_mean(void **state)
{
    (void)state;
    const double odd[] = {1, 3, 9};
    const double even[] = {1, 3, 9, 11};
    assert_near(pb_median_sorted(odd, 3), 3, EPS);
    /* (3 + 9) / 2 = 6 */
    assert_near(pb_median_sorted(even, 4), 6, EPS);
    assert_true(isnan(pb_median_sorted(odd, 0)));
    /* (1 + 3 + 9 + 11) / 4 = 6 */
    assert_near(pb_mean(even, 4), 6, EPS);
    assert_true(isnan(pb_mean(even, 0)));

    double unsorted[] = {5, -1, 3, 3, 0};
    pb_sort(unsorted, N(unsorted));
    const double want[] = {-1, 0, 3, 3, 5};
    assert_memory_equal(unsorted, want, sizeof want);
}

static void test_stddev_cv(void **state)
{
    (void)state;
    const double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
    /* mean 40/8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32;
     * sample variance 32/7 = 4.571428...; stddev sqrt(32/7) = 2.1380899... */
    assert_near(pb_stddev(x, N(x)), sqrt(32.0 / 7.0), EPS);
    assert_near(pb_stddev(x, N(x)), 2.138, 5e-4);
    /* CV = 2.1380899 / 5 = 0.42761799 */
    assert_near(pb_cv(x, N(x)), sqrt(32.0 / 7.0) / 5.0, EPS);
    const double one[] = {42};
    assert_near(pb_stddev(one, 1), 0, EPS);
    assert_near(pb_cv(one, 1), 0, EPS);
    const double zero_mean[] = {-1, 1};
    assert_near(pb_cv(zero_mean, 2), 0, EPS);
    assert_true(isnan(pb_stddev(x, 0)));
    assert_true(isnan(pb_cv(x, 0)));
    /* large offset, tiny spread: the two-pass formula keeps it exact.
     * {1e9, 1e9+2}: mean 1e9+1, ss = 2, stddev sqrt(2). */
    const double big[] = {1e9, 1e9 + 2};
    assert_near(pb_stddev(big, 2), sqrt(2.0), 1e-6);
}

static void test_median_ci(void **state)
{
    (void)state;
    size_t lo, hi;
    double p;
    /* n = 10: P(K < 2) = (C(10,0) + C(10,1)) / 1024 = 11/1024, so
     * [x(2), x(9)] covers with 1 - 22/1024 = 1002/1024 = 0.978515625 >= .95;
     * r = 3 would give 1 - 2 (1+10+45)/1024 = 912/1024 = 0.890625 < .95. */
    assert_int_equal(pb_median_ci_ranks(10, 0.95, &lo, &hi, &p), 0);
    assert_int_equal(lo, 2);
    assert_int_equal(hi, 9);
    assert_near(p, 1002.0 / 1024.0, 1e-12);

    /* n = 5: even [x(1), x(5)] covers only 1 - 2/32 = 0.9375 < .95, so the
     * interval is min/max and the achieved level is reported. */
    assert_int_equal(pb_median_ci_ranks(5, 0.95, &lo, &hi, &p), 0);
    assert_int_equal(lo, 1);
    assert_int_equal(hi, 5);
    assert_near(p, 0.9375, 1e-12);

    /* n = 6: [x(1), x(6)]: 1 - 2/64 = 0.96875 >= .95; r = 2 gives
     * 1 - 2*7/64 = 0.78125. */
    assert_int_equal(pb_median_ci_ranks(6, 0.95, &lo, &hi, &p), 0);
    assert_int_equal(lo, 1);
    assert_int_equal(hi, 6);
    assert_near(p, 0.96875, 1e-12);

    /* n = 11 (calibrate's default reps): P(K<2) = 12/2048 -> 0.98828;
     * P(K<3) = (1+11+55)/2048 = 67/2048 -> 1 - 134/2048 = 0.93457 < .95.
     * So [x(2), x(10)] at 0.98828125. */
    assert_int_equal(pb_median_ci_ranks(11, 0.95, &lo, &hi, &p), 0);
    assert_int_equal(lo, 2);
    assert_int_equal(hi, 10);
    assert_near(p, 1.0 - 24.0 / 2048.0, 1e-12);

    /* n = 1: the single value, covering with probability 0. */
    assert_int_equal(pb_median_ci_ranks(1, 0.95, &lo, &hi, &p), 0);
    assert_int_equal(lo, 1);
    assert_int_equal(hi, 1);
    assert_near(p, 0, 1e-12);

    /* n = 100: the textbook ranks are 40 and 61 (coverage 0.9648). */
    assert_int_equal(pb_median_ci_ranks(100, 0.95, &lo, &hi, &p), 0);
    assert_int_equal(lo, 40);
    assert_int_equal(hi, 61);
    assert_true(p >= 0.95 && p < 0.97);

    /* very large n: no underflow to an empty tail; the interval is about
     * n/2 -+ 1.96 sqrt(n)/2 = 500000 -+ 980. */
    assert_int_equal(pb_median_ci_ranks(1000000, 0.95, &lo, &hi, &p), 0);
    assert_true(lo > 498900 && lo < 499100);
    assert_int_equal(hi, 1000001 - lo);
    assert_true(p >= 0.95);

    assert_int_equal(pb_median_ci_ranks(0, 0.95, &lo, &hi, &p), -EINVAL);
    assert_int_equal(pb_median_ci_ranks(10, 1.0, &lo, &hi, &p), -EINVAL);
    assert_int_equal(pb_median_ci_ranks(10, 0.0, &lo, &hi, NULL), -EINVAL);
}

static void test_outliers(void **state)
{
    (void)state;
    const double x[] = {1, 2, 3, 4, 100};
    unsigned char flags[5];
    size_t count = 99;
    /* q1 = 2 (h = 1), q3 = 4 (h = 3), IQR 2, fences -1 and 7: only 100 */
    assert_int_equal(pb_outliers(x, 5, flags, &count), 0);
    const unsigned char want[] = {0, 0, 0, 0, 1};
    assert_memory_equal(flags, want, 5);
    assert_int_equal(count, 1);
    /* the input is not reordered or edited */
    assert_near(x[4], 100, 0);

    /* low outlier too: {-50, 10, 11, 12, 13}: q1 = 10, q3 = 12, fences 7
     * and 15 -> only -50 */
    const double y[] = {12, -50, 10, 13, 11};
    assert_int_equal(pb_outliers(y, 5, flags, &count), 0);
    const unsigned char want_y[] = {0, 1, 0, 0, 0};
    assert_memory_equal(flags, want_y, 5);
    assert_int_equal(count, 1);

    /* all equal: IQR 0, nothing outside [v, v] */
    const double z[] = {3, 3, 3};
    assert_int_equal(pb_outliers(z, 3, NULL, &count), 0);
    assert_int_equal(count, 0);

    const double bad[] = {1, NAN};
    assert_int_equal(pb_outliers(bad, 2, flags, &count), -EINVAL);
    assert_int_equal(pb_outliers(x, 0, flags, &count), -EINVAL);
}

static void test_summary(void **state)
{
    (void)state;
    /* 1..10 shuffled, plus nothing else: n = 10 */
    const double x[] = {7, 3, 10, 1, 5, 9, 2, 8, 4, 6};
    pb_summary s;
    assert_int_equal(pb_summarize(x, N(x), &s), 0);
    assert_int_equal(s.n, 10);
    assert_near(s.mean, 5.5, EPS);
    assert_near(s.median, 5.5, EPS);
    assert_near(s.p50, 5.5, EPS);
    /* p95: h = 9 * .95 = 8.55 -> 9 + .55 = 9.55; p99: 8.91 -> 9.91;
     * p5: 0.45 -> 1.45 */
    assert_near(s.p95, 9.55, EPS);
    assert_near(s.p99, 9.91, EPS);
    assert_near(s.p5, 1.45, EPS);
    /* q1: h = 2.25 -> 3.25; q3: h = 6.75 -> 7.75 */
    assert_near(s.q1, 3.25, EPS);
    assert_near(s.q3, 7.75, EPS);
    assert_near(s.min, 1, EPS);
    assert_near(s.max, 10, EPS);
    /* ranks 2 and 9 -> values 2 and 9 */
    assert_near(s.ci_low, 2, EPS);
    assert_near(s.ci_high, 9, EPS);
    assert_near(s.ci_level, 1002.0 / 1024.0, 1e-12);
    /* sum of (i - 5.5)^2 for 1..10 = 82.5; / 9 = 9.1667; sqrt = 3.02765 */
    assert_near(s.stddev, sqrt(82.5 / 9.0), EPS);
    assert_near(s.cv, sqrt(82.5 / 9.0) / 5.5, EPS);
    assert_int_equal(s.noutliers, 0);
    /* the input is untouched */
    assert_near(x[0], 7, 0);

    const double y[] = {1, 2, 3, 4, 100};
    assert_int_equal(pb_summarize(y, N(y), &s), 0);
    assert_int_equal(s.noutliers, 1);
    assert_near(s.median, 3, EPS);
    assert_near(s.ci_low, 1, EPS); /* n = 5: min/max at 93.75% */
    assert_near(s.ci_high, 100, EPS);
    assert_near(s.ci_level, 0.9375, 1e-12);

    const double bad[] = {1, NAN, 3};
    assert_int_equal(pb_summarize(bad, 3, &s), -EINVAL);
    assert_int_equal(pb_summarize(x, 0, &s), -EINVAL);
}

static void test_spread_warning(void **state)
{
    (void)state;
    char buf[256];
    /* 100 +- 1: CV ~1%, tight interval -> no warning */
    double tight[11];
    for (int i = 0; i < 11; i++)
        tight[i] = 99.0 + 0.2 * i;
    pb_summary s;
    assert_int_equal(pb_summarize(tight, 11, &s), 0);
    assert_int_equal(pb_spread_warning(&s, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "");

    /* 50, 60, ..., 150: CV = stddev(33.17)/100 > 10%, interval
     * [60, 140] is +-40% -> both reasons */
    double wide[11];
    for (int i = 0; i < 11; i++)
        wide[i] = 50.0 + 10.0 * i;
    assert_int_equal(pb_summarize(wide, 11, &s), 0);
    assert_int_equal(pb_spread_warning(&s, 0, buf, sizeof buf), 1);
    assert_non_null(strstr(buf, "spread too wide"));
    assert_non_null(strstr(buf, "CV 33.2% > 10%"));
    assert_non_null(strstr(buf, "+-40.0%"));
    /* a looser CV threshold leaves only the interval reason */
    assert_int_equal(pb_spread_warning(&s, 0.5, buf, sizeof buf), 1);
    assert_null(strstr(buf, "CV"));
    assert_non_null(strstr(buf, "interval"));
    /* no buffer: only the verdict */
    assert_int_equal(pb_spread_warning(&s, 0, NULL, 0), 1);
    /* a tiny buffer is truncated, still terminated */
    char small[8];
    assert_int_equal(pb_spread_warning(&s, 0, small, sizeof small), 1);
    assert_int_equal(strlen(small), sizeof small - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile),
        cmocka_unit_test(test_median_mean),
        cmocka_unit_test(test_stddev_cv),
        cmocka_unit_test(test_median_ci),
        cmocka_unit_test(test_outliers),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_spread_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
