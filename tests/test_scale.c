/*
 * test_scale.c: futures at scale, for correctness only (the speed and the
 * memory per future are measured by `make scale`, never asserted here):
 * a million pending futures all complete and release; futures spread
 * over several slabs outlive their executor, with callbacks and chains;
 * released futures are reused round after round with no cap; waiters
 * parked on one future all wake; submissions racing a shutdown leave no
 * future behind; a cancelled future's result fields are its own, also
 * when the cancel races a chain's submission; no slab to be had is
 * EX_ENOMEM.
 * Sizes shrink under the sanitizers and valgrind, which run this code
 * 5-50x slower.
 */
#include "util.h"

/* Futures in one 1 MiB slab (fcache.c): enough to cross several. */
#define SLAB_FUTURES 9361

static size_t scaled(size_t n)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    n /= 10;
#endif
    return test_under_valgrind() ? n / 50 : n;
}

/* Every worker of ex held by a gate task (into gates[workers]). */
static void hold(ex_executor *ex, ex_future **gates, unsigned workers)
{
    for (unsigned i = 0; i < workers; i++)
        assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &gates[i]), 0);
    for (unsigned i = 0; i < workers; i++)
        wait_running(gates[i]);
}

static void test_million_pending(void **state)
{
    (void)state;
    size_t n = scaled(1000000);
    ex_future **fs = calloc(n, sizeof *fs);
    assert_non_null(fs);
    ex_executor *ex = make(EX_THREADS, 2);
    ex_future *gates[2];
    hold(ex, gates, 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ex_submit(ex, task_empty, NULL, 0, &fs[i]), 0);
    size_t ndone = 1;
    assert_int_equal(ex_wait(fs, n, EX_ALL_COMPLETED, 0, &ndone), EX_ETIMEDOUT);
    assert_int_equal(ndone, 0);
    assert_int_equal(ex_future_state(fs[n - 1]), EX_PENDING);
    gate_open(2);
    assert_int_equal(ex_wait(fs, n, EX_ALL_COMPLETED, test_hang_ns(), &ndone), 0);
    assert_int_equal(ndone, n);
    for (size_t i = 0; i < n; i += n / 97 + 1) {
        ex_task_stats st;
        assert_int_equal(ex_future_state(fs[i]), EX_DONE);
        assert_int_equal(ex_future_stats(fs[i], &st), 0);
        assert_true(st.worker == 0 || st.worker == 1);
        assert_true(st.start_ns >= st.submit_ns && st.end_ns >= st.start_ns);
    }
    for (size_t i = 0; i < n; i++)
        ex_future_release(fs[i]);
    ex_future_release(gates[0]);
    ex_future_release(gates[1]);
    ex_destroy(ex);
    free(fs);
}

static int calls;

static void count_call(ex_future *f, void *arg)
{
    (void)f;
    (void)arg;
    __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
}

/* Over three slabs of futures with outputs, a callback on every tenth and
 * a chain on every hundredth, read and released (odd ones first, so the
 * slabs empty out of order) after the executor is gone. */
static void test_outlive_across_slabs(void **state)
{
    (void)state;
    size_t n = test_under_valgrind() ? 2 * SLAB_FUTURES / 10 : 3 * SLAB_FUTURES + 7;
    uint32_t *in = calloc(n, sizeof *in);
    ex_future **fs = calloc(n, sizeof *fs), **chained = calloc(n, sizeof *chained);
    assert_true(in && fs && chained);
    calls = 0;
    ex_executor *ex = make(EX_THREADS, 2);
    for (size_t i = 0; i < n; i++) {
        in[i] = (uint32_t)i;
        assert_int_equal(ex_submit(ex, task_double, &in[i], sizeof in[i], &fs[i]), 0);
        if (i % 10 == 0)
            assert_int_equal(ex_future_on_done(fs[i], count_call, NULL), 0);
        if (i % 100 == 0)
            assert_int_equal(ex_future_then(fs[i], ex, task_double, &chained[i]), 0);
    }
    /* Chains end before their executor goes (ex_future_then's contract). */
    for (size_t i = 0; i < n; i += 100)
        assert_int_equal(ex_future_wait(chained[i], test_hang_ns()), 0);
    assert_int_equal(ex_destroy(ex), 0);
    assert_int_equal(__atomic_load_n(&calls, __ATOMIC_RELAXED), (int)((n + 9) / 10));
    for (int odd = 1; odd >= 0; odd--)
        for (size_t i = (size_t)odd; i < n; i += 2) {
            assert_int_equal(u32_of(fs[i]), 2 * (uint32_t)i + 1);
            if (chained[i]) {
                assert_int_equal(u32_of(chained[i]), 2 * (2 * (uint32_t)i + 1) + 1);
                ex_future_release(chained[i]);
            }
            ex_future_release(fs[i]);
        }
    free(in);
    free(fs);
    free(chained);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return (x > y) - (x < y);
}

/* More futures than the old cache kept (131072), round after round: the
 * later rounds reuse the first round's memory.  A few may be new (a
 * worker may not have dropped its reference to the last tasks when the
 * next round starts), never a round's worth. */
static void test_reuse_rounds(void **state)
{
    (void)state;
    size_t n = scaled(200000);
    ex_future **fs = calloc(n, sizeof *fs), **seen = calloc(n, sizeof *seen);
    assert_true(fs && seen);
    ex_executor *ex = make(EX_THREADS, 2);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ex_submit(ex, task_empty, NULL, 0, &fs[i]), 0);
        if (round == 0) {
            memcpy(seen, fs, n * sizeof *fs);
            qsort(seen, n, sizeof *seen, cmp_ptr);
        }
        size_t fresh = 0;
        for (size_t i = 0; i < n; i++)
            fresh += !bsearch(&fs[i], seen, n, sizeof *seen, cmp_ptr);
        assert_true(fresh <= 16);
        assert_int_equal(ex_wait(fs, n, EX_ALL_COMPLETED, test_hang_ns(), NULL), 0);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(ex_future_state(fs[i]), EX_DONE);
            ex_future_release(fs[i]);
        }
    }
    ex_destroy(ex);
    free(fs);
    free(seen);
}

typedef struct waiter_arg {
    ex_future *f;
    int rc;
} waiter_arg;

static void *wait_thread(void *p)
{
    waiter_arg *a = p;
    a->rc = ex_future_wait(a->f, test_hang_ns());
    return NULL;
}

/* spin_ns = 0: every waiter parks on the future's word at once; all wake
 * when it ends, and a timed wait on it times out before. */
static void test_parked_waiters(void **state)
{
    (void)state;
    enum { WAITERS = 8 };
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    cfg.max_workers = 1;
    cfg.spin_ns = 0;
    ex_executor *ex;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    ex_future *f;
    assert_int_equal(ex_submit(ex, task_gate, NULL, 0, &f), 0);
    wait_running(f);
    assert_int_equal(ex_future_wait(f, 20 * MS), EX_ETIMEDOUT);
    pthread_t th[WAITERS];
    waiter_arg args[WAITERS];
    for (int i = 0; i < WAITERS; i++) {
        args[i] = (waiter_arg){f, -100};
        assert_int_equal(pthread_create(&th[i], NULL, wait_thread, &args[i]), 0);
    }
    sleep_ms(20); /* most of them parked by now; either way they must wake */
    gate_open(1);
    for (int i = 0; i < WAITERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].rc, 0);
    }
    assert_int_equal(ex_future_state(f), EX_DONE);
    ex_future_release(f);
    ex_destroy(ex);
}

typedef struct submitter {
    ex_executor *ex;
    ex_future **fs;
    size_t cap, n;
    int last_rc;
} submitter;

static void *submit_until_refused(void *p)
{
    submitter *s = p;
    int rc = 0;
    while (s->n < s->cap && (rc = ex_submit(s->ex, task_empty, NULL, 0, &s->fs[s->n])) == 0)
        s->n++;
    s->last_rc = rc;
    return NULL;
}

/* Submitters race ex_shutdown: each accepted future ends DONE (shutdown
 * without cancel drains the queue), each refused one is gone without a
 * trace (ASan and valgrind check the second half). */
static void test_submit_races_shutdown(void **state)
{
    (void)state;
    enum { THREADS = 3 };
    size_t cap = scaled(200000);
    for (int round = 0; round < 5; round++) {
        ex_executor *ex = make(EX_THREADS, 2);
        submitter s[THREADS];
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++) {
            s[i] = (submitter){ex, calloc(cap, sizeof(ex_future *)), cap, 0, 0};
            assert_non_null(s[i].fs);
            assert_int_equal(pthread_create(&th[i], NULL, submit_until_refused, &s[i]), 0);
        }
        sleep_ms(round);
        assert_int_equal(ex_shutdown(ex, 1, 0), 0);
        for (int i = 0; i < THREADS; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_true(s[i].n == cap || s[i].last_rc == EX_ESHUTDOWN);
            for (size_t k = 0; k < s[i].n; k++) {
                assert_int_equal(ex_future_state(s[i].fs[k]), EX_DONE);
                ex_future_release(s[i].fs[k]);
            }
            free(s[i].fs);
        }
        assert_int_equal(ex_destroy(ex), 0);
    }
}

/* A future cancelled in the queue: its stats say it never ran, its error
 * is EX_ECANCELLED, and the worker that meets it in the queue skips it. */
static void test_cancelled_in_queue(void **state)
{
    (void)state;
    enum { N = 1000 };
    static ex_future *fs[N];
    ex_executor *ex = make(EX_THREADS, 1);
    ex_future *gate;
    hold(ex, &gate, 1);
    for (int i = 0; i < N; i++)
        assert_int_equal(ex_submit(ex, task_empty, NULL, 0, &fs[i]), 0);
    for (int i = 0; i < N; i += 2)
        assert_int_equal(ex_future_cancel(fs[i]), 0);
    gate_open(1);
    assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, test_hang_ns(), NULL), 0);
    for (int i = 0; i < N; i++) {
        ex_task_stats st;
        assert_int_equal(ex_future_stats(fs[i], &st), 0);
        if (i % 2 == 0) {
            assert_int_equal(ex_future_state(fs[i]), EX_CANCELLED);
            assert_int_equal(ex_future_error(fs[i]), EX_ECANCELLED);
            assert_int_equal(ex_future_result(fs[i], NULL, NULL, 0), EX_ECANCELLED);
            assert_int_equal(st.worker, -1);
            assert_int_equal(st.cpu_ns, 0);
            assert_true(st.end_ns >= st.submit_ns);
        } else {
            assert_int_equal(ex_future_state(fs[i]), EX_DONE);
            assert_int_equal(st.worker, 0);
        }
        ex_future_release(fs[i]);
    }
    ex_future_release(gate);
    ex_destroy(ex);
}

/* A chained future cancelled while its parent completes: the chain's
 * submission and the cancel race for the same storage (the call fields
 * give way to the result's), on both pools.  Either it ran, or its stats
 * say it never did. */
static void test_then_cancel_race(void **state)
{
    (void)state;
    const ex_kind kinds[] = {EX_THREADS, EX_PROCS};
    size_t rounds = scaled(2000);
    for (size_t k = 0; k < 2; k++) {
        ex_executor *ex = make(kinds[k], 2);
        size_t cancelled = 0;
        for (size_t i = 0; i < rounds; i++) {
            ex_future *a, *b;
            assert_int_equal(ex_submit(ex, task_empty, NULL, 0, &a), 0);
            assert_int_equal(ex_future_then(a, ex, task_empty, &b), 0);
            /* Cancel once the parent has started: its end is near. */
            while (ex_future_state(a) == EX_PENDING)
                sched_yield();
            cancelled += ex_future_cancel(b) == 0;
            assert_int_equal(ex_future_wait(b, test_hang_ns()), 0);
            ex_task_stats st;
            assert_int_equal(ex_future_stats(b, &st), 0);
            if (ex_future_state(b) == EX_CANCELLED) {
                assert_int_equal(st.worker, -1);
                assert_int_equal(st.cpu_ns, 0);
                assert_int_equal(ex_future_result(b, NULL, NULL, 0), EX_ECANCELLED);
            } else {
                assert_int_equal(ex_future_state(b), EX_DONE);
                assert_true(st.worker >= 0);
            }
            ex_future_release(b);
            ex_future_release(a);
        }
        print_message("then-cancel %s: %zu of %zu cancelled\n",
                      kinds[k] == EX_THREADS ? "threads" : "procs", cancelled, rounds);
        assert_int_equal(ex_destroy(ex), 0);
    }
}

/* In a child with its address space capped: once no slab can be mapped,
 * ex_submit says EX_ENOMEM, and the futures it handed out before run. */
static int child_out_of_slabs(void)
{
    enum { MAX = 1000000 };
    ex_future **fs = calloc(MAX, sizeof *fs);
    ex_config cfg;
    ex_config_init(&cfg, EX_THREADS);
    cfg.max_workers = 1;
    ex_executor *ex;
    if (!fs || ex_create(&cfg, &ex))
        return 10;
    explicit_bzero(fs, MAX * sizeof *fs);
    long size = 0;
    FILE *fp = fopen("/proc/self/statm", "r");
    if (!fp || fscanf(fp, "%ld", &size) != 1)
        return 11;
    fclose(fp);
    struct rlimit rl = {.rlim_cur = (rlim_t)size * (rlim_t)sysconf(_SC_PAGESIZE) + (8u << 20)};
    rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_AS, &rl))
        return 12;
    size_t k = 0;
    int rc = 0;
    while (k < MAX && (rc = ex_submit(ex, task_empty, NULL, 0, &fs[k])) == 0)
        k++;
    if (rc != EX_ENOMEM || k == 0 || ex_wait(fs, k, EX_ALL_COMPLETED, test_hang_ns(), NULL))
        return 13;
    return ex_future_state(fs[k - 1]) == EX_DONE ? 0 : 14;
}

static void test_out_of_slabs(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* their shadow memory does not live under an address-space cap */
#endif
    if (test_under_valgrind())
        skip();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_out_of_slabs());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    test_alarm();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_million_pending),
        cmocka_unit_test(test_outlive_across_slabs),
        cmocka_unit_test(test_reuse_rounds),
        cmocka_unit_test(test_parked_waiters),
        cmocka_unit_test(test_submit_races_shutdown),
        cmocka_unit_test(test_cancelled_in_queue),
        cmocka_unit_test(test_then_cancel_race),
        cmocka_unit_test(test_out_of_slabs),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
