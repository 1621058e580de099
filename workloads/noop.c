/*
 * noop.c: the `noop` workload, the overhead probe: the task copies its
 * payload_bytes of input to its output and does nothing else, so what a run
 * measures is the executor (queueing, hand-off, pipe transfer) alone.
 */
#include "wl_internal.h"

#define STREAM_NOOP 0x4e4f4f5000000000ULL

static const wl_param_spec noop_params[] = {
    {.name = "payload_bytes", .type = WL_PARAM_INT, .def_int = 64,
     .min_int = 0, .max_int = 1 << 30,
     .help = "bytes in and out of each task"},
};

int wl_noop_task(const void *in, size_t len, ex_buf *out)
{
    return ex_buf_append(out, in, len) ? WL_CODE_ENOMEM : 0;
}

static int noop_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    size_t n = (size_t)wl_params_int(ctx->params, "payload_bytes");
    unsigned char *p = ex_buf_extend(in, n);
    if (!p)
        return EX_ENOMEM;
    wl_rng r = wl_rng_init(ctx->seed, STREAM_NOOP, i);
    wl_rng_fill(&r, p, n);
    return 0;
}

static int noop_check(const wl_ctx *ctx, size_t i, const void *out,
                      size_t len, char *err, size_t errlen)
{
    ex_buf b = {0};
    if (wl_build_private(ctx, i, &b))
        return wl_errf(err, errlen, "noop: task %zu: out of memory", i);
    int same = b.len == len && (len == 0 || memcmp(b.data, out, len) == 0);
    ex_buf_free(&b);
    if (!same)
        return wl_errf(err, errlen,
                       "noop: task %zu: output differs from the input", i);
    return 0;
}

static const struct wl_ops noop_ops = {
    .build = noop_build,
    .stages = {wl_noop_task, NULL},
    .check = noop_check,
};

const wl_workload wl_noop_workload = {
    .name = "noop",
    .kind = WL_CPU,
    .help = "copy payload_bytes in to out: the executor overhead probe",
    .params = noop_params,
    .nparams = sizeof noop_params / sizeof noop_params[0],
    .ops = &noop_ops,
};
