/*
 * sleep.c: the `sleep` workload (io): pure blocking latency.  The task
 * sleeps latency_ms (fractions allowed) and returns its index, so the
 * digest still proves that every input ran exactly once and in its place.
 */
#include "wl_internal.h"

#include <errno.h>
#include <math.h>
#include <time.h>

static const wl_param_spec sleep_params[] = {
    {.name = "latency_ms", .type = WL_PARAM_DOUBLE, .def_double = 10.0,
     .min_double = 0.0, .max_double = 3600000.0,
     .help = "time each task sleeps, in milliseconds"},
};

void wl_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    /* nanosleep leaves the remainder in ts when a signal interrupts it. */
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

int wl_sleep_task(const void *in, size_t len, ex_buf *out)
{
    if (len != 16)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    wl_sleep_ns(wl_get_le64(p + 8));
    return ex_buf_append(out, p, 8) ? WL_CODE_ENOMEM : 0;
}

static int sleep_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    unsigned char *p = ex_buf_extend(in, 16);
    if (!p)
        return EX_ENOMEM;
    double ms = wl_params_double(ctx->params, "latency_ms");
    wl_put_le64(p, (uint64_t)i);
    wl_put_le64(p + 8, (uint64_t)llround(ms * 1e6));
    return 0;
}

static int sleep_check(const wl_ctx *ctx, size_t i, const void *out,
                       size_t len, char *err, size_t errlen)
{
    (void)ctx;
    if (len != 8 || wl_get_le64(out) != (uint64_t)i)
        return wl_errf(err, errlen,
                       "sleep: task %zu: output is not its index", i);
    return 0;
}

static const struct wl_ops sleep_ops = {
    .build = sleep_build,
    .stages = {wl_sleep_task, NULL},
    .check = sleep_check,
};

const wl_workload wl_sleep_workload = {
    .name = "sleep",
    .kind = WL_IO,
    .help = "sleep latency_ms per task (pure blocking, no CPU)",
    .params = sleep_params,
    .nparams = sizeof sleep_params / sizeof sleep_params[0],
    .ops = &sleep_ops,
};
