/*
 * compress.c: the `compress` workload (cpu): zlib deflate of generated
 * English-like text (seeded words, sentences and lines, so it compresses
 * about as well as prose does).  The check inflates the output and compares
 * it with the input, which costs a fraction of the deflate.
 */
#include "wl_internal.h"

#include <stdlib.h>
#include <zlib.h>

#define STREAM_TEXT 0x5445585400000000ULL

static const wl_param_spec compress_params[] = {
    {.name = "bytes", .type = WL_PARAM_INT, .def_int = 128 * 1024,
     .min_int = 1, .max_int = 1 << 30, .help = "text bytes per task"},
    {.name = "level", .type = WL_PARAM_INT, .def_int = 6, .min_int = 0,
     .max_int = 9, .help = "zlib compression level (0 = store, 9 = best)"},
};

static const char *const words[] = {
    "the",     "of",      "and",     "to",       "in",      "a",
    "is",      "that",    "for",     "it",       "as",      "was",
    "with",    "be",      "by",      "on",       "not",     "he",
    "this",    "are",     "or",      "his",      "from",    "at",
    "which",   "but",     "have",    "an",       "had",     "they",
    "you",     "were",    "their",   "one",      "all",     "we",
    "can",     "her",     "has",     "there",    "been",    "if",
    "more",    "when",    "will",    "would",    "who",     "so",
    "pool",    "thread",  "process", "future",   "queue",   "worker",
    "latency", "through", "measure", "schedule", "between", "machine",
    "compute", "result",  "submit",  "complete",
};
#define NWORDS (sizeof words / sizeof words[0])

/* Fills n bytes of text from the generator. */
static void fill_text(wl_rng *r, unsigned char *p, size_t n)
{
    size_t pos = 0, in_sentence = 0;
    while (pos < n) {
        uint64_t x = wl_rng_next(r);
        const char *word = words[(x & 0xffff) % NWORDS];
        size_t wl = strlen(word);
        for (size_t k = 0; k < wl && pos < n; k++)
            p[pos++] = (unsigned char)(in_sentence == 0 && k == 0
                                           ? word[k] - 'a' + 'A'
                                           : word[k]);
        in_sentence++;
        if (pos < n) {
            int end = ((x >> 16) % 12) == 0;
            if (end && pos + 1 < n)
                p[pos++] = '.';
            p[pos++] = end && ((x >> 24) % 4) == 0 ? '\n' : ' ';
            if (end)
                in_sentence = 0;
        }
    }
}

int wl_compress_task(const void *in, size_t len, ex_buf *out)
{
    if (len < 4)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    uint32_t level = wl_get_le32(p);
    if (level > 9)
        return WL_CODE_EINPUT;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit(&zs, (int)level) != Z_OK)
        return WL_CODE_EZLIB;
    /* deflateBound is exact enough to finish in one call; uInt limits a
     * single call to 4 GiB, and our inputs are at most 1 GiB. */
    uLong bound = deflateBound(&zs, (uLong)(len - 4));
    unsigned char *dst = ex_buf_extend(out, bound);
    if (!dst) {
        deflateEnd(&zs);
        return WL_CODE_ENOMEM;
    }
    zs.next_in = (Bytef *)(p + 4); /* zlib's API is not const-correct */
    zs.avail_in = (uInt)(len - 4);
    zs.next_out = dst;
    zs.avail_out = (uInt)bound;
    int zrc = deflate(&zs, Z_FINISH);
    size_t produced = zs.total_out;
    deflateEnd(&zs);
    out->len -= bound - produced;
    return zrc == Z_STREAM_END ? 0 : WL_CODE_EZLIB;
}

static int compress_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    size_t bytes = (size_t)wl_params_int(ctx->params, "bytes");
    unsigned char *p = ex_buf_extend(in, 4 + bytes);
    if (!p)
        return EX_ENOMEM;
    wl_put_le32(p, (uint32_t)wl_params_int(ctx->params, "level"));
    wl_rng r = wl_rng_init(ctx->seed, STREAM_TEXT, i);
    fill_text(&r, p + 4, bytes);
    return 0;
}

static int compress_check(const wl_ctx *ctx, size_t i, const void *out,
                          size_t len, char *err, size_t errlen)
{
    ex_buf b = {0};
    if (wl_build_private(ctx, i, &b))
        return wl_errf(err, errlen, "compress: task %zu: out of memory", i);
    size_t n = b.len - 4;
    unsigned char *plain = malloc(n + 1);
    if (!plain) {
        ex_buf_free(&b);
        return wl_errf(err, errlen, "compress: task %zu: out of memory", i);
    }
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int rc = 0;
    if (inflateInit(&zs) != Z_OK) {
        rc = wl_errf(err, errlen, "compress: task %zu: inflateInit failed", i);
    } else {
        zs.next_in = (Bytef *)out;
        zs.avail_in = (uInt)len;
        zs.next_out = plain;
        zs.avail_out = (uInt)(n + 1); /* one spare byte catches "too long" */
        int zrc = inflate(&zs, Z_FINISH);
        if (zrc != Z_STREAM_END)
            rc = wl_errf(err, errlen,
                         "compress: task %zu: output does not inflate (%s)",
                         i, zs.msg ? zs.msg : "truncated or too long");
        else if (zs.total_out != n || memcmp(plain, b.data + 4, n) != 0)
            rc = wl_errf(err, errlen,
                         "compress: task %zu: inflated output differs from "
                         "the input", i);
        inflateEnd(&zs);
    }
    free(plain);
    ex_buf_free(&b);
    return rc;
}

static const struct wl_ops compress_ops = {
    .build = compress_build,
    .stages = {wl_compress_task, NULL},
    .check = compress_check,
};

const wl_workload wl_compress_workload = {
    .name = "compress",
    .kind = WL_CPU,
    .help = "zlib deflate of generated text blocks",
    .params = compress_params,
    .nparams = sizeof compress_params / sizeof compress_params[0],
    .ops = &compress_ops,
};
