/*
 * test_map.c: ex_map on every backend: results in input order, chunksize,
 * the buffersize window over a generator source (inputs in flight never
 * exceed it, every input is handed back), the array form, and an early
 * destroy; mpi too where it can run (test_kinds).  The source's get and
 * put run in this process whatever the backend.
 */
#include "util.h"

typedef struct counting_source {
    uint32_t *values;
    size_t live, max_live;
    size_t gets, puts;
} counting_source;

static int cs_get(void *arg, size_t i, const void **in, size_t *len)
{
    counting_source *cs = arg;
    uint32_t *v = malloc(sizeof *v); /* a generator: made on demand */
    if (!v)
        return EX_ENOMEM;
    *v = cs->values[i];
    *in = v;
    *len = sizeof *v;
    cs->gets++;
    if (++cs->live > cs->max_live)
        cs->max_live = cs->live;
    return 0;
}

static void cs_put(void *arg, size_t i, const void *in, size_t len)
{
    (void)i;
    (void)len;
    counting_source *cs = arg;
    free((void *)in);
    cs->live--;
    cs->puts++;
}

static void test_map(void **state)
{
    (void)state;
    enum { N = 1000 };
    static uint32_t vals[N];
    for (uint32_t i = 0; i < N; i++)
        vals[i] = i;
    const size_t chunks[] = {1, 7, 64};
    kind_list kinds = test_kinds(KINDS_ALL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make(kinds.kind[k], 2);
        for (size_t c = 0; c < 3; c++) {
            counting_source cs = {.values = vals};
            ex_map_source src = {.get = cs_get, .put = cs_put, .arg = &cs};
            size_t bufsize = 16 * chunks[c];
            ex_map *m;
            assert_int_equal(ex_map_create(ex, task_fail_odd, &src, N, chunks[c], bufsize, &m), 0);
            size_t expect = 0, idx;
            int st, code, rc;
            const void *out;
            size_t len;
            while ((rc = ex_map_next(m, &idx, &st, &code, &out, &len, EX_FOREVER)) == 0) {
                assert_int_equal(idx, expect);
                if (idx % 2) {
                    assert_int_equal(st, EX_ETASK);
                    assert_int_equal(code, (int)idx);
                } else {
                    assert_int_equal(st, 0);
                    assert_int_equal(len, 4);
                    uint32_t v;
                    memcpy(&v, out, 4);
                    assert_int_equal(v, idx);
                }
                assert_true(cs.live <= bufsize);
                expect++;
            }
            assert_int_equal(rc, 1);
            assert_int_equal(expect, N);
            assert_true(cs.max_live <= bufsize);
            assert_true(cs.max_live >= chunks[c]);
            ex_map_destroy(m);
            assert_int_equal(cs.gets, N);
            assert_int_equal(cs.puts, N);
            assert_int_equal(cs.live, 0);
        }
        /* The array form, unbounded. */
        const void *ins[N];
        size_t lens[N];
        for (size_t i = 0; i < N; i++) {
            ins[i] = &vals[i];
            lens[i] = sizeof vals[i];
        }
        ex_map *m;
        assert_int_equal(ex_map_create_array(ex, task_double, ins, lens, N, 10, 0, &m), 0);
        size_t idx, n = 0;
        int st;
        const void *out;
        size_t len;
        while (ex_map_next(m, &idx, &st, NULL, &out, &len, EX_FOREVER) == 0) {
            uint32_t v;
            assert_int_equal(st, 0);
            memcpy(&v, out, 4);
            assert_int_equal(v, 2 * idx + 1);
            n++;
        }
        assert_int_equal(n, N);
        ex_map_destroy(m);
        /* Destroying a map early cancels and hands every input back. */
        counting_source cs = {.values = vals};
        ex_map_source src = {.get = cs_get, .put = cs_put, .arg = &cs};
        assert_int_equal(ex_map_create(ex, task_double, &src, N, 4, 40, &m), 0);
        assert_int_equal(ex_map_next(m, &idx, &st, NULL, &out, &len, EX_FOREVER), 0);
        ex_map_destroy(m);
        assert_int_equal(cs.live, 0);
        assert_int_equal(cs.gets, cs.puts);
        ex_destroy(ex);
    }
}

int main(int argc, char **argv)
{
    if (test_start(&argc, &argv, NULL))
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
