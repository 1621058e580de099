/*
 * fault.c: the `fault` workload, fault injection for reliability runs.  The
 * builder draws each task's fate from the seed and bakes it into the input
 * bytes, so the same task crashes, hangs or fails on every backend and
 * every repetition:
 *   crash  abort()s the worker (a deliberate exception to "never abort in a
 *          library": that is the fault being injected);
 *   hang   sleeps a day, far longer than any task timeout;
 *   error  returns WL_FAULT_ERROR_CODE;
 *   else   sleeps latency_ms and returns its index.
 * With crash_rate or hang_rate above 0 only the process pool can survive
 * it: wl_requires_isolation() says so and the harness refuses the rest.
 */
#include "wl_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define STREAM_FAULT 0x4641554c54000000ULL
#define HANG_NS (24ULL * 3600 * 1000000000ULL)
#define INPUT_LEN 17 /* le64 index, u8 wl_fault, le64 ns */

static const wl_param_spec fault_params[] = {
    {.name = "crash_rate", .type = WL_PARAM_DOUBLE, .def_double = 0.0,
     .min_double = 0.0, .max_double = 1.0,
     .help = "fraction of tasks that abort() their worker"},
    {.name = "hang_rate", .type = WL_PARAM_DOUBLE, .def_double = 0.0,
     .min_double = 0.0, .max_double = 1.0,
     .help = "fraction of tasks that hang (need a task timeout)"},
    {.name = "error_rate", .type = WL_PARAM_DOUBLE, .def_double = 0.0,
     .min_double = 0.0, .max_double = 1.0,
     .help = "fraction of tasks that return error code 77"},
    {.name = "latency_ms", .type = WL_PARAM_DOUBLE, .def_double = 1.0,
     .min_double = 0.0, .max_double = 60000.0,
     .help = "sleep of the tasks that succeed, in milliseconds"},
};

int wl_fault_task(const void *in, size_t len, ex_buf *out)
{
    if (len != INPUT_LEN)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    switch ((wl_fault)p[8]) {
    case WL_FAULT_CRASH:
        abort();
    case WL_FAULT_HANG:
        wl_sleep_ns(HANG_NS);
        return WL_FAULT_ERROR_CODE; /* only after a day */
    case WL_FAULT_ERROR:
        return WL_FAULT_ERROR_CODE;
    case WL_FAULT_NONE:
        wl_sleep_ns(wl_get_le64(p + 9));
        return ex_buf_append(out, p, 8) ? WL_CODE_ENOMEM : 0;
    }
    return WL_CODE_EINPUT;
}

static wl_fault fate(const wl_ctx *ctx, size_t i)
{
    wl_rng r = wl_rng_init(ctx->seed, STREAM_FAULT, i);
    double u = wl_rng_double(&r);
    double crash = wl_params_double(ctx->params, "crash_rate");
    double hang = wl_params_double(ctx->params, "hang_rate");
    double error = wl_params_double(ctx->params, "error_rate");
    if (u < crash)
        return WL_FAULT_CRASH;
    if (u < crash + hang)
        return WL_FAULT_HANG;
    if (u < crash + hang + error)
        return WL_FAULT_ERROR;
    return WL_FAULT_NONE;
}

static int fault_validate(const wl_params *p, char *err, size_t errlen)
{
    double sum = wl_params_double(p, "crash_rate") +
                 wl_params_double(p, "hang_rate") +
                 wl_params_double(p, "error_rate");
    if (sum > 1.0 + 1e-9)
        return wl_errf(err, errlen,
                       "workload 'fault': crash_rate + hang_rate + "
                       "error_rate must be at most 1, got %g", sum);
    return 0;
}

static int fault_isolation(const wl_params *p, char *why, size_t len)
{
    double crash = wl_params_double(p, "crash_rate");
    double hang = wl_params_double(p, "hang_rate");
    if (crash > 0.0) {
        if (why && len)
            snprintf(why, len,
                     "workload 'fault' with crash_rate=%g aborts its worker: "
                     "it needs process isolation (--executor procs, or mpi where a crash "
                     "ends the MPI job and fails every pending task)", crash);
        return 1;
    }
    if (hang > 0.0) {
        if (why && len)
            snprintf(why, len,
                     "workload 'fault' with hang_rate=%g never finishes some "
                     "tasks: it needs process isolation with a task timeout "
                     "(--executor procs --timeout ...)", hang);
        return 1;
    }
    return 0;
}

static int fault_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    unsigned char *p = ex_buf_extend(in, INPUT_LEN);
    if (!p)
        return EX_ENOMEM;
    double ms = wl_params_double(ctx->params, "latency_ms");
    wl_put_le64(p, (uint64_t)i);
    p[8] = (unsigned char)fate(ctx, i);
    wl_put_le64(p + 9, (uint64_t)llround(ms * 1e6));
    return 0;
}

static int fault_check(const wl_ctx *ctx, size_t i, const void *out,
                       size_t len, char *err, size_t errlen)
{
    wl_fault f = fate(ctx, i);
    if (f != WL_FAULT_NONE)
        return wl_errf(err, errlen,
                       "fault: task %zu was built to fail (%d) but produced "
                       "an output", i, (int)f);
    if (len != 8 || wl_get_le64(out) != (uint64_t)i)
        return wl_errf(err, errlen,
                       "fault: task %zu: output is not its index", i);
    return 0;
}

static const struct wl_ops fault_ops = {
    .validate = fault_validate,
    .build = fault_build,
    .stages = {wl_fault_task, NULL},
    .check = fault_check,
    .isolation = fault_isolation,
    .fault = fate,
};

const wl_workload wl_fault_workload = {
    .name = "fault",
    .kind = WL_IO,
    .help = "seeded fault injection: crash (abort), hang or error per task",
    .params = fault_params,
    .nparams = sizeof fault_params / sizeof fault_params[0],
    .ops = &fault_ops,
};
