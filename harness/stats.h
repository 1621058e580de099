/*
 * stats.h - the statistics behind every number poolbench reports.
 *
 * Pure functions over arrays of doubles (one value per repetition, or one
 * latency per task): percentiles, median, mean, sample standard deviation,
 * coefficient of variation, a distribution-free 95% confidence interval for
 * the median, and Tukey outlier flags. Outliers are flagged and counted,
 * never dropped: a noisy machine should show as a wide interval, not be
 * edited away. pb_summarize() fills a pb_summary in one call; sweep, report
 * and calibrate all use it so that every median in the output means the
 * same thing.
 *
 * Conventions: no function here allocates except pb_summarize() (one sorted
 * copy of its input) and none blocks. Functions that can fail return 0 or a
 * negative errno (-EINVAL for an empty or NaN-containing input, -ENOMEM).
 */
#ifndef PB_STATS_H
#define PB_STATS_H

#include <stddef.h>

/* Defaults of pb_spread_warning(): a coefficient of variation above 10%, or
 * a 95% CI for the median wider than +-5% of the median, is "too wide". */
#define PB_SPREAD_CV_MAX 0.10
#define PB_SPREAD_CI_HALF_MAX 0.05

/* Everything reported about one set of values. */
typedef struct pb_summary {
    size_t n;
    double mean;
    double median;
    double ci_low, ci_high; /* distribution-free interval for the median */
    double ci_level;        /* its achieved confidence (0..1), >= 0.95 when
                               n >= 6; below that it is [min, max] and less */
    double stddev;          /* sample (n - 1); 0 when n == 1 */
    double cv;              /* stddev / |mean|; 0 when mean == 0 */
    double min, max;
    double p5, p50, p95, p99;
    double q1, q3;          /* 25th and 75th percentiles (Tukey's fences) */
    size_t noutliers;       /* values outside [q1 - 1.5 IQR, q3 + 1.5 IQR] */
} pb_summary;

/* The p-th percentile (0 <= p <= 100) of n values sorted ascending, by
 * linear interpolation between closest ranks: with h = (n - 1) p / 100, the
 * value sorted[floor(h)] + (h - floor(h)) * (sorted[floor(h) + 1] -
 * sorted[floor(h)]). This is numpy.percentile's default ("linear") method.
 * Returns NAN if n == 0 or p is outside [0, 100]. Does not block. */
double pb_percentile_sorted(const double *sorted, size_t n, double p);

/* The median of n sorted values (the middle one, or the mean of the two
 * middle ones). NAN if n == 0. Does not block. */
double pb_median_sorted(const double *sorted, size_t n);

/* Arithmetic mean; NAN if n == 0. Does not block. */
double pb_mean(const double *x, size_t n);

/* Sample standard deviation (divides by n - 1); 0 if n == 1, NAN if n == 0.
 * Does not block. */
double pb_stddev(const double *x, size_t n);

/* Coefficient of variation: sample stddev / |mean|. 0 if the mean is 0 or
 * n == 1; NAN if n == 0. Does not block. */
double pb_cv(const double *x, size_t n);

/* Sorts x in place, ascending (NaNs are not allowed). Does not block. */
void pb_sort(double *x, size_t n);

/* The distribution-free confidence interval for the median of n values:
 * the 1-based order statistics *lo and *hi = n + 1 - *lo, with *lo as large
 * as possible such that the interval [x(lo), x(hi)] covers the median with
 * probability >= level, that probability being
 *     P = sum_{i = lo}^{hi - 1} C(n, i) / 2^n
 * (the number of values below the median is Binomial(n, 1/2)). When even
 * [x(1), x(n)] falls short of level (n <= 5 for 95%), returns lo = 1,
 * hi = n. *achieved (may be NULL) gets P. Returns 0, or -EINVAL if n == 0
 * or level is not in (0, 1). Does not block. */
int pb_median_ci_ranks(size_t n, double level, size_t *lo, size_t *hi,
                       double *achieved);

/* Tukey outlier flags: flags[i] = 1 when x[i] < q1 - 1.5 IQR or
 * x[i] > q3 + 1.5 IQR (q1, q3 as pb_percentile_sorted at 25 and 75), else
 * 0. x is not reordered and nothing is removed. *count (may be NULL) gets
 * the number flagged. Returns 0, -EINVAL (n == 0, a NaN) or -ENOMEM.
 * Does not block. */
int pb_outliers(const double *x, size_t n, unsigned char *flags,
                size_t *count);

/* Fills *out from n values (unsorted; x is not modified), with the median's
 * interval at 95%. Returns 0, -EINVAL (n == 0 or a NaN in x) or -ENOMEM.
 * Does not block. */
int pb_summarize(const double *x, size_t n, pb_summary *out);

/* The "spread too wide" check: true when s->cv > cv_max (<= 0 means
 * PB_SPREAD_CV_MAX) or the median's interval half-width exceeds
 * PB_SPREAD_CI_HALF_MAX of the median. Returns 1 and writes one line of
 * warning text (no newline) into buf, or 0 and writes "". buf may be NULL
 * when len is 0. Does not block. */
int pb_spread_warning(const pb_summary *s, double cv_max, char *buf,
                      size_t len);

#endif /* PB_STATS_H */
