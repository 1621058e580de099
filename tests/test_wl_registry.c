/*
 * test_wl_registry.c: the workload registry and parameter parsing (with
 * their exact error messages), the digest (order-independent, the
 * documented construction), determinism across preparations and seeds,
 * and the lifecycle's errors.
 */
#include "wl_util.h"

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
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_lifecycle_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
