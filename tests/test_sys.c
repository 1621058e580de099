/*
 * test_sys.c: the system helper layer of executors/ (sys.c): full reads
 * and writes over real pipes (partial transfers, EOF before and inside a
 * record, EPIPE), the iovec cursor, fd closing (one fd; every fd but
 * these, in a forked child, in both modes), O_NONBLOCK, pidfds, and the
 * clock and deadlines.
 */
#include "util.h"

#include <poll.h>
#include <signal.h>

/* ----------------------------------------------------- full read/write */

struct writer_arg {
    int fd;
    const unsigned char *data;
    size_t n;
    int rc;
};

static void *writer_thread(void *p)
{
    struct writer_arg *a = p;
    unsigned char hdr[3] = {'h', 'd', 'r'};
    struct iovec iov[4] = {
        {.iov_base = hdr, .iov_len = 0},
        {.iov_base = hdr, .iov_len = sizeof hdr},
        {.iov_base = (void *)a->data, .iov_len = a->n},
        {.iov_base = hdr, .iov_len = 0},
    };
    a->rc = ex__writev_full(a->fd, iov, 4);
    if (a->rc == 0)
        a->rc = ex__write_full(a->fd, "tail", 4);
    close(a->fd);
    return NULL;
}

static void test_read_write_full(void **state)
{
    (void)state;
    enum { LEN = 3 << 20 }; /* far more than a pipe buffer: partial I/O */
    unsigned char *data = malloc(LEN), *got = malloc(LEN);
    assert_non_null(data);
    assert_non_null(got);
    for (size_t i = 0; i < LEN; i++)
        data[i] = (unsigned char)(i * 131 + 7);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct writer_arg a = {.fd = fds[1], .data = data, .n = LEN};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, writer_thread, &a), 0);
    unsigned char hdr[3], tail[4];
    assert_int_equal(ex__read_full(fds[0], hdr, 3), 0);
    assert_memory_equal(hdr, "hdr", 3);
    assert_int_equal(ex__read_full(fds[0], got, LEN), 0);
    assert_memory_equal(got, data, LEN);
    assert_int_equal(ex__read_full(fds[0], tail, 4), 0);
    assert_memory_equal(tail, "tail", 4);
    /* Clean EOF before a record, and EOF inside one. */
    assert_int_equal(ex__read_full(fds[0], tail, 4), EX__EOF);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, 0);
    close(fds[0]);

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "ab", 2), 2);
    close(fds[1]);
    assert_int_equal(ex__read_full(fds[0], tail, 4), EX__ETRUNC);
    close(fds[0]);

    /* Errors: a bad fd reads EX_ESYS; a write to a pipe with no reader is
     * EPIPE (SIGPIPE blocked here, as the callers do). */
    assert_int_equal(ex__read_full(-1, tail, 1), EX_ESYS);
    assert_int_equal(errno, EBADF);
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    assert_int_equal(ex__write_full(fds[1], "x", 1), EX_ESYS);
    assert_int_equal(errno, EPIPE);
    struct timespec zero = {0, 0};
    assert_int_equal(sigtimedwait(&set, NULL, &zero), SIGPIPE);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(fds[1]);

    /* Empty writes write nothing and succeed. */
    assert_int_equal(ex__write_full(-1, "", 0), 0);
    free(data);
    free(got);
}

static void test_iov_consume(void **state)
{
    (void)state;
    char a[4], b[6];
    struct iovec v[3] = {{a, 4}, {NULL, 0}, {b, 6}};
    struct iovec *p = v;
    int n = 3;
    ex__iov_consume(&p, &n, 3);
    assert_int_equal(n, 3);
    assert_ptr_equal(p->iov_base, a + 3);
    assert_int_equal(p->iov_len, 1);
    ex__iov_consume(&p, &n, 1); /* drops a and the empty entry */
    assert_int_equal(n, 1);
    assert_ptr_equal(p->iov_base, b);
    ex__iov_consume(&p, &n, 6);
    assert_int_equal(n, 0);
    ex__iov_consume(&p, &n, 0);
    assert_int_equal(n, 0);
}

/* -------------------------------------------------------------- fds */

static void test_close(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int fd = fds[0];
    ex__close(&fds[0]);
    assert_int_equal(fds[0], -1);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */
    ex__close(&fds[0]);                        /* again: nothing */
    assert_int_equal(fds[0], -1);
    ex__close(&fds[1]);
    assert_int_equal(fds[1], -1);
}

static void test_set_nonblock(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(ex__set_nonblock(fds[0]), 0);
    assert_true(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
    char c;
    assert_int_equal(read(fds[0], &c, 1), -1);
    assert_int_equal(errno, EAGAIN);
    ex__close(&fds[0]);
    ex__close(&fds[1]);
    assert_int_equal(ex__set_nonblock(-1), EX_ESYS);
}

/* Which of fds[0..n) are open in a child after ex__close_fds_except(keep
 * the report pipe and fds[keep_index], flags): a bit per fd, reported
 * through the pipe. */
static unsigned open_after_close(const int *fds, int n, int keep_index,
                                 unsigned flags)
{
    int report[2];
    assert_int_equal(pipe(report), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int keep[2] = {report[1], fds[keep_index]};
        ex__close_fds_except(keep, 2, flags);
        unsigned bits = 0;
        for (int i = 0; i < n; i++)
            if (fcntl(fds[i], F_GETFD) >= 0)
                bits |= 1u << i;
        if (fcntl(STDIN_FILENO, F_GETFD) >= 0 && fcntl(STDERR_FILENO, F_GETFD) >= 0)
            bits |= 1u << 31;
        _exit(ex__write_full(report[1], &bits, sizeof bits) == 0 ? 0 : 1);
    }
    ex__close(&report[1]);
    unsigned bits = 0;
    assert_int_equal(ex__read_full(report[0], &bits, sizeof bits), 0);
    ex__close(&report[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return bits;
}

/* Every fd but the kept ones goes; with EX__CLOSE_CLOEXEC_ONLY only those
 * marked close-on-exec; stdio stays either way. */
static void test_close_fds_except(void **state)
{
    (void)state;
    int a[2], b[2];
    assert_int_equal(pipe2(a, O_CLOEXEC), 0); /* a[0], a[1]: cloexec */
    assert_int_equal(pipe(b), 0);             /* b[0], b[1]: inherited */
    int fds[4] = {a[0], a[1], b[0], b[1]};
    /* All: only a[1] (kept) and stdio remain. */
    assert_int_equal(open_after_close(fds, 4, 1, 0), (1u << 31) | 1u << 1);
    /* Cloexec only: the inherited pair stays too. */
    assert_int_equal(open_after_close(fds, 4, 1, EX__CLOSE_CLOEXEC_ONLY),
                     (1u << 31) | 1u << 1 | 1u << 2 | 1u << 3);
    /* Keeping an inherited one changes nothing for the cloexec pair. */
    assert_int_equal(open_after_close(fds, 4, 2, EX__CLOSE_CLOEXEC_ONLY),
                     (1u << 31) | 1u << 2 | 1u << 3);
    for (int i = 0; i < 4; i++)
        ex__close(&fds[i]);
}

static void test_pidfd(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sleep_ms(20);
        _exit(7);
    }
    int fd = ex__pidfd_open(pid);
    if (fd < 0) {
        /* No pidfds here (an old kernel, or valgrind): the pool falls
         * back to pipe EOF, tested elsewhere. */
        assert_int_equal(errno, ENOSYS);
        waitpid(pid, NULL, 0);
        skip();
    }
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pf, 1, (int)(test_hang_ns() / MS)), 1);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid); /* not reaped by the pidfd */
    assert_int_equal(WEXITSTATUS(st), 7);
    ex__close(&fd);
}

/* ------------------------------------------------------------- time */

static void test_clock(void **state)
{
    (void)state;
    uint64_t a = ex_now_ns();
    sleep_ms(2);
    uint64_t b = ex_now_ns();
    assert_true(b >= a + 2 * MS);
    assert_int_equal(ex__deadline(EX_FOREVER), EX_FOREVER);
    int64_t dl = ex__deadline(SEC);
    assert_true(dl >= (int64_t)b + SEC);
    /* A deadline in the past times out at once. */
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    ex__cond_init(&c);
    pthread_mutex_lock(&m);
    assert_int_equal(ex__cond_wait_until(&c, &m, (int64_t)a), ETIMEDOUT);
    pthread_mutex_unlock(&m);
    pthread_cond_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_write_full),
        cmocka_unit_test(test_iov_consume),
        cmocka_unit_test(test_close),
        cmocka_unit_test(test_set_nonblock),
        cmocka_unit_test(test_close_fds_except),
        cmocka_unit_test(test_pidfd),
        cmocka_unit_test(test_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
