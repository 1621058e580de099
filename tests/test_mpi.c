/*
 * test_mpi.c: the mpi backend (EX_MPI) behind the executor.h contract:
 * the task registry, results and per-task stats from the MPI workers,
 * task errors, cancel, callbacks, then, wait modes, as_completed, map
 * with chunks, the bounded queue, the gauges, the shutdown matrix, an
 * unregistered function, and the faults (a crashing task, a task past its
 * timeout): every pending future fails with EX_EBROKEN within a bounded
 * time and no process or fd is left behind.
 *
 * This binary is also the broker and the MPI workers (ex_worker_main at
 * the top of main), as every program using EX_MPI is.  Without Open MPI,
 * or in a sanitizer build (Open MPI's own leaks and threads would fail
 * the broker and workers there, not our code), every test is skipped
 * with the reason printed, and counted as skipped.
 *
 * One executor of 2 workers serves the checks that leave it usable
 * (start-up costs about a second); the others make their own.
 */
#include "util.h"
#include "mpi_internal.h"

#include <signal.h>

static ex_executor *shared_ex;
static const char *skip_reason;

/* Dies of SIGSEGV. */
static int task_segv(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    raise(SIGSEGV);
    return 99;
}

/* Never registered. */
static int task_unnamed(const void *in, size_t len, ex_buf *out)
{
    return task_echo(in, len, out);
}

/* This file's own task, beside util.h's common ones (test_start). */
static void register_own(void)
{
    ex_task_register("test.segv", task_segv);
}

static bool skipped(void)
{
    if (skip_reason) {
        print_message("[  SKIPPED ] mpi: %s\n", skip_reason);
        skip();
        return true;
    }
    return false;
}

static ex_executor *make_mpi(unsigned workers, size_t cap, ex_on_full on_full,
                             int64_t timeout_ns)
{
    ex_config cfg;
    ex_config_init(&cfg, EX_MPI);
    cfg.max_workers = workers;
    cfg.queue_capacity = cap;
    cfg.on_full = on_full;
    cfg.timeout_ns = timeout_ns;
    ex_executor *ex = NULL;
    assert_int_equal(ex_create(&cfg, &ex), 0);
    assert_non_null(ex);
    assert_int_equal(ex_executor_kind(ex), EX_MPI);
    return ex;
}

/* The shared executor's spawned workers: 2, or none when this test runs
 * under `mpirun -n 3` (tests/e2e_mpirun.sh), where the first mpi executor
 * takes the job's two worker ranks and later ones spawn their own. */
static int shared_spawned = 2;

/* Processes running this executable as an MPI worker (argv[1] is the
 * worker marker), wherever they were reparented: the broker reaps them,
 * so after ex_destroy there must be none (pc_children sees only the
 * broker, our child). */
static int our_workers(void)
{
    char self[4096], exe[4096], path[64];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0)
        return -1;
    self[k] = '\0';
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        snprintf(path, sizeof path, "/proc/%.20s/exe", e->d_name);
        ssize_t m = readlink(path, exe, sizeof exe - 1);
        if (m <= 0 || (exe[m] = '\0', strcmp(exe, self) != 0))
            continue;
        char cmd[512] = {0};
        snprintf(path, sizeof path, "/proc/%.20s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        size_t len = f ? fread(cmd, 1, sizeof cmd - 1, f) : 0;
        if (f)
            fclose(f);
        size_t first = strnlen(cmd, len);
        if (first + 1 < len && strncmp(cmd + first + 1, MPI_WORKER_ARG,
                                       strlen(MPI_WORKER_ARG)) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* No worker of ours beyond the `before` there were (the shared
 * executor's), waiting up to 10 s for the broker's reaping. */
static void assert_no_workers_left(int before)
{
    int n = our_workers();
    for (int i = 0; i < 1000 && n != before; i++) {
        sleep_ms(10);
        n = our_workers();
    }
    assert_int_equal(n, before);
}

static ex_future *submit_u32(ex_executor *ex, ex_task_fn fn, const uint32_t *v)
{
    return submit_ok(ex, fn, v, sizeof *v);
}

/* ---------------------------------------------------------- registry */

static void test_registry(void **state)
{
    (void)state;
    char longname[EX_TASK_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(ex_task_register(NULL, task_echo), EX_EINVAL);
    assert_int_equal(ex_task_register("", task_echo), EX_EINVAL);
    assert_int_equal(ex_task_register(longname, task_echo), EX_EINVAL);
    longname[EX_TASK_NAME_MAX] = '\0'; /* exactly the longest allowed */
    assert_int_equal(ex_task_register(longname, task_echo), 0);
    assert_int_equal(ex_task_register("test.x", NULL), EX_EINVAL);
    assert_int_equal(ex_task_register("test.echo", task_echo), 0);
    assert_int_equal(ex_task_register("test.echo", task_double), EX_EINVAL);
    char name[EX_TASK_NAME_MAX + 1];
    assert_true(ex__task_name(task_echo, name));
    assert_true(ex__task_fn(name) == task_echo);
    assert_false(ex__task_name(task_unnamed, name));
    assert_null(ex__task_fn("test.none"));
    assert_string_equal(ex_kind_name(EX_MPI), "mpi");
    ex_kind k;
    assert_int_equal(ex_kind_parse("mpi", &k), 0);
    assert_int_equal(k, EX_MPI);
}

/* Without Open MPI, ex_create refuses EX_MPI with EX_EUNAVAIL and says
 * why; with it, the backend says it is there. */
static void test_availability(void **state)
{
    (void)state;
    const char *why = NULL;
    int have = ex_mpi_available(&why);
    assert_non_null(why);
    if (have) {
        assert_string_equal(why, "");
        return;
    }
    assert_non_null(strstr(why, "Open MPI"));
    ex_config cfg;
    ex_config_init(&cfg, EX_MPI);
    ex_executor *ex = (ex_executor *)1;
    assert_int_equal(ex_create(&cfg, &ex), EX_EUNAVAIL);
    assert_null(ex);
    assert_non_null(strstr(ex_strerror(EX_EUNAVAIL), "EX_EUNAVAIL"));
}

/* ----------------------------------------------------------- results */

static void test_results_and_stats(void **state)
{
    (void)state;
    if (skipped())
        return;
    enum { N = 200 };
    static uint32_t in[N];
    static ex_future *fs[N];
    pid_t w0 = ex_worker_pid(shared_ex, 0), w1 = ex_worker_pid(shared_ex, 1);
    assert_true(w0 > 0 && w1 > 0 && w0 != w1 && w0 != getpid());
    for (uint32_t i = 0; i < N; i++) {
        in[i] = i;
        fs[i] = submit_u32(shared_ex, task_double, &in[i]);
    }
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(u32_of(fs[i]), 2 * i + 1);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(fs[i], &st), 0);
        assert_true(st.worker_pid == w0 || st.worker_pid == w1);
        assert_int_equal(st.worker, st.worker_pid == w0 ? 0 : 1);
        assert_true(st.submit_ns <= st.start_ns && st.start_ns <= st.end_ns);
        assert_true(st.flags & EX_STATS_CPU);
        assert_true(st.cpu_ns <= st.end_ns - st.start_ns);
        ex_future_release(fs[i]);
    }
    ex_future *f = submit_ok(shared_ex, task_pid, NULL, 0);
    int32_t pid = i32_of(f);
    assert_true(pid == w0 || pid == w1);
    ex_future_release(f);
}

static void test_task_error_and_unregistered(void **state)
{
    (void)state;
    if (skipped())
        return;
    uint32_t odd = 7, even = 8;
    ex_future *a = submit_u32(shared_ex, task_fail_odd, &odd);
    ex_future *b = submit_u32(shared_ex, task_fail_odd, &even);
    assert_int_equal(ex_future_result(a, NULL, NULL, test_hang_ns()), EX_ETASK);
    assert_int_equal(ex_future_task_code(a), 7);
    assert_int_equal(u32_of(b), 8);
    ex_future_release(a);
    ex_future_release(b);
    ex_future *f = NULL;
    assert_int_equal(ex_submit(shared_ex, task_unnamed, "x", 1, &f), EX_EINVAL);
    assert_null(f);
    const void *ins[1] = {"x"};
    size_t lens[1] = {1};
    ex_map *m = NULL;
    assert_int_equal(ex_map_create_array(shared_ex, task_unnamed, ins, lens, 1, 1, 0, &m),
                     EX_EINVAL);
    assert_int_equal(ex_map_create_array(shared_ex, task_unnamed, ins, lens, 1, 4, 0, &m),
                     EX_EINVAL);
    assert_false(ex_is_broken(shared_ex));
}

/* ------------------------------------------- cancel, callbacks, then */

static void on_done_count(ex_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_cancel_callbacks_then(void **state)
{
    (void)state;
    if (skipped())
        return;
    /* Two workers busy: the third task waits in the queue, PENDING. */
    uint32_t long_ms = 400, one = 1;
    ex_future *a = submit_u32(shared_ex, task_sleep_ms, &long_ms);
    ex_future *b = submit_u32(shared_ex, task_sleep_ms, &long_ms);
    wait_running(a);
    wait_running(b);
    ex_future *c = submit_u32(shared_ex, task_double, &one);
    assert_int_equal(ex_future_cancel(c), 0);
    assert_int_equal(ex_future_state(c), EX_CANCELLED);
    assert_int_equal(ex_future_cancel(a), EX_EINVAL); /* running */
    atomic_int calls = 0;
    assert_int_equal(ex_future_on_done(a, on_done_count, &calls), 0);
    assert_int_equal(ex_future_on_done(c, on_done_count, &calls), 0); /* at once */
    assert_int_equal(atomic_load(&calls), 1);
    ex_future *d = submit_u32(shared_ex, task_double, &one), *e = NULL;
    assert_int_equal(ex_future_then(d, shared_ex, task_double, &e), 0);
    assert_int_equal(u32_of(e), 2 * (2 * 1 + 1) + 1);
    ex_future *g = NULL;
    assert_int_equal(ex_future_then(d, shared_ex, task_unnamed, &g), 0);
    assert_int_equal(ex_future_result(g, NULL, NULL, test_hang_ns()), EX_EINVAL);
    assert_int_equal(u32_of(a), long_ms);
    assert_int_equal(u32_of(b), long_ms);
    assert_int_equal(atomic_load(&calls), 2);
    ex_future *all[] = {a, b, c, d, e, g};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ex_future_release(all[i]);
}

/* ------------------------------------------ wait, as_completed, map */

static void test_wait_and_as_completed(void **state)
{
    (void)state;
    if (skipped())
        return;
    uint32_t ms[3] = {600, 0, 0};
    ex_future *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = submit_u32(shared_ex, task_sleep_ms, &ms[i]);
    size_t ndone = 0;
    assert_int_equal(ex_wait(fs, 3, EX_FIRST_COMPLETED, test_hang_ns(), &ndone), 0);
    assert_true(ndone >= 1);
    ex_as_completed *it;
    assert_int_equal(ex_as_completed_create(fs, 3, &it), 0);
    ex_future *order[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(ex_as_completed_next(it, &order[i], test_hang_ns()), 0);
    ex_future *end = fs[0];
    assert_int_equal(ex_as_completed_next(it, &end, 0), 0);
    assert_null(end);
    ex_as_completed_destroy(it);
    assert_ptr_equal(order[2], fs[0]); /* the long one last */
    assert_int_equal(ex_wait(fs, 3, EX_ALL_COMPLETED, 0, &ndone), 0);
    assert_int_equal(ndone, 3);
    for (int i = 0; i < 3; i++)
        ex_future_release(fs[i]);
}

static void test_map_chunks(void **state)
{
    (void)state;
    if (skipped())
        return;
    enum { N = 53 };
    static uint32_t in[N];
    static const void *ins[N];
    static size_t lens[N];
    for (uint32_t i = 0; i < N; i++) {
        in[i] = i;
        ins[i] = &in[i];
        lens[i] = sizeof in[i];
    }
    size_t chunks[] = {1, 5};
    for (size_t c = 0; c < 2; c++) {
        ex_map *m;
        assert_int_equal(ex_map_create_array(shared_ex, task_fail_odd, ins, lens, N,
                                             chunks[c], 8, &m), 0);
        for (uint32_t i = 0; i < N; i++) {
            size_t index, len;
            int status, code;
            const void *out;
            assert_int_equal(ex_map_next(m, &index, &status, &code, &out, &len,
                                         test_hang_ns()), 0);
            assert_int_equal(index, i);
            assert_int_equal(status, i % 2 ? EX_ETASK : 0);
            if (i % 2)
                assert_int_equal(code, (int)i);
            else
                assert_memory_equal(out, &in[i], sizeof in[i]);
        }
        size_t index, len;
        int status, code;
        const void *out;
        assert_int_equal(ex_map_next(m, &index, &status, &code, &out, &len, 0), 1);
        ex_map_destroy(m);
    }
}

/* ------------------------------------------------ queue and gauges */

static void test_bounded_queue_and_gauges(void **state)
{
    (void)state;
    if (skipped())
        return;
    ex_executor *ex = make_mpi(2, 1, EX_ON_FULL_REJECT, 0);
    uint32_t ms = 500;
    ex_future *a = submit_u32(ex, task_sleep_ms, &ms);
    wait_running(a); /* the one queue place is free again */
    ex_future *b = submit_u32(ex, task_sleep_ms, &ms);
    wait_running(b);
    ex_future *c = submit_u32(ex, task_sleep_ms, &ms), *d = NULL;
    assert_int_equal(ex_submit(ex, task_sleep_ms, &ms, sizeof ms, &d), EX_EFULL);
    ex_pool_stats ps;
    assert_int_equal(ex_executor_stats(ex, &ps), 0);
    assert_int_equal(ps.rejected, 1);
    assert_int_equal(ps.submitted, 3);
    assert_int_equal(ps.workers_alive, 2);
    assert_int_equal(u32_of(c), ms);
    assert_int_equal(ex_executor_stats(ex, &ps), 0);
    assert_int_equal(ps.completed, 3);
    assert_int_equal(ps.queued + ps.running, 0);
    ex_config bad;
    ex_config_init(&bad, EX_MPI);
    bad.on_full = EX_ON_FULL_CALLER_RUNS;
    ex_executor *none = NULL;
    assert_int_equal(ex_create(&bad, &none), EX_EINVAL);
    ex_future_release(a);
    ex_future_release(b);
    ex_future_release(c);
    assert_int_equal(ex_destroy(ex), 0);
}

/* ------------------------------------------------------- shutdown */

/* shutdown(wait, cancel_pending) with two running and two queued. */
static void shutdown_case(int wait, int cancel)
{
    ex_executor *ex = make_mpi(2, 0, EX_ON_FULL_BLOCK, 0);
    uint32_t ms = 300;
    ex_future *fs[4];
    for (int i = 0; i < 4; i++)
        fs[i] = submit_u32(ex, task_sleep_ms, &ms);
    wait_running(fs[0]);
    wait_running(fs[1]);
    assert_int_equal(ex_shutdown(ex, wait, cancel), 0);
    ex_future *late = NULL;
    assert_int_equal(ex_submit(ex, task_sleep_ms, &ms, sizeof ms, &late), EX_ESHUTDOWN);
    assert_int_equal(ex_destroy(ex), 0);
    for (int i = 0; i < 4; i++) {
        if (cancel && i >= 2)
            assert_int_equal(ex_future_state(fs[i]), EX_CANCELLED);
        else
            assert_int_equal(u32_of(fs[i]), ms);
        ex_future_release(fs[i]);
    }
}

static void test_shutdown_matrix(void **state)
{
    (void)state;
    if (skipped())
        return;
    for (int wait = 0; wait < 2; wait++)
        for (int cancel = 0; cancel < 2; cancel++)
            shutdown_case(wait, cancel);
}

/* ----------------------------------------------------------- faults */

/* Submits a fault (fn on in) behind two long tasks and four queued ones:
 * every future is final within a bounded time, the fault's with
 * fault_err and all others with EX_EBROKEN; the executor is broken; after
 * ex_destroy no child process and no fd is left. */
static void fault_case(ex_task_fn fn, int64_t timeout_ns, int fault_err)
{
    pc_counts before = pc_take();
    int workers_before = our_workers();
    assert_int_equal(workers_before, shared_spawned); /* the shared executor's */
    ex_executor *ex = make_mpi(2, 0, EX_ON_FULL_BLOCK, timeout_ns);
    uint32_t long_ms = 20000, short_ms = 1, hang_ms = 60000;
    ex_future *fs[6];
    fs[0] = submit_u32(ex, task_sleep_ms, &long_ms);
    wait_running(fs[0]);
    fs[1] = fn == task_sleep_ms ? submit_u32(ex, fn, &hang_ms) : submit_ok(ex, fn, NULL, 0);
    for (int i = 2; i < 6; i++)
        fs[i] = submit_u32(ex, task_sleep_ms, &short_ms);
    double t0 = now_s();
    size_t ndone = 0;
    assert_int_equal(ex_wait(fs, 6, EX_ALL_COMPLETED, 30 * SEC * test_slow(), &ndone), 0);
    assert_true(now_s() - t0 < 30.0 * test_slow());
    /* A timeout: the long task runs past it too, and started first; the
     * job ends at the first of the two to time out, so the other may see
     * EX_EBROKEN first (on a loaded machine, seen with the hang). */
    bool timeout = fault_err == EX_ETIMEDOUT;
    int e0 = ex_future_error(fs[0]), e1 = ex_future_error(fs[1]);
    if (timeout) {
        assert_true(e0 == EX_ETIMEDOUT || e1 == EX_ETIMEDOUT);
        assert_true(e1 == EX_ETIMEDOUT || e1 == EX_EBROKEN);
    } else {
        assert_int_equal(e1, fault_err);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(ex_future_state(fs[i]), EX_FAILED);
        if (i == 1 || (i == 0 && timeout && e0 == EX_ETIMEDOUT))
            continue;
        assert_int_equal(ex_future_error(fs[i]), EX_EBROKEN);
    }
    assert_true(ex_is_broken(ex));
    ex_future *late = NULL;
    assert_int_equal(ex_submit(ex, task_sleep_ms, &short_ms, sizeof short_ms, &late),
                     EX_EBROKEN);
    ex_pool_stats ps;
    assert_int_equal(ex_executor_stats(ex, &ps), 0);
    assert_int_equal(ps.failed, 6);
    assert_int_equal(ex_destroy(ex), 0);
    for (int i = 0; i < 6; i++)
        ex_future_release(fs[i]);
    pc_counts after = pc_settle(before, 500);
    assert_int_equal(after.children, before.children);
    assert_int_equal(after.fds, before.fds);
    assert_no_workers_left(workers_before);
}

static void test_crash_breaks_pool(void **state)
{
    (void)state;
    if (skipped())
        return;
    fault_case(task_segv, 0, EX_EBROKEN);
}

static void test_timeout_breaks_pool(void **state)
{
    (void)state;
    if (skipped())
        return;
    fault_case(task_sleep_ms, 1 * SEC, EX_ETIMEDOUT);
}

/* A clean life leaves nothing either: no child, no fd. */
static void test_nothing_left(void **state)
{
    (void)state;
    if (skipped())
        return;
    pc_counts before = pc_take();
    int workers_before = our_workers();
    assert_int_equal(workers_before, shared_spawned); /* the shared executor's */
    ex_executor *ex = make_mpi(3, 0, EX_ON_FULL_BLOCK, 0);
    assert_int_equal(ex_workers(ex), 3);
    uint32_t v = 5;
    ex_future *f = submit_u32(ex, task_double, &v);
    assert_int_equal(u32_of(f), 11);
    ex_future_release(f);
    assert_int_equal(ex_destroy(ex), 0);
    pc_counts after = pc_settle(before, 500);
    assert_int_equal(after.children, before.children);
    assert_int_equal(after.fds, before.fds);
    assert_no_workers_left(workers_before);
}

/* --------------------------------------------------------------- main */

static int group_setup(void **state)
{
    (void)state;
    if (skip_reason)
        return 0;
    ex_config cfg;
    ex_config_init(&cfg, EX_MPI);
    cfg.max_workers = 2;
    return ex_create(&cfg, &shared_ex) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    return ex_destroy(shared_ex) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* Read before test_start: the application of an mpirun job loses
     * mpirun's rank variables there. */
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    bool under_mpirun = size && atoi(size) == 3;
    if (test_start(&argc, &argv, register_own))
        return 0;
    if (under_mpirun)
        shared_spawned = 0;
    skip_reason = test_mpi_unavailable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_availability),
        cmocka_unit_test(test_results_and_stats),
        cmocka_unit_test(test_task_error_and_unregistered),
        cmocka_unit_test(test_cancel_callbacks_then),
        cmocka_unit_test(test_wait_and_as_completed),
        cmocka_unit_test(test_map_chunks),
        cmocka_unit_test(test_bounded_queue_and_gauges),
        cmocka_unit_test(test_shutdown_matrix),
        cmocka_unit_test(test_crash_breaks_pool),
        cmocka_unit_test(test_timeout_breaks_pool),
        cmocka_unit_test(test_nothing_left),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
