/*
 * test_workloads.c: unit tests of libworkloads: the registry and parameter
 * parsing (with their exact error messages), known answers for every CPU
 * workload (pi(10^6) = 78498, SHA-256 test vectors, a zlib round trip, blur
 * of a constant and of an impulse, Mandelbrot points known inside and
 * outside), the I/O workloads against a loopback libmicrohttpd server and a
 * temporary directory, fault injection in forked children, the digest and
 * determinism across preparations.  No test asserts an upper time bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wl_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------- helpers */

static char err[512];

static wl_params *params_of(const char *name, const char *const *kv, size_t n)
{
    const wl_workload *w = wl_find(name);
    assert_non_null(w);
    wl_params *p = NULL;
    int rc = wl_params_parse(w, kv, n, &p, err, sizeof err);
    if (rc)
        fail_msg("parse %s: %s", name, err);
    return p;
}

static wl_ctx *prepare(const char *name, const char *const *kv, size_t n,
                       size_t ntasks, uint64_t seed)
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
static void run_all(wl_ctx *ctx, char *hex)
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

static void sha256_hex(const void *p, size_t n, char *hex)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL), 1);
    for (int k = 0; k < 32; k++)
        sprintf(hex + 2 * k, "%02x", md[k]);
}

static void hex_of(const unsigned char *md, char *hex)
{
    for (int k = 0; k < 32; k++)
        sprintf(hex + 2 * k, "%02x", md[k]);
}

/* ------------------------------------------------------ registry, params */

static void test_registry(void **state)
{
    (void)state;
    static const char *const names[] = {
        "primes", "sha256", "mandelbrot", "blur", "compress", "sleep",
        "http",   "file",   "fetch-hash", "noop", "fault", "table", "mix"};
    assert_int_equal(wl_count(), 13);
    for (size_t k = 0; k < 13; k++) {
        const wl_workload *w = wl_find(names[k]);
        assert_non_null(w);
        assert_ptr_equal(w, wl_at(k));
        assert_non_null(w->help);
        assert_non_null(strstr(wl_names(), names[k]));
        for (size_t j = 0; j < w->nparams; j++) {
            const wl_param_spec *s = &w->params[j];
            assert_non_null(s->help);
            assert_ptr_equal(wl_param_find(w, s->name), s);
            if (s->type == WL_PARAM_INT) {
                assert_true(s->min_int <= s->def_int);
                assert_true(s->def_int <= s->max_int);
            } else if (s->type == WL_PARAM_DOUBLE) {
                assert_true(s->min_double <= s->def_double);
                assert_true(s->def_double <= s->max_double);
            }
        }
    }
    assert_null(wl_at(13));
    assert_null(wl_find("nope"));
    assert_null(wl_find(NULL));
    assert_null(wl_param_find(wl_find("sha256"), "foo"));
    assert_int_equal(wl_find("primes")->kind, WL_CPU);
    assert_int_equal(wl_find("http")->kind, WL_IO);
    assert_string_equal(wl_kind_name(WL_CPU), "cpu");
    assert_string_equal(wl_kind_name(WL_IO), "io");

    char *text = wl_list_text();
    assert_non_null(text);
    assert_non_null(strstr(text, "primes"));
    assert_non_null(strstr(text, "span=2000000"));
    assert_non_null(strstr(text, "[1, 1073741824]"));
    assert_non_null(strstr(text, "latency_ms=10"));
    assert_non_null(strstr(text, "set by the harness"));
    assert_non_null(strstr(text, "fetch-hash"));
    free(text);
}

static void test_params_parse(void **state)
{
    (void)state;
    const char *kv[] = {"bytes=4k", "rounds=3"};
    wl_params *p = params_of("sha256", kv, 2);
    assert_int_equal(wl_params_int(p, "bytes"), 4096);
    assert_int_equal(wl_params_int(p, "rounds"), 3);
    assert_true(wl_params_is_set(p, "bytes"));
    char buf[128];
    assert_int_equal(wl_params_format(p, buf, sizeof buf), 0);
    assert_string_equal(buf, "bytes=4096,rounds=3");
    assert_int_equal(wl_params_format(p, buf, 5), EX_EINVAL);
    /* Wrong-type and unknown getters are zero, not crashes. */
    assert_int_equal(wl_params_int(p, "nope"), 0);
    assert_true(wl_params_double(p, "bytes") == 0.0);
    assert_string_equal(wl_params_string(p, "bytes"), "");
    wl_params_destroy(p);

    /* Defaults, doubles and their text round trip. */
    const char *kv2[] = {"latency_ms=0.1"};
    p = params_of("sleep", kv2, 1);
    assert_true(wl_params_double(p, "latency_ms") == 0.1);
    assert_int_equal(wl_params_value_text(p, 0, buf, sizeof buf), 0);
    assert_string_equal(buf, "0.1");
    wl_params *copy;
    assert_int_equal(wl_params_copy(p, &copy), 0);
    assert_true(wl_params_double(copy, "latency_ms") == 0.1);
    assert_true(wl_params_is_set(copy, "latency_ms"));
    wl_params_destroy(p);
    wl_params_destroy(copy);

    p = params_of("primes", NULL, 0);
    assert_int_equal(wl_params_int(p, "span"), 2000000);
    assert_false(wl_params_is_set(p, "span"));
    wl_params_destroy(p);

    /* Strings, and base_url kept out of the run identity. */
    const char *kv3[] = {"url=http://example.invalid/x?a=1&b=2",
                         "base_url=http://127.0.0.1:1"};
    p = params_of("http", kv3, 2);
    assert_string_equal(wl_params_string(p, "url"),
                        "http://example.invalid/x?a=1&b=2");
    assert_int_equal(wl_params_format(p, buf, sizeof buf), 0);
    assert_null(strstr(buf, "base_url"));
    assert_non_null(strstr(buf, "url=http://example.invalid/x?a=1&b=2"));
    assert_int_equal(wl_needs_server(p), 0);
    wl_params_destroy(p);
    p = params_of("fetch-hash", NULL, 0);
    assert_int_equal(wl_needs_server(p), 1);
    wl_params_destroy(p);
    p = params_of("sleep", NULL, 0);
    assert_int_equal(wl_needs_server(p), 0);
    wl_params_destroy(p);
}

static void expect_parse_error(const char *name, const char *kv,
                               const char *message)
{
    wl_params *p = (wl_params *)1;
    const char *v[] = {kv};
    err[0] = '\0';
    assert_int_equal(wl_params_parse(wl_find(name), v, 1, &p, err, sizeof err),
                     EX_EINVAL);
    assert_null(p);
    assert_string_equal(err, message);
}

static void test_params_errors(void **state)
{
    (void)state;
    expect_parse_error("sha256", "foo=1",
                       "workload 'sha256': unknown parameter 'foo' "
                       "(accepted: bytes, rounds)");
    expect_parse_error("sha256", "bytes=x",
                       "parameter 'bytes' must be an integer in "
                       "[1, 1073741824], got 'x'");
    expect_parse_error("sha256", "bytes=0",
                       "parameter 'bytes' must be an integer in "
                       "[1, 1073741824], got '0'");
    expect_parse_error("sha256", "bytes=2G",
                       "parameter 'bytes' must be an integer in "
                       "[1, 1073741824], got '2G'");
    expect_parse_error("sha256", "bytes=12abc",
                       "parameter 'bytes' must be an integer in "
                       "[1, 1073741824], got '12abc'");
    expect_parse_error("sha256", "bytes=99999999999999999999",
                       "parameter 'bytes' must be an integer in "
                       "[1, 1073741824], got '99999999999999999999'");
    expect_parse_error("sleep", "latency_ms=soon",
                       "parameter 'latency_ms' must be a number in "
                       "[0, 3600000], got 'soon'");
    expect_parse_error("sleep", "latency_ms=-1",
                       "parameter 'latency_ms' must be a number in "
                       "[0, 3600000], got '-1'");
    expect_parse_error("sleep", "latency_ms=nan",
                       "parameter 'latency_ms' must be a number in "
                       "[0, 3600000], got 'nan'");
    expect_parse_error("sleep", "latency_ms",
                       "workload 'sleep': parameters are key=value, got "
                       "'latency_ms'");
    expect_parse_error("sleep", "=3",
                       "workload 'sleep': parameters are key=value, got '=3'");
    expect_parse_error("noop", "bytes=1",
                       "workload 'noop': unknown parameter 'bytes' "
                       "(accepted: payload_bytes)");
    expect_parse_error("fault", "crash_rate=2",
                       "parameter 'crash_rate' must be a number in [0, 1], "
                       "got '2'");
}

/* Checks across parameters, string lengths, and wl_params_set. */
static void test_params_cross_checks(void **state)
{
    (void)state;
    const char *kv[] = {"crash_rate=0.7", "error_rate=0.5"};
    wl_params *p = (wl_params *)1;
    assert_int_equal(wl_params_parse(wl_find("fault"), kv, 2, &p, err,
                                     sizeof err),
                     EX_EINVAL);
    assert_null(p);
    assert_string_equal(err, "workload 'fault': crash_rate + hang_rate + "
                             "error_rate must be at most 1, got 1.2");
    expect_parse_error("http", "url=ftp://example.invalid/",
                       "parameter 'url' must start with http:// or "
                       "https://, got 'ftp://example.invalid/'");

    char longer[5000];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memcpy(longer, "url=", 4);
    expect_parse_error("http", longer,
                       "parameter 'url' must be 0 to 4096 characters long, "
                       "got 4995");

    /* wl_params_set leaves the set untouched on error. */
    assert_int_equal(wl_params_create(wl_find("sha256"), &p), 0);
    assert_int_equal(wl_params_set(p, "rounds", "0", err, sizeof err),
                     EX_EINVAL);
    assert_int_equal(wl_params_int(p, "rounds"),
                     wl_param_find(wl_find("sha256"), "rounds")->def_int);
    assert_int_equal(wl_params_set(p, "rounds", "7", NULL, 0), 0);
    assert_int_equal(wl_params_int(p, "rounds"), 7);
    wl_params_destroy(p);

    assert_int_equal(wl_params_parse(NULL, NULL, 0, &p, err, sizeof err),
                     EX_EINVAL);
    assert_non_null(strstr(err, "primes"));
}

/* ----------------------------------------------------------- CPU answers */

static uint64_t primes_in(uint64_t lo, uint64_t hi)
{
    ex_buf in = {0}, out = {0};
    assert_int_equal(wl_primes_encode(&in, lo, hi), 0);
    assert_int_equal(wl_primes_task(in.data, in.len, &out), 0);
    assert_int_equal(out.len, 8);
    uint64_t n = wl_get_le64(out.data);
    ex_buf_free(&in);
    ex_buf_free(&out);
    return n;
}

static void test_primes(void **state)
{
    (void)state;
    /* Through the public API: one task covering [0, 10^6). */
    const char *kv[] = {"start=0", "span=1000000"};
    wl_ctx *ctx = prepare("primes", kv, 2, 2, 1);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    ex_buf out = {0};
    assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
    assert_int_equal(wl_get_le64(out.data), 78498);
    assert_int_equal(wl_check(ctx, 0, out.data, out.len, err, sizeof err), 0);
    ex_buf_free(&out);
    /* Task 1 is [10^6, 2*10^6): pi(2e6) - pi(1e6) = 148933 - 78498. */
    assert_int_equal(wl_input(ctx, 1, &in, &len), 0);
    assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
    assert_int_equal(wl_get_le64(out.data), 148933 - 78498);
    ex_buf_free(&out);

    /* A count no range could hold fails the check, as does zero primes in
     * a range longer than any prime gap. */
    unsigned char bogus[8];
    wl_put_le64(bogus, 600000);
    assert_int_equal(wl_check(ctx, 0, bogus, 8, err, sizeof err), EX_EINVAL);
    wl_put_le64(bogus, 0);
    assert_int_equal(wl_check(ctx, 0, bogus, 8, err, sizeof err), EX_EINVAL);
    assert_int_equal(wl_check(ctx, 0, bogus, 4, err, sizeof err), EX_EINVAL);
    wl_cleanup(ctx);

    assert_int_equal(primes_in(0, 100), 25);
    assert_int_equal(primes_in(100, 200), 21);
    assert_int_equal(primes_in(0, 2), 0);
    assert_int_equal(primes_in(2, 3), 1);
    assert_int_equal(primes_in(5, 5), 0);
    /* Segments: a range straddling several 32 KiB segments. */
    assert_int_equal(primes_in(0, 100000), 9592);
    /* Around 10^9: pi(10^9 + 100) - pi(10^9) = 7 (1000000007, 009, 021,
     * 033, 087, 093, 097). */
    assert_int_equal(primes_in(1000000000, 1000000100), 7);

    /* Malformed inputs. */
    ex_buf o = {0};
    assert_int_equal(wl_primes_task("x", 1, &o), WL_CODE_EINPUT);
    unsigned char rev[16];
    wl_put_le64(rev, 10);
    wl_put_le64(rev + 8, 5);
    assert_int_equal(wl_primes_task(rev, 16, &o), WL_CODE_EINPUT);
    ex_buf_free(&o);

    /* An instance beyond the supported range is refused up front. */
    const char *big[] = {"start=1000000000000", "span=10000000000"};
    wl_params *p = params_of("primes", big, 2);
    assert_int_equal(wl_prepare(wl_find("primes"), p, 1000, 1, 0, &ctx, err,
                                sizeof err),
                     EX_EINVAL);
    assert_non_null(strstr(err, "start + ntasks*span"));
    wl_params_destroy(p);
}

static void sha_task_hex(const void *data, size_t n, uint32_t rounds,
                         char *hex)
{
    ex_buf in = {0}, out = {0};
    unsigned char *p = ex_buf_extend(&in, 4 + n);
    wl_put_le32(p, rounds);
    memcpy(p + 4, data, n);
    assert_int_equal(wl_sha256_task(in.data, in.len, &out), 0);
    assert_int_equal(out.len, 32);
    hex_of(out.data, hex);
    ex_buf_free(&in);
    ex_buf_free(&out);
}

static void test_sha256(void **state)
{
    (void)state;
    char hex[65];
    sha_task_hex("abc", 3, 1, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    sha_task_hex("", 0, 1, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha_task_hex(two, strlen(two), 1, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039"
                             "a33ce45964ff2167f6ecedd419db06c1");

    /* Two rounds: SHA-256("abc" || SHA-256("abc")), computed here. */
    unsigned char buf[3 + 32];
    unsigned int mdlen;
    memcpy(buf, "abc", 3);
    assert_int_equal(EVP_Digest("abc", 3, buf + 3, &mdlen, EVP_sha256(), NULL),
                     1);
    char want[65];
    sha256_hex(buf, sizeof buf, want);
    sha_task_hex("abc", 3, 2, hex);
    assert_string_equal(hex, want);

    /* Through the workload: inputs of the right size, digest checked. */
    const char *kv[] = {"bytes=1000", "rounds=2"};
    wl_ctx *ctx = prepare("sha256", kv, 2, 3, 9);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 2, &in, &len), 0);
    assert_int_equal(len, 1004);
    assert_int_equal(wl_get_le32(in), 2);
    char run[65];
    run_all(ctx, run);
    assert_int_equal(wl_check(ctx, 0, "short", 5, err, sizeof err), EX_EINVAL);
    wl_cleanup(ctx);

    ex_buf o = {0};
    assert_int_equal(wl_sha256_task("ab", 2, &o), WL_CODE_EINPUT);
    unsigned char zero_rounds[4] = {0};
    assert_int_equal(wl_sha256_task(zero_rounds, 4, &o), WL_CODE_EINPUT);
    ex_buf_free(&o);
}

static void test_compress(void **state)
{
    (void)state;
    for (int level = 0; level <= 9; level += 3) {
        char lv[16];
        snprintf(lv, sizeof lv, "level=%d", level);
        const char *kv[] = {"bytes=20000", lv};
        wl_ctx *ctx = prepare("compress", kv, 2, 3, 5);
        for (size_t i = 0; i < 3; i++) {
            const void *in;
            size_t len;
            assert_int_equal(wl_input(ctx, i, &in, &len), 0);
            assert_int_equal(len, 4 + 20000);
            ex_buf out = {0};
            assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
            if (level > 0)
                assert_true(out.len < 20000 / 2); /* text compresses */
            /* Round trip with zlib's own uncompress. */
            unsigned char *plain = malloc(20000);
            uLongf plain_len = 20000;
            assert_int_equal(uncompress(plain, &plain_len, out.data, out.len),
                             Z_OK);
            assert_int_equal(plain_len, 20000);
            assert_memory_equal(plain, (const unsigned char *)in + 4, 20000);
            free(plain);
            assert_int_equal(wl_check(ctx, i, out.data, out.len, err,
                                      sizeof err),
                             0);
            /* A flipped byte or a truncation fails the check. */
            out.data[out.len / 2] ^= 0x55;
            assert_int_equal(wl_check(ctx, i, out.data, out.len, err,
                                      sizeof err),
                             EX_EINVAL);
            out.data[out.len / 2] ^= 0x55;
            assert_int_equal(wl_check(ctx, i, out.data, out.len - 1, err,
                                      sizeof err),
                             EX_EINVAL);
            /* Another task's output is not this task's. */
            if (i > 0)
                assert_int_equal(
                    wl_check(ctx, i - 1, out.data, out.len, err, sizeof err),
                    EX_EINVAL);
            ex_buf_free(&out);
        }
        wl_cleanup(ctx);
    }
    ex_buf o = {0};
    unsigned char bad_level[5] = {10, 0, 0, 0, 'x'};
    assert_int_equal(wl_compress_task(bad_level, 5, &o), WL_CODE_EINPUT);
    ex_buf_free(&o);
}

static void blur(uint32_t w, uint32_t h, double sigma,
                 const unsigned char *px, ex_buf *out)
{
    ex_buf in = {0};
    assert_int_equal(wl_blur_encode(&in, w, h, sigma, px), 0);
    assert_int_equal(wl_blur_task(in.data, in.len, out), 0);
    assert_int_equal(out->len, (size_t)w * h);
    ex_buf_free(&in);
}

static void test_blur_constant(void **state)
{
    (void)state;
    static const unsigned char values[] = {0, 1, 77, 254, 255};
    unsigned char px[17 * 13];
    for (size_t v = 0; v < sizeof values; v++)
        for (double sigma = 0.5; sigma <= 8.0; sigma *= 2) {
            memset(px, values[v], sizeof px);
            ex_buf out = {0};
            blur(17, 13, sigma, px, &out);
            for (size_t k = 0; k < sizeof px; k++)
                assert_int_equal(out.data[k], values[v]);
            ex_buf_free(&out);
        }
}

static void test_blur_impulse(void **state)
{
    (void)state;
    enum { N = 21, C = 10 };
    unsigned char px[N * N] = {0};
    px[C * N + C] = 255;
    ex_buf out = {0};
    blur(N, N, 1.5, px, &out);
    const unsigned char *o = out.data;
    unsigned sum = 0;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            unsigned v = o[y * N + x];
            sum += v;
            /* Mirror symmetric about the impulse, exactly. */
            assert_int_equal(v, o[y * N + (2 * C - x)]);
            assert_int_equal(v, o[(2 * C - y) * N + x]);
            /* Transposed: products of the same two weights, so equal up to
             * float rounding. */
            int t = o[x * N + y];
            assert_true(abs((int)v - t) <= 1);
            /* Spread, decreasing away from the centre along each axis. */
            if (x > C)
                assert_true(v <= o[y * N + x - 1]);
            if (y > C)
                assert_true(v <= o[(y - 1) * N + x]);
        }
    assert_true(o[C * N + C] < 255);           /* it spread out */
    assert_true(o[C * N + C] > o[C * N + C + 1]); /* and peaks at the centre */
    assert_true(o[C * N + C + 1] > 0);
    assert_int_equal(o[0], 0); /* corners are beyond 3 sigma */
    /* Mass is preserved up to rounding of each pixel. */
    assert_true(sum >= 255 - 40 && sum <= 255 + 40);
    ex_buf_free(&out);

    /* Through the workload, and malformed inputs. */
    const char *kv[] = {"tile=32", "sigma=1"};
    wl_ctx *ctx = prepare("blur", kv, 2, 4, 3);
    char hex[65];
    run_all(ctx, hex);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    assert_int_equal(len, 16 + 32 * 32);
    ex_buf bad = {0};
    assert_int_equal(wl_blur_task(in, len - 1, &bad), WL_CODE_EINPUT);
    assert_int_equal(wl_blur_task(in, 3, &bad), WL_CODE_EINPUT);
    /* An output brighter than any input pixel fails the check. */
    unsigned char white[32 * 32];
    memset(white, 255, sizeof white);
    const unsigned char *src = (const unsigned char *)in + 16;
    unsigned hi = 0;
    for (size_t k = 0; k < sizeof white; k++)
        hi = src[k] > hi ? src[k] : hi;
    if (hi < 255)
        assert_int_equal(wl_check(ctx, 0, white, sizeof white, err,
                                  sizeof err),
                         EX_EINVAL);
    assert_int_equal(wl_check(ctx, 0, white, 10, err, sizeof err), EX_EINVAL);
    ex_buf_free(&bad);
    wl_cleanup(ctx);
}

static uint32_t px16(const ex_buf *b, size_t k)
{
    return (uint32_t)b->data[2 * k] | (uint32_t)b->data[2 * k + 1] << 8;
}

static void test_mandelbrot(void **state)
{
    (void)state;
    /* A 5x1 tile on the real axis: c = -2, -1, 0, 1, 2.  -2 (orbit 0, -2,
     * 2, 2, ...), -1 (0, -1, 0, ...) and 0 never escape; 1 escapes at
     * the 3rd iterate (0, 1, 2, 5) and 2 at the 2nd (0, 2, 6). */
    ex_buf in = {0}, out = {0};
    assert_int_equal(
        wl_mandelbrot_encode(&in, 5, 1, 100, -2.0, 0.0, 1.0, 1.0), 0);
    assert_int_equal(wl_mandelbrot_task(in.data, in.len, &out), 0);
    assert_int_equal(out.len, 10);
    assert_int_equal(px16(&out, 0), 100);
    assert_int_equal(px16(&out, 1), 100);
    assert_int_equal(px16(&out, 2), 100);
    assert_int_equal(px16(&out, 3), 3);
    assert_int_equal(px16(&out, 4), 2);
    size_t inside = 0;
    for (size_t k = 0; k < 5; k++)
        inside += px16(&out, k) == 100;
    assert_int_equal(inside, 3);
    ex_buf_free(&in);
    ex_buf_free(&out);

    /* A 1x3 tile on the imaginary axis: c = -i, 0, i.  i cycles
     * (0, i, -1+i, -i, -1+i, ...), as does -i by symmetry. */
    assert_int_equal(
        wl_mandelbrot_encode(&in, 1, 3, 500, 0.0, -1.0, 1.0, 1.0), 0);
    assert_int_equal(wl_mandelbrot_task(in.data, in.len, &out), 0);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(px16(&out, k), 500);
    ex_buf_free(&in);
    ex_buf_free(&out);

    /* A 4x4 tile far outside (|c| > 2): every point escapes at once. */
    assert_int_equal(
        wl_mandelbrot_encode(&in, 4, 4, 100, 3.0, 3.0, 0.1, 0.1), 0);
    assert_int_equal(wl_mandelbrot_task(in.data, in.len, &out), 0);
    for (size_t k = 0; k < 16; k++)
        assert_int_equal(px16(&out, k), 1);
    ex_buf_free(&in);
    ex_buf_free(&out);

    /* The workload: the tiles cover the view; some pixel is inside. */
    const char *kv[] = {"tile=16", "max_iter=64"};
    wl_ctx *ctx = prepare("mandelbrot", kv, 2, 4, 1);
    char hex[65];
    run_all(ctx, hex);
    size_t inside_total = 0;
    for (size_t i = 0; i < 4; i++) {
        const void *tin;
        size_t len;
        assert_int_equal(wl_input(ctx, i, &tin, &len), 0);
        assert_int_equal(wl_task_fn(ctx)(tin, len, &out), 0);
        for (size_t k = 0; k < 256; k++)
            inside_total += px16(&out, k) == 64;
        ex_buf_free(&out);
    }
    assert_true(inside_total > 0 && inside_total < 4 * 256);
    unsigned char over[512];
    memset(over, 0xff, sizeof over);
    assert_int_equal(wl_check(ctx, 0, over, sizeof over, err, sizeof err),
                     EX_EINVAL);
    assert_int_equal(wl_check(ctx, 0, over, 4, err, sizeof err), EX_EINVAL);
    wl_cleanup(ctx);

    assert_int_equal(wl_mandelbrot_task("short", 5, &out), WL_CODE_EINPUT);
    assert_int_equal(wl_mandelbrot_encode(&in, 0, 1, 10, 0, 0, 1, 1), 0);
    assert_int_equal(wl_mandelbrot_task(in.data, in.len, &out),
                     WL_CODE_EINPUT);
    ex_buf_free(&in);
    ex_buf_free(&out);
}

/* -------------------------------------------------------- sleep, noop */

static void test_sleep(void **state)
{
    (void)state;
    const char *kv[] = {"latency_ms=2.5"};
    wl_ctx *ctx = prepare("sleep", kv, 1, 3, 1);
    for (size_t i = 0; i < 3; i++) {
        const void *in;
        size_t len;
        assert_int_equal(wl_input(ctx, i, &in, &len), 0);
        assert_int_equal(wl_get_le64((const unsigned char *)in + 8), 2500000);
        ex_buf out = {0};
        uint64_t t0 = ex_now_ns();
        assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
        assert_true(ex_now_ns() - t0 >= 2500000); /* a lower bound only */
        assert_int_equal(wl_get_le64(out.data), i);
        assert_int_equal(wl_check(ctx, i, out.data, out.len, err, sizeof err),
                         0);
        assert_int_equal(
            wl_check(ctx, (i + 1) % 3, out.data, out.len, err, sizeof err),
            EX_EINVAL);
        ex_buf_free(&out);
    }
    wl_cleanup(ctx);
    ex_buf o = {0};
    assert_int_equal(wl_sleep_task("x", 1, &o), WL_CODE_EINPUT);
    ex_buf_free(&o);
}

/* table: every output is the sum its check recomputes; a stale tag, a
 * second instance and a malformed input are refused. */
static void test_table(void **state)
{
    (void)state;
    const char *kv[] = {"table_mb=1", "lookups=1000"};
    wl_ctx *ctx = prepare("table", kv, 2, 4, 7);
    char hex[WL_DIGEST_HEX_LEN + 1], again[WL_DIGEST_HEX_LEN + 1];
    run_all(ctx, hex);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    unsigned char stale[20];
    memcpy(stale, in, sizeof stale);
    ex_buf out = {0};
    assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
    assert_int_equal(wl_check(ctx, 1, out.data, out.len, err, sizeof err), EX_EINVAL);
    ex_buf_free(&out);
    /* One instance at a time: the second prepare says so. */
    wl_params *p = params_of("table", kv, 2);
    wl_ctx *other = NULL;
    assert_int_equal(wl_prepare(wl_find("table"), p, 1, 7, 0, &other, err, sizeof err),
                     EX_EINVAL);
    assert_null(other);
    assert_non_null(strstr(err, "one instance at a time"));
    wl_cleanup(ctx);
    /* After cleanup the old input names no table. */
    assert_int_equal(wl_table_task(stale, sizeof stale, &out), WL_CODE_EINPUT);
    assert_int_equal(wl_table_task(stale, 19, &out), WL_CODE_EINPUT);
    /* A new instance from the same seed computes the same outputs. */
    ctx = prepare("table", kv, 2, 4, 7);
    run_all(ctx, again);
    assert_string_equal(hex, again);
    wl_cleanup(ctx);
    wl_params_destroy(p);
    ex_buf_free(&out);
}

/* mix: block_rate 0 computes only, 1 blocks only; a bad kind byte is
 * refused. */
static void test_mix(void **state)
{
    (void)state;
    const char *none[] = {"block_rate=0", "span=5000"};
    const char *all[] = {"block_rate=1", "latency_ms=1"};
    char hex[WL_DIGEST_HEX_LEN + 1];
    wl_ctx *ctx = prepare("mix", none, 2, 3, 1);
    run_all(ctx, hex);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    assert_int_equal(((const unsigned char *)in)[8], 0);
    unsigned char bad[33];
    memcpy(bad, in, sizeof bad);
    bad[8] = 2;
    ex_buf out = {0};
    assert_int_equal(wl_mix_task(bad, sizeof bad, &out), WL_CODE_EINPUT);
    assert_int_equal(wl_mix_task(in, len - 1, &out), WL_CODE_EINPUT);
    wl_cleanup(ctx);
    ctx = prepare("mix", all, 2, 3, 1);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(wl_input(ctx, i, &in, &len), 0);
        assert_int_equal(((const unsigned char *)in)[8], 1);
        assert_int_equal(wl_mix_task(in, len, &out), 0);
        assert_int_equal(wl_check(ctx, i, out.data, out.len, err, sizeof err), 0);
        out.len = 0;
    }
    wl_cleanup(ctx);
    ex_buf_free(&out);
}

static void test_noop(void **state)
{
    (void)state;
    const char *kv[] = {"payload_bytes=100"};
    wl_ctx *ctx = prepare("noop", kv, 1, 2, 1);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 1, &in, &len), 0);
    assert_int_equal(len, 100);
    ex_buf out = {0};
    assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
    assert_int_equal(out.len, 100);
    assert_memory_equal(out.data, in, 100);
    assert_int_equal(wl_check(ctx, 1, out.data, out.len, err, sizeof err), 0);
    assert_int_equal(wl_check(ctx, 0, out.data, out.len, err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&out);
    wl_cleanup(ctx);

    const char *zero[] = {"payload_bytes=0"};
    ctx = prepare("noop", zero, 1, 2, 1);
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    assert_non_null(in);
    assert_int_equal(len, 0);
    char hex[65];
    run_all(ctx, hex);
    wl_cleanup(ctx);
}

/* ----------------------------------------------------------------- fault */

/* Runs the task in a forked child; returns the wait status, or -1 if the
 * child was still running after wait_ms (then it is killed and reaped). */
static int run_in_child(ex_task_fn fn, const void *in, size_t len,
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

static void test_fault(void **state)
{
    (void)state;
    const char *kv[] = {"crash_rate=0.2", "hang_rate=0.2", "error_rate=0.2",
                        "latency_ms=0"};
    wl_ctx *ctx = prepare("fault", kv, 4, 200, 7);
    char why[256];
    assert_int_equal(wl_requires_isolation(wl_ctx_params(ctx), why,
                                           sizeof why),
                     1);
    assert_non_null(strstr(why, "crash_rate=0.2"));
    assert_non_null(strstr(why, "process isolation"));

    size_t count[4] = {0};
    size_t first[4] = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
    for (size_t i = 0; i < 200; i++) {
        wl_fault f = wl_expected_fault(ctx, i);
        assert_true(f <= WL_FAULT_HANG);
        const void *in;
        size_t len;
        assert_int_equal(wl_input(ctx, i, &in, &len), 0);
        assert_int_equal(((const unsigned char *)in)[8], f); /* baked in */
        if (first[f] == SIZE_MAX)
            first[f] = i;
        count[f]++;
    }
    /* 40 expected of each; a seeded draw, loose bounds. */
    for (int f = 0; f < 4; f++)
        assert_true(count[f] >= 15 && count[f] <= 120);

    const void *in;
    size_t len;
    ex_buf out = {0};
    /* Success: its index.  Error: code 77, in this very process. */
    assert_int_equal(wl_input(ctx, first[WL_FAULT_NONE], &in, &len), 0);
    assert_int_equal(wl_fault_task(in, len, &out), 0);
    assert_int_equal(wl_get_le64(out.data), first[WL_FAULT_NONE]);
    assert_int_equal(wl_check(ctx, first[WL_FAULT_NONE], out.data, out.len,
                              err, sizeof err),
                     0);
    assert_int_equal(wl_check(ctx, first[WL_FAULT_ERROR], out.data, out.len,
                              err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&out);
    assert_int_equal(wl_input(ctx, first[WL_FAULT_ERROR], &in, &len), 0);
    assert_int_equal(wl_fault_task(in, len, &out), WL_FAULT_ERROR_CODE);
    ex_buf_free(&out);

    /* Crash and hang, each in a child of its own. */
    assert_int_equal(wl_input(ctx, first[WL_FAULT_CRASH], &in, &len), 0);
    int st = run_in_child(wl_fault_task, in, len, 30000);
    assert_true(st != -1 && WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_int_equal(wl_input(ctx, first[WL_FAULT_HANG], &in, &len), 0);
    assert_int_equal(run_in_child(wl_fault_task, in, len, 300), -1);
    wl_cleanup(ctx);

    /* The same seed bakes the same fates; another seed others. */
    wl_ctx *a = prepare("fault", kv, 4, 200, 7);
    wl_ctx *b = prepare("fault", kv, 4, 200, 8);
    size_t same = 0;
    for (size_t i = 0; i < 200; i++)
        same += wl_expected_fault(a, i) == wl_expected_fault(b, i);
    assert_true(same < 200);
    wl_cleanup(a);
    wl_cleanup(b);

    /* Errors only: no isolation needed; hang alone needs it. */
    const char *errors[] = {"error_rate=1", "latency_ms=0"};
    ctx = prepare("fault", errors, 2, 5, 1);
    assert_int_equal(wl_requires_isolation(wl_ctx_params(ctx), why,
                                           sizeof why),
                     0);
    assert_string_equal(why, "");
    char hex[65];
    run_all(ctx, hex); /* every task fails with 77 */
    wl_cleanup(ctx);
    const char *hang[] = {"hang_rate=0.01"};
    wl_params *p = params_of("fault", hang, 1);
    assert_int_equal(wl_requires_isolation(p, why, sizeof why), 1);
    assert_non_null(strstr(why, "timeout"));
    wl_params_destroy(p);
    p = params_of("sha256", NULL, 0);
    assert_int_equal(wl_requires_isolation(p, why, sizeof why), 0);
    wl_params_destroy(p);

    assert_int_equal(wl_fault_task("x", 1, &out), WL_CODE_EINPUT);
    unsigned char unknown[17] = {0};
    unknown[8] = 9;
    assert_int_equal(wl_fault_task(unknown, 17, &out), WL_CODE_EINPUT);
    ex_buf_free(&out);
}

/* ------------------------------------------------------------------ file */

static void test_file(void **state)
{
    (void)state;
    const char *kv[] = {"bytes=100000", "files=3"};
    wl_ctx *ctx = prepare("file", kv, 2, 5, 11);
    const char *dir = wl_file_dir(ctx);
    assert_non_null(dir);
    char dir_copy[4096];
    snprintf(dir_copy, sizeof dir_copy, "%s", dir);
    struct stat st;
    assert_int_equal(stat(dir_copy, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    char hex[65];
    run_all(ctx, hex);
    for (size_t i = 0; i < 5; i++) {
        const void *in;
        size_t len;
        assert_int_equal(wl_input(ctx, i, &in, &len), 0);
        /* Independently: the file's size and CRC-32 read with stdio. */
        FILE *f = fopen(in, "rb");
        assert_non_null(f);
        unsigned char *data = malloc(200000);
        size_t n = fread(data, 1, 200000, f);
        fclose(f);
        assert_int_equal(n, 100000);
        uint32_t crc = (uint32_t)crc32(0L, data, (uInt)n);
        free(data);
        ex_buf out = {0};
        assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
        assert_int_equal(out.len, 12);
        assert_int_equal(wl_get_le64(out.data), 100000);
        assert_int_equal(wl_get_le32(out.data + 8), crc);
        /* Tasks i and i+3 read the same file. */
        if (i >= 3) {
            const void *in0;
            size_t len0;
            assert_int_equal(wl_input(ctx, i - 3, &in0, &len0), 0);
            assert_string_equal(in0, in);
        }
        out.data[8] ^= 1;
        assert_int_equal(wl_check(ctx, i, out.data, out.len, err, sizeof err),
                         EX_EINVAL);
        ex_buf_free(&out);
    }
    /* A missing file is errno ENOENT as a task code. */
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 1, &in, &len), 0);
    assert_int_equal(unlink(in), 0);
    ex_buf out = {0};
    assert_int_equal(wl_task_fn(ctx)(in, len, &out),
                     WL_CODE_ERRNO_BASE + ENOENT);
    ex_buf_free(&out);
    char text[128];
    wl_task_code_text(WL_CODE_ERRNO_BASE + ENOENT, text, sizeof text);
    assert_string_equal(text, "errno 2: No such file or directory");
    wl_cleanup(ctx);
    assert_int_equal(stat(dir_copy, &st), -1);
    assert_int_equal(errno, ENOENT);

    /* Empty files work; an unusable TMPDIR is a clear error. */
    const char *empty[] = {"bytes=0", "files=2"};
    ctx = prepare("file", empty, 2, 2, 1);
    run_all(ctx, hex);
    wl_cleanup(ctx);

    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", "/nonexistent-poolbench-dir", 1);
    wl_params *p = params_of("file", NULL, 0);
    assert_int_equal(
        wl_prepare(wl_find("file"), p, 1, 1, 0, &ctx, err, sizeof err),
        EX_ESYS);
    assert_non_null(strstr(err, "cannot create a directory in "
                                "/nonexistent-poolbench-dir"));
    wl_params_destroy(p);
    if (saved) {
        setenv("TMPDIR", saved, 1);
        free(saved);
    } else
        unsetenv("TMPDIR");

    assert_int_equal(wl_file_task("abc", 3, &out), WL_CODE_EINPUT);
    ex_buf_free(&out);
}

/* ------------------------------------------------------------------ http */

static atomic_int server_stopping;

/* "/status/<code>" answers that status; anything else 200 with `bytes`
 * bytes of a fixed pattern after `delay_ms`. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
                               const char *url, const char *method,
                               const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    (void)cls;
    (void)method;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)con_cls;
    unsigned status = 200;
    size_t bytes = 0;
    if (strncmp(url, "/status/", 8) == 0) {
        status = (unsigned)atoi(url + 8);
    } else {
        const char *b = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                    "bytes");
        const char *d = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
                                                    "delay_ms");
        bytes = b ? (size_t)strtoul(b, NULL, 10) : 0;
        long delay = d ? strtol(d, NULL, 10) : 0;
        for (long t = 0; t < delay && !atomic_load(&server_stopping); t += 10)
            wl_sleep_ns(10 * 1000000ULL);
    }
    char *body = malloc(bytes ? bytes : 1);
    if (!body)
        return MHD_NO;
    for (size_t k = 0; k < bytes; k++)
        body[k] = (char)('a' + k % 26);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(bytes, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static struct MHD_Daemon *start_server(char *base, size_t len)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    atomic_store(&server_stopping, 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, handler, NULL, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_END);
    assert_non_null(d);
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    assert_true(info->port > 0);
    snprintf(base, len, "http://127.0.0.1:%u/", (unsigned)info->port);
    return d;
}

static void stop_server(struct MHD_Daemon *d)
{
    atomic_store(&server_stopping, 1);
    MHD_stop_daemon(d);
}

/* A loopback port nobody listens on: bound, read, closed. */
static unsigned closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t alen = sizeof addr;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

static int http_get(const char *url, uint32_t connect_ms, uint32_t total_ms,
                    ex_buf *out)
{
    ex_buf in = {0};
    assert_int_equal(wl_http_encode(&in, connect_ms, total_ms, url), 0);
    int code = wl_http_task(in.data, in.len, out);
    ex_buf_free(&in);
    return code;
}

static void test_http_needs_server(void **state)
{
    (void)state;
    wl_params *p = params_of("http", NULL, 0);
    wl_ctx *ctx = (wl_ctx *)1;
    assert_int_equal(
        wl_prepare(wl_find("http"), p, 3, 1, 0, &ctx, err, sizeof err),
        EX_EINVAL);
    assert_null(ctx);
    assert_non_null(strstr(err, "http needs a server"));
    /* Parameters of another workload are refused. */
    assert_int_equal(
        wl_prepare(wl_find("fetch-hash"), p, 3, 1, 0, &ctx, err, sizeof err),
        EX_EINVAL);
    wl_params_destroy(p);
}

static void test_http(void **state)
{
    (void)state;
    char base[128], kv_base[160];
    struct MHD_Daemon *d = start_server(base, sizeof base);
    snprintf(kv_base, sizeof kv_base, "base_url=%s", base);

    /* Through the workload: URLs on the embedded server's conventions. */
    const char *kv[] = {kv_base, "bytes=5000", "latency_ms=1"};
    wl_ctx *ctx = prepare("http", kv, 3, 4, 1);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    assert_non_null(strstr((const char *)in + 8, "/?delay_ms=1&bytes=5000"));
    assert_null(strstr((const char *)in + 8, ":/" "/?")); /* one slash */
    char hex1[65], hex2[65];
    run_all(ctx, hex1); /* four GETs on one reused handle */
    run_all(ctx, hex2);
    assert_string_equal(hex1, hex2);
    ex_buf out = {0};
    assert_int_equal(wl_task_fn(ctx)(in, len, &out), 0);
    assert_int_equal(out.len, 5000);
    assert_int_equal(out.data[0], 'a');
    assert_int_equal(out.data[27], 'b');
    assert_int_equal(wl_check(ctx, 0, out.data, 10, err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&out);
    wl_cleanup(ctx);

    /* Status codes: non-2xx is the task code, the body is dropped. */
    char url[256];
    snprintf(url, sizeof url, "%sstatus/500", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 500);
    assert_int_equal(out.len, 0);
    snprintf(url, sizeof url, "%sstatus/404", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 404);
    snprintf(url, sizeof url, "%sstatus/204", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 0);
    assert_int_equal(out.len, 0);
    char text[128];
    assert_string_equal(wl_task_code_text(500, text, sizeof text), "HTTP 500");

    /* Transfer errors: 1000 + CURLcode. */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", closed_port());
    assert_int_equal(http_get(url, 5000, 60000, &out),
                     WL_CODE_CURL_BASE + CURLE_COULDNT_CONNECT);
    wl_task_code_text(WL_CODE_CURL_BASE + CURLE_COULDNT_CONNECT, text,
                      sizeof text);
    assert_non_null(strstr(text, "curl error 7"));
    snprintf(url, sizeof url, "%s?delay_ms=5000&bytes=1", base);
    assert_int_equal(http_get(url, 5000, 200, &out),
                     WL_CODE_CURL_BASE + CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(http_get("file:///etc/passwd", 5000, 60000, &out),
                     WL_CODE_CURL_BASE + CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal(out.len, 0);
    /* The handle still works after errors. */
    snprintf(url, sizeof url, "%s?bytes=3", base);
    assert_int_equal(http_get(url, 5000, 60000, &out), 0);
    assert_int_equal(out.len, 3);
    ex_buf_free(&out);

    /* Malformed input: no NUL, or an empty URL. */
    unsigned char bad[12] = {0};
    memcpy(bad + 8, "http", 4);
    assert_int_equal(wl_http_task(bad, sizeof bad, &out), WL_CODE_EINPUT);
    assert_int_equal(wl_http_task(bad, 9, &out), WL_CODE_EINPUT);

    /* url overrides: no length expectation in the check. */
    snprintf(kv_base, sizeof kv_base, "url=%s?bytes=7", base);
    const char *kv2[] = {kv_base};
    ctx = prepare("http", kv2, 1, 2, 1);
    run_all(ctx, hex1);
    wl_cleanup(ctx);

    stop_server(d);
    wl_http_thread_cleanup();
}

struct http_thread_arg {
    const char *base;
    int failures;
};

static void *http_thread(void *p)
{
    struct http_thread_arg *a = p;
    char url[256];
    for (int k = 0; k < 5; k++) {
        snprintf(url, sizeof url, "%s?bytes=%d", a->base, 100 + k);
        ex_buf out = {0};
        if (http_get(url, 5000, 60000, &out) != 0 || out.len != (size_t)(100 + k))
            a->failures++;
        ex_buf_free(&out);
    }
    return NULL; /* the key destructor frees this thread's handle */
}

static void test_http_threads(void **state)
{
    (void)state;
    char base[128];
    struct MHD_Daemon *d = start_server(base, sizeof base);
    pthread_t t[4];
    struct http_thread_arg args[4];
    for (int k = 0; k < 4; k++) {
        args[k].base = base;
        args[k].failures = 0;
        assert_int_equal(pthread_create(&t[k], NULL, http_thread, &args[k]),
                         0);
    }
    for (int k = 0; k < 4; k++) {
        assert_int_equal(pthread_join(t[k], NULL), 0);
        assert_int_equal(args[k].failures, 0);
    }

    /* A forked child gets a handle of its own even if this thread has one. */
    char url[256];
    snprintf(url, sizeof url, "%s?bytes=10", base);
    ex_buf out = {0};
    assert_int_equal(http_get(url, 5000, 60000, &out), 0);
    ex_buf_free(&out);
    ex_buf in = {0};
    assert_int_equal(wl_http_encode(&in, 5000, 60000, url), 0);
    int st = run_in_child(wl_http_task, in.data, in.len, 60000);
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(wl_http_task(in.data, in.len, &out), 0); /* still ours */
    assert_int_equal(out.len, 10);
    ex_buf_free(&out);
    ex_buf_free(&in);
    stop_server(d);
    wl_http_thread_cleanup();
}

static void test_fetch_hash(void **state)
{
    (void)state;
    char base[128], kv_base[160];
    struct MHD_Daemon *d = start_server(base, sizeof base);
    snprintf(kv_base, sizeof kv_base, "base_url=%s", base);
    const char *kv[] = {kv_base, "bytes=3000", "latency_ms=0"};
    wl_ctx *ctx = prepare("fetch-hash", kv, 3, 3, 1);
    assert_int_equal(wl_stage_count(ctx), 2);
    assert_ptr_equal(wl_stage_fn(ctx, 0), wl_task_fn(ctx));
    assert_ptr_equal(wl_stage_fn(ctx, 0), wl_http_task);
    assert_ptr_equal(wl_stage_fn(ctx, 1), wl_hash_task);
    assert_null(wl_stage_fn(ctx, 2));

    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 0, &in, &len), 0);
    ex_buf body = {0}, hash = {0};
    assert_int_equal(wl_stage_fn(ctx, 0)(in, len, &body), 0);
    assert_int_equal(body.len, 3000);
    assert_int_equal(wl_stage_fn(ctx, 1)(body.data, body.len, &hash), 0);
    assert_int_equal(hash.len, 32);
    /* The expected hash, from the server's known pattern. */
    char pattern[3000], want[65], got[65];
    for (size_t k = 0; k < sizeof pattern; k++)
        pattern[k] = (char)('a' + k % 26);
    sha256_hex(pattern, sizeof pattern, want);
    hex_of(hash.data, got);
    assert_string_equal(got, want);
    assert_int_equal(wl_check(ctx, 0, hash.data, hash.len, err, sizeof err),
                     0);
    assert_int_equal(wl_check(ctx, 0, body.data, body.len, err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&body);
    ex_buf_free(&hash);
    char hex[65];
    run_all(ctx, hex);
    wl_cleanup(ctx);
    stop_server(d);
    wl_http_thread_cleanup();
}

/* ---------------------------------------------------------------- digest */

static void test_digest(void **state)
{
    (void)state;
    wl_digest *a, *b;
    char ha[65], hb[65];
    assert_int_equal(wl_digest_create(3, &a), 0);
    assert_int_equal(wl_digest_create(3, &b), 0);
    /* Completion order does not matter. */
    assert_int_equal(wl_digest_add(a, 0, "abc", 3), 0);
    assert_int_equal(wl_digest_add(a, 1, "", 0), 0);
    assert_int_equal(wl_digest_add_failure(a, 2, EX_ETASK, 500), 0);
    assert_int_equal(wl_digest_add_failure(b, 2, EX_ETASK, 500), 0);
    assert_int_equal(wl_digest_add(b, 1, NULL, 0), 0);
    assert_int_equal(wl_digest_add(b, 0, "abc", 3), 0);
    assert_int_equal(wl_digest_final(a, ha), 0);
    assert_int_equal(wl_digest_final(b, hb), 0);
    assert_string_equal(ha, hb);
    assert_int_equal(strlen(ha), WL_DIGEST_HEX_LEN);
    /* Each index once; none out of range. */
    assert_int_equal(wl_digest_add(a, 0, "abc", 3), EX_EINVAL);
    assert_int_equal(wl_digest_add_failure(a, 2, EX_ETASK, 500), EX_EINVAL);
    assert_int_equal(wl_digest_add(a, 3, "x", 1), EX_EINVAL);
    assert_int_equal(wl_digest_count(a), 3);

    /* The documented construction, computed independently. */
    unsigned char rec[3][32], head[16 + 3], fail[20];
    unsigned int mdlen;
    wl_put_le64(head, 0);
    wl_put_le64(head + 8, 3);
    memcpy(head + 16, "abc", 3);
    EVP_Digest(head, 19, rec[0], &mdlen, EVP_sha256(), NULL);
    wl_put_le64(head, 1);
    wl_put_le64(head + 8, 0);
    EVP_Digest(head, 16, rec[1], &mdlen, EVP_sha256(), NULL);
    wl_put_le64(fail, 2);
    memcpy(fail + 8, "fail", 4);
    wl_put_le32(fail + 12, (uint32_t)EX_ETASK);
    wl_put_le32(fail + 16, 500);
    EVP_Digest(fail, 20, rec[2], &mdlen, EVP_sha256(), NULL);
    char want[65];
    sha256_hex(rec, sizeof rec, want);
    assert_string_equal(ha, want);
    wl_digest_destroy(a);
    wl_digest_destroy(b);

    /* Different outputs, a failure instead of an output, a missing index:
     * all different digests. */
    char h1[65], h2[65], h3[65], h4[65];
    assert_int_equal(wl_digest_create(2, &a), 0);
    wl_digest_add(a, 0, "x", 1);
    wl_digest_add(a, 1, "y", 1);
    wl_digest_final(a, h1);
    wl_digest_destroy(a);
    assert_int_equal(wl_digest_create(2, &a), 0);
    wl_digest_add(a, 0, "y", 1);
    wl_digest_add(a, 1, "x", 1);
    wl_digest_final(a, h2);
    wl_digest_destroy(a);
    assert_int_equal(wl_digest_create(2, &a), 0);
    wl_digest_add(a, 0, "x", 1);
    wl_digest_add_failure(a, 1, EX_EWORKER, 0);
    wl_digest_final(a, h3);
    assert_int_equal(wl_digest_count(a), 2);
    wl_digest_destroy(a);
    assert_int_equal(wl_digest_create(2, &a), 0);
    wl_digest_add(a, 0, "x", 1);
    assert_int_equal(wl_digest_count(a), 1);
    wl_digest_final(a, h4);
    wl_digest_destroy(a);
    assert_string_not_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    assert_string_not_equal(h3, h4);
    assert_string_not_equal(h1, h4);

    assert_int_equal(wl_digest_create(0, &a), 0);
    assert_int_equal(wl_digest_final(a, h1), 0);
    assert_int_equal(wl_digest_add(a, 0, "x", 1), EX_EINVAL);
    wl_digest_destroy(a);
    wl_digest_destroy(NULL);
}

/* ----------------------------------------------------------- determinism */

struct det_case {
    const char *name;
    const char *kv[3];
    size_t n;
    int seeded; /* inputs depend on the seed */
};

static void test_determinism(void **state)
{
    (void)state;
    static const struct det_case cases[] = {
        {"primes", {"span=5000"}, 1, 0},
        {"sha256", {"bytes=3000", "rounds=2"}, 2, 1},
        {"mandelbrot", {"tile=8", "max_iter=50"}, 2, 0},
        {"blur", {"tile=24"}, 1, 1},
        {"compress", {"bytes=5000"}, 1, 1},
        {"sleep", {"latency_ms=0"}, 1, 0},
        {"noop", {"payload_bytes=33"}, 1, 1},
        {"file", {"bytes=1000", "files=2"}, 2, 1},
        {"fault", {"error_rate=0.5", "latency_ms=0"}, 2, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct det_case *k = &cases[c];
        char h1[65], h2[65], h3[65], h4[65];
        wl_ctx *a = prepare(k->name, k->kv, k->n, 6, 42);
        run_all(a, h1);
        /* Lazy inputs, released and rebuilt, are the same bytes. */
        wl_params *p = params_of(k->name, k->kv, k->n);
        wl_ctx *b = NULL;
        assert_int_equal(wl_prepare(wl_find(k->name), p, 6, 42,
                                    WL_PREPARE_LAZY, &b, err, sizeof err),
                         0);
        wl_params_destroy(p);
        for (size_t i = 0; i < 6; i++) {
            const void *ia, *ib;
            size_t la, lb;
            assert_int_equal(wl_input(a, i, &ia, &la), 0);
            assert_int_equal(wl_input(b, i, &ib, &lb), 0);
            if (strcmp(k->name, "file") != 0) { /* paths differ by dir */
                assert_int_equal(la, lb);
                assert_memory_equal(ia, ib, la);
            }
            wl_input_release(b, i);
            assert_int_equal(wl_map_get(b, i, &ib, &lb), 0);
            if (strcmp(k->name, "file") != 0)
                assert_memory_equal(ia, ib, la);
            wl_map_put(b, i, ib, lb);
        }
        run_all(b, h2);
        assert_string_equal(h1, h2);
        wl_cleanup(b);
        /* Another seed: other inputs for seeded workloads. */
        wl_ctx *s = prepare(k->name, k->kv, k->n, 6, 43);
        run_all(s, h3);
        if (k->seeded)
            assert_string_not_equal(h1, h3);
        else
            assert_string_equal(h1, h3);
        wl_cleanup(s);
        /* Digest of a run again on the same ctx. */
        run_all(a, h4);
        assert_string_equal(h1, h4);
        wl_cleanup(a);
    }
}

static void test_lifecycle_errors(void **state)
{
    (void)state;
    wl_ctx *ctx = prepare("noop", NULL, 0, 2, 1);
    const void *in;
    size_t len;
    assert_int_equal(wl_input(ctx, 2, &in, &len), EX_EINVAL);
    assert_int_equal(wl_input(NULL, 0, &in, &len), EX_EINVAL);
    wl_input_release(ctx, 99); /* ignored */
    assert_int_equal(wl_check(ctx, 2, "x", 1, err, sizeof err), EX_EINVAL);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(wl_check(ctx, 0, NULL, 3, err, sizeof err), EX_EINVAL);
    assert_int_equal(wl_stage_count(ctx), 1);
    assert_null(wl_stage_fn(ctx, 1));
    assert_int_equal(wl_expected_fault(ctx, 0), WL_FAULT_NONE);
    assert_int_equal(wl_ntasks(ctx), 2);
    assert_string_equal(wl_ctx_workload(ctx)->name, "noop");
    assert_int_equal(wl_params_int(wl_ctx_params(ctx), "payload_bytes"), 64);
    wl_cleanup(ctx);
    wl_cleanup(NULL);

    /* Zero tasks is a valid, empty instance. */
    ctx = prepare("sha256", NULL, 0, 0, 1);
    char hex[65];
    run_all(ctx, hex);
    wl_cleanup(ctx);

    wl_ctx *out = (wl_ctx *)1;
    assert_int_equal(wl_prepare(NULL, NULL, 1, 1, 0, &out, err, sizeof err),
                     EX_EINVAL);
    assert_null(out);

    char text[128];
    assert_non_null(strstr(wl_task_code_text(WL_FAULT_ERROR_CODE, text,
                                             sizeof text),
                           "injected"));
    assert_non_null(strstr(wl_task_code_text(WL_CODE_EINPUT, text,
                                             sizeof text),
                           "malformed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_params_parse),
        cmocka_unit_test(test_params_errors),
        cmocka_unit_test(test_params_cross_checks),
        cmocka_unit_test(test_primes),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_compress),
        cmocka_unit_test(test_blur_constant),
        cmocka_unit_test(test_blur_impulse),
        cmocka_unit_test(test_mandelbrot),
        cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_mix),
        cmocka_unit_test(test_noop),
        cmocka_unit_test(test_fault),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_http_needs_server),
        cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_threads),
        cmocka_unit_test(test_fetch_hash),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_lifecycle_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
