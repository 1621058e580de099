/*
 * fetch_hash.c: the `fetch-hash` workload (io, mixed): an HTTP GET, then
 * SHA-256 of the body.  It has two stages that the harness chains with
 * ex_future_then: stage 0 is the http task (same input and parameters as
 * the http workload), stage 1 hashes the body it returned.  The check and
 * the digest apply to the final 32-byte hash.
 */
#include "wl_internal.h"

int wl_hash_task(const void *in, size_t len, ex_buf *out)
{
    unsigned char digest[32];
    const void *parts[1] = {in};
    size_t lens[1] = {len};
    if (wl_sha256_parts(parts, lens, 1, digest))
        return WL_CODE_ECRYPTO;
    return ex_buf_append(out, digest, sizeof digest) ? WL_CODE_ENOMEM : 0;
}

static int fetch_hash_check(const wl_ctx *ctx, size_t i, const void *out,
                            size_t len, char *err, size_t errlen)
{
    (void)ctx;
    (void)out;
    if (len != 32)
        return wl_errf(err, errlen,
                       "fetch-hash: task %zu: output is %zu bytes, expected "
                       "a 32-byte SHA-256", i, len);
    return 0;
}

static const struct wl_ops fetch_hash_ops = {
    .validate = wl_http_validate,
    .setup = wl_http_setup,
    .teardown = wl_http_teardown,
    .build = wl_http_build,
    .stages = {wl_http_task, wl_hash_task},
    .check = fetch_hash_check,
};

const wl_workload wl_fetch_hash_workload = {
    .name = "fetch-hash",
    .kind = WL_IO,
    .help = "http GET then SHA-256 of the body (two stages chained with "
            "ex_future_then)",
    .params = wl_http_params,
    .nparams = WL_HTTP_NPARAMS,
    .ops = &fetch_hash_ops,
};
