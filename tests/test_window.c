/*
 * test_window.c: the process pool's window (ex_config.window), the tasks
 * sent ahead to a worker while it runs the one before, on both transports:
 *
 *   - the window never holds more than its bound, and the bound is reached;
 *     it goes no deeper than tasks need (2 after long tasks); the default
 *     holds 8 until a task has ended, more after short ones;
 *   - a crash with a full window fails exactly the task that was running,
 *     and the tasks queued behind it run again on a new worker;
 *   - a timeout with a full window likewise; and a task's timeout counts
 *     from its own start, not from when it was sent ahead;
 *   - a task sent ahead is RUNNING: ex_future_cancel refuses it, while
 *     shutdown(cancel_pending) cancels every task its worker has not begun
 *     and lets the running one finish;
 *   - max_tasks_per_worker counts tasks run: each process runs exactly
 *     that many whatever the window;
 *   - per-task stats: a task's start is when its worker began it;
 *   - frames of both shapes (with and without an input) sent together.
 *
 * Every wait is generous (seconds, scaled under valgrind) and no assertion
 * depends on speed.
 */
#include "util.h"

#include <signal.h>

#define transports all_transports
#define submit submit_ok

/* ------------------------------------------------------------------ tasks */

/* Sleeps the number of ms its uint32 input says, then outputs its pid. */
static int task_sleep_pid(const void *in, size_t len, ex_buf *out)
{
    uint32_t ms;
    if (len != sizeof ms)
        return 92;
    memcpy(&ms, in, sizeof ms);
    sleep_ms(ms);
    return task_pid(in, 0, out);
}

/* Echoes inputs padded to 8 KiB, so that with EX_TRANSPORT_SHM they go
 * through the region (above EX_SHM_INLINE_MAX). */
#define PAD 8192
typedef struct padded {
    uint32_t v;
    unsigned char pad[PAD - sizeof(uint32_t)];
} padded;

/* ---------------------------------------------------------------- helpers */

static ex_executor *make_window(unsigned workers, unsigned window,
                                ex_transport t, int64_t timeout_ns,
                                unsigned max_tasks)
{
    return make_procs((procs_opts){.workers = workers, .window = window,
                                   .transport = t, .timeout_ns = timeout_ns,
                                   .max_tasks = max_tasks});
}

static size_t count_state(ex_future *const *fs, size_t n, ex_state s)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ex_future_state(fs[i]) == s;
    return k;
}

/* Until `want` of the n futures are RUNNING (polling); returns how many
 * are. */
static size_t wait_n_running(ex_future *const *fs, size_t n, size_t want)
{
    size_t k = 0;
    for (int t = 0; t < 4000 * test_slow(); t++) {
        if ((k = count_state(fs, n, EX_RUNNING)) >= want)
            break;
        sleep_ms(1);
    }
    return k;
}

static void padded_fill(padded *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        p[i].v = (uint32_t)(i * 2654435761u);
        memset(p[i].pad, (int)(i & 0xff), sizeof p[i].pad);
    }
}

/* f is DONE with p echoed. */
static void assert_echo(ex_future *f, const padded *p)
{
    const void *out;
    size_t len;
    assert_int_equal(ex_future_result(f, &out, &len, test_hang_ns()), 0);
    assert_int_equal(len, sizeof *p);
    assert_memory_equal(out, p, sizeof *p);
}

/* ------------------------------------------------------------------ tests */

/* 2 workers, window 4, 40 gated tasks: exactly 8 are sent ahead (RUNNING)
 * and never more, while the gate lets them through one by one; window 1
 * keeps one per worker. */
static void test_window_bound(void **state)
{
    (void)state;
    enum { N = 40 };
    for (unsigned window = 1; window <= 4; window += 3) {
        ex_executor *ex = make_window(2, window, EX_TRANSPORT_PIPE, 0, 0);
        ex_future *fs[N];
        for (int i = 0; i < N; i++)
            fs[i] = submit(ex, task_gate, NULL, 0);
        size_t bound = 2 * window;
        assert_int_equal(wait_n_running(fs, N, bound), bound);
        sleep_ms(20); /* nothing more is sent, however long we wait */
        assert_int_equal(count_state(fs, N, EX_RUNNING), bound);
        assert_int_equal(count_state(fs, N, EX_PENDING), N - bound);
        for (int i = 0; i < N; i++) {
            gate_open(1);
            assert_true(count_state(fs, N, EX_RUNNING) <= bound);
        }
        assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, test_hang_ns(), NULL), 0);
        for (int i = 0; i < N; i++) {
            assert_int_equal(ex_future_state(fs[i]), EX_DONE);
            ex_future_release(fs[i]);
        }
        assert_int_equal(ex_destroy(ex), 0);
    }
    ex_config cfg;
    ex_config_init(&cfg, EX_PROCS);
    cfg.window = EX_MAX_WINDOW + 1;
    ex_executor *ex = (ex_executor *)&cfg;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
    assert_null(ex);
    ex_config_init(&cfg, EX_PROCS);
    cfg.transport = (ex_transport)7;
    assert_int_equal(ex_create(&cfg, &ex), EX_EINVAL);
}

/* The window goes no deeper than tasks need: after long tasks it holds 2
 * (one running, one waiting), after empty ones all 8. */
static void test_window_depth(void **state)
{
    (void)state;
    enum { N = 12 };
    ex_executor *ex = make_window(1, 8, EX_TRANSPORT_PIPE, 0, 0);
    const uint32_t ms = 5;
    for (int i = 0; i < 4; i++) {
        ex_future *f = submit(ex, task_sleep_pid, &ms, sizeof ms);
        assert_true(i32_of(f) > 0);
        ex_future_release(f);
    }
    for (unsigned expect = 2; expect <= 8; expect += 6) {
        ex_future *fs[N];
        for (int i = 0; i < N; i++)
            fs[i] = submit(ex, task_gate, NULL, 0);
        assert_int_equal(wait_n_running(fs, N, expect), expect);
        sleep_ms(20);
        assert_int_equal(count_state(fs, N, EX_RUNNING), expect);
        gate_open(N);
        assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, test_hang_ns(), NULL), 0);
        for (int i = 0; i < N; i++)
            ex_future_release(fs[i]);
        /* Empty tasks bring the running mean down to microseconds. */
        for (int i = 0; i < 200; i++) {
            ex_future *f = submit(ex, task_empty, NULL, 0);
            assert_int_equal(ex_future_wait(f, test_hang_ns()), 0);
            ex_future_release(f);
        }
    }
    assert_int_equal(ex_destroy(ex), 0);
}

/* The default window: 8 before any task has ended (their length unknown),
 * deeper than 8 once empty tasks have run (enough to cover a cross-core
 * hand-off: a window of 8 drained before each refill when the dispatcher
 * ran apart from the workers), never above EX_DEFAULT_WINDOW. */
static void test_window_default_depth(void **state)
{
    (void)state;
    enum { N = EX_DEFAULT_WINDOW + 16 };
    ex_executor *ex = make_window(1, 0, EX_TRANSPORT_PIPE, 0, 0);
    for (int round = 0; round < 2; round++) {
        ex_future *fs[N];
        for (int i = 0; i < N; i++)
            fs[i] = submit(ex, task_gate, NULL, 0);
        size_t want = round == 0 ? 8 : 9;
        assert_true(wait_n_running(fs, N, want) >= want);
        sleep_ms(20);
        size_t running = count_state(fs, N, EX_RUNNING);
        if (round == 0)
            assert_int_equal(running, 8);
        else
            assert_true(running > 8 && running <= EX_DEFAULT_WINDOW);
        gate_open(N);
        assert_int_equal(ex_wait(fs, N, EX_ALL_COMPLETED, test_hang_ns(), NULL), 0);
        for (int i = 0; i < N; i++)
            ex_future_release(fs[i]);
        /* Empty tasks bring the running mean down to microseconds. */
        for (int i = 0; round == 0 && i < 200; i++) {
            ex_future *f = submit(ex, task_empty, NULL, 0);
            assert_int_equal(ex_future_wait(f, test_hang_ns()), 0);
            ex_future_release(f);
        }
    }
    assert_int_equal(ex_destroy(ex), 0);
}

/* One worker, window 8: a gate, a crash and 6 echoes, all sent ahead.  The
 * crash alone fails; the 6 behind it never began and run on the new
 * worker. */
static void test_crash_full_window(void **state)
{
    (void)state;
    enum { E = 6 };
    for (size_t t = 0; t < NKINDS(transports); t++) {
        ex_executor *ex = make_window(1, 8, transports[t], 0, 0);
        padded in[E];
        padded_fill(in, E);
        ex_future *all[E + 2];
        all[0] = submit(ex, task_gate, NULL, 0);
        all[1] = submit(ex, task_abort, NULL, 0);
        for (int i = 0; i < E; i++)
            all[2 + i] = submit(ex, task_echo, &in[i], sizeof in[i]);
        assert_int_equal(wait_n_running(all, E + 2, E + 2), E + 2);
        pid_t first = ex_worker_pid(ex, 0);
        gate_open(1);
        assert_int_equal(ex_future_result(all[1], NULL, NULL, test_hang_ns()),
                         EX_EWORKER);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(all[1], &st), 0);
        assert_int_equal(st.worker_pid, first);
        for (int i = 0; i < E; i++) {
            assert_echo(all[2 + i], &in[i]);
            assert_int_equal(ex_future_stats(all[2 + i], &st), 0);
            assert_true(st.worker_pid != first); /* run again, elsewhere */
        }
        assert_int_equal(ex_future_state(all[0]), EX_DONE);
        assert_int_equal(ex_workers_replaced(ex), 1);
        assert_false(ex_is_broken(ex));
        for (int i = 0; i < E + 2; i++)
            ex_future_release(all[i]);
        assert_int_equal(ex_destroy(ex), 0);
    }
}

/* One worker, window 8, a 300 ms timeout: a hang and 7 echoes sent ahead.
 * The hang alone times out; the echoes run again on the new worker. */
static void test_timeout_full_window(void **state)
{
    (void)state;
    enum { E = 7 };
    for (size_t t = 0; t < NKINDS(transports); t++) {
        ex_executor *ex = make_window(1, 8, transports[t],
                                      300 * MS * test_slow(), 0);
        padded in[E];
        padded_fill(in, E);
        ex_future *all[E + 1];
        all[0] = submit(ex, task_hang, NULL, 0);
        for (int i = 0; i < E; i++)
            all[1 + i] = submit(ex, task_echo, &in[i], sizeof in[i]);
        pid_t first = ex_worker_pid(ex, 0);
        assert_int_equal(ex_future_result(all[0], NULL, NULL, test_hang_ns()),
                         EX_ETIMEDOUT);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(all[0], &st), 0);
        assert_true(st.end_ns - st.start_ns >= (uint64_t)(300 * MS * test_slow()));
        for (int i = 0; i < E; i++) {
            assert_echo(all[1 + i], &in[i]);
            assert_int_equal(ex_future_stats(all[1 + i], &st), 0);
            assert_true(st.worker_pid != first);
        }
        assert_int_equal(ex_workers_replaced(ex), 1);
        for (int i = 0; i < E + 1; i++)
            ex_future_release(all[i]);
        assert_int_equal(ex_destroy(ex), 0);
    }
}

/* A timeout counts from the task's own start: four 250 ms tasks sent ahead
 * at once under a 600 ms timeout all succeed (the last was sent 750 ms
 * before it began), and each begins after the one before began plus its
 * sleep: start is when the worker began it. */
static void test_timeout_from_start(void **state)
{
    (void)state;
    enum { N = 4 };
    const uint32_t ms = 250 * (uint32_t)test_slow();
    ex_executor *ex = make_window(1, N, EX_TRANSPORT_PIPE,
                                 600 * MS * test_slow(), 0);
    ex_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = submit(ex, task_sleep_pid, &ms, sizeof ms);
    uint64_t prev = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(ex_future_result(fs[i], NULL, NULL, test_hang_ns()), 0);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(fs[i], &st), 0);
        assert_true(st.submit_ns <= st.start_ns && st.start_ns <= st.end_ns);
        assert_true(st.end_ns - st.start_ns >= (uint64_t)ms * MS);
        assert_true(st.ipc_send_ns <= st.start_ns - st.submit_ns);
        if (i > 0)
            assert_true(st.start_ns >= prev + (uint64_t)ms * MS);
        prev = st.start_ns;
        ex_future_release(fs[i]);
    }
    assert_int_equal(ex_workers_replaced(ex), 0);
    assert_int_equal(ex_destroy(ex), 0);
}

/* One worker, window 4: G (gated) runs, A B C wait in its window, D E in
 * the queue.  ex_future_cancel refuses A (RUNNING: sent ahead) and takes
 * D (PENDING); shutdown(cancel_pending) then cancels A B C E before it
 * returns, and G finishes. */
static atomic_int cancelled_cbs;

static void cb_count_cancel(ex_future *f, void *arg)
{
    (void)arg;
    if (ex_future_state(f) == EX_CANCELLED)
        atomic_fetch_add(&cancelled_cbs, 1);
}

static void test_cancel_window(void **state)
{
    (void)state;
    for (size_t t = 0; t < NKINDS(transports); t++) {
        atomic_store(&cancelled_cbs, 0);
        ex_executor *ex = make_window(1, 4, transports[t], 0, 0);
        padded in[5];
        padded_fill(in, 5);
        uint64_t begun = gate_starts();
        ex_future *g = submit(ex, task_gate, NULL, 0);
        ex_future *w[5];
        for (int i = 0; i < 5; i++) {
            w[i] = submit(ex, task_echo, &in[i], sizeof in[i]);
            assert_int_equal(ex_future_on_done(w[i], cb_count_cancel, NULL), 0);
        }
        ex_future *all[6] = {g, w[0], w[1], w[2], w[3], w[4]};
        assert_int_equal(wait_n_running(all, 6, 4), 4);
        wait_gate_starts(begun + 1); /* G begun: it is not cancelled */
        assert_int_equal(ex_future_state(w[0]), EX_RUNNING);
        assert_int_equal(ex_future_cancel(w[0]), EX_EINVAL);
        assert_int_equal(ex_future_state(w[3]), EX_PENDING);
        assert_int_equal(ex_future_cancel(w[3]), 0);
        assert_int_equal(ex_shutdown(ex, 0, 1), 0);
        /* Returned: every task not begun is cancelled, callbacks run. */
        for (int i = 0; i < 5; i++)
            assert_int_equal(ex_future_state(w[i]), EX_CANCELLED);
        assert_int_equal(atomic_load(&cancelled_cbs), 5);
        assert_int_equal(ex_future_state(g), EX_RUNNING);
        gate_open(1);
        assert_int_equal(ex_future_result(g, NULL, NULL, test_hang_ns()), 0);
        assert_int_equal(ex_destroy(ex), 0);
        for (int i = 0; i < 6; i++)
            ex_future_release(all[i]);
    }
}

/* shutdown(cancel_pending) revokes every window, so no worker takes
 * tasks afterwards: a chain submitted when its running parent ends is
 * still taken from the queue, and cancelled (it used to wait there, and
 * ex_destroy with it). */
static void do_destroy(void *arg)
{
    ex_destroy(arg);
}

static void test_cancel_then_chain(void **state)
{
    (void)state;
    ex_executor *ex = make_window(2, 4, EX_TRANSPORT_PIPE, 0, 0);
    uint64_t begun = gate_starts();
    ex_future *g = submit(ex, task_gate, NULL, 0), *c;
    assert_int_equal(ex_future_then(g, ex, task_echo, &c), 0);
    wait_gate_starts(begun + 1);
    assert_int_equal(ex_shutdown(ex, 0, 1), 0);
    gate_open(1);
    assert_int_equal(ex_future_wait(c, test_hang_ns()), 0);
    assert_int_equal(ex_future_state(g), EX_DONE);
    assert_int_equal(ex_future_state(c), EX_CANCELLED);
    assert_true(call_within(do_destroy, ex, test_hang_ns()));
    ex_future_release(g);
    ex_future_release(c);
}

/* max_tasks_per_worker 3 with a window of 8: 12 tasks submitted at once
 * run 3 per process, in order, on 4 processes. */
static void test_recycle_window(void **state)
{
    (void)state;
    enum { N = 12 };
    ex_executor *ex = make_window(1, 8, EX_TRANSPORT_PIPE, 0, 3);
    ex_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = submit(ex, task_pid, NULL, 0);
    int32_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = i32_of(fs[i]);
        ex_future_release(fs[i]);
    }
    for (int g = 0; g < N / 3; g++) {
        assert_int_equal(pids[3 * g + 1], pids[3 * g]);
        assert_int_equal(pids[3 * g + 2], pids[3 * g]);
        if (g > 0)
            assert_true(pids[3 * g] != pids[3 * g - 1]);
    }
    assert_true(ex_workers_replaced(ex) >= N / 3 - 1);
    assert_false(ex_is_broken(ex));
    assert_int_equal(ex_destroy(ex), 0);
}

/* Many small tasks through deep windows on 2 workers, both transports:
 * every output right, nothing replaced. */
static void test_window_stream(void **state)
{
    (void)state;
    enum { N = 3000 };
    for (size_t t = 0; t < NKINDS(transports); t++) {
        ex_executor *ex = make_window(2, 64, transports[t], 0, 0);
        ex_future **fs = calloc(N, sizeof *fs);
        uint32_t *in = calloc(N, sizeof *in);
        assert_non_null(fs);
        assert_non_null(in);
        for (int i = 0; i < N; i++) {
            in[i] = (uint32_t)i;
            fs[i] = submit(ex, task_double, &in[i], sizeof in[i]);
        }
        for (int i = 0; i < N; i++) {
            assert_int_equal(u32_of(fs[i]), 2u * (uint32_t)i + 1u);
            ex_future_release(fs[i]);
        }
        assert_int_equal(ex_workers_replaced(ex), 0);
        assert_int_equal(ex_destroy(ex), 0);
        free(fs);
        free(in);
    }
}

/* A deep window gathers many frames into one writev, of both shapes: a
 * header alone (no input) and a header with its input.  A burst submitted
 * from a callback, so that the dispatcher takes and sends it in one turn:
 * one frame of the first shape, then frames of the second.  The iovec
 * array must hold the last frame's two entries whatever the frames before
 * it took (an odd count used to put one entry past the array). */
enum { MIXED_N = 64 };
typedef struct mixed_burst {
    ex_executor *ex;
    ex_future *fs[MIXED_N];
    uint32_t in[MIXED_N];
    int rc;
    atomic_int done; /* the callback has returned (it runs after the
                        trigger is final: a wait may return before) */
} mixed_burst;

static void submit_mixed(ex_future *f, void *arg)
{
    (void)f;
    mixed_burst *b = arg;
    for (int i = 0; i < MIXED_N; i++) {
        b->in[i] = (uint32_t)i;
        int rc = i == 0 ? ex_submit(b->ex, task_empty, NULL, 0, &b->fs[i])
                        : ex_submit(b->ex, task_double, &b->in[i],
                                    sizeof b->in[i], &b->fs[i]);
        if (rc != 0)
            b->rc = rc;
    }
    atomic_store(&b->done, 1);
}

static void test_window_mixed_frames(void **state)
{
    (void)state;
    ex_executor *ex = make_window(1, MIXED_N, EX_TRANSPORT_PIPE, 0, 0);
    /* Empty tasks bring the running mean down: the window goes deep. */
    for (int i = 0; i < 200; i++) {
        ex_future *f = submit(ex, task_empty, NULL, 0);
        assert_int_equal(ex_future_wait(f, test_hang_ns()), 0);
        ex_future_release(f);
    }
    for (int round = 0; round < 4; round++) {
        mixed_burst b = {.ex = ex};
        ex_future *trigger = submit(ex, task_gate, NULL, 0);
        assert_int_equal(ex_future_on_done(trigger, submit_mixed, &b), 0);
        gate_open(1);
        assert_int_equal(ex_future_wait(trigger, test_hang_ns()), 0);
        for (int t = 0; t < 20000 * test_slow() && !atomic_load(&b.done); t++)
            sleep_ms(1);
        assert_true(atomic_load(&b.done));
        ex_future_release(trigger);
        assert_int_equal(b.rc, 0);
        for (int i = 0; i < MIXED_N; i++) {
            if (i == 0)
                assert_int_equal(ex_future_wait(b.fs[i], test_hang_ns()), 0);
            else
                assert_int_equal(u32_of(b.fs[i]), 2u * (uint32_t)i + 1u);
            ex_future_release(b.fs[i]);
        }
    }
    assert_int_equal(ex_workers_replaced(ex), 0);
    assert_int_equal(ex_destroy(ex), 0);
}

int main(void)
{
    test_alarm();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_bound),
        cmocka_unit_test(test_window_depth),
        cmocka_unit_test(test_window_default_depth),
        cmocka_unit_test(test_crash_full_window),
        cmocka_unit_test(test_timeout_full_window),
        cmocka_unit_test(test_timeout_from_start),
        cmocka_unit_test(test_cancel_window),
        cmocka_unit_test(test_cancel_then_chain),
        cmocka_unit_test(test_recycle_window),
        cmocka_unit_test(test_window_stream),
        cmocka_unit_test(test_window_mixed_frames),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
