/*
 * test_wl_io.c: the workloads that need no server: sleep (pure blocking
 * latency), mix (blocking calls among CPU work), noop (payload in, payload
 * out) and file (read and checksum files in a temporary directory).
 */
#include "wl_util.h"

#include <sys/stat.h>
#include <zlib.h>

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

/* -------------------------------------------------------------- mix */

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
        assert_int_equal(wl_check(ctx, i, out.data, out.len, err, sizeof err),
                         0);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_mix),
        cmocka_unit_test(test_noop),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
