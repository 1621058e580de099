/*
 * test_json.c: harness/json.c, the one JSON writer of the harness: the
 * exact text of numbers in each field's format, null for what JSON cannot
 * hold, escaping, key order, one line for a single write().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* doc as pb_json_line writes it, released. */
static char *line_of(json_t *doc)
{
    size_t len = 0;
    char *s = pb_json_line(doc, &len);
    assert_non_null(s);
    assert_int_equal(len, strlen(s));
    json_decref(doc);
    return s;
}

static void test_numbers(void **state)
{
    (void)state;
    json_t *j = json_object();
    int rc = pb_json_num(j, "g9", 0.123456789012, "%.9g");
    rc |= pb_json_num(j, "whole", 3.0, "%.9g");        /* "3": an integer, as before */
    rc |= pb_json_num(j, "f0", 1234.56, "%.0f");       /* "1235" */
    rc |= pb_json_num(j, "f1", 2957.0, "%.1f");        /* "2957.0": a real */
    rc |= pb_json_num(j, "f2", 0.0, "%.2f");           /* "0.00" -> 0.0 */
    rc |= pb_json_num(j, "g4", 0.056331, "%.4g");
    rc |= pb_json_num(j, "tiny", 1.5e-10, "%.9g");
    rc |= pb_json_num(j, "neg", -1.0, "%.1f");
    rc |= pb_json_num(j, "nan", NAN, "%.9g");
    rc |= pb_json_num(j, "inf", INFINITY, "%.0f");
    rc |= pb_json_num(j, "big", 123456789.5, "%.1f");  /* 10 digits kept */
    rc |= pb_json_num_text(j, "text_int", "9223372036854775807");
    rc |= pb_json_num_text(j, "text_empty", "");
    rc |= pb_json_num_text(j, "text_neg", "-12");
    rc |= pb_json_int(j, "i", -7);
    rc |= pb_json_bool(j, "b", true);
    assert_int_equal(rc, 0);
    char *s = line_of(j);
    assert_string_equal(s, "{\"g9\":0.123456789,\"whole\":3,\"f0\":1235,\"f1\":2957.0,"
                           "\"f2\":0.0,\"g4\":0.05633,\"tiny\":1.5e-10,\"neg\":-1.0,"
                           "\"nan\":null,\"inf\":null,\"big\":123456789.5,"
                           "\"text_int\":9223372036854775807,\"text_empty\":null,"
                           "\"text_neg\":-12,\"i\":-7,\"b\":true}\n");
    free(s);
}

static void test_strings_and_order(void **state)
{
    (void)state;
    json_t *j = json_object();
    /* keys stay in the order set, not sorted */
    int rc = pb_json_str(j, "z", "quote\" back\\ nl\n tab\t ctl\x01");
    rc |= pb_json_str(j, "a", "caf\xc3\xa9");          /* UTF-8 kept */
    rc |= pb_json_str(j, "m", "bad \xff\xfe byte");    /* not UTF-8: '?' */
    rc |= pb_json_str(j, "n", NULL);
    assert_int_equal(rc, 0);
    char *s = line_of(j);
    assert_string_equal(s, "{\"z\":\"quote\\\" back\\\\ nl\\n tab\\t ctl\\u0001\","
                           "\"a\":\"caf\xc3\xa9\",\"m\":\"bad ?? byte\",\"n\":null}\n");
    /* one line: the only newline ends it */
    assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
    free(s);
}

static void test_errors_and_dump(void **state)
{
    (void)state;
    /* a NULL document (json_object() out of memory) fails every setter */
    assert_int_equal(pb_json_int(NULL, "k", 1), -1);
    assert_int_equal(pb_json_str(NULL, "k", "v"), -1);
    assert_int_equal(pb_json_set(NULL, "k", json_integer(1)), -1);
    json_t *empty = json_object();
    assert_int_equal(pb_json_set(empty, "k", NULL), -1);
    assert_int_equal(json_object_size(empty), 0);
    json_decref(empty);
    assert_int_equal(pb_json_finish(stdout, NULL, 0, 0), -1);
    /* a failed build is not written, and its rc comes back */
    char buf[256] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    json_t *j = json_object();
    assert_int_equal(pb_json_int(j, "a", 1), 0);
    assert_int_equal(pb_json_finish(f, j, -1, 0), -1);
    fflush(f);
    assert_string_equal(buf, "");
    /* indented: "key": value, one per line */
    j = json_object();
    assert_int_equal(pb_json_int(j, "a", 1) | pb_json_str(j, "b", "x"), 0);
    assert_int_equal(pb_json_finish(f, j, 0, 2), 0);
    fclose(f);
    assert_string_equal(buf, "{\n  \"a\": 1,\n  \"b\": \"x\"\n}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings_and_order),
        cmocka_unit_test(test_errors_and_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
