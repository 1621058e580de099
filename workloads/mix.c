/*
 * mix.c: the `mix` workload (io): blocking calls among CPU work, the
 * "blocking calls" row of the threads-versus-processes comparison.  The
 * seed makes each task either a blocking call (a sleep of latency_ms, with
 * probability block_rate) or CPU work (the primes task over `span`
 * numbers).  A pool in which a blocked worker held the others back would
 * take as long as the sequential loop; one in which it holds back only
 * itself overlaps the sleeps with the CPU work (in Python too: a sleeping
 * thread releases the GIL).
 */
#include "wl_internal.h"

#include <math.h>

#define STREAM_MIX 0x4d49580000000000ULL
#define INPUT_LEN 33 /* le64 index, u8 blocks, le64 ns, le64 lo, le64 hi */

static const wl_param_spec mix_params[] = {
    {.name = "block_rate", .type = WL_PARAM_DOUBLE, .def_double = 0.5,
     .min_double = 0.0, .max_double = 1.0,
     .help = "fraction of tasks that block (sleep) instead of computing"},
    {.name = "latency_ms", .type = WL_PARAM_DOUBLE, .def_double = 10.0,
     .min_double = 0.0, .max_double = 60000.0,
     .help = "time a blocking task sleeps, in milliseconds"},
    {.name = "span", .type = WL_PARAM_INT, .def_int = 300000, .min_int = 1,
     .max_int = 100000000, .help = "numbers a CPU task sieves for primes"},
};

int wl_mix_task(const void *in, size_t len, ex_buf *out)
{
    if (len != INPUT_LEN)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    if (p[8] > 1)
        return WL_CODE_EINPUT;
    if (p[8] == 0)
        return wl_primes_task(p + 17, 16, out);
    wl_sleep_ns(wl_get_le64(p + 9));
    return ex_buf_append(out, p, 8) ? WL_CODE_ENOMEM : 0;
}

/* Whether task i blocks: a pure function of (seed, i, block_rate). */
static int blocks(const wl_ctx *ctx, size_t i)
{
    wl_rng r = wl_rng_init(ctx->seed, STREAM_MIX, i);
    return wl_rng_double(&r) < wl_params_double(ctx->params, "block_rate");
}

static int mix_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    unsigned char *p = ex_buf_extend(in, INPUT_LEN);
    if (!p)
        return EX_ENOMEM;
    uint64_t span = (uint64_t)wl_params_int(ctx->params, "span");
    double ms = wl_params_double(ctx->params, "latency_ms");
    wl_put_le64(p, (uint64_t)i);
    p[8] = (unsigned char)blocks(ctx, i);
    wl_put_le64(p + 9, (uint64_t)llround(ms * 1e6));
    /* Every CPU task sieves a range of the same size above 1e9, so that
     * they cost alike. */
    uint64_t lo = 1000000000ULL + (uint64_t)i * span;
    wl_put_le64(p + 17, lo);
    wl_put_le64(p + 25, lo + span);
    return 0;
}

static int mix_check(const wl_ctx *ctx, size_t i, const void *out, size_t len,
                     char *err, size_t errlen)
{
    if (blocks(ctx, i)) {
        if (len != 8 || wl_get_le64(out) != (uint64_t)i)
            return wl_errf(err, errlen, "mix: task %zu (blocking): output is not "
                           "its index", i);
        return 0;
    }
    uint64_t span = (uint64_t)wl_params_int(ctx->params, "span");
    /* Above 1e9 at most every other number is prime, and gaps are < 1550. */
    if (len != 8 || wl_get_le64(out) > span / 2 + 1 ||
        (span > 1550 && wl_get_le64(out) == 0))
        return wl_errf(err, errlen, "mix: task %zu (CPU): not a prime count of "
                       "%llu numbers", i, (unsigned long long)span);
    return 0;
}

static const struct wl_ops mix_ops = {
    .build = mix_build,
    .stages = {wl_mix_task, NULL},
    .check = mix_check,
};

const wl_workload wl_mix_workload = {
    .name = "mix",
    .kind = WL_IO,
    .help = "blocking calls among CPU work: a block_rate share of tasks sleep "
            "latency_ms, the rest count primes over span numbers",
    .params = mix_params,
    .nparams = sizeof mix_params / sizeof mix_params[0],
    .ops = &mix_ops,
};
