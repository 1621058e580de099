/*
 * calibrate_spawn.c - what starting a worker costs, for `poolbench
 * calibrate`: pthread_create + pthread_join of an empty thread, and fork +
 * _exit + waitpid with a heap of touched 4 KiB pages in the parent (the
 * ballast), since fork copies one page-table entry per page.  Every child
 * is reaped and every thread joined before a function returns.
 */
#include "calibrate.h"
#include "calibrate_int.h"

#include "executor.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------ create, fork */

static void *empty_thread(void *arg)
{
    return arg;
}

int pb_cal_thread_create(unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    uint64_t t0 = ex_now_ns();
    for (unsigned i = 0; i < iters; i++) {
        pthread_t t;
        int rc = pthread_create(&t, NULL, empty_thread, NULL);
        if (rc != 0)
            return -rc;
        rc = pthread_join(t, NULL);
        if (rc != 0)
            return -rc;
    }
    *ns = (double)(ex_now_ns() - t0) / (double)iters;
    return 0;
}

int pb_cal_fork_wait(unsigned iters, double *ns)
{
    if (iters == 0 || !ns)
        return -EINVAL;
    uint64_t t0 = ex_now_ns();
    for (unsigned i = 0; i < iters; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return -errno;
        if (pid == 0)
            _exit(0);
        int st = pb_cal__reap(pid);
        if (st != 0)
            return st < 0 ? st : -ECHILD;
    }
    *ns = (double)(ex_now_ns() - t0) / (double)iters;
    return 0;
}

int pb_cal_ballast(size_t bytes, void **out)
{
    if (!out || bytes == 0)
        return -EINVAL;
    *out = NULL;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
#ifdef MADV_NOHUGEPAGE
    /* 4 KiB pages: fork copies one page-table entry per page, as for a
     * heap of small objects. EINVAL means no THP support: fine. */
    if (madvise(p, bytes, MADV_NOHUGEPAGE) != 0 && errno != EINVAL) {
        int rc = -errno;
        munmap(p, bytes);
        return rc;
    }
#endif
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    for (size_t off = 0; off < bytes; off += (size_t)page)
        ((volatile unsigned char *)p)[off] = 1;
    *out = p;
    return 0;
}

void pb_cal_ballast_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}
