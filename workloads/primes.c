/*
 * primes.c: the `primes` workload (cpu).  Task i counts the primes in
 * [start + i*span, start + (i+1)*span) with a segmented sieve of
 * Eratosthenes: the base primes up to sqrt(hi) are sieved first, then the
 * range in cache-sized segments, so memory stays small whatever the span.
 */
#include "wl_internal.h"

#include <stdlib.h>

/* Largest hi accepted: sqrt is ~3.2e6, so the base sieve stays a few MB. */
#define PRIMES_MAX_HI 10000000000000ULL /* 1e13 */
#define SEGMENT 32768
/* Every gap between consecutive primes below 2^64 is under 1550, so a
 * range longer than this that starts at 2 or later holds a prime. */
#define MAX_PRIME_GAP 1550

static const wl_param_spec primes_params[] = {
    {.name = "span", .type = WL_PARAM_INT, .def_int = 2000000, .min_int = 1,
     .max_int = 10000000000LL, .help = "numbers sieved per task"},
    {.name = "start", .type = WL_PARAM_INT, .def_int = 0, .min_int = 0,
     .max_int = 1000000000000LL, .help = "first number of task 0's range"},
};

static uint64_t isqrt64(uint64_t n)
{
    uint64_t r = 0;
    for (uint64_t bit = 1ULL << 62; bit; bit >>= 2) {
        if (n >= r + bit) {
            n -= r + bit;
            r = (r >> 1) + bit;
        } else
            r >>= 1;
    }
    return r;
}

/* Primes <= limit into a fresh array; NULL on ENOMEM. */
static uint32_t *base_primes(uint32_t limit, size_t *count)
{
    unsigned char *composite = calloc((size_t)limit + 1, 1);
    /* pi(x) < 1.26 x / ln x; limit/2 + 2 is a simpler safe bound. */
    uint32_t *primes = malloc(((size_t)limit / 2 + 2) * sizeof *primes);
    if (!composite || !primes) {
        free(composite);
        free(primes);
        return NULL;
    }
    size_t n = 0;
    for (uint64_t p = 2; p <= limit; p++) {
        if (composite[p])
            continue;
        primes[n++] = (uint32_t)p;
        for (uint64_t m = p * p; m <= limit; m += p)
            composite[m] = 1;
    }
    free(composite);
    *count = n;
    return primes;
}

static int count_primes(uint64_t lo, uint64_t hi, uint64_t *count)
{
    *count = 0;
    if (lo < 2)
        lo = 2;
    if (hi <= lo)
        return 0;
    uint32_t root = (uint32_t)isqrt64(hi - 1);
    size_t nprimes;
    uint32_t *primes = base_primes(root, &nprimes);
    unsigned char *seg = malloc(SEGMENT);
    if (!primes || !seg) {
        free(primes);
        free(seg);
        return WL_CODE_ENOMEM;
    }
    uint64_t total = 0;
    for (uint64_t seg_lo = lo; seg_lo < hi; seg_lo += SEGMENT) {
        uint64_t seg_hi = hi - seg_lo > SEGMENT ? seg_lo + SEGMENT : hi;
        size_t n = (size_t)(seg_hi - seg_lo);
        memset(seg, 1, n);
        for (size_t k = 0; k < nprimes; k++) {
            uint64_t p = primes[k];
            if (p * p >= seg_hi)
                break;
            uint64_t first = (seg_lo + p - 1) / p * p;
            if (first < p * p)
                first = p * p;
            for (uint64_t m = first; m < seg_hi; m += p)
                seg[m - seg_lo] = 0;
        }
        for (size_t j = 0; j < n; j++)
            total += seg[j];
    }
    free(primes);
    free(seg);
    *count = total;
    return 0;
}

int wl_primes_encode(ex_buf *in, uint64_t lo, uint64_t hi)
{
    unsigned char *p = ex_buf_extend(in, 16);
    if (!p)
        return EX_ENOMEM;
    wl_put_le64(p, lo);
    wl_put_le64(p + 8, hi);
    return 0;
}

int wl_primes_task(const void *in, size_t len, ex_buf *out)
{
    if (len != 16)
        return WL_CODE_EINPUT;
    uint64_t lo = wl_get_le64(in), hi = wl_get_le64((const unsigned char *)in + 8);
    if (hi < lo || hi > PRIMES_MAX_HI)
        return WL_CODE_EINPUT;
    uint64_t count;
    int rc = count_primes(lo, hi, &count);
    if (rc)
        return rc;
    unsigned char *p = ex_buf_extend(out, 8);
    if (!p)
        return WL_CODE_ENOMEM;
    wl_put_le64(p, count);
    return 0;
}

static void task_range(const wl_ctx *ctx, size_t i, uint64_t *lo, uint64_t *hi)
{
    uint64_t span = (uint64_t)wl_params_int(ctx->params, "span");
    *lo = (uint64_t)wl_params_int(ctx->params, "start") + (uint64_t)i * span;
    *hi = *lo + span;
}

static int primes_setup(wl_ctx *ctx, char *err, size_t errlen)
{
    uint64_t span = (uint64_t)wl_params_int(ctx->params, "span");
    uint64_t start = (uint64_t)wl_params_int(ctx->params, "start");
    /* span <= 1e10 and start <= 1e12, so only ntasks can overflow. */
    if (ctx->ntasks && (ctx->ntasks > (PRIMES_MAX_HI - start) / span))
        return wl_errf(err, errlen,
                       "workload 'primes': start + ntasks*span must be at "
                       "most %llu (start=%llu, span=%llu, ntasks=%zu)",
                       (unsigned long long)PRIMES_MAX_HI,
                       (unsigned long long)start, (unsigned long long)span,
                       ctx->ntasks);
    return 0;
}

static int primes_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    uint64_t lo, hi;
    task_range(ctx, i, &lo, &hi);
    return wl_primes_encode(in, lo, hi);
}

static int primes_check(const wl_ctx *ctx, size_t i, const void *out,
                        size_t len, char *err, size_t errlen)
{
    if (len != 8)
        return wl_errf(err, errlen, "primes: task %zu: output is %zu bytes, "
                       "expected 8", i, len);
    uint64_t lo, hi, count = wl_get_le64(out);
    task_range(ctx, i, &lo, &hi);
    uint64_t from = lo < 2 ? 2 : lo;
    uint64_t n = hi > from ? hi - from : 0;
    /* At most every other number (plus 2) is prime; long ranges hold one. */
    if (count > n / 2 + 1 || (n > MAX_PRIME_GAP && count == 0))
        return wl_errf(err, errlen,
                       "primes: task %zu: %llu primes in [%llu, %llu) is "
                       "impossible", i, (unsigned long long)count,
                       (unsigned long long)lo, (unsigned long long)hi);
    return 0;
}

static const struct wl_ops primes_ops = {
    .setup = primes_setup,
    .build = primes_build,
    .stages = {wl_primes_task, NULL},
    .check = primes_check,
};

const wl_workload wl_primes_workload = {
    .name = "primes",
    .kind = WL_CPU,
    .help = "count the primes in a range per task (segmented sieve)",
    .params = primes_params,
    .nparams = sizeof primes_params / sizeof primes_params[0],
    .ops = &primes_ops,
};
