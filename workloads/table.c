/*
 * table.c: the `table` workload (cpu): read access to a large shared table,
 * the "shared state" row of the threads-versus-processes comparison.
 *
 * wl_prepare builds one table of table_mb MiB of seeded 64-bit words; every
 * task reads `lookups` words of it at pseudo-random places (an LCG seeded
 * from the task's index) and returns their wrapping sum.  The table is not
 * in the input: tasks reach it as shared state.  In the thread pool that is
 * a pointer; in the process pool it is the fork-time snapshot, shared
 * copy-on-write and never copied by reads (workers are forked after
 * wl_prepare, as DESIGN.md requires of any state a task reads).  Python's
 * executors read the same table as a list of ints, whose reference counts
 * the reads write: ProcessPoolExecutor's forked workers then copy the pages
 * they touch, which is what the comparison is there to show.
 *
 * A deliberate exception to "no global mutable state": the table is
 * published in one process-wide slot (an atomic pointer), because shared
 * state is the point.  One instance at a time (a second wl_prepare fails
 * with a message); the input carries the instance's tag, so a task can
 * never read a table other than its own, nor a freed one.
 */
#include "wl_internal.h"

#include <stdatomic.h>
#include <stdlib.h>

#define STREAM_TABLE 0x5441424c45000000ULL
#define INPUT_LEN 20 /* le64 tag, le64 index, le32 lookups */
#define LCG_A 6364136223846793005ULL
#define LCG_C 1442695040888963407ULL

static const wl_param_spec table_params[] = {
    {.name = "table_mb", .type = WL_PARAM_INT, .def_int = 8, .min_int = 1,
     .max_int = 4096, .help = "size of the shared table in MiB (64-bit words)"},
    {.name = "lookups", .type = WL_PARAM_INT, .def_int = 100000, .min_int = 1,
     .max_int = 100000000, .help = "table words each task reads"},
};

struct table {
    uint64_t tag;
    size_t words;
    uint64_t *w;
};

/* The live instance, read by tasks in any thread or forked worker. */
static _Atomic(struct table *) live;

/* The wrapping sum of `lookups` words from index i's sequence. */
static uint64_t lookup_sum(const struct table *t, uint64_t i, uint32_t lookups)
{
    uint64_t x = wl_mix64(i + 1), sum = 0;
    for (uint32_t k = 0; k < lookups; k++) {
        x = x * LCG_A + LCG_C;
        sum += t->w[(x >> 33) % t->words];
    }
    return sum;
}

int wl_table_task(const void *in, size_t len, ex_buf *out)
{
    if (len != INPUT_LEN)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    struct table *t = atomic_load(&live);
    if (!t || t->tag != wl_get_le64(p))
        return WL_CODE_EINPUT;
    uint64_t sum = lookup_sum(t, wl_get_le64(p + 8), wl_get_le32(p + 16));
    unsigned char *o = ex_buf_extend(out, 8);
    if (!o)
        return WL_CODE_ENOMEM;
    wl_put_le64(o, sum);
    return 0;
}

static void table_teardown(wl_ctx *ctx)
{
    struct table *t = ctx->priv;
    if (!t)
        return;
    struct table *expect = t;
    atomic_compare_exchange_strong(&live, &expect, NULL);
    free(t->w);
    free(t);
    ctx->priv = NULL;
}

static int table_setup(wl_ctx *ctx, char *err, size_t errlen)
{
    struct table *t = calloc(1, sizeof *t);
    if (!t)
        return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
    t->words = (size_t)wl_params_int(ctx->params, "table_mb") * (1024 * 1024 / 8);
    t->w = malloc(t->words * sizeof *t->w);
    if (!t->w) {
        size_t words = t->words;
        free(t);
        return wl_errf(err, errlen, "table: out of memory for %zu words", words), EX_ENOMEM;
    }
    wl_rng r = wl_rng_init(ctx->seed, STREAM_TABLE, 0);
    for (size_t k = 0; k < t->words; k++)
        t->w[k] = wl_rng_next(&r);
    /* A tag that differs from one instance to the next in this process. */
    static atomic_uint_fast64_t instances;
    t->tag = wl_mix64(ctx->seed ^ (atomic_fetch_add(&instances, 1) + 1));
    struct table *expect = NULL;
    if (!atomic_compare_exchange_strong(&live, &expect, t)) {
        free(t->w);
        free(t);
        return wl_errf(err, errlen, "workload 'table': one instance at a time per "
                       "process (another one is prepared)");
    }
    ctx->priv = t;
    return 0;
}

static int table_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    const struct table *t = ctx->priv;
    unsigned char *p = ex_buf_extend(in, INPUT_LEN);
    if (!p)
        return EX_ENOMEM;
    wl_put_le64(p, t->tag);
    wl_put_le64(p + 8, (uint64_t)i);
    wl_put_le32(p + 16, (uint32_t)wl_params_int(ctx->params, "lookups"));
    return 0;
}

static int table_check(const wl_ctx *ctx, size_t i, const void *out, size_t len,
                       char *err, size_t errlen)
{
    const struct table *t = ctx->priv;
    uint32_t lookups = (uint32_t)wl_params_int(ctx->params, "lookups");
    if (len != 8 || wl_get_le64(out) != lookup_sum(t, i, lookups))
        return wl_errf(err, errlen, "table: task %zu: not the sum of its %u lookups",
                       i, lookups);
    return 0;
}

static const struct wl_ops table_ops = {
    .setup = table_setup,
    .teardown = table_teardown,
    .build = table_build,
    .stages = {wl_table_task, NULL},
    .check = table_check,
    .shared_memory = true,
};

const wl_workload wl_table_workload = {
    .name = "table",
    .kind = WL_CPU,
    .help = "read lookups words of a shared table_mb MiB table per task "
            "(shared state: a pointer in threads, the fork snapshot in processes)",
    .params = table_params,
    .nparams = sizeof table_params / sizeof table_params[0],
    .ops = &table_ops,
};
