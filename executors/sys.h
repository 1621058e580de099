/*
 * sys.h: the system helper layer of executors/, as libuv's internal.h is
 * for its sources: the one full read/write, fd-closing, non-blocking,
 * pidfd and clock code every file here uses, instead of copies.
 *
 * Everything is async-signal-safe unless said otherwise (no malloc, no
 * stdio, no lock), so that a child forked from a threaded process may call
 * it between fork and _exit.  Errors: 0, or EX_ESYS with errno set, or the
 * positive end-of-file codes below.
 */
#ifndef POOLBENCH_EX_SYS_H
#define POOLBENCH_EX_SYS_H

#include "executor.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* ------------------------------------------------------------- blocking I/O */

/* ex__read_full: end of file before the first byte (a clean end). */
#define EX__EOF 1
/* ex__read_full: end of file after some bytes (a truncated record). */
#define EX__ETRUNC 2

/* Reads exactly n bytes from a blocking fd, retrying on EINTR and short
 * reads.  0, EX__EOF, EX__ETRUNC, or EX_ESYS with errno set.  Blocks. */
int ex__read_full(int fd, void *buf, size_t n);

/* Writes exactly n bytes (or the whole vector) to a blocking fd, retrying
 * on EINTR and partial writes.  0, or EX_ESYS with errno set: EPIPE when
 * the reader is gone (SIGPIPE is the caller's business).  Empty writes
 * write nothing and succeed.  ex__writev_full modifies iov.  Blocks. */
int ex__write_full(int fd, const void *buf, size_t n);
int ex__writev_full(int fd, struct iovec *iov, int iovcnt);
/* ex__writev_full on a socket, with MSG_NOSIGNAL: a reader gone is EPIPE,
 * never a SIGPIPE (for a library that cannot own the signal). */
int ex__send_full(int fd, struct iovec *iov, int iovcnt);

/* Drops the first n bytes from an iovec array: advances *iov and *iovcnt
 * past exhausted entries and trims the first remaining one. */
void ex__iov_consume(struct iovec **iov, int *iovcnt, size_t n);

/* ------------------------------------------------------------------ fds */

/* Closes *fd if it is open (>= 0) and sets it to -1.  close(2) is not
 * retried: on Linux the fd is released even when it reports EINTR. */
void ex__close(int *fd);

/* O_NONBLOCK on.  0 or EX_ESYS. */
int ex__set_nonblock(int fd);

/* A pipe's capacity raised to EX__PIPE_BIG (F_SETPIPE_SZ, from either
 * end): a large transfer then takes 16 times fewer wake-ups than through
 * the default 64 KiB.  Best effort: the limits (pipe-max-size, the
 * per-user pipe-user-pages-soft) may keep the default.  Async-signal-safe. */
#define EX__PIPE_BIG ((int)1 << 20)
void ex__pipe_grow(int fd);

/* ex__close_fds_except: only fds marked FD_CLOEXEC, i.e. those some part
 * of the process meant no child to keep (without it: every fd). */
#define EX__CLOSE_CLOEXEC_ONLY 1u

/* For a child between fork and exec or _exit: closes every fd from 3 up
 * that is not one of the nkeep in keep (stdin, stdout and stderr always
 * stay).  Lists /proc/self/fd with getdents64 (no malloc, no opendir), or
 * probes every possible fd where /proc is missing; without
 * EX__CLOSE_CLOEXEC_ONLY it asks close_range(2) first.  Best effort: an fd
 * that cannot be closed stays. */
void ex__close_fds_except(const int *keep, size_t nkeep, unsigned flags);

/* pidfd_open(2) (through syscall(2): glibc wraps it only since 2.36): an
 * fd that turns readable once process pid has exited.  -1 with errno set:
 * ENOSYS on kernels before 5.3 or under a tool that does not know it. */
int ex__pidfd_open(pid_t pid);

/* ---------------------------------------------------------------- time */

/* ex_now_ns (executor.h) is the one monotonic clock: CLOCK_MONOTONIC ns. */

/* Timeout -> absolute CLOCK_MONOTONIC deadline (ns); EX_FOREVER stays. */
int64_t ex__deadline(int64_t timeout_ns);
/* Inits a condition variable for ex__cond_wait_until (CLOCK_MONOTONIC). */
int ex__cond_init(pthread_cond_t *c);
/* Waits on cond with an absolute deadline (-1 = none).  0 or ETIMEDOUT.
 * Not async-signal-safe (a thread wait). */
int ex__cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t dl);

/* ------------------------------------------------------------- parking */

/* A parking lot keyed by address, as the kernel keeps one for futexes: a
 * thread sleeps on a 32-bit word while it holds a value, and whoever
 * changes the word wakes the sleepers.  No memory of its own, so a future
 * can be waited on without carrying a mutex and a condition variable.
 *
 * ex__park blocks while *word == expect, until ex__unpark_all(word), a
 * spurious wake-up, or the absolute CLOCK_MONOTONIC deadline dl (-1 =
 * none).  It returns 0, or EX_ETIMEDOUT once dl has passed: callers
 * re-read the word either way.  Blocks.  ex__unpark_all wakes every
 * thread parked on word; it does not block.  Without futexes (not Linux),
 * ex__park sleeps in short steps instead. */
int ex__park(_Atomic uint32_t *word, uint32_t expect, int64_t dl);
void ex__unpark_all(_Atomic uint32_t *word);

#endif
