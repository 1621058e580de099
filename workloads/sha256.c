/*
 * sha256.c: the `sha256` workload (cpu), hashing with OpenSSL's EVP
 * interface.  Each input is a seeded random buffer of `bytes` bytes; round 1
 * hashes the buffer and each further round hashes (buffer || previous
 * digest), so the cost is rounds x bytes and no round can be skipped.
 */
#include "wl_internal.h"

#include <openssl/evp.h>

#define STREAM_SHA256 0x5348413235360000ULL

static const wl_param_spec sha256_params[] = {
    {.name = "bytes", .type = WL_PARAM_INT, .def_int = 256 * 1024,
     .min_int = 1, .max_int = 1 << 30, .help = "size of each buffer hashed"},
    {.name = "rounds", .type = WL_PARAM_INT, .def_int = 8, .min_int = 1,
     .max_int = 1000000, .help = "times each buffer is hashed (chained)"},
};

int wl_sha256_task(const void *in, size_t len, ex_buf *out)
{
    if (len < 4)
        return WL_CODE_EINPUT;
    const unsigned char *p = in;
    uint32_t rounds = wl_get_le32(p);
    if (rounds == 0)
        return WL_CODE_EINPUT;
    const unsigned char *data = p + 4;
    size_t n = len - 4;

    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL;
    for (uint32_t r = 0; ok && r < rounds; r++) {
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, data, n) == 1 &&
             (r == 0 || EVP_DigestUpdate(md, digest, sizeof digest) == 1) &&
             EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 32;
    }
    EVP_MD_CTX_free(md);
    if (!ok)
        return WL_CODE_ECRYPTO;
    return ex_buf_append(out, digest, sizeof digest) ? WL_CODE_ENOMEM : 0;
}

static int sha256_build(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    size_t bytes = (size_t)wl_params_int(ctx->params, "bytes");
    unsigned char *p = ex_buf_extend(in, 4 + bytes);
    if (!p)
        return EX_ENOMEM;
    wl_put_le32(p, (uint32_t)wl_params_int(ctx->params, "rounds"));
    wl_rng r = wl_rng_init(ctx->seed, STREAM_SHA256, i);
    wl_rng_fill(&r, p + 4, bytes);
    return 0;
}

static int sha256_check(const wl_ctx *ctx, size_t i, const void *out,
                        size_t len, char *err, size_t errlen)
{
    (void)ctx;
    (void)out;
    if (len != 32)
        return wl_errf(err, errlen,
                       "sha256: task %zu: output is %zu bytes, expected 32",
                       i, len);
    return 0;
}

static const struct wl_ops sha256_ops = {
    .build = sha256_build,
    .stages = {wl_sha256_task, NULL},
    .check = sha256_check,
};

const wl_workload wl_sha256_workload = {
    .name = "sha256",
    .kind = WL_CPU,
    .help = "SHA-256 of random buffers (OpenSSL EVP), rounds chained",
    .params = sha256_params,
    .nparams = sizeof sha256_params / sizeof sha256_params[0],
    .ops = &sha256_ops,
};
