/*
 * test_procs.c: what only the process pool (executors/procs*.c) promises.
 * A crashing, self-killing or hanging task fails only its own future and
 * the pool goes on; recycling; 64 MiB each way and the payload cap, over
 * pipes and over shared memory; small shared-memory rings under deep
 * windows, and a region's memory given back; a broken initializer with no
 * respawn loop; per-task stats from the child; two pools side by side; the
 * fork server's death; and after ex_destroy the process has exactly the
 * fds, threads and children it had before, on both transports.  (The
 * window itself: test_window.c.)
 *
 * Every wait is generous (seconds, scaled under valgrind) and no assertion
 * depends on speed: the suite runs on a loaded 2-core machine and under
 * ASan, TSan and valgrind.  Tasks run in forked workers: they _exit or
 * return, never exit().
 */
#include "util.h"

#include <signal.h>
#include <sys/stat.h>

#define BIG ((size_t)64 << 20)

/* ------------------------------------------------------------------ tasks */

static int task_sigkill(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    (void)out;
    raise(SIGKILL);
    return 91;
}

/* Writes a byte to the fd its input names, then hangs: the test knows
 * for sure that it started. */
static int task_report_then_hang(const void *in, size_t len, ex_buf *out)
{
    (void)out;
    int fd;
    if (len != sizeof fd)
        return 92;
    memcpy(&fd, in, sizeof fd);
    if (write(fd, "s", 1) != 1)
        return 93;
    for (;;)
        pause();
    return 95;
}

/* Burns the number of CPU milliseconds given as a uint32 input. */
static int task_spin(const void *in, size_t len, ex_buf *out)
{
    (void)out;
    uint32_t ms;
    if (len != sizeof ms)
        return 92;
    memcpy(&ms, in, sizeof ms);
    struct timespec t0, t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    volatile uint64_t x = 0;
    do {
        for (int i = 0; i < 10000; i++)
            x += (uint64_t)i;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000LL + (t.tv_nsec - t0.tv_nsec) <
             (long long)ms * 1000000LL);
    return 0;
}

static unsigned char pattern_at(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

/* Output: as many pattern bytes as the uint64 input says. */
static int task_big_out(const void *in, size_t len, ex_buf *out)
{
    uint64_t n;
    if (len != sizeof n)
        return 93;
    memcpy(&n, in, sizeof n);
    unsigned char *p = ex_buf_extend(out, (size_t)n);
    if (!p)
        return 94;
    for (size_t i = 0; i < n; i++)
        p[i] = pattern_at(i);
    return 0;
}

/* Returns the input byte as its code (0 = success). */
static int task_code(const void *in, size_t len, ex_buf *out)
{
    (void)out;
    return len ? ((const unsigned char *)in)[0] : 0;
}

/* Leaves a grandchild that holds the worker's pipes; outputs its pid. */
static int task_leave_grandchild(const void *in, size_t len, ex_buf *out)
{
    (void)in;
    (void)len;
    pid_t pid = fork();
    if (pid < 0)
        return 96;
    if (pid == 0) {
        for (int i = 0; i < 600; i++)
            sleep(1);
        _exit(0);
    }
    int32_t v = (int32_t)pid;
    return ex_buf_append(out, &v, sizeof v) ? 90 : 0;
}

static int init_crash(void *arg)
{
    (void)arg;
    crash_now();
}

static int start_fail_odd(unsigned index, void *arg)
{
    (void)arg;
    return index % 2;
}

/* ---------------------------------------------------------------- helpers */

#define transports all_transports

static ex_executor *make_pool_t(unsigned workers, int64_t timeout_ns,
                                unsigned max_tasks, size_t max_payload,
                                ex_transport transport)
{
    return make_procs((procs_opts){.workers = workers, .timeout_ns = timeout_ns,
                                   .max_tasks = max_tasks,
                                   .max_payload = max_payload,
                                   .transport = transport});
}

static ex_executor *make_pool(unsigned workers, int64_t timeout_ns,
                              unsigned max_tasks, size_t max_payload)
{
    return make_pool_t(workers, timeout_ns, max_tasks, max_payload,
                       EX_TRANSPORT_PIPE);
}

#define submit submit_ok

/* Runs n echo tasks on distinct inputs and checks every output. */
static void run_echoes(ex_executor *ex, size_t n)
{
    ex_future **fs = calloc(n, sizeof *fs);
    uint32_t *in = calloc(n, sizeof *in);
    assert_non_null(fs);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++) {
        in[i] = (uint32_t)(i * 7919 + 1);
        fs[i] = submit(ex, task_echo, &in[i], sizeof in[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const void *out;
        size_t len;
        assert_int_equal(ex_future_result(fs[i], &out, &len, test_hang_ns()), 0);
        assert_int_equal(len, sizeof(uint32_t));
        assert_memory_equal(out, &in[i], sizeof in[i]);
        ex_future_release(fs[i]);
    }
    free(fs);
    free(in);
}

/* The worker pid other than `not` in slot i, once the slot has one. */
static pid_t wait_worker_pid(ex_executor *ex, unsigned i, pid_t not)
{
    for (int t = 0; t < 2000 * test_slow(); t++) {
        pid_t p = ex_worker_pid(ex, i);
        if (p > 0 && p != not)
            return p;
        sleep_ms(5);
    }
    fail_msg("worker %u never got a new pid", i);
    return 0;
}

/* The pid of this process's only child (the fork server), or 0. */
static pid_t only_child(void)
{
    pid_t pid = 0;
    return pc_child_pids(&pid, 1) == 1 ? pid : 0;
}

/* The counts settle to `want`. */
static void assert_counts(pc_counts want)
{
    pc_counts now = pc_settle(want, 400);
    assert_int_equal(now.fds, want.fds);
    assert_int_equal(now.threads, want.threads);
    assert_int_equal(now.children, want.children);
}

/* ------------------------------------------------------------------ tests */

/* abort(), SIGKILL and a hang past the timeout each fail only their own
 * future; 100 neighbours succeed; then the pool runs 100 more. */
static void test_crash_isolation(void **state)
{
    (void)state;
    ex_executor *ex = make_pool(2, 3 * SEC * test_slow(), 0, 0);
    enum { N = 100 };
    ex_future *fs[N];
    uint32_t in[N];
    ex_future *bad[3] = {NULL, NULL, NULL};
    for (int i = 0; i < N; i++) {
        in[i] = (uint32_t)i;
        fs[i] = submit(ex, task_echo, &in[i], sizeof in[i]);
        if (i == 10)
            bad[0] = submit(ex, task_abort, NULL, 0);
        if (i == 40)
            bad[1] = submit(ex, task_sigkill, NULL, 0);
        if (i == 70)
            bad[2] = submit(ex, task_hang, NULL, 0);
    }
    for (int i = 0; i < N; i++) {
        const void *out;
        size_t len;
        assert_int_equal(ex_future_result(fs[i], &out, &len, test_hang_ns()), 0);
        assert_int_equal(len, sizeof in[i]);
        assert_memory_equal(out, &in[i], sizeof in[i]);
        assert_int_equal(ex_future_state(fs[i]), EX_DONE);
        ex_future_release(fs[i]);
    }
    const int want[3] = {EX_EWORKER, EX_EWORKER, EX_ETIMEDOUT};
    for (int b = 0; b < 3; b++) {
        assert_int_equal(ex_future_result(bad[b], NULL, NULL, test_hang_ns()),
                         want[b]);
        assert_int_equal(ex_future_state(bad[b]), EX_FAILED);
        assert_int_equal(ex_future_error(bad[b]), want[b]);
        assert_int_equal(ex_future_task_code(bad[b]), 0);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(bad[b], &st), 0);
        assert_true(st.worker == 0 || st.worker == 1);
        assert_true(st.worker_pid > 0 && st.worker_pid != getpid());
        assert_true(st.start_ns <= st.end_ns);
        ex_future_release(bad[b]);
    }
    /* The hang was killed after at least the timeout. */
    assert_false(ex_is_broken(ex));
    assert_true(ex_workers_replaced(ex) >= 3);
    run_echoes(ex, 100);
    assert_false(ex_is_broken(ex));
    ex_destroy(ex);
}

/* A positive task code is EX_ETASK with the code, not a worker failure. */
static void test_task_code(void **state)
{
    (void)state;
    ex_executor *ex = make_pool(1, 0, 0, 0);
    unsigned char code = 42;
    ex_future *f = submit(ex, task_code, &code, 1);
    assert_int_equal(ex_future_result(f, NULL, NULL, test_hang_ns()), EX_ETASK);
    assert_int_equal(ex_future_task_code(f), 42);
    ex_future_release(f);
    assert_int_equal(ex_workers_replaced(ex), 0);
    ex_destroy(ex);
}

/* max_tasks_per_worker: the process changes after every 3 tasks, and
 * ex_worker_pid follows. */
static void test_recycle(void **state)
{
    (void)state;
    ex_executor *ex = make_pool(1, 0, 3, 0);
    pid_t first = ex_worker_pid(ex, 0);
    assert_true(first > 0 && first != getpid());
    assert_int_equal(ex_worker_pid(ex, 1), 0); /* out of range */
    int32_t pids[9];
    for (int i = 0; i < 9; i++) {
        ex_future *f = submit(ex, task_pid, NULL, 0);
        pids[i] = i32_of(f);
        ex_task_stats st;
        assert_int_equal(ex_future_stats(f, &st), 0);
        assert_int_equal(st.worker_pid, pids[i]);
        assert_int_equal(st.worker, 0);
        ex_future_release(f);
    }
    assert_int_equal(pids[0], first);
    for (int g = 0; g < 3; g++) {
        assert_int_equal(pids[3 * g + 1], pids[3 * g]);
        assert_int_equal(pids[3 * g + 2], pids[3 * g]);
    }
    assert_true(pids[0] != pids[3] && pids[3] != pids[6] && pids[0] != pids[6]);
    /* The fourth process replaces the third once it has exited. */
    pid_t now = wait_worker_pid(ex, 0, pids[6]);
    assert_true(now != pids[0] && now != pids[3]);
    assert_true(ex_workers_replaced(ex) >= 2);
    assert_false(ex_is_broken(ex));
    ex_destroy(ex);
}

/* A recycled worker whose task left a grandchild holding the result pipe
 * (so no EOF comes) is killed after its grace and replaced all the same. */
static void test_recycle_stuck_pipe(void **state)
{
    (void)state;
    ex_executor *ex = make_pool(1, 0, 1, 0);
    pid_t first = ex_worker_pid(ex, 0);
    ex_future *f = submit(ex, task_leave_grandchild, NULL, 0);
    pid_t grandchild = i32_of(f);
    ex_future_release(f);
    assert_true(grandchild > 0);
    pid_t next = wait_worker_pid(ex, 0, first);
    f = submit(ex, task_pid, NULL, 0);
    assert_int_equal(i32_of(f), next);
    ex_future_release(f);
    assert_false(ex_is_broken(ex));
    assert_int_equal(kill(grandchild, SIGKILL), 0);
    ex_destroy(ex);
}

/* 64 MiB in and out of a worker, content intact; and 64 MiB generated by
 * the worker from a small input; through the pipes and through the
 * shared-memory regions. */
static void big_payloads(ex_transport transport)
{
    ex_executor *ex = make_pool_t(2, 0, 0, 0, transport);
    unsigned char *in = malloc(BIG);
    assert_non_null(in);
    for (size_t i = 0; i < BIG; i++)
        in[i] = pattern_at(i + 17);
    ex_future *echo = submit(ex, task_echo, in, BIG);
    uint64_t n = BIG;
    ex_future *gen = submit(ex, task_big_out, &n, sizeof n);
    /* Small tasks keep flowing beside the transfers. */
    run_echoes(ex, 20);

    const void *out;
    size_t len;
    assert_int_equal(ex_future_result(echo, &out, &len, test_hang_ns()), 0);
    assert_int_equal(len, BIG);
    assert_memory_equal(out, in, BIG);
    ex_task_stats st;
    assert_int_equal(ex_future_stats(echo, &st), 0);
    assert_true(st.ipc_send_ns > 0 && st.ipc_recv_ns > 0);
    /* Sending ends before the worker begins the task (queue wait), the
     * result is read after it ends (blocked). */
    assert_true(st.ipc_send_ns <= st.start_ns - st.submit_ns);
    assert_true(st.ipc_recv_ns <= st.end_ns - st.start_ns);

    assert_int_equal(ex_future_result(gen, &out, &len, test_hang_ns()), 0);
    assert_int_equal(len, BIG);
    const unsigned char *o = out;
    size_t bad = 0;
    for (size_t i = 0; i < BIG; i++)
        bad += o[i] != pattern_at(i);
    assert_int_equal(bad, 0);
    ex_future_release(echo);
    ex_future_release(gen);
    free(in);
    assert_int_equal(ex_workers_replaced(ex), 0);
    ex_destroy(ex);
}

static void test_big_payloads(void **state)
{
    (void)state;
    for (size_t t = 0; t < NKINDS(transports); t++)
        big_payloads(transports[t]);
}

/* Echoes a pseudo-random number of bytes (its uint64 input says how
 * many and the pattern's seed): outputs of every size, from one task. */
static int task_sized_out(const void *in, size_t len, ex_buf *out)
{
    uint64_t n;
    if (len != sizeof n)
        return 93;
    memcpy(&n, in, sizeof n);
    size_t bytes = (size_t)(n >> 32);
    unsigned char *p = ex_buf_extend(out, bytes);
    if (!p && bytes)
        return 94;
    for (size_t i = 0; i < bytes; i++)
        p[i] = pattern_at(i + (uint32_t)n);
    return 0;
}

/* Shared memory with small rings (max_payload 512 KiB: 1 MiB each) and
 * deep windows: inputs that must wait for room, outputs that outgrow
 * the room lent to them (moved to the heap, sent inline), wrap-arounds;
 * every byte right, no worker lost. */
static void test_shm_small_rings(void **state)
{
    (void)state;
    enum { N = 120, CAP = 512 << 10 };
    ex_executor *ex = make_procs((procs_opts){.workers = 2, .window = 8,
                                              .max_payload = CAP,
                                              .transport = EX_TRANSPORT_SHM});
    unsigned char *in = malloc((size_t)N * CAP);
    assert_non_null(in);
    ex_future *fs[N];
    size_t lens[N];
    uint64_t outs[N];
    for (int i = 0; i < N; i++) {
        lens[i] = (size_t)((i * 7919u) % CAP) + 1;
        for (size_t k = 0; k < lens[i]; k++)
            in[(size_t)i * CAP + k] = pattern_at(k + (size_t)i);
        if (i % 2) {
            fs[i] = submit(ex, task_echo, in + (size_t)i * CAP, lens[i]);
        } else {
            outs[i] = ((uint64_t)((i * 104729u) % CAP) << 32) | (uint32_t)i;
            fs[i] = submit(ex, task_sized_out, &outs[i], sizeof outs[i]);
        }
    }
    for (int i = 0; i < N; i++) {
        const void *out;
        size_t len;
        assert_int_equal(ex_future_result(fs[i], &out, &len, test_hang_ns()), 0);
        const unsigned char *o = out;
        size_t want = i % 2 ? lens[i] : (size_t)(outs[i] >> 32), bad = 0;
        assert_int_equal(len, want);
        for (size_t k = 0; k < len; k++)
            bad += o[k] != pattern_at(k + (size_t)i); /* both tasks' pattern */
        assert_int_equal(bad, 0);
        ex_future_release(fs[i]);
    }
    assert_int_equal(ex_workers_replaced(ex), 0);
    free(in);
    ex_destroy(ex);
}

/* Bytes of memory a worker region (memfd "poolbench-shm") of this
 * process holds, summed over the regions open (-1: none). */
static long long shm_bytes(void)
{
    long long sum = -1;
    char path[64], link[128];
    for (int fd = 3; fd < 1024; fd++) {
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t k = readlink(path, link, sizeof link - 1);
        if (k <= 0)
            continue;
        link[k] = 0;
        struct stat st;
        if (strstr(link, "memfd:poolbench-shm") && fstat(fd, &st) == 0)
            sum = (sum < 0 ? 0 : sum) + (long long)st.st_blocks * 512;
    }
    return sum;
}

/* A region's memory grows with the payloads it carries and is given back
 * once they are over: 32 MiB each way, then small tasks. */
static void test_shm_memory(void **state)
{
    (void)state;
    const size_t big = (size_t)32 << 20;
    ex_executor *ex = make_pool_t(1, 0, 0, 0, EX_TRANSPORT_SHM);
    long long idle = shm_bytes();
    assert_true(idle >= 0 && idle < (8 << 20));
    unsigned char *in = malloc(big);
    assert_non_null(in);
    memset(in, 0x5a, big);
    ex_future *f = submit(ex, task_echo, in, big);
    assert_int_equal(ex_future_result(f, NULL, NULL, test_hang_ns()), 0);
    ex_future_release(f);
    assert_true(shm_bytes() >= (long long)(2 * big)); /* both rings */
    for (int i = 0; i < 40; i++) {
        f = submit(ex, task_echo, in, 8192);
        assert_int_equal(ex_future_result(f, NULL, NULL, test_hang_ns()), 0);
        ex_future_release(f);
    }
    assert_true(shm_bytes() <= (8 << 20));
    free(in);
    ex_destroy(ex);
    assert_int_equal(shm_bytes(), -1); /* closed with the pool */
}

/* max_payload: a bigger input is refused at submit; a bigger output fails
 * its future with EX_EINVAL without killing the worker (also when it was
 * written in place in a region, and when it outgrew the room lent there:
 * 3 MiB against a 1 MiB ring). */
static void payload_cap(ex_transport t)
{
    enum { CAP = 1024 };
    ex_executor *ex = make_pool_t(1, 0, 0, CAP, t);
    static unsigned char in[CAP + 1];
    ex_future *f = (ex_future *)&f;
    assert_int_equal(ex_submit(ex, task_echo, in, CAP + 1, &f), EX_EINVAL);
    assert_null(f);

    f = submit(ex, task_echo, in, CAP);
    size_t len;
    assert_int_equal(ex_future_result(f, NULL, &len, test_hang_ns()), 0);
    assert_int_equal(len, CAP);
    ex_future_release(f);

    const uint64_t over[2] = {CAP + 1, (uint64_t)3 << 20};
    for (int i = 0; i < 2; i++) {
        f = submit(ex, task_big_out, &over[i], sizeof over[i]);
        assert_int_equal(ex_future_result(f, NULL, NULL, test_hang_ns()), EX_EINVAL);
        ex_future_release(f);
    }
    pid_t pid = ex_worker_pid(ex, 0);
    run_echoes(ex, 5);
    assert_int_equal(ex_worker_pid(ex, 0), pid);
    assert_int_equal(ex_workers_replaced(ex), 0);
    ex_destroy(ex);
}

static void test_payload_cap(void **state)
{
    (void)state;
    for (size_t t = 0; t < NKINDS(transports); t++)
        payload_cap(transports[t]);
}

/* An initializer that fails, one that crashes, a worker_start that fails
 * for some indexes: ex_create succeeds, the pool is broken, submit says
 * EX_EBROKEN, and nothing respawns in a loop. */
static void test_init_failure(void **state)
{
    (void)state;
    for (int mode = 0; mode < 3; mode++) {
        pc_counts before = pc_take();
        ex_config cfg;
        ex_config_init(&cfg, EX_PROCS);
        cfg.max_workers = 3;
        if (mode == 0)
            cfg.initializer = init_fail;
        else if (mode == 1)
            cfg.initializer = init_crash;
        else
            cfg.worker_start = start_fail_odd;
        ex_executor *ex = NULL;
        assert_int_equal(ex_create(&cfg, &ex), 0);
        assert_non_null(ex);
        assert_true(ex_is_broken(ex));
        ex_future *f = (ex_future *)&f;
        assert_int_equal(ex_submit(ex, task_echo, "x", 1, &f), EX_EBROKEN);
        assert_null(f);
        sleep_ms(200);
        assert_int_equal(ex_workers_replaced(ex), 0);
        assert_int_equal(ex_submit(ex, task_echo, "x", 1, &f), EX_EBROKEN);
        ex_destroy(ex);
        assert_counts(before);
    }
}

/* Stats come from the child and add up. */
static void test_stats(void **state)
{
    (void)state;
    ex_executor *ex = make_pool(2, 0, 0, 0);
    uint32_t ms = 60;
    ex_future *f = submit(ex, task_spin, &ms, sizeof ms);
    assert_int_equal(ex_future_result(f, NULL, NULL, test_hang_ns()), 0);
    ex_task_stats st;
    assert_int_equal(ex_future_stats(f, &st), 0);
    assert_true(st.worker_pid > 0 && st.worker_pid != getpid());
    assert_true(st.worker_pid == ex_worker_pid(ex, (unsigned)st.worker));
    assert_true(st.worker == 0 || st.worker == 1);
    assert_true(st.submit_ns > 0);
    assert_true(st.submit_ns <= st.start_ns);
    assert_true(st.start_ns <= st.end_ns);
    assert_true(st.ipc_send_ns > 0);
    assert_true(st.ipc_recv_ns > 0);
    /* The task burned 60 ms of its thread's CPU, inside the parent's
     * start..end window.  getrusage may lag the exact clock by a tick
     * either way: allow 10 ms of slack, never a speed assumption. */
    const uint64_t slack = 10 * 1000000ull;
    assert_true(st.cpu_ns >= 40 * 1000000ull);
    assert_true(st.cpu_ns <= st.end_ns - st.start_ns + slack);
    assert_true(st.ipc_recv_ns + st.cpu_ns <= st.end_ns - st.start_ns + slack);
    assert_true(st.ipc_send_ns <= st.start_ns - st.submit_ns);
    assert_true(st.cpu >= -1);
    assert_true(st.nvcsw >= 0 && st.nivcsw >= 0);
    ex_future_release(f);
    ex_destroy(ex);
}

/* Two pools at once: distinct workers, and destroying one (whose fork
 * server must see EOF although the other pool was forked after it) does
 * not disturb the other. */
static void test_two_pools(void **state)
{
    (void)state;
    pc_counts before = pc_take();
    ex_executor *a = make_pool(2, 0, 0, 0);
    ex_executor *b = make_pool(2, 10 * SEC * test_slow(), 0, 0);
    pid_t wa[2] = {ex_worker_pid(a, 0), ex_worker_pid(a, 1)};
    pid_t wb[2] = {ex_worker_pid(b, 0), ex_worker_pid(b, 1)};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            assert_true(wa[i] != wb[j]);
    assert_true(wa[0] != wa[1] && wb[0] != wb[1]);

    uint32_t ms = 100;
    ex_future *spin = submit(b, task_spin, &ms, sizeof ms);
    ex_future *crash = submit(b, task_sigkill, NULL, 0);
    run_echoes(a, 50);
    ex_destroy(a); /* hangs if b's processes held a's fds */
    assert_int_equal(ex_future_result(spin, NULL, NULL, test_hang_ns()), 0);
    assert_int_equal(ex_future_result(crash, NULL, NULL, test_hang_ns()), EX_EWORKER);
    ex_future_release(spin);
    ex_future_release(crash);
    run_echoes(b, 50);
    ex_destroy(b);
    assert_counts(before);
}

/* A worker killed from outside: while idle after a task it is replaced;
 * while it runs a task, that task fails alone. */
static void test_external_kill(void **state)
{
    (void)state;
    int started[2]; /* before the pool: its workers inherit it */
    assert_int_equal(pipe(started), 0);
    ex_executor *ex = make_pool(1, 0, 0, 0);
    ex_future *f = submit(ex, task_pid, NULL, 0);
    pid_t pid = i32_of(f);
    ex_future_release(f);
    assert_int_equal(kill(pid, SIGKILL), 0);
    pid_t next = wait_worker_pid(ex, 0, pid);
    assert_int_equal(ex_workers_replaced(ex), 1);
    assert_false(ex_is_broken(ex));
    f = submit(ex, task_pid, NULL, 0);
    assert_int_equal(i32_of(f), next);
    ex_future_release(f);

    /* Started for sure: the task itself says so through its output pipe
     * before it hangs.  (A task its worker never read is re-dispatched
     * instead: test_faults.) */
    f = submit(ex, task_report_then_hang, &started[1], sizeof started[1]);
    char c;
    assert_int_equal(read(started[0], &c, 1), 1);
    assert_int_equal(kill(next, SIGKILL), 0);
    assert_int_equal(ex_future_result(f, NULL, NULL, test_hang_ns()), EX_EWORKER);
    ex_future_release(f);
    close(started[0]);
    close(started[1]);
    run_echoes(ex, 10);
    assert_false(ex_is_broken(ex));
    ex_destroy(ex);
}

/* Killing a worker that never completed a task is not retried: broken. */
static void test_idle_death_breaks(void **state)
{
    (void)state;
    ex_executor *ex = make_pool(1, 0, 0, 0);
    assert_int_equal(kill(ex_worker_pid(ex, 0), SIGKILL), 0);
    for (int t = 0; t < 2000 * test_slow() && !ex_is_broken(ex); t++)
        sleep_ms(5);
    assert_true(ex_is_broken(ex));
    assert_int_equal(ex_workers_replaced(ex), 0);
    ex_future *f = NULL;
    assert_int_equal(ex_submit(ex, task_echo, "x", 1, &f), EX_EBROKEN);
    ex_destroy(ex);
}

/* The fork server killed: the pool breaks, running work fails, destroy
 * still reaps everything. */
static void test_fork_server_death(void **state)
{
    (void)state;
    pc_counts before = pc_take();
    assert_int_equal(before.children, 0);
    ex_executor *ex = make_pool(2, 0, 0, 0);
    pid_t fs = only_child();
    assert_true(fs > 0);
    /* Begun by its worker (not just sent ahead into its window: RUNNING
     * alone does not say that), so it fails as the worker's task, not as
     * a queued one of a broken pool.  The gate is never opened: the task
     * blocks until its worker dies with the fork server. */
    uint64_t begun = gate_starts();
    ex_future *f = submit(ex, task_gate, NULL, 0);
    wait_gate_starts(begun + 1);
    assert_int_equal(ex_future_state(f), EX_RUNNING);
    assert_int_equal(kill(fs, SIGKILL), 0);
    assert_int_equal(ex_future_result(f, NULL, NULL, test_hang_ns()), EX_EWORKER);
    ex_future_release(f);
    for (int t = 0; t < 2000 * test_slow() && !ex_is_broken(ex); t++)
        sleep_ms(5);
    assert_true(ex_is_broken(ex));
    assert_int_equal(ex_submit(ex, task_echo, "x", 1, &f), EX_EBROKEN);
    ex_destroy(ex);
    assert_counts(before);
}

/* After ex_destroy: same fds, threads and children as before ex_create,
 * whatever the pool went through and however it was shut down, on both
 * transports. */
static void test_no_leaks(void **state)
{
    (void)state;
    for (int mode = 0; mode < 8; mode++) {
        pc_counts before = pc_take();
        ex_executor *ex = make_pool_t(2, 10 * SEC * test_slow(),
                                      mode % 4 == 3 ? 2 : 0, 0,
                                      transports[mode / 4]);
        assert_true(pc_children() == before.children + 1); /* fork server */
        assert_true(pc_threads() >= before.threads + 1);  /* dispatcher */
        ex_future *crash = submit(ex, task_abort, NULL, 0);
        uint32_t ms = 20;
        ex_future *spin = submit(ex, task_spin, &ms, sizeof ms);
        ex_future *queued[20];
        uint32_t in[20];
        for (int i = 0; i < 20; i++) {
            in[i] = (uint32_t)i;
            queued[i] = submit(ex, task_echo, &in[i], sizeof in[i]);
        }
        if (mode % 4 == 1)
            assert_int_equal(ex_shutdown(ex, 0, 0), 0);
        if (mode % 4 == 2) {
            assert_int_equal(ex_shutdown(ex, 1, 0), 0);
            /* Everything accepted has run; the workers are gone. */
            for (int i = 0; i < 20; i++)
                assert_int_equal(ex_future_state(queued[i]), EX_DONE);
            assert_int_equal(pc_children(), before.children);
            ex_future *late = NULL;
            assert_int_equal(ex_submit(ex, task_echo, "x", 1, &late),
                             EX_ESHUTDOWN);
        }
        ex_destroy(ex);
        assert_int_equal(ex_future_error(crash), EX_EWORKER);
        assert_int_equal(ex_future_state(spin), EX_DONE);
        for (int i = 0; i < 20; i++) {
            const void *out;
            assert_int_equal(ex_future_result(queued[i], &out, NULL, 0), 0);
            assert_memory_equal(out, &in[i], sizeof in[i]);
            ex_future_release(queued[i]);
        }
        ex_future_release(crash);
        ex_future_release(spin);
        assert_counts(before);
    }
}

/* shutdown(cancel_pending) with a busy pool: what waited (sent ahead or
 * queued) is CANCELLED, what ran finishes. */
static void test_shutdown_cancel(void **state)
{
    (void)state;
    ex_executor *ex = make_pool(1, 0, 0, 0);
    uint64_t begun = gate_starts();
    ex_future *running = submit(ex, task_gate, NULL, 0);
    wait_gate_starts(begun + 1);
    ex_future *waiting[12];
    for (int i = 0; i < 12; i++)
        waiting[i] = submit(ex, task_echo, "w", 1);
    assert_int_equal(ex_shutdown(ex, 0, 1), 0);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(ex_future_state(waiting[i]), EX_CANCELLED);
        ex_future_release(waiting[i]);
    }
    gate_open(1);
    assert_int_equal(ex_shutdown(ex, 1, 1), 0);
    assert_int_equal(ex_future_state(running), EX_DONE);
    ex_future_release(running);
    ex_destroy(ex);
}

int main(void)
{
    test_alarm();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_isolation),
        cmocka_unit_test(test_task_code),
        cmocka_unit_test(test_recycle),
        cmocka_unit_test(test_recycle_stuck_pipe),
        cmocka_unit_test(test_big_payloads),
        cmocka_unit_test(test_shm_small_rings),
        cmocka_unit_test(test_shm_memory),
        cmocka_unit_test(test_payload_cap),
        cmocka_unit_test(test_init_failure),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_two_pools),
        cmocka_unit_test(test_external_kill),
        cmocka_unit_test(test_idle_death_breaks),
        cmocka_unit_test(test_fork_server_death),
        cmocka_unit_test(test_no_leaks),
        cmocka_unit_test(test_shutdown_cancel),
    };
    return cmocka_run_group_tests(tests, gate_setup, gate_teardown);
}
