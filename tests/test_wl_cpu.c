/*
 * test_wl_cpu.c: known answers for every CPU workload: pi(10^6) = 78498,
 * SHA-256 test vectors, a zlib round trip, blur of a constant and of an
 * impulse, Mandelbrot points known inside and outside; table's sums over
 * a shared table (one instance at a time, stale inputs refused).  No test
 * asserts an upper time bound.
 */
#include "wl_util.h"

#include <math.h>
#include <zlib.h>

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
    /* Input i depends on i alone: a longer run starts with the same
     * tiles (the digest over a sweep's first digest_tasks outputs), the
     * first four spread over the view (tiles 0,0 0,16 16,0 16,16 of 32). */
    wl_ctx *longer = prepare("mandelbrot", kv, 2, 50, 1);
    for (size_t i = 0; i < 4; i++) {
        const void *a, *b;
        size_t alen, blen;
        assert_int_equal(wl_input(ctx, i, &a, &alen), 0);
        assert_int_equal(wl_input(longer, i, &b, &blen), 0);
        assert_int_equal(alen, blen);
        assert_memory_equal(a, b, alen);
        double cx = wl_get_f64((const unsigned char *)a + 12);
        double cy = wl_get_f64((const unsigned char *)a + 20);
        assert_true(cx < -1.9 || (cx > -0.6 && cx < -0.4)); /* column 0, 16 */
        assert_true(cy < -1.4 || (cy > -0.1 && cy < 0.1));  /* row 0, 16 */
    }
    wl_cleanup(longer);
    /* The first 1024 tasks visit every tile of the 32 x 32 grid once, and
     * task 1024 + k computes tile k again (the Python runner's
     * mandelbrot_tile wraps the same way: the digests must agree). */
    wl_ctx *full = prepare("mandelbrot", kv, 2, 1030, 1);
    unsigned char seen[1024] = {0};
    for (size_t i = 0; i < 1024; i++) {
        const void *a;
        size_t alen;
        assert_int_equal(wl_input(full, i, &a, &alen), 0);
        double cx = wl_get_f64((const unsigned char *)a + 12);
        double cy = wl_get_f64((const unsigned char *)a + 20);
        int tx = (int)floor((cx + 2.0) / 3.0 * 32.0);
        int ty = (int)floor((cy + 1.5) / 3.0 * 32.0);
        assert_in_range(tx, 0, 31);
        assert_in_range(ty, 0, 31);
        seen[ty * 32 + tx]++;
    }
    for (size_t t = 0; t < 1024; t++)
        assert_int_equal(seen[t], 1);
    for (size_t k = 0; k < 6; k++) {
        const void *a, *b;
        size_t alen, blen;
        assert_int_equal(wl_input(full, k, &a, &alen), 0);
        assert_int_equal(wl_input(full, 1024 + k, &b, &blen), 0);
        assert_int_equal(alen, blen);
        assert_memory_equal(a, b, alen);
    }
    wl_cleanup(full);
    wl_cleanup(ctx);

    assert_int_equal(wl_mandelbrot_task("short", 5, &out), WL_CODE_EINPUT);
    assert_int_equal(wl_mandelbrot_encode(&in, 0, 1, 10, 0, 0, 1, 1), 0);
    assert_int_equal(wl_mandelbrot_task(in.data, in.len, &out),
                     WL_CODE_EINPUT);
    ex_buf_free(&in);
    ex_buf_free(&out);
}

/* ------------------------------------------------------------ table */

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
    assert_int_equal(wl_check(ctx, 1, out.data, out.len, err, sizeof err),
                     EX_EINVAL);
    ex_buf_free(&out);
    /* One instance at a time: the second prepare says so. */
    wl_params *p = params_of("table", kv, 2);
    wl_ctx *other = NULL;
    assert_int_equal(wl_prepare(wl_find("table"), p, 1, 7, 0, &other, err,
                                sizeof err),
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primes),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_compress),
        cmocka_unit_test(test_blur_constant),
        cmocka_unit_test(test_blur_impulse),
        cmocka_unit_test(test_mandelbrot),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
