/*
 * test_cli.c: harness/cli.c's list parser, the one behind sweep --workers
 * and transport --sizes: the values each accepted form expands to, and
 * one message on stderr, naming the option and the item, per bad list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cli.h"
#include "util.h"

#include <string.h>
#include <unistd.h>

static const pb_list_rule workers = {.min = 1, .max = 4096, .ranges = true, .cap = 64};
static const pb_list_rule sizes = {.max = (uint64_t)1 << 30, .suffixes = true, .cap = 4};

/* pb_parse_u64_list with stderr captured into err. */
static int parse(const pb_list_rule *rule, const char *opt, const char *text, uint64_t *out,
                 size_t *n, char *err, size_t errlen)
{
    fd_capture ce;
    assert_int_equal(fd_capture_begin(&ce, STDERR_FILENO), 0);
    int rc = pb_parse_u64_list("test", opt, text, rule, out, n);
    fd_capture_end(&ce);
    size_t len = 0;
    char *text_err = fd_capture_text(&ce, &len);
    assert_non_null(text_err);
    snprintf(err, errlen, "%s", text_err);
    free(text_err);
    fd_capture_close(&ce);
    return rc;
}

static void test_forms(void **state)
{
    (void)state;
    uint64_t v[64];
    size_t n;
    char err[512];
    assert_int_equal(parse(&workers, "--workers", "1,2,4", v, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[2], 4);
    assert_int_equal(parse(&workers, "--workers", "3-6,8", v, &n, err, sizeof err), 0);
    uint64_t range[] = {3, 4, 5, 6, 8};
    assert_int_equal(n, 5);
    assert_memory_equal(v, range, sizeof range);
    /* A-BxF: A, A*F, ... up to B, B itself only when reached */
    assert_int_equal(parse(&workers, "--workers", "1-64x2", v, &n, err, sizeof err), 0);
    assert_int_equal(n, 7);
    assert_int_equal(v[6], 64);
    assert_int_equal(parse(&workers, "--workers", "3-100x3", v, &n, err, sizeof err), 0);
    uint64_t geo[] = {3, 9, 27, 81};
    assert_int_equal(n, 4);
    assert_memory_equal(v, geo, sizeof geo);
    assert_int_equal(parse(&workers, "--workers", "4096-4096", v, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    /* suffixes: x 1024^n */
    assert_int_equal(parse(&sizes, "--sizes", "0,64,4k,1M", v, &n, err, sizeof err), 0);
    uint64_t bytes[] = {0, 64, 4096, 1 << 20};
    assert_int_equal(n, 4);
    assert_memory_equal(v, bytes, sizeof bytes);
    assert_int_equal(parse(&sizes, "--sizes", "1G", v, &n, err, sizeof err), 0);
    assert_int_equal(v[0], (uint64_t)1 << 30);
    assert_string_equal(err, "");
}

static void test_errors(void **state)
{
    (void)state;
    struct { const pb_list_rule *rule; const char *opt, *text, *says; } bad[] = {
        {&workers, "--workers", "0", "item '0'"},
        {&workers, "--workers", "8-2", "item '8-2'"},
        {&workers, "--workers", "1-64x1", "F >= 2"},
        {&workers, "--workers", "1-4097", "<= 4096"},
        {&workers, "--workers", "abc", "item 'abc'"},
        {&workers, "--workers", "2,-3", "item '-3'"},
        {&workers, "--workers", "1k", "item '1k'"},          /* no suffixes here */
        {&workers, "--workers", "1-65", "at most 64 values"},
        {&workers, "--workers", ",", "is empty"},
        {&workers, "--workers", "", "is empty"},
        {&sizes, "--sizes", "2G", "[0, 1073741824]"},
        {&sizes, "--sizes", "1-4", "item '1-4'"},             /* no ranges here */
        {&sizes, "--sizes", "4x", "item '4x'"},
        {&sizes, "--sizes", "99999999999999999999", "item '9"},
        {&sizes, "--sizes", "17179869184G", "item '17179869184G'"}, /* overflows */
        {&sizes, "--sizes", "1,2,3,4,5", "at most 4 values"},
    };
    char long_list[600];
    memset(long_list, '1', sizeof long_list - 1);
    long_list[sizeof long_list - 1] = 0;
    for (size_t i = 0; i <= sizeof bad / sizeof bad[0]; i++) {
        bool last = i == sizeof bad / sizeof bad[0];
        const pb_list_rule *rule = last ? &sizes : bad[i].rule;
        const char *opt = last ? "--sizes" : bad[i].opt;
        uint64_t v[64];
        size_t n;
        char err[512];
        int rc = parse(rule, opt, last ? long_list : bad[i].text, v, &n, err, sizeof err);
        const char *says = last ? "too long" : bad[i].says;
        /* one line, naming the option */
        if (rc != PB_EXIT_USAGE || strncmp(err, "poolbench test: ", 16) != 0 ||
            !strstr(err, opt) || !strstr(err, says) || strchr(err, '\n') != err + strlen(err) - 1) {
            print_error("case %zu: rc %d, stderr \"%s\"\n", i, rc, err);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
