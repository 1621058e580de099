/*
 * test_gauges.c: ex_executor_stats, an executor's live gauges, on every
 * local backend (KINDS_LOCAL; mpi's gauges are test_mpi.c's): exact after
 * known sequences (tasks held on the gate, failures, a cancel, a shutdown
 * that cancels, a bounded queue that rejects or runs in the caller,
 * chains, ex_map chunks, a crashed worker), consistent in every snapshot
 * taken while tasks move, and EX_EINVAL for NULL.
 *
 * Nothing here depends on how fast the machine runs: a test that needs
 * the pool to reach a state (workers up, tasks begun) polls the gauges
 * until they show it, up to a deadline derived from how long that pool
 * took to start (a loaded machine forks and schedules slower, and that
 * shows there first), and otherwise reads them right after a call whose
 * return guarantees the count (ex_wait, ex_future_cancel, ex_shutdown).
 */
#include "util.h"

/* How long a gauge may take to reach a value (see the top). */
static int64_t gauge_deadline_ns;

static ex_executor *make_timed(const ex_config *cfg)
{
    uint64_t t0 = ex_now_ns();
    ex_executor *ex = NULL;
    assert_int_equal(ex_create(cfg, &ex), 0);
    assert_non_null(ex);
    int64_t took = (int64_t)(ex_now_ns() - t0);
    gauge_deadline_ns = test_hang_ns() + 1000 * took;
    return ex;
}

/* window 1: a process-pool task sent to a worker is the one it runs, so
 * that running counts the tasks held on the gate and no more. */
static ex_executor *make_gauged(ex_kind kind, unsigned workers, size_t cap,
                                ex_on_full on_full)
{
    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = workers;
    cfg.queue_capacity = cap;
    cfg.on_full = on_full;
    cfg.window = 1;
    return make_timed(&cfg);
}

static ex_pool_stats stats_of(ex_executor *ex)
{
    ex_pool_stats s;
    assert_int_equal(ex_executor_stats(ex, &s), 0);
    return s;
}

typedef bool (*stats_pred)(const ex_pool_stats *s, uint64_t want);

static bool running_is(const ex_pool_stats *s, uint64_t want)
{
    return s->running == want;
}

static bool alive_is(const ex_pool_stats *s, uint64_t want)
{
    return s->workers_alive == want;
}

/* Polls ex's gauges until ok(snapshot, want); fails at the deadline. */
static ex_pool_stats wait_stats(ex_executor *ex, stats_pred ok, uint64_t want)
{
    uint64_t until = ex_now_ns() + (uint64_t)gauge_deadline_ns;
    ex_pool_stats s = stats_of(ex);
    while (!ok(&s, want) && ex_now_ns() < until) {
        sleep_ns(100 * 1000);
        s = stats_of(ex);
    }
    assert_true(ok(&s, want));
    return s;
}

/* Every accepted task final, nothing being submitted. */
static void assert_settled(const ex_pool_stats *s)
{
    assert_int_equal(s->queued, 0);
    assert_int_equal(s->running, 0);
    assert_int_equal(s->submitted, s->completed + s->failed + s->cancelled);
}

static void assert_counts(const ex_pool_stats *s, uint64_t submitted,
                          uint64_t completed, uint64_t failed, uint64_t cancelled)
{
    assert_int_equal(s->submitted, submitted);
    assert_int_equal(s->completed, completed);
    assert_int_equal(s->failed, failed);
    assert_int_equal(s->cancelled, cancelled);
}

static void wait_all(ex_future **fs, size_t n)
{
    assert_int_equal(ex_wait(fs, n, EX_ALL_COMPLETED, test_hang_ns(), NULL), 0);
}

static void release_all(ex_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ex_future_release(fs[i]);
}

/* A pool up: every worker alive, nothing counted yet. */
static void wait_up(ex_executor *ex, unsigned workers)
{
    ex_pool_stats s = wait_stats(ex, alive_is, workers);
    assert_counts(&s, 0, 0, 0, 0);
    assert_settled(&s);
    assert_int_equal(s.rejected, 0);
    assert_int_equal(s.caller_ran, 0);
    assert_int_equal(s.workers_replaced, 0);
}

/* Until n more gate tasks have begun than `before` (a process-pool task
 * is RUNNING once sent; its worker may not have begun it yet, and
 * shutdown(cancel_pending) would still cancel it). */
static void wait_gate_begun(uint64_t before, uint64_t n)
{
    uint64_t until = ex_now_ns() + (uint64_t)gauge_deadline_ns;
    while (gate_starts() < before + n && ex_now_ns() < until)
        sleep_ns(100 * 1000);
    assert_true(gate_starts() >= before + n);
}

/* A pool of one worker (with this queue bound and policy), started, then
 * held on the gate by fs[0] (begun), with `behind` tasks submitted after
 * it (fs[1..behind], queued). */
static ex_executor *held_pool(ex_kind kind, size_t cap, ex_on_full on_full,
                              ex_future **fs, int behind)
{
    static const uint32_t v = 3;
    ex_executor *ex = make_gauged(kind, 1, cap, on_full);
    wait_up(ex, 1);
    uint64_t before = gate_starts();
    fs[0] = submit_ok(ex, task_gate, NULL, 0);
    wait_stats(ex, running_is, 1);
    wait_gate_begun(before, 1);
    for (int i = 1; i <= behind; i++)
        fs[i] = submit_ok(ex, task_double, &v, sizeof v);
    return ex;
}

/* ------------------------------------------------------------------ */

static void test_null(void **state)
{
    (void)state;
    ex_pool_stats s;
    assert_int_equal(ex_executor_stats(NULL, &s), EX_EINVAL);
    ex_executor *ex = make(EX_SEQ, 1);
    assert_int_equal(ex_executor_stats(ex, NULL), EX_EINVAL);
    ex_destroy(ex);
}

/* N tasks on W workers, held on the gate: W run, N - W wait. */
static void test_held_on_gate(void **state)
{
    (void)state;
    enum { W = 2, N = 6 };
    kind_list kinds = test_kinds(KINDS_LOCAL & ~KIND_SEQ);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make_gauged(kinds.kind[k], W, 0, EX_ON_FULL_BLOCK);
        wait_up(ex, W);
        ex_future *fs[N];
        for (int i = 0; i < N; i++)
            fs[i] = submit_ok(ex, task_gate, NULL, 0);
        ex_pool_stats s = wait_stats(ex, running_is, W);
        assert_counts(&s, N, 0, 0, 0);
        assert_int_equal(s.queued, N - W);
        assert_int_equal(s.workers_alive, W);
        gate_open(N);
        wait_all(fs, N);
        s = stats_of(ex);
        assert_counts(&s, N, N, 0, 0);
        assert_settled(&s);
        assert_int_equal(s.rejected, 0);
        assert_int_equal(s.caller_ran, 0);
        release_all(fs, N);
        ex_destroy(ex);
    }
}

static void test_completed_and_failed(void **state)
{
    (void)state;
    enum { N = 7 };
    static const uint32_t vals[N] = {1, 2, 3, 4, 5, 6, 7}; /* 4 odd: fail */
    kind_list kinds = test_kinds(KINDS_LOCAL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make_gauged(kinds.kind[k], 2, 0, EX_ON_FULL_BLOCK);
        ex_future *fs[N];
        for (int i = 0; i < N; i++)
            fs[i] = submit_ok(ex, task_fail_odd, &vals[i], sizeof vals[i]);
        wait_all(fs, N);
        ex_pool_stats s = stats_of(ex);
        assert_counts(&s, N, 3, 4, 0);
        assert_settled(&s);
        release_all(fs, N);
        ex_destroy(ex);
    }
}

/* A task reading its own executor's gauges counts itself running. */
static ex_executor *self_ex;

static int task_read_gauges(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    ex_pool_stats s;
    if (ex_executor_stats(self_ex, &s) != 0)
        return 1;
    return ex_buf_append(out, &s, sizeof s) ? 2 : 0;
}

static void test_read_from_task(void **state)
{
    (void)state;
    const ex_kind kinds[] = {EX_SEQ, EX_THREADS}; /* a worker process holds a copy */
    for (size_t k = 0; k < NKINDS(kinds); k++) {
        ex_executor *ex = make_gauged(kinds[k], 1, 0, EX_ON_FULL_BLOCK);
        self_ex = ex;
        uint32_t v = 2;
        ex_future *first = submit_ok(ex, task_double, &v, sizeof v);
        assert_int_equal(ex_future_wait(first, test_hang_ns()), 0);
        ex_future *f = submit_ok(ex, task_read_gauges, NULL, 0);
        const void *out;
        size_t len;
        assert_int_equal(ex_future_result(f, &out, &len, test_hang_ns()), 0);
        assert_int_equal(len, sizeof(ex_pool_stats));
        ex_pool_stats in;
        memcpy(&in, out, sizeof in);
        assert_counts(&in, 2, 1, 0, 0);
        assert_int_equal(in.running, 1);
        assert_int_equal(in.queued, 0);
        assert_int_equal(in.workers_alive, 1);
        ex_pool_stats s = stats_of(ex);
        assert_counts(&s, 2, 2, 0, 0);
        assert_settled(&s);
        ex_future_release(first);
        ex_future_release(f);
        assert_int_equal(ex_shutdown(ex, 1, 0), 0);
        s = stats_of(ex);
        assert_int_equal(s.workers_alive, 0); /* joined, or seq shut */
        ex_destroy(ex);
        self_ex = NULL;
    }
}

/* One worker held on the gate and three tasks behind it: a cancel of one
 * of them counts at once, and only once. */
static void test_cancel(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_LOCAL & ~KIND_SEQ);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_future *fs[4];
        ex_executor *ex = held_pool(kinds.kind[k], 0, EX_ON_FULL_BLOCK, fs, 3);
        ex_pool_stats s = stats_of(ex);
        assert_int_equal(s.queued, 3);
        assert_int_equal(ex_future_cancel(fs[2]), 0);
        assert_int_equal(ex_future_cancel(fs[2]), EX_EINVAL); /* final */
        s = stats_of(ex);
        assert_counts(&s, 4, 0, 0, 1);
        assert_int_equal(s.queued, 2);
        assert_int_equal(s.running, 1);
        gate_open(1);
        wait_all(fs, 4);
        s = stats_of(ex);
        assert_counts(&s, 4, 3, 0, 1);
        assert_settled(&s);
        release_all(fs, 4);
        ex_destroy(ex);
    }
}

/* shutdown(cancel_pending) cancels what waits: counted by the time it
 * returns; the running task still completes. */
static void test_shutdown_cancels(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_LOCAL & ~KIND_SEQ);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_future *fs[4];
        ex_executor *ex = held_pool(kinds.kind[k], 0, EX_ON_FULL_BLOCK, fs, 3);
        assert_int_equal(ex_shutdown(ex, 0, 1), 0);
        ex_pool_stats s = stats_of(ex);
        assert_counts(&s, 4, 0, 0, 3);
        assert_int_equal(s.queued, 0);
        assert_int_equal(s.running, 1);
        gate_open(1);
        assert_int_equal(ex_shutdown(ex, 1, 0), 0);
        s = stats_of(ex);
        assert_counts(&s, 4, 1, 0, 3);
        assert_settled(&s);
        if (kinds.kind[k] == EX_THREADS)
            assert_int_equal(s.workers_alive, 0);
        release_all(fs, 4);
        ex_destroy(ex);
    }
}

/* A bounded queue that rejects: rejected is exactly the ex_submit calls
 * that returned EX_EFULL, and they count nowhere else. */
static void test_reject(void **state)
{
    (void)state;
    enum { CAP = 2, TRIES = 7 };
    kind_list kinds = test_kinds(KINDS_LOCAL & ~KIND_SEQ);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_future *fs[1 + CAP];
        ex_executor *ex = held_pool(kinds.kind[k], CAP, EX_ON_FULL_REJECT, fs, CAP);
        uint32_t v = 5;
        uint64_t refused = 0;
        for (int i = 0; i < TRIES; i++) {
            ex_future *f = NULL;
            int rc = ex_submit(ex, task_double, &v, sizeof v, &f);
            assert_int_equal(rc, EX_EFULL); /* the worker is held: no room */
            assert_null(f);
            refused++;
        }
        ex_pool_stats s = stats_of(ex);
        assert_int_equal(s.rejected, refused);
        assert_counts(&s, 1 + CAP, 0, 0, 0);
        assert_int_equal(s.queued, CAP);
        assert_int_equal(s.running, 1);
        gate_open(1);
        wait_all(fs, 1 + CAP);
        s = stats_of(ex);
        assert_int_equal(s.rejected, refused);
        assert_counts(&s, 1 + CAP, 1 + CAP, 0, 0);
        assert_settled(&s);
        release_all(fs, 1 + CAP);
        ex_destroy(ex);
    }
}

/* CALLER_RUNS (thread pool only): the tasks run in the submitter count in
 * caller_ran, and in submitted and completed like any other. */
static void test_caller_runs(void **state)
{
    (void)state;
    enum { INLINE = 3 };
    ex_future *fs[2 + INLINE];
    /* fs[1] fills the queue. */
    ex_executor *ex = held_pool(EX_THREADS, 1, EX_ON_FULL_CALLER_RUNS, fs, 1);
    uint32_t v = 4;
    for (int i = 0; i < INLINE; i++) {
        fs[2 + i] = submit_ok(ex, task_double, &v, sizeof v);
        assert_int_equal(ex_future_state(fs[2 + i]), EX_DONE); /* ran here */
    }
    ex_pool_stats s = stats_of(ex);
    assert_int_equal(s.caller_ran, INLINE);
    assert_counts(&s, 2 + INLINE, INLINE, 0, 0);
    assert_int_equal(s.queued, 1);
    assert_int_equal(s.running, 1);
    gate_open(1);
    wait_all(fs, 2 + INLINE);
    s = stats_of(ex);
    assert_int_equal(s.caller_ran, INLINE);
    assert_int_equal(s.rejected, 0);
    assert_counts(&s, 2 + INLINE, 2 + INLINE, 0, 0);
    assert_settled(&s);
    release_all(fs, 2 + INLINE);
    ex_destroy(ex);
}

/* A chained task counts once its predecessor is DONE and it is handed
 * over; a chain that never reaches the executor counts nowhere. */
static void test_chains(void **state)
{
    (void)state;
    kind_list kinds = test_kinds(KINDS_LOCAL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make_gauged(kinds.kind[k], 2, 0, EX_ON_FULL_BLOCK);
        uint32_t v = 1, w = 2;
        /* DONE -> the chain runs: two tasks. */
        ex_future *a = submit_ok(ex, task_double, &w, sizeof w), *an = NULL;
        assert_int_equal(ex_future_then(a, ex, task_double, &an), 0);
        assert_int_equal(ex_future_wait(an, test_hang_ns()), 0);
        assert_int_equal(ex_future_state(an), EX_DONE);
        /* FAILED -> the chain fails with it, never handed to ex. */
        ex_future *b = submit_ok(ex, task_fail_odd, &v, sizeof v), *bn = NULL;
        assert_int_equal(ex_future_then(b, ex, task_double, &bn), 0);
        assert_int_equal(ex_future_wait(bn, test_hang_ns()), 0);
        assert_int_equal(ex_future_state(bn), EX_FAILED);
        ex_pool_stats s = stats_of(ex);
        assert_counts(&s, 3, 2, 1, 0);
        assert_settled(&s);
        ex_future_release(a);
        ex_future_release(an);
        ex_future_release(b);
        ex_future_release(bn);
        ex_destroy(ex);
    }
    /* Cancelled while its predecessor runs: not ex's yet, so no count. */
    kinds = test_kinds(KINDS_LOCAL & ~KIND_SEQ);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_future *g, *gn = NULL;
        ex_executor *ex = held_pool(kinds.kind[k], 0, EX_ON_FULL_BLOCK, &g, 0);
        assert_int_equal(ex_future_then(g, ex, task_double, &gn), 0);
        ex_pool_stats s = stats_of(ex);
        assert_counts(&s, 1, 0, 0, 0);
        assert_int_equal(s.queued, 0);
        assert_int_equal(ex_future_cancel(gn), 0);
        s = stats_of(ex);
        assert_counts(&s, 1, 0, 0, 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(g, test_hang_ns()), 0);
        s = stats_of(ex);
        assert_counts(&s, 1, 1, 0, 0);
        assert_settled(&s);
        ex_future_release(g);
        ex_future_release(gn);
        ex_destroy(ex);
    }
}

/* ex_map: one task per ex_submit it makes, so one per chunk. */
static void test_map_chunks(void **state)
{
    (void)state;
    enum { N = 10 };
    static uint32_t vals[N];
    const void *ins[N];
    size_t lens[N];
    for (uint32_t i = 0; i < N; i++) {
        vals[i] = i;
        ins[i] = &vals[i];
        lens[i] = sizeof vals[i];
    }
    const size_t chunks[] = {1, 3, N};
    const uint64_t tasks[] = {N, 4, 1};
    kind_list kinds = test_kinds(KINDS_LOCAL);
    for (size_t k = 0; k < kinds.n; k++) {
        ex_executor *ex = make_gauged(kinds.kind[k], 2, 0, EX_ON_FULL_BLOCK);
        uint64_t total = 0;
        for (size_t c = 0; c < NKINDS(chunks); c++) {
            ex_map *m;
            assert_int_equal(ex_map_create_array(ex, task_double, ins, lens, N,
                                                 chunks[c], 0, &m), 0);
            size_t idx, n = 0;
            int st;
            while (ex_map_next(m, &idx, &st, NULL, NULL, NULL, test_hang_ns()) == 0) {
                assert_int_equal(st, 0);
                n++;
            }
            assert_int_equal(n, N);
            ex_map_destroy(m);
            total += tasks[c];
            ex_pool_stats s = stats_of(ex);
            assert_counts(&s, total, total, 0, 0);
            assert_settled(&s);
        }
        ex_destroy(ex);
    }
}

/* A crash fails its own task and the worker is replaced. */
static void test_procs_crash(void **state)
{
    (void)state;
    ex_executor *ex = make_gauged(EX_PROCS, 1, 0, EX_ON_FULL_BLOCK);
    wait_up(ex, 1);
    uint32_t v = 6;
    ex_future *ok = submit_ok(ex, task_double, &v, sizeof v);
    assert_int_equal(ex_future_wait(ok, test_hang_ns()), 0);
    ex_future *crash = submit_ok(ex, task_abort, NULL, 0);
    assert_int_equal(ex_future_result(crash, NULL, NULL, test_hang_ns()), EX_EWORKER);
    ex_pool_stats s = stats_of(ex);
    assert_counts(&s, 2, 1, 1, 0);
    assert_settled(&s);
    assert_int_equal(s.workers_replaced, 1);
    assert_int_equal(s.workers_replaced, ex_workers_replaced(ex));
    s = wait_stats(ex, alive_is, 1);
    ex_future *after = submit_ok(ex, task_double, &v, sizeof v);
    assert_int_equal(ex_future_wait(after, test_hang_ns()), 0);
    s = stats_of(ex);
    assert_counts(&s, 3, 2, 1, 0);
    assert_settled(&s);
    ex_future_release(ok);
    ex_future_release(crash);
    ex_future_release(after);
    ex_destroy(ex);
}

/* ------------------------------------------- snapshots while tasks move */

typedef struct sampler {
    ex_executor *ex;
    unsigned workers;
    atomic_bool stop;
    _Atomic uint64_t samples; /* read by the test while the sampler runs */
    int bad; /* the first broken rule, 0 if none */
} sampler;

/* Every snapshot: nothing ended that was not submitted, no monotonic
 * counter went down, nothing above what was submitted. */
static void *sample_main(void *p)
{
    sampler *sp = p;
    ex_pool_stats prev = {0}, s;
    while (!atomic_load(&sp->stop) && !sp->bad) {
        if (ex_executor_stats(sp->ex, &s) != 0)
            sp->bad = 1;
        else if (s.completed + s.failed + s.cancelled > s.submitted)
            sp->bad = 2;
        else if (s.submitted < prev.submitted || s.completed < prev.completed ||
                 s.failed < prev.failed || s.cancelled < prev.cancelled ||
                 s.rejected < prev.rejected || s.caller_ran < prev.caller_ran ||
                 s.workers_replaced < prev.workers_replaced)
            sp->bad = 3;
        else if (s.queued > s.submitted || s.running > s.submitted)
            sp->bad = 4;
        else if (s.workers_alive > sp->workers)
            sp->bad = 5;
        prev = s;
        atomic_fetch_add(&sp->samples, 1);
    }
    return NULL;
}

static void test_snapshots_in_motion(void **state)
{
    (void)state;
    enum { W = 2 };
    kind_list kinds = test_kinds(KINDS_LOCAL);
    for (size_t k = 0; k < kinds.n; k++) {
        /* Under valgrind, whose one-thread-at-a-time scheduler makes the
         * spinning sampler cost minutes, a tenth of the tasks. */
        size_t n = (kinds.kind[k] == EX_PROCS ? 2000 : 20000) / (size_t)test_slow();
        ex_config cfg;
        ex_config_init(&cfg, kinds.kind[k]);
        cfg.max_workers = W;
        ex_executor *ex = make_timed(&cfg);
        sampler sp = {.ex = ex, .workers = W};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, sample_main, &sp), 0);
        ex_future **fs = calloc(n, sizeof *fs);
        assert_non_null(fs);
        uint32_t v = 1;
        for (size_t i = 0; i < n; i++)
            fs[i] = submit_ok(ex, i % 5 ? task_double : task_fail_odd, &v, sizeof v);
        wait_all(fs, n);
        ex_pool_stats s = stats_of(ex);
        /* On a loaded machine the sampler may not have run yet: it must
         * take at least one snapshot before it is stopped. */
        uint64_t until = ex_now_ns() + (uint64_t)gauge_deadline_ns;
        while (atomic_load(&sp.samples) == 0 && ex_now_ns() < until)
            sleep_ns(100 * 1000);
        atomic_store(&sp.stop, true);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_int_equal(sp.bad, 0);
        assert_true(atomic_load(&sp.samples) > 0);
        uint64_t failing = (n + 4) / 5;
        assert_counts(&s, n, n - failing, failing, 0);
        assert_settled(&s);
        release_all(fs, n);
        free(fs);
        ex_destroy(ex);
    }
}

int main(void)
{
    test_alarm();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null),
        cmocka_unit_test(test_held_on_gate),
        cmocka_unit_test(test_completed_and_failed),
        cmocka_unit_test(test_read_from_task),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_shutdown_cancels),
        cmocka_unit_test(test_reject),
        cmocka_unit_test(test_caller_runs),
        cmocka_unit_test(test_chains),
        cmocka_unit_test(test_map_chunks),
        cmocka_unit_test(test_procs_crash),
        cmocka_unit_test(test_snapshots_in_motion),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
