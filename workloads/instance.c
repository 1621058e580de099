/*
 * instance.c: a workload instance's life: prepare (the seeded inputs),
 * input, the task functions, check, cleanup.
 */
#include "wl_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- instances */

int wl_prepare(const wl_workload *w, const wl_params *p, size_t ntasks,
               uint64_t seed, unsigned flags, wl_ctx **out, char *err,
               size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return wl_errf(err, errlen, "wl_prepare: no output");
    *out = NULL;
    if (!w || !p)
        return wl_errf(err, errlen, "wl_prepare: no workload or parameters");
    if (p->w != w)
        return wl_errf(err, errlen,
                       "wl_prepare: parameters are for workload '%s', not "
                       "'%s'",
                       p->w->name, w->name);
    int rc = wl_params_validate(p, err, errlen);
    if (rc)
        return rc;
    wl_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
    ctx->w = w;
    ctx->ntasks = ntasks;
    ctx->seed = seed;
    if (pthread_mutex_init(&ctx->lock, NULL)) {
        free(ctx);
        return wl_errf(err, errlen, "pthread_mutex_init failed"), EX_ESYS;
    }
    rc = wl_params_copy(p, &ctx->params);
    if (!rc) {
        ctx->inputs = calloc(ntasks ? ntasks : 1, sizeof *ctx->inputs);
        ctx->built = calloc(ntasks ? ntasks : 1, 1);
        if (!ctx->inputs || !ctx->built)
            rc = EX_ENOMEM;
    }
    if (rc) {
        wl_errf(err, errlen, "out of memory");
        wl_cleanup(ctx);
        return rc;
    }
    if (w->ops->setup) {
        rc = w->ops->setup(ctx, err, errlen);
        if (rc) {
            wl_cleanup(ctx);
            return rc;
        }
    }
    if (!(flags & WL_PREPARE_LAZY)) {
        for (size_t i = 0; i < ntasks; i++) {
            rc = w->ops->build(ctx, i, &ctx->inputs[i]);
            if (rc) {
                wl_errf(err, errlen,
                        "workload '%s': out of memory building input %zu of "
                        "%zu",
                        w->name, i, ntasks);
                wl_cleanup(ctx);
                return rc;
            }
            ctx->built[i] = 1;
        }
    }
    *out = ctx;
    return 0;
}

void wl_cleanup(wl_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->w->ops->teardown)
        ctx->w->ops->teardown(ctx);
    if (ctx->inputs)
        for (size_t i = 0; i < ctx->ntasks; i++)
            ex_buf_free(&ctx->inputs[i]);
    free(ctx->inputs);
    free(ctx->built);
    wl_params_destroy(ctx->params);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

const wl_workload *wl_ctx_workload(const wl_ctx *ctx)
{
    return ctx ? ctx->w : NULL;
}

const wl_params *wl_ctx_params(const wl_ctx *ctx)
{
    return ctx ? ctx->params : NULL;
}

size_t wl_ntasks(const wl_ctx *ctx) { return ctx ? ctx->ntasks : 0; }

int wl_build_private(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    return ctx->w->ops->build(ctx, i, in);
}

int wl_input(wl_ctx *ctx, size_t i, const void **in, size_t *len)
{
    if (!ctx || i >= ctx->ntasks)
        return EX_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&ctx->lock);
    if (!ctx->built[i]) {
        ex_buf b = {0};
        rc = ctx->w->ops->build(ctx, i, &b);
        if (rc)
            ex_buf_free(&b);
        else {
            ctx->inputs[i] = b;
            ctx->built[i] = 1;
        }
    }
    if (!rc) {
        /* A zero-length input still gets a valid pointer. */
        static const unsigned char empty[1];
        if (in)
            *in = ctx->inputs[i].data ? ctx->inputs[i].data : empty;
        if (len)
            *len = ctx->inputs[i].len;
    }
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

void wl_input_release(wl_ctx *ctx, size_t i)
{
    if (!ctx || i >= ctx->ntasks)
        return;
    pthread_mutex_lock(&ctx->lock);
    ex_buf_free(&ctx->inputs[i]);
    ctx->built[i] = 0;
    pthread_mutex_unlock(&ctx->lock);
}

int wl_map_get(void *ctx, size_t index, const void **in, size_t *len)
{
    return wl_input(ctx, index, in, len);
}

void wl_map_put(void *ctx, size_t index, const void *in, size_t len)
{
    (void)in;
    (void)len;
    wl_input_release(ctx, index);
}

ex_task_fn wl_task_fn(const wl_ctx *ctx)
{
    return ctx ? ctx->w->ops->stages[0] : NULL;
}

size_t wl_stage_count(const wl_ctx *ctx)
{
    if (!ctx)
        return 0;
    return ctx->w->ops->stages[1] ? 2 : 1;
}

ex_task_fn wl_stage_fn(const wl_ctx *ctx, size_t k)
{
    if (!ctx || k >= wl_stage_count(ctx))
        return NULL;
    return ctx->w->ops->stages[k];
}

int wl_check(const wl_ctx *ctx, size_t i, const void *out, size_t len,
             char *err, size_t errlen)
{
    if (!ctx || i >= ctx->ntasks)
        return wl_errf(err, errlen, "check: task index %zu out of range", i);
    if (!out && len)
        return wl_errf(err, errlen, "check: task %zu: no output", i);
    if (!ctx->w->ops->check)
        return 0;
    static const unsigned char empty[1];
    return ctx->w->ops->check(ctx, i, out ? out : empty, len, err, errlen);
}

wl_fault wl_expected_fault(const wl_ctx *ctx, size_t i)
{
    if (!ctx || i >= ctx->ntasks || !ctx->w->ops->fault)
        return WL_FAULT_NONE;
    return ctx->w->ops->fault(ctx, i);
}
