/*
 * wl_util.h: what the workload tests (tests/test_wl_*.c) share: parsing
 * parameters and preparing an instance with cmocka's assertions, running
 * every task of an instance in the caller with its check and digest, hex
 * SHA-256, and running a task in a forked child.  Include it first.
 */
#ifndef POOLBENCH_TESTS_WL_UTIL_H
#define POOLBENCH_TESTS_WL_UTIL_H

#include "util.h"

#include "wl_internal.h"

#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>

/* The error text of the last failed wl_ call. */
static char err[512] __attribute__((unused));

static inline wl_params *params_of(const char *name, const char *const *kv,
                                   size_t n)
{
    const wl_workload *w = wl_find(name);
    assert_non_null(w);
    wl_params *p = NULL;
    int rc = wl_params_parse(w, kv, n, &p, err, sizeof err);
    if (rc)
        fail_msg("parse %s: %s", name, err);
    return p;
}

static inline wl_ctx *prepare(const char *name, const char *const *kv,
                              size_t n, size_t ntasks, uint64_t seed)
{
    wl_params *p = params_of(name, kv, n);
    wl_ctx *ctx = NULL;
    int rc = wl_prepare(wl_find(name), p, ntasks, seed, 0, &ctx, err,
                        sizeof err);
    wl_params_destroy(p);
    if (rc)
        fail_msg("prepare %s: %s", name, err);
    return ctx;
}

/* Runs every task of ctx in the caller, checks each output, and returns
 * the digest in hex (in `hex`). */
static inline void run_all(wl_ctx *ctx, char *hex)
{
    wl_digest *d;
    assert_int_equal(wl_digest_create(wl_ntasks(ctx), &d), 0);
    for (size_t i = 0; i < wl_ntasks(ctx); i++) {
        const void *in;
        size_t len;
        assert_int_equal(wl_input(ctx, i, &in, &len), 0);
        ex_buf out = {0};
        int code = wl_task_fn(ctx)(in, len, &out);
        for (size_t k = 1; code == 0 && k < wl_stage_count(ctx); k++) {
            ex_buf next = {0};
            code = wl_stage_fn(ctx, k)(out.data, out.len, &next);
            ex_buf_free(&out);
            out = next;
        }
        if (code) {
            assert_int_equal(wl_digest_add_failure(d, i, EX_ETASK, code), 0);
        } else {
            if (wl_check(ctx, i, out.data, out.len, err, sizeof err))
                fail_msg("check %s task %zu: %s",
                         wl_ctx_workload(ctx)->name, i, err);
            assert_int_equal(wl_digest_add(d, i, out.data, out.len), 0);
        }
        ex_buf_free(&out);
    }
    assert_int_equal(wl_digest_count(d), wl_ntasks(ctx));
    assert_int_equal(wl_digest_final(d, hex), 0);
    wl_digest_destroy(d);
}

static inline void sha256_hex(const void *p, size_t n, char *hex)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL), 1);
    for (int k = 0; k < 32; k++)
        sprintf(hex + 2 * k, "%02x", md[k]);
}

static inline void hex_of(const unsigned char *md, char *hex)
{
    for (int k = 0; k < 32; k++)
        sprintf(hex + 2 * k, "%02x", md[k]);
}

/* Runs the task in a forked child; returns the wait status, or -1 if the
 * child was still running after wait_ms (then it is killed and reaped). */
static inline int run_in_child(ex_task_fn fn, const void *in, size_t len,
                               int wait_ms)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ex_buf out = {0};
        int code = fn(in, len, &out);
        _exit(code & 0xff);
    }
    int status = 0;
    for (int waited = 0; waited < wait_ms; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        assert_true(r >= 0);
        if (r == pid)
            return status;
        wl_sleep_ns(10 * 1000000ULL);
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return -1;
}

#endif
