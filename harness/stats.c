/*
 * stats.c - percentiles, median and its interval, spread, outliers.
 *
 * See stats.h for the definitions. Everything works on doubles and makes
 * no assumption about the distribution: timings on a shared machine are
 * skewed and multi-modal, so the median with an order-statistic interval is
 * the headline number and the mean / stddev are there for the CV only.
 */
#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void pb_sort(double *x, size_t n)
{
    if (n > 1)
        qsort(x, n, sizeof *x, cmp_double);
}

static int has_nan(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]))
            return 1;
    return 0;
}

double pb_percentile_sorted(const double *sorted, size_t n, double p)
{
    if (n == 0 || !(p >= 0.0 && p <= 100.0))
        return NAN;
    double h = (double)(n - 1) * p / 100.0;
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = h - (double)lo;
    /* a + f (b - a) rather than (1 - f) a + f b: exact when a == b. */
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

double pb_median_sorted(const double *sorted, size_t n)
{
    if (n == 0)
        return NAN;
    if (n % 2)
        return sorted[n / 2];
    return sorted[n / 2 - 1] + (sorted[n / 2] - sorted[n / 2 - 1]) / 2.0;
}

double pb_mean(const double *x, size_t n)
{
    if (n == 0)
        return NAN;
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

double pb_stddev(const double *x, size_t n)
{
    if (n == 0)
        return NAN;
    if (n == 1)
        return 0.0;
    /* Two passes: the one-pass sum-of-squares formula cancels badly when
     * the spread is tiny compared to the values (ns timings ~1e9). */
    double m = pb_mean(x, n), ss = 0.0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - m) * (x[i] - m);
    return sqrt(ss / (double)(n - 1));
}

double pb_cv(const double *x, size_t n)
{
    if (n == 0)
        return NAN;
    double m = pb_mean(x, n);
    if (m == 0.0)
        return 0.0;
    return pb_stddev(x, n) / fabs(m);
}

int pb_median_ci_ranks(size_t n, double level, size_t *lo, size_t *hi,
                       double *achieved)
{
    if (n == 0 || !(level > 0.0 && level < 1.0))
        return -EINVAL;
    /* K = number of values below the median ~ Binomial(n, 1/2), so
     * [x(r), x(n+1-r)] misses the median with probability 2 P(K < r).
     * pmf(i) is built in log space: 2^-n underflows from n = 1075 on. */
    const double dn = (double)n;
    double logpmf = -dn * log(2.0); /* log pmf(0) */
    double tail = exp(logpmf);      /* P(K < r) for the current r */
    size_t r = 1;
    size_t rmax = (n + 1) / 2; /* keeps r <= n + 1 - r */
    while (r < rmax) {
        /* pmf(r) = pmf(r - 1) * (n - r + 1) / r */
        double next_logpmf = logpmf + log((dn - (double)r + 1.0) / (double)r);
        double next_tail = tail + exp(next_logpmf);
        if (1.0 - 2.0 * next_tail < level)
            break;
        logpmf = next_logpmf;
        tail = next_tail;
        r++;
    }
    double p = 1.0 - 2.0 * tail;
    if (p < 0.0)
        p = 0.0; /* n == 1: [x(1), x(1)] covers the median with probability 0 */
    *lo = r;
    *hi = n + 1 - r;
    if (achieved)
        *achieved = p;
    return 0;
}

/* Fences from an already sorted copy. */
static void tukey_fences(const double *sorted, size_t n, double *lo_fence,
                         double *hi_fence)
{
    double q1 = pb_percentile_sorted(sorted, n, 25.0);
    double q3 = pb_percentile_sorted(sorted, n, 75.0);
    double iqr = q3 - q1;
    *lo_fence = q1 - 1.5 * iqr;
    *hi_fence = q3 + 1.5 * iqr;
}

/* A sorted copy of x (caller frees): 0, -EINVAL (empty, a NaN) or -ENOMEM. */
static int sorted_copy(const double *x, size_t n, double **out)
{
    if (n == 0 || has_nan(x, n))
        return -EINVAL;
    double *s = malloc(n * sizeof *s);
    if (!s)
        return -ENOMEM;
    memcpy(s, x, n * sizeof *s);
    pb_sort(s, n);
    *out = s;
    return 0;
}

int pb_outliers(const double *x, size_t n, unsigned char *flags,
                size_t *count)
{
    double *s;
    int rc = sorted_copy(x, n, &s);
    if (rc)
        return rc;
    double lo, hi;
    tukey_fences(s, n, &lo, &hi);
    free(s);
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        int out = x[i] < lo || x[i] > hi;
        if (flags)
            flags[i] = (unsigned char)out;
        c += (size_t)out;
    }
    if (count)
        *count = c;
    return 0;
}

int pb_summarize(const double *x, size_t n, pb_summary *out)
{
    double *s;
    int rc = sorted_copy(x, n, &s);
    if (rc)
        return rc;

    pb_summary r;
    memset(&r, 0, sizeof r);
    r.n = n;
    r.mean = pb_mean(s, n);
    r.stddev = pb_stddev(s, n);
    r.cv = r.mean == 0.0 ? 0.0 : r.stddev / fabs(r.mean);
    r.min = s[0];
    r.max = s[n - 1];
    r.median = pb_median_sorted(s, n);
    r.p5 = pb_percentile_sorted(s, n, 5.0);
    r.p50 = pb_percentile_sorted(s, n, 50.0);
    r.p95 = pb_percentile_sorted(s, n, 95.0);
    r.p99 = pb_percentile_sorted(s, n, 99.0);
    r.q1 = pb_percentile_sorted(s, n, 25.0);
    r.q3 = pb_percentile_sorted(s, n, 75.0);

    size_t lo, hi;
    rc = pb_median_ci_ranks(n, 0.95, &lo, &hi, &r.ci_level);
    if (rc == 0) {
        r.ci_low = s[lo - 1];
        r.ci_high = s[hi - 1];
    }
    double lo_fence, hi_fence;
    tukey_fences(s, n, &lo_fence, &hi_fence);
    for (size_t i = 0; i < n; i++)
        r.noutliers += s[i] < lo_fence || s[i] > hi_fence;
    free(s);
    if (rc != 0)
        return rc;
    *out = r;
    return 0;
}

int pb_spread_warning(const pb_summary *s, double cv_max, char *buf,
                      size_t len)
{
    if (cv_max <= 0.0)
        cv_max = PB_SPREAD_CV_MAX;
    int too_wide = 0;
    size_t used = 0;
    char tmp[256];
    tmp[0] = 0;

    if (s->cv > cv_max) {
        too_wide = 1;
        used += (size_t)snprintf(tmp + used, sizeof tmp - used,
                                 "CV %.1f%% > %.0f%%", 100.0 * s->cv,
                                 100.0 * cv_max);
    }
    double half = (s->ci_high - s->ci_low) / 2.0;
    if (s->median != 0.0 && half / fabs(s->median) > PB_SPREAD_CI_HALF_MAX) {
        too_wide = 1;
        if (used < sizeof tmp)
            used += (size_t)snprintf(
                tmp + used, sizeof tmp - used,
                "%s%.3g%% interval for the median is +-%.1f%% > +-%.0f%%",
                used ? "; " : "", 100.0 * s->ci_level,
                100.0 * half / fabs(s->median), 100.0 * PB_SPREAD_CI_HALF_MAX);
    }
    if (len == 0)
        return too_wide;
    if (too_wide)
        snprintf(buf, len, "spread too wide (n=%zu): %s", s->n, tmp);
    else
        buf[0] = 0;
    return too_wide;
}
