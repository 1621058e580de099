/*
 * sys.c: the system helper layer (sys.h): full reads and writes, fd
 * closing, pidfds, the monotonic clock and deadlines, and parking on a
 * word (futexes).  The one copy of
 * each in executors/; the process pool's fork server and workers call the
 * fd helpers between fork and _exit, so they allocate nothing.
 */
#include "sys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#ifdef __linux__
#include <linux/futex.h>
#endif
#include <time.h>
#include <unistd.h>

/* Where /proc is missing, fds are probed up to this (or the limit). */
#define PROBE_FDS_MAX 65536

/* ----------------------------------------------------------- blocking I/O */

int ex__read_full(int fd, void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k > 0)
            got += (size_t)k;
        else if (k == 0)
            return got == 0 ? EX__EOF : EX__ETRUNC;
        else if (errno != EINTR)
            return EX_ESYS;
    }
    return 0;
}

int ex__write_full(int fd, const void *buf, size_t n)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    return ex__writev_full(fd, &iov, 1);
}

void ex__iov_consume(struct iovec **iov, int *iovcnt, size_t n)
{
    while (*iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0 && n > 0) {
        (*iov)->iov_base = (unsigned char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

/* The whole vector, by writev or (sock) by sendmsg without SIGPIPE. */
static int iov_full(int fd, struct iovec *iov, int iovcnt, bool sock)
{
    /* Skip leading empty entries so an all-empty vector writes nothing. */
    ex__iov_consume(&iov, &iovcnt, 0);
    while (iovcnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        int n = iovcnt > IOV_MAX ? IOV_MAX : iovcnt;
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t k = sock ? sendmsg(fd, &mh, MSG_NOSIGNAL) : writev(fd, iov, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return EX_ESYS;
        }
        ex__iov_consume(&iov, &iovcnt, (size_t)k);
    }
    return 0;
}

int ex__writev_full(int fd, struct iovec *iov, int iovcnt)
{
    return iov_full(fd, iov, iovcnt, false);
}

int ex__send_full(int fd, struct iovec *iov, int iovcnt)
{
    return iov_full(fd, iov, iovcnt, true);
}

/* -------------------------------------------------------------------- fds */

void ex__close(int *fd)
{
    if (*fd >= 0) {
        (void)close(*fd);
        *fd = -1;
    }
}

int ex__set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return EX_ESYS;
    return 0;
}

void ex__pipe_grow(int fd)
{
    (void)fcntl(fd, F_SETPIPE_SZ, EX__PIPE_BIG);
}

static bool kept(int fd, const int *keep, size_t nkeep)
{
    if (fd <= STDERR_FILENO)
        return true;
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i] == fd)
            return true;
    return false;
}

/* Closes fd unless kept (or, with EX__CLOSE_CLOEXEC_ONLY, unless it lacks
 * FD_CLOEXEC). */
static void close_one(int fd, const int *keep, size_t nkeep, unsigned flags)
{
    if (kept(fd, keep, nkeep))
        return;
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || ((flags & EX__CLOSE_CLOEXEC_ONLY) && !(fl & FD_CLOEXEC)))
        return;
    (void)close(fd);
}

/* close_range(2) over the gaps between the kept fds.  0, or -1 when the
 * kernel (before 5.9) or a tool does not have it. */
static int close_ranges(const int *keep, size_t nkeep)
{
    unsigned lo = STDERR_FILENO + 1;
    for (;;) {
        long next = -1; /* the lowest kept fd >= lo */
        for (size_t i = 0; i < nkeep; i++)
            if (keep[i] >= 0 && (unsigned)keep[i] >= lo &&
                (next < 0 || keep[i] < next))
                next = keep[i];
        if (next < 0)
            return close_range(lo, ~0u, 0) == 0 ? 0 : -1;
        if ((unsigned)next > lo && close_range(lo, (unsigned)next - 1, 0) != 0)
            return -1;
        lo = (unsigned)next + 1;
    }
}

/* The decimal fd number of a /proc/self/fd entry, or -1 for "." and "..". */
static int fd_of_name(const char *s)
{
    if (*s < '0' || *s > '9')
        return -1;
    int fd = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        fd = fd * 10 + (*s - '0');
    return fd;
}

/* Walks /proc/self/fd with raw getdents64 (opendir would malloc).  0, or
 * -1 without /proc. */
static int close_listed(const int *keep, size_t nkeep, unsigned flags)
{
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    _Alignas(struct dirent64) char buf[4096];
    ssize_t n;
    while ((n = getdents64(dfd, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buf + off);
            off += d->d_reclen;
            int fd = fd_of_name(d->d_name);
            if (fd >= 0 && fd != dfd)
                close_one(fd, keep, nkeep, flags);
        }
    }
    (void)close(dfd);
    return 0;
}

void ex__close_fds_except(const int *keep, size_t nkeep, unsigned flags)
{
    if (!(flags & EX__CLOSE_CLOEXEC_ONLY) && close_ranges(keep, nkeep) == 0)
        return;
    if (close_listed(keep, nkeep, flags) == 0)
        return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > PROBE_FDS_MAX)
        max = PROBE_FDS_MAX;
    for (int fd = STDERR_FILENO + 1; fd < max; fd++)
        close_one(fd, keep, nkeep, flags);
}

int ex__pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* ------------------------------------------------------------------- time */

uint64_t ex_now_ns(void)
{
    struct timespec ts;
    /* Cannot fail: CLOCK_MONOTONIC exists and ts is valid. */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t ex__deadline(int64_t timeout_ns)
{
    if (timeout_ns < 0)
        return EX_FOREVER;
    return (int64_t)ex_now_ns() + timeout_ns;
}

int ex__cond_init(pthread_cond_t *c)
{
    /* A default condition variable: every timed wait names its clock with
     * pthread_cond_clockwait, so no attribute object is needed, and setting
     * one up per future cost more than the rest of the future's set-up. */
    *c = (pthread_cond_t)PTHREAD_COND_INITIALIZER;
    return EX_OK;
}

int ex__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t dl)
{
    if (dl < 0)
        return pthread_cond_wait(c, m);
    struct timespec ts = {.tv_sec = dl / 1000000000, .tv_nsec = dl % 1000000000};
    return pthread_cond_clockwait(c, m, CLOCK_MONOTONIC, &ts);
}

/* ---------------------------------------------------------------- parking */

#ifdef __linux__
int ex__park(_Atomic uint32_t *word, uint32_t expect, int64_t dl)
{
    struct timespec ts, *tsp = NULL;
    if (dl >= 0) {
        ts.tv_sec = dl / 1000000000;
        ts.tv_nsec = dl % 1000000000;
        tsp = &ts;
    }
    /* WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline; EAGAIN (the
     * word already changed) and EINTR are wake-ups like any other. */
    long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                      expect, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    return rc == -1 && errno == ETIMEDOUT ? EX_ETIMEDOUT : EX_OK;
}

void ex__unpark_all(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL,
            NULL, 0);
}
#else
int ex__park(_Atomic uint32_t *word, uint32_t expect, int64_t dl)
{
    if (atomic_load(word) != expect)
        return EX_OK;
    if (dl >= 0 && (int64_t)ex_now_ns() >= dl)
        return EX_ETIMEDOUT;
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 50000};
    nanosleep(&ts, NULL);
    return EX_OK;
}

void ex__unpark_all(_Atomic uint32_t *word)
{
    (void)word;
}
#endif
