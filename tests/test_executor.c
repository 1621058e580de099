/*
 * test_executor.c: the ex_ contract, table-driven over the three backends
 * wherever the behaviour is shared (results, cancel, timeouts, callbacks,
 * then, ex_wait, as_completed, map, on_full, the shutdown matrix, resource
 * counts).  Blocking tasks wait on a "gate" pipe created before ex_create,
 * so they work the same in a thread and in a forked worker, and tests never
 * depend on how fast a loaded machine runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ex_internal.h"
#include "proc_counts.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const ex_kind all_kinds[] = {EX_SEQ, EX_THREADS, EX_PROCS};
static const ex_kind pool_kinds[] = {EX_THREADS, EX_PROCS};
#define NKINDS(a) (sizeof(a) / sizeof((a)[0]))

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------ tasks */

static int gate_fd[2] = {-1, -1};

static void gate_open(int n)
{
    for (int i = 0; i < n; i++) {
        char c = 'g';
        assert_int_equal(write(gate_fd[1], &c, 1), 1);
    }
}

/* Blocks until the test writes one byte to the gate. */
static int task_gate(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    char c;
    ssize_t r;
    do
        r = read(gate_fd[0], &c, 1);
    while (r == -1 && errno == EINTR);
    return ex_buf_append(out, "gated", 5) ? 9 : 0;
}

/* out = 2 * in + 1 (uint32). */
static int task_double(const void *in, size_t len, ex_buf *out)
{
    if (len != sizeof(uint32_t))
        return 22;
    uint32_t v;
    memcpy(&v, in, sizeof v);
    v = 2 * v + 1;
    return ex_buf_append(out, &v, sizeof v) ? 9 : 0;
}

/* Fails with code = the input value when it is odd. */
static int task_fail_odd(const void *in, size_t len, ex_buf *out)
{
    uint32_t v;
    if (len != sizeof v)
        return 22;
    memcpy(&v, in, sizeof v);
    if (v % 2)
        return (int)v;
    return ex_buf_append(out, &v, sizeof v) ? 9 : 0;
}

static int task_fail7(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    return 7;
}

/* Sleeps the uint32 number of ms in the input, returns it. */
static int task_sleep(const void *in, size_t len, ex_buf *out)
{
    uint32_t ms;
    if (len != sizeof ms)
        return 22;
    memcpy(&ms, in, sizeof ms);
    sleep_ms(ms);
    return ex_buf_append(out, &ms, sizeof ms) ? 9 : 0;
}

static int task_spin(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < 20000000; i++)
        x += i;
    return ex_buf_append(out, (const void *)&x, sizeof x) ? 9 : 0;
}

static int task_empty(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static ex_executor *make(ex_kind kind, unsigned workers)
{
    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = workers;
    ex_executor *ex = NULL;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    assert_non_null(ex);
    return ex;
}

static void wait_running(ex_future *f)
{
    for (int i = 0; i < 20000 && ex_future_state(f) == EX_PENDING; i++)
        sleep_ms(1);
    assert_int_equal(ex_future_state(f), EX_RUNNING);
}

static uint32_t u32_of(ex_future *f)
{
    const void *out;
    size_t len;
    assert_int_equal(ex_future_result(f, &out, &len, EX_FOREVER), 0);
    assert_int_equal(len, sizeof(uint32_t));
    uint32_t v;
    memcpy(&v, out, sizeof v);
    return v;
}

static int group_setup(void **state)
{
    (void)state;
    /* Not O_CLOEXEC: forked workers must inherit the gate. */
    return pipe(gate_fd);
}

static int group_teardown(void **state)
{
    (void)state;
    close(gate_fd[0]);
    close(gate_fd[1]);
    return 0;
}

/* ------------------------------------------------------------------ tests */

static void test_many_tasks(void **state)
{
    (void)state;
    enum { N = 10000 };
    static uint32_t in[N];
    static ex_future *fs[N];
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        ex_executor *ex = make(all_kinds[k], 2);
        for (uint32_t i = 0; i < N; i++) {
            in[i] = i;
            assert_int_equal(ex_submit(ex, task_double, &in[i], sizeof in[i], &fs[i]), 0);
        }
        size_t ndone = 0;
        assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, EX_FOREVER, &ndone), 0);
        assert_int_equal(ndone, N);
        for (uint32_t i = 0; i < N; i++) {
            assert_int_equal(ex_future_state(fs[i]), EX_DONE);
            assert_int_equal(u32_of(fs[i]), 2 * i + 1);
            ex_future_release(fs[i]);
        }
        ex_destroy(ex);
    }
}

static void test_cancel(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        ex_executor *ex = make(pool_kinds[k], 1);
        ex_future *run, *pend;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &run), 0);
        uint32_t v = 5;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &pend), 0);
        wait_running(run);
        assert_int_equal(ex_future_cancel(run), EX_EINVAL);
        assert_int_equal(ex_future_cancel(pend), 0);
        assert_int_equal(ex_future_state(pend), EX_CANCELLED);
        assert_int_equal(ex_future_result(pend, NULL, NULL, 0), EX_ECANCELLED);
        assert_int_equal(ex_future_cancel(pend), EX_EINVAL); /* already final */
        gate_open(1);
        assert_int_equal(ex_future_result(run, NULL, NULL, EX_FOREVER), 0);
        assert_int_equal(ex_future_cancel(run), EX_EINVAL);
        ex_future_release(run);
        ex_future_release(pend);
        ex_destroy(ex);
    }
    /* seq: the task ran inside submit, so it can no longer be cancelled. */
    ex_executor *ex = make(EX_SEQ, 1);
    uint32_t v = 1;
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), 0);
    assert_int_equal(ex_future_state(f), EX_DONE);
    assert_int_equal(ex_future_cancel(f), EX_EINVAL);
    ex_future_release(f);
    ex_destroy(ex);
}

static void test_result_timeout(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        ex_executor *ex = make(pool_kinds[k], 1);
        ex_future *f;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
        uint64_t t0 = ex_now_ns();
        assert_int_equal(ex_future_result(f, NULL, NULL, 20 * 1000000LL), EX_ETIMEDOUT);
        assert_true(ex_now_ns() - t0 >= 20 * 1000000ULL);
        assert_int_equal(ex_future_result(f, NULL, NULL, 0), EX_ETIMEDOUT);
        assert_int_equal(ex_future_wait(f, 0), EX_ETIMEDOUT);
        gate_open(1);
        const void *out;
        size_t len;
        assert_int_equal(ex_future_result(f, &out, &len, EX_FOREVER), 0);
        assert_memory_equal(out, "gated", 5);
        ex_future_release(f);
        ex_destroy(ex);
    }
}

typedef struct cb_log {
    pthread_mutex_t lock;
    int order[8];
    int n;
} cb_log;

static cb_log cblog = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void cb_record(ex_future *f, void *arg)
{
    (void)f;
    pthread_mutex_lock(&cblog.lock);
    cblog.order[cblog.n++] = (int)(intptr_t)arg;
    pthread_mutex_unlock(&cblog.lock);
}

static void test_callbacks(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        cblog.n = 0;
        ex_executor *ex = make(pool_kinds[k], 1);
        ex_future *f;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
        for (intptr_t i = 1; i <= 3; i++)
            assert_int_equal(ex_future_on_done(f, cb_record, (void *)i), 0);
        assert_int_equal(cblog.n, 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
        /* Callbacks run after waiters are woken: wait for the third. */
        for (int i = 0; i < 10000; i++) {
            pthread_mutex_lock(&cblog.lock);
            int n = cblog.n;
            pthread_mutex_unlock(&cblog.lock);
            if (n == 3)
                break;
            sleep_ms(1);
        }
        /* The completer sets n = 3 inside the third callback; until it has
         * left its callback loop, a new callback is appended to that loop
         * (still in order) rather than run here.  Wait for it to leave. */
        for (int i = 0; i < 10000; i++) {
            pthread_mutex_lock(&f->lock);
            bool busy = f->running_callbacks;
            pthread_mutex_unlock(&f->lock);
            if (!busy)
                break;
            sleep_ms(1);
        }
        /* Added after completion: runs at once, in this thread, last. */
        assert_int_equal(ex_future_on_done(f, cb_record, (void *)4), 0);
        pthread_mutex_lock(&cblog.lock);
        assert_int_equal(cblog.n, 4);
        for (int i = 0; i < 4; i++)
            assert_int_equal(cblog.order[i], i + 1);
        pthread_mutex_unlock(&cblog.lock);
        ex_future_release(f);
        ex_destroy(ex);
    }
    /* seq: done inside submit, so a callback runs immediately. */
    cblog.n = 0;
    ex_executor *ex = make(EX_SEQ, 1);
    uint32_t v = 3;
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), 0);
    assert_int_equal(ex_future_on_done(f, cb_record, (void *)9), 0);
    assert_int_equal(cblog.n, 1);
    assert_int_equal(cblog.order[0], 9);
    assert_int_equal(ex_future_on_done(f, NULL, NULL), EX_EINVAL);
    ex_future_release(f);
    ex_destroy(ex);
}

static void test_then(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        ex_executor *ex = make(all_kinds[k], 2);
        uint32_t v = 3;
        ex_future *a, *b, *c;
        /* Success: ((3*2+1)*2+1)*2+1 = 31 */
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &a), 0);
        assert_int_equal(ex_future_then(a, ex, task_double, &b), 0);
        assert_int_equal(ex_future_then(b, ex, task_double, &c), 0);
        assert_int_equal(u32_of(c), 31);
        assert_int_equal(u32_of(b), 15);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        /* A failure in the middle propagates with its code. */
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &a), 0);
        assert_int_equal(ex_future_then(a, ex, task_fail7, &b), 0);
        assert_int_equal(ex_future_then(b, ex, task_double, &c), 0);
        assert_int_equal(ex_future_result(c, NULL, NULL, EX_FOREVER), EX_ETASK);
        assert_int_equal(ex_future_state(c), EX_FAILED);
        assert_int_equal(ex_future_task_code(c), 7);
        assert_int_equal(ex_future_task_code(b), 7);
        assert_int_equal(ex_future_state(a), EX_DONE);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        ex_destroy(ex);
    }
    /* Cancellation propagates along the chain. */
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        ex_executor *ex = make(pool_kinds[k], 1);
        ex_future *g, *a, *b, *c;
        uint32_t v = 1;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &g), 0);
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &a), 0);
        assert_int_equal(ex_future_then(a, ex, task_double, &b), 0);
        assert_int_equal(ex_future_then(b, ex, task_double, &c), 0);
        assert_int_equal(ex_future_cancel(a), 0);
        assert_int_equal(ex_future_state(b), EX_CANCELLED);
        assert_int_equal(ex_future_state(c), EX_CANCELLED);
        assert_int_equal(ex_future_result(c, NULL, NULL, 0), EX_ECANCELLED);
        gate_open(1);
        ex_future_release(g);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        ex_destroy(ex);
    }
}

static void test_wait_modes(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        ex_executor *ex = make(pool_kinds[k], 2);
        ex_future *fs[2];
        uint32_t v = 4;
        /* FIRST_COMPLETED: one quick, one gated. */
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &fs[0]), 0);
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &fs[1]), 0);
        size_t nd = 99;
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_COMPLETED, EX_FOREVER, &nd), 0);
        assert_int_equal(nd, 1);
        assert_int_equal(ex_future_state(fs[1]), EX_DONE);
        /* ALL_COMPLETED times out while the gate is shut. */
        assert_int_equal(ex_wait(fs, 2, EX_ALL_COMPLETED, 10 * 1000000LL, &nd), EX_ETIMEDOUT);
        assert_int_equal(nd, 1);
        assert_int_equal(ex_wait(fs, 2, EX_ALL_COMPLETED, 0, &nd), EX_ETIMEDOUT);
        /* FIRST_FAILED: already satisfied? No failure yet, so it waits. */
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_FAILED, 10 * 1000000LL, &nd), EX_ETIMEDOUT);
        gate_open(1);
        assert_int_equal(ex_wait(fs, 2, EX_ALL_COMPLETED, EX_FOREVER, &nd), 0);
        assert_int_equal(nd, 2);
        /* FIRST_FAILED with no failure behaves as ALL_COMPLETED. */
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_FAILED, EX_FOREVER, &nd), 0);
        ex_future_release(fs[0]);
        ex_future_release(fs[1]);
        /* FIRST_FAILED returns on the failure while another still runs. */
        uint32_t odd = 3;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &fs[0]), 0);
        assert_int_equal(ex_submit(ex, task_fail_odd, &odd, sizeof odd, &fs[1]), 0);
        assert_int_equal(ex_wait(fs, 2, EX_FIRST_FAILED, EX_FOREVER, &nd), 0);
        assert_int_equal(ex_future_state(fs[1]), EX_FAILED);
        assert_int_equal(ex_future_task_code(fs[1]), 3);
        assert_int_not_equal(ex_future_state(fs[0]), EX_DONE);
        gate_open(1);
        ex_future_release(fs[0]);
        ex_future_release(fs[1]);
        assert_int_equal(ex_wait(NULL, 0, EX_ALL_COMPLETED, 0, &nd), 0);
        assert_int_equal(ex_wait(fs, 2, (ex_wait_mode)9, 0, &nd), EX_EINVAL);
        ex_destroy(ex);
    }
}

/* Task i of test_as_completed blocks on its own gate and returns i, so
 * the test decides the completion order, however the machine schedules. */
static int order_gate[3][2];

static int task_order_gate(const void *in, size_t len, ex_buf *out)
{
    (void)len;
    uint32_t i;
    memcpy(&i, in, sizeof i);
    char c;
    ssize_t r;
    do
        r = read(order_gate[i][0], &c, 1);
    while (r == -1 && errno == EINTR);
    return r == 1 ? ex_buf_append(out, &i, sizeof i) : 9;
}

static void order_gate_open(uint32_t i)
{
    char c = 'g';
    assert_int_equal(write(order_gate[i][1], &c, 1), 1);
}

static void test_as_completed(void **state)
{
    (void)state;
    const uint32_t order[3] = {1, 2, 0}; /* the completion order the test makes */
    for (int i = 0; i < 3; i++)
        assert_int_equal(pipe(order_gate[i]), 0);
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        bool seq = all_kinds[k] == EX_SEQ;
        ex_executor *ex = make(all_kinds[k], 3);
        uint32_t in[3] = {0, 1, 2};
        ex_future *fs[3];
        for (uint32_t i = 0; seq && i < 3; i++)
            order_gate_open(i); /* seq runs each task inside its submit */
        for (int i = 0; i < 3; i++)
            assert_int_equal(ex_submit(ex, task_order_gate, &in[i], sizeof in[i], &fs[i]), 0);
        ex_as_completed *it;
        assert_int_equal(ex_as_completed_create(fs, 3, &it), 0);
        for (int i = 0; i < 3; i++) {
            /* Pools: let exactly the next one finish, then it must be the
             * one as_completed yields.  seq: everything is done, in array
             * order. */
            uint32_t want = seq ? (uint32_t)i : order[i];
            if (!seq)
                order_gate_open(want);
            ex_future *f;
            assert_int_equal(ex_as_completed_next(it, &f, EX_FOREVER), 0);
            assert_ptr_equal(f, fs[want]);
            assert_int_equal(u32_of(f), want);
        }
        ex_future *end;
        assert_int_equal(ex_as_completed_next(it, &end, 0), 0);
        assert_null(end);
        ex_as_completed_destroy(it);
        for (int i = 0; i < 3; i++)
            ex_future_release(fs[i]);
        ex_destroy(ex);
    }
    for (int i = 0; i < 3; i++) {
        close(order_gate[i][0]);
        close(order_gate[i][1]);
    }
    /* Timeout while nothing is final. */
    ex_executor *ex = make(EX_THREADS, 1);
    ex_future *f, *out;
    assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
    ex_as_completed *it;
    assert_int_equal(ex_as_completed_create(&f, 1, &it), 0);
    assert_int_equal(ex_as_completed_next(it, &out, 5 * 1000000LL), EX_ETIMEDOUT);
    gate_open(1);
    assert_int_equal(ex_as_completed_next(it, &out, EX_FOREVER), 0);
    assert_ptr_equal(out, f);
    ex_as_completed_destroy(it);
    ex_future_release(f);
    ex_destroy(ex);
}

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
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        ex_executor *ex = make(all_kinds[k], 2);
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

typedef struct submitter {
    ex_executor *ex;
    ex_future *f;
    int rc;
    atomic_bool returned;
} submitter;

static void *submit_thread(void *p)
{
    submitter *s = p;
    static uint32_t v = 8;
    s->rc = ex_submit(s->ex, task_double, &v, sizeof v, &s->f);
    atomic_store(&s->returned, true);
    return NULL;
}

static void test_on_full(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        for (int policy = 0; policy < 3; policy++) {
            ex_config cfg;
            ex_config_init(&cfg, pool_kinds[k]);
            cfg.max_workers = 1;
            cfg.queue_capacity = 2;
            cfg.on_full = (ex_on_full)policy;
            ex_executor *ex;
            if (pool_kinds[k] == EX_PROCS && policy == EX_ON_FULL_CALLER_RUNS) {
                /* No isolation in the caller: refused (test_faults). */
                assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
                continue;
            }
            assert_int_equal(ex_create(&cfg, &ex), 0);
            ex_future *blk, *q[2];
            uint32_t v = 2;
            assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &blk), 0);
            wait_running(blk);
            for (int i = 0; i < 2; i++)
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &q[i]), 0);
            ex_future *extra = NULL;
            if (policy == EX_ON_FULL_REJECT) {
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &extra), EX_EFULL);
                assert_null(extra);
                gate_open(1);
            } else if (policy == EX_ON_FULL_CALLER_RUNS) {
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &extra), 0);
                assert_int_equal(ex_future_state(extra), EX_DONE);
                ex_task_stats st;
                ex_future_stats(extra, &st);
                assert_int_equal(st.worker, EX_WORKER_CALLER);
                assert_int_equal(st.worker_pid, getpid());
                assert_int_equal(u32_of(extra), 5);
                ex_future_release(extra);
                gate_open(1);
            } else {
                submitter s = {.ex = ex};
                atomic_init(&s.returned, false);
                pthread_t th;
                assert_int_equal(pthread_create(&th, NULL, submit_thread, &s), 0);
                sleep_ms(50);
                assert_false(atomic_load(&s.returned)); /* blocked: no room */
                gate_open(1);
                pthread_join(th, NULL);
                assert_int_equal(s.rc, 0);
                assert_int_equal(u32_of(s.f), 17);
                ex_future_release(s.f);
            }
            for (int i = 0; i < 2; i++) {
                assert_int_equal(u32_of(q[i]), 5);
                ex_future_release(q[i]);
            }
            ex_future_release(blk);
            ex_destroy(ex);
        }
    }
}

typedef struct opener {
    int n;
} opener;

static void *open_later(void *p)
{
    opener *o = p;
    sleep_ms(30);
    gate_open(o->n);
    return NULL;
}

/* The shutdown matrix: 1 worker, one gated task running, 5 pending. */
static void test_shutdown_matrix(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        for (int wait = 0; wait <= 1; wait++) {
            for (int cancel = 0; cancel <= 1; cancel++) {
                ex_executor *ex = make(pool_kinds[k], 1);
                ex_future *fs[6];
                uint32_t v = 1;
                assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &fs[0]), 0);
                wait_running(fs[0]);
                for (int i = 1; i < 6; i++)
                    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &fs[i]), 0);
                pthread_t th;
                opener o = {1};
                if (wait)
                    assert_int_equal(pthread_create(&th, NULL, open_later, &o), 0);
                assert_int_equal(ex_shutdown(ex, wait, cancel), 0);
                ex_future *late;
                assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &late), EX_ESHUTDOWN);
                int done = 0, cancelled = 0, other = 0;
                if (wait) {
                    pthread_join(th, NULL);
                    for (int i = 0; i < 6; i++) {
                        ex_state s = ex_future_state(fs[i]);
                        done += s == EX_DONE;
                        cancelled += s == EX_CANCELLED;
                        other += s != EX_DONE && s != EX_CANCELLED;
                    }
                } else {
                    assert_int_equal(ex_future_state(fs[0]), EX_RUNNING);
                    for (int i = 1; i < 6; i++)
                        assert_int_equal(ex_future_state(fs[i]),
                                         cancel ? EX_CANCELLED : EX_PENDING);
                    gate_open(1);
                    ex_destroy(ex);
                    ex = NULL;
                    for (int i = 0; i < 6; i++) {
                        ex_state s = ex_future_state(fs[i]);
                        done += s == EX_DONE;
                        cancelled += s == EX_CANCELLED;
                        other += s != EX_DONE && s != EX_CANCELLED;
                    }
                }
                assert_int_equal(other, 0);
                assert_int_equal(done, cancel ? 1 : 6);
                assert_int_equal(cancelled, cancel ? 5 : 0);
                for (int i = 0; i < 6; i++)
                    ex_future_release(fs[i]);
                ex_destroy(ex);
            }
        }
    }
    ex_executor *ex = make(EX_SEQ, 1);
    assert_int_equal(ex_shutdown(ex, 1, 1), 0);
    assert_int_equal(ex_shutdown(ex, 1, 0), 0); /* again: allowed */
    uint32_t v = 0;
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), EX_ESHUTDOWN);
    ex_destroy(ex);
}

static void test_resources_released(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        int fds = pc_open_fds(), threads = pc_threads(), kids = pc_children();
        ex_executor *ex = make(all_kinds[k], 3);
        ex_future *f;
        uint32_t v = 1;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), 0);
        assert_int_equal(u32_of(f), 3);
        ex_future_release(f);
        if (all_kinds[k] == EX_THREADS)
            assert_int_equal(pc_threads(), threads + 3);
        ex_destroy(ex);
        assert_int_equal(pc_open_fds(), fds);
        assert_int_equal(pc_threads(), threads);
        assert_int_equal(pc_children(), kids);
    }
}

static atomic_int started_mask;

static int hook_start(unsigned index, void *arg)
{
    (void)arg;
    atomic_fetch_or(&started_mask, 1 << index);
    return 0;
}

static int init_fail(void *arg)
{
    (void)arg;
    return 1;
}

static void test_hooks_and_broken(void **state)
{
    (void)state;
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    cfg.max_workers = 4;
    cfg.worker_start = hook_start;
    atomic_store(&started_mask, 0);
    ex_executor *ex;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    /* ex_create returns once every worker ran its hook. */
    assert_int_equal(atomic_load(&started_mask), 0xf);
    assert_int_equal(ex_workers(ex), 4);
    assert_false(ex_is_broken(ex));
    ex_destroy(ex);
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        ex_config_init(&cfg, all_kinds[k]);
        cfg.max_workers = 2;
        cfg.initializer = init_fail;
        assert_int_equal(ex_create(&cfg, &ex), 0);
        assert_true(ex_is_broken(ex));
        ex_future *f = NULL;
        uint32_t v = 0;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &f), EX_EBROKEN);
        assert_null(f);
        ex_destroy(ex);
    }
}

static void test_stats(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        ex_executor *ex = make(all_kinds[k], 2);
        ex_future *f;
        assert_int_equal(ex_submit(ex, task_spin, NULL, 0, &f), 0);
        assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(f, &st), 0);
        assert_true(st.submit_ns <= st.start_ns);
        assert_true(st.start_ns <= st.end_ns);
        assert_true(st.cpu_ns > 0);
        /* CPU is measured inside [start, end]: blocked is not negative
         * beyond the thread clock's granularity. */
        assert_true(st.cpu_ns <= st.end_ns - st.start_ns + 1000000);
        assert_true(st.worker >= 0 && st.worker < 2);
        assert_true(st.cpu >= 0);
        assert_true(st.worker_pid > 0);
        if (all_kinds[k] == EX_PROCS)
            assert_int_not_equal(st.worker_pid, getpid());
        else
            assert_int_equal(st.worker_pid, getpid());
        assert_true(st.flags & EX_STATS_CPU);
        ex_future_release(f);
        /* A sleeping task: its time is blocked, not CPU, and the three
         * parts are each non-negative and add up to the latency. */
        uint32_t ms = 30;
        assert_int_equal(ex_submit(ex, task_sleep, &ms, sizeof ms, &f), 0);
        assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
        assert_int_equal(ex_future_stats(f, &st), 0);
        uint64_t run = st.end_ns - st.start_ns;
        assert_true(run >= 30 * 1000000ULL);
        assert_true(st.cpu_ns <= run);
        uint64_t wait = st.start_ns - st.submit_ns, blocked = run - st.cpu_ns;
        assert_true(blocked >= 20 * 1000000ULL); /* sleeping is not CPU */
        assert_true(st.cpu_ns < 10 * 1000000ULL);
        assert_int_equal(wait + st.cpu_ns + blocked, st.end_ns - st.submit_ns);
        assert_true(st.nvcsw >= 1); /* nanosleep blocks: a voluntary switch */
        ex_future_release(f);
        ex_destroy(ex);
    }
    /* measure_cpu off: timestamps stay, CPU is marked unmeasured. */
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    cfg.max_workers = 1;
    cfg.measure_cpu = false;
    ex_executor *ex;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_spin, NULL, 0, &f), 0);
    assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
    ex_task_stats st;
    assert_int_equal(ex_future_stats(f, &st), 0);
    assert_false(st.flags & EX_STATS_CPU);
    assert_int_equal(st.cpu_ns, 0);
    assert_true(st.end_ns > st.start_ns);
    ex_future_release(f);
    ex_destroy(ex);
}

/* Futures come from the executor's cache and may outlive it: results,
 * stats and chains stay readable after ex_destroy, and releasing them
 * afterwards frees everything (ASan and valgrind check the rest). */
static void test_futures_outlive_executor(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(all_kinds); k++) {
        ex_executor *ex = make(all_kinds[k], 2);
        enum { N = 64 };
        ex_future *fs[N], *chained;
        uint32_t in[N];
        /* Twice: the second round reuses the first round's futures. */
        for (int round = 0; round < 2; round++) {
            for (uint32_t i = 0; i < N; i++) {
                in[i] = i;
                assert_int_equal(ex_submit(ex, task_double, &in[i], sizeof in[i], &fs[i]), 0);
            }
            assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, EX_FOREVER, NULL), 0);
            if (round == 0)
                for (int i = 0; i < N; i++)
                    ex_future_release(fs[i]);
        }
        assert_int_equal(ex_future_then(fs[3], ex, task_double, &chained), 0);
        assert_int_equal(ex_future_wait(chained, EX_FOREVER), 0);
        ex_destroy(ex);
        for (uint32_t i = 0; i < N; i++) {
            assert_int_equal(u32_of(fs[i]), 2 * i + 1);
            ex_task_stats st;
            assert_int_equal(ex_future_stats(fs[i], &st), 0);
            ex_future_release(fs[i]);
        }
        assert_int_equal(u32_of(chained), 2 * 7 + 1);
        ex_future_release(chained);
    }
}

/* Several threads submit at once, to an unbounded and to a bounded BLOCK
 * queue, while the pool is shut down under them: every submission either
 * fails with EX_ESHUTDOWN or gives a future that ends final (run, or
 * cancelled by cancel_pending), and nothing is stranded. */
typedef struct burst {
    ex_executor *ex;
    ex_future **fs;
    size_t n, accepted;
    int bad_rc; /* a submit result other than 0 or EX_ESHUTDOWN */
    atomic_size_t *accepted_all; /* every submitter's accepted tasks */
} burst;

static void *submit_burst(void *p)
{
    burst *s = p;
    for (size_t i = 0; i < s->n; i++) {
        int rc = ex_submit(s->ex, task_empty, NULL, 0, &s->fs[s->accepted]);
        if (rc == EX_ESHUTDOWN)
            break;
        if (rc != 0) { /* checked by the test thread: no assert here */
            s->bad_rc = rc;
            break;
        }
        s->accepted++;
        atomic_fetch_add(s->accepted_all, 1);
    }
    return NULL;
}

static void test_concurrent_submitters(void **state)
{
    (void)state;
    enum { T = 4, N = 5000 };
    for (int variant = 0; variant < 4; variant++) {
        bool bounded = variant & 1, shut_early = variant & 2;
        ex_config cfg;
        ex_config_init(&cfg, EX_THREADS);
        cfg.max_workers = 2;
        cfg.queue_capacity = bounded ? 8 : 0;
        ex_executor *ex;
        assert_int_equal(ex_create(&cfg, &ex), 0);
        burst subs[T];
        pthread_t th[T];
        atomic_size_t accepted_all = 0;
        for (int i = 0; i < T; i++) {
            subs[i] = (burst){.ex = ex, .n = N, .fs = calloc(N, sizeof(ex_future *)),
                              .accepted_all = &accepted_all};
            assert_non_null(subs[i].fs);
            assert_int_equal(pthread_create(&th[i], NULL, submit_burst, &subs[i]), 0);
        }
        if (shut_early) {
            /* Shut down while they submit: once some task got in, however
             * slowly a loaded machine schedules the submitters. */
            for (int i = 0; i < 60000 && atomic_load(&accepted_all) == 0; i++)
                sleep_ms(1);
            assert_int_not_equal(atomic_load(&accepted_all), 0);
            assert_int_equal(ex_shutdown(ex, 0, 1), 0);
        }
        for (int i = 0; i < T; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_int_equal(subs[i].bad_rc, 0);
        }
        ex_destroy(ex);
        size_t total = 0;
        for (int i = 0; i < T; i++) {
            if (!shut_early)
                assert_int_equal(subs[i].accepted, N);
            for (size_t j = 0; j < subs[i].accepted; j++) {
                ex_state st = ex_future_state(subs[i].fs[j]);
                assert_true(st == EX_DONE || (shut_early && st == EX_CANCELLED));
                ex_future_release(subs[i].fs[j]);
            }
            total += subs[i].accepted;
            free(subs[i].fs);
        }
        assert_true(total > 0);
    }
}

typedef struct reentry {
    ex_executor *ex;
    ex_future *submitted;          /* published by the store to submit_rc */
    atomic_int submit_rc, shutdown_rc;
} reentry;

static void cb_submit_again(ex_future *f, void *arg)
{
    (void)f;
    reentry *r = arg;
    static uint32_t v = 20;
    int rc = ex_submit(r->ex, task_double, &v, sizeof v, &r->submitted);
    atomic_store(&r->submit_rc, rc);
}

static void cb_shutdown_wait(ex_future *f, void *arg)
{
    (void)f;
    reentry *r = arg;
    atomic_store(&r->shutdown_rc, ex_shutdown(r->ex, 1, 0));
}

/* Callbacks run on a worker (threads) or the dispatcher (procs): submitting
 * to the same full BLOCK queue must not wait forever, and shutdown(wait)
 * from there cannot join itself. */
static void test_callback_reentry(void **state)
{
    (void)state;
    for (size_t k = 0; k < NKINDS(pool_kinds); k++) {
        ex_config cfg;
        ex_config_init(&cfg, pool_kinds[k]);
        cfg.max_workers = 1;
        cfg.queue_capacity = 1;
        cfg.on_full = EX_ON_FULL_BLOCK;
        ex_executor *ex;
        assert_int_equal(ex_create(&cfg, &ex), 0);
        ex_future *a, *b;
        uint32_t v = 1;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &a), 0);
        wait_running(a);
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &b), 0); /* full now */
        reentry r = {.ex = ex};
        atomic_init(&r.submit_rc, 99);
        atomic_init(&r.shutdown_rc, 99);
        assert_int_equal(ex_future_on_done(a, cb_submit_again, &r), 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(b, EX_FOREVER), 0);
        for (int i = 0; i < 10000 && atomic_load(&r.submit_rc) == 99; i++)
            sleep_ms(1);
        assert_int_equal(atomic_load(&r.submit_rc), 0);
        assert_int_equal(u32_of(r.submitted), 41);
        ex_future_release(r.submitted);
        /* shutdown(wait=1) from a callback: EX_EINVAL, the pool still stops. */
        ex_future *c;
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &c), 0);
        wait_running(c);
        assert_int_equal(ex_future_on_done(c, cb_shutdown_wait, &r), 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(c, EX_FOREVER), 0);
        for (int i = 0; i < 10000 && atomic_load(&r.shutdown_rc) == 99; i++)
            sleep_ms(1);
        assert_int_equal(atomic_load(&r.shutdown_rc), EX_EINVAL);
        ex_future *late;
        assert_int_equal(ex_submit(ex, task_double, &v, sizeof v, &late), EX_ESHUTDOWN);
        ex_future_release(a);
        ex_future_release(b);
        ex_future_release(c);
        ex_destroy(ex);
    }
}

static void test_errors(void **state)
{
    (void)state;
    ex_executor *ex = NULL;
    ex_config cfg;
    assert_int_equal(ex_create(NULL, &ex), EX_EINVAL);
    ex_config_init(&cfg, EX_THREADS);
    cfg.kind = (ex_kind)7;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
    ex_config_init(&cfg, EX_THREADS);
    cfg.on_full = (ex_on_full)9;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
    ex_config_init(&cfg, EX_PROCS);
    cfg.timeout_ns = -5;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
    assert_null(ex);
    ex = make(EX_THREADS, 1);
    ex_future *f;
    assert_int_equal(ex_submit(ex, NULL, NULL, 0, &f), EX_EINVAL);
    assert_int_equal(ex_submit(ex, task_empty, NULL, 5, &f), EX_EINVAL);
    assert_int_equal(ex_submit(NULL, task_empty, NULL, 0, &f), EX_EINVAL);
    assert_int_equal(ex_future_then(NULL, ex, task_empty, &f), EX_EINVAL);
    assert_int_equal(ex_future_wait(NULL, 0), EX_EINVAL);
    assert_int_equal(ex_future_cancel(NULL), EX_EINVAL);
    ex_task_stats st;
    assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
    assert_int_equal(ex_future_stats(f, &st), EX_EINVAL); /* not final yet */
    gate_open(1);
    assert_int_equal(ex_future_wait(f, EX_FOREVER), 0);
    assert_int_equal(ex_future_stats(f, &st), 0);
    ex_future_release(f);
    assert_int_equal(ex_shutdown(NULL, 1, 1), EX_EINVAL);
    ex_destroy(ex);
    ex_destroy(NULL);
    ex_future_release(NULL);
    for (int s = 0; s >= -10; s--)
        assert_true(strncmp(ex_strerror(s), "EX_", 3) == 0);
    assert_string_equal(ex_strerror(-99), "EX_E?: unknown status");
    ex_kind kind;
    assert_int_equal(ex_kind_parse("procs", &kind), 0);
    assert_int_equal(kind, EX_PROCS);
    assert_int_equal(ex_kind_parse("fibers", &kind), EX_EINVAL);
    assert_int_equal(ex_default_workers() >= 5, 1);
    assert_true(ex_default_workers() <= 32);
}

static void test_buf(void **state)
{
    (void)state;
    ex_buf b = {0};
    assert_int_equal(ex_buf_append(&b, "abc", 3), 0);
    char *p = ex_buf_extend(&b, 1000);
    assert_non_null(p);
    memset(p, 'x', 1000);
    assert_int_equal(b.len, 1003);
    assert_memory_equal(b.data, "abcx", 4);
    assert_int_equal(ex_buf_reserve(&b, SIZE_MAX), EX_ENOMEM);
    assert_int_equal(ex_buf_reserve(NULL, 1), EX_EINVAL);
    ex_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_tasks),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_result_timeout),
        cmocka_unit_test(test_callbacks),
        cmocka_unit_test(test_then),
        cmocka_unit_test(test_wait_modes),
        cmocka_unit_test(test_as_completed),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_on_full),
        cmocka_unit_test(test_shutdown_matrix),
        cmocka_unit_test(test_resources_released),
        cmocka_unit_test(test_hooks_and_broken),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_futures_outlive_executor),
        cmocka_unit_test(test_concurrent_submitters),
        cmocka_unit_test(test_callback_reentry),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_buf),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
