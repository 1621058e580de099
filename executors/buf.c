/*
 * buf.c: the growable output buffer tasks write into, and the status names.
 * Kept free of threads and system calls so the fuzz target can link it.
 *
 * Lent storage (ex__buf_lend, ex_internal.h): the one process-wide word
 * here, written only inside a process-pool worker process (a forked
 * child that runs one task at a time), before the task and after it; in
 * any other process it stays NULL, so no pool of the application shares
 * it with another.
 */
#include "ex_internal.h"

#include <stdlib.h>
#include <string.h>

static void *lent_storage;

void ex__buf_lend(ex_buf *b, void *storage, size_t cap)
{
    lent_storage = storage;
    b->data = storage;
    b->len = 0;
    b->cap = cap;
}

void ex__buf_lend_end(void)
{
    lent_storage = NULL;
}

/* Storage of cap bytes for b's bytes: realloc, or a move to the heap out
 * of lent storage. */
static unsigned char *buf_grow(ex_buf *b, size_t cap)
{
    if (!b->data || b->data != lent_storage)
        return realloc(b->data, cap);
    unsigned char *p = malloc(cap);
    if (p && b->len)
        memcpy(p, b->data, b->len);
    return p;
}

int ex_buf_reserve(ex_buf *b, size_t extra)
{
    if (!b)
        return EX_EINVAL;
    if (extra > SIZE_MAX - b->len)
        return EX_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return EX_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    unsigned char *p = buf_grow(b, cap);
    if (!p)
        return EX_ENOMEM;
    b->data = p;
    b->cap = cap;
    return EX_OK;
}

int ex_buf_append(ex_buf *b, const void *p, size_t n)
{
    int rc = ex_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return EX_OK;
}

void *ex_buf_extend(ex_buf *b, size_t n)
{
    if (ex_buf_reserve(b, n ? n : 1))
        return NULL;
    void *p = b->data + b->len;
    b->len += n;
    return p;
}

void ex_buf_free(ex_buf *b)
{
    if (!b)
        return;
    if (b->data != lent_storage)
        free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

const char *ex_strerror(int status)
{
    switch (status) {
    case EX_OK: return "EX_OK: success";
    case EX_ETIMEDOUT: return "EX_ETIMEDOUT: timed out";
    case EX_ECANCELLED: return "EX_ECANCELLED: cancelled before it ran";
    case EX_ESHUTDOWN: return "EX_ESHUTDOWN: executor is shut down";
    case EX_EFULL: return "EX_EFULL: queue full";
    case EX_EBROKEN: return "EX_EBROKEN: executor broken (worker start or initializer failed, or an mpi worker died)";
    case EX_EWORKER: return "EX_EWORKER: worker process died running the task";
    case EX_ETASK: return "EX_ETASK: task returned an error code";
    case EX_EINVAL: return "EX_EINVAL: invalid argument";
    case EX_ENOMEM: return "EX_ENOMEM: out of memory";
    case EX_ESYS: return "EX_ESYS: system call failed";
    case EX_EUNAVAIL: return "EX_EUNAVAIL: backend not available in this build (mpi: built without Open MPI)";
    default: return "EX_E?: unknown status";
    }
}

const char *ex_state_name(ex_state s)
{
    switch (s) {
    case EX_PENDING: return "PENDING";
    case EX_RUNNING: return "RUNNING";
    case EX_DONE: return "DONE";
    case EX_FAILED: return "FAILED";
    case EX_CANCELLED: return "CANCELLED";
    }
    return "?";
}

const char *ex_kind_name(ex_kind kind)
{
    switch (kind) {
    case EX_SEQ: return "seq";
    case EX_THREADS: return "threads";
    case EX_PROCS: return "procs";
    case EX_MPI: return "mpi";
    }
    return "?";
}

int ex_kind_parse(const char *name, ex_kind *out)
{
    static const ex_kind kinds[] = {EX_SEQ, EX_THREADS, EX_PROCS, EX_MPI};
    if (!name || !out)
        return EX_EINVAL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(name, ex_kind_name(kinds[i])) == 0) {
            *out = kinds[i];
            return EX_OK;
        }
    return EX_EINVAL;
}

const char *ex_transport_name(ex_transport t)
{
    switch (t) {
    case EX_TRANSPORT_PIPE: return "pipe";
    case EX_TRANSPORT_SHM: return "shm";
    }
    return "?";
}

int ex_transport_parse(const char *name, ex_transport *out)
{
    static const ex_transport all[] = {EX_TRANSPORT_PIPE, EX_TRANSPORT_SHM};
    if (!name || !out)
        return EX_EINVAL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, ex_transport_name(all[i])) == 0) {
            *out = all[i];
            return EX_OK;
        }
    return EX_EINVAL;
}

const char *ex_on_full_name(ex_on_full f)
{
    switch (f) {
    case EX_ON_FULL_BLOCK: return "block";
    case EX_ON_FULL_REJECT: return "reject";
    case EX_ON_FULL_CALLER_RUNS: return "caller-runs";
    }
    return "?";
}

int ex_on_full_parse(const char *name, ex_on_full *out)
{
    static const ex_on_full all[] = {EX_ON_FULL_BLOCK, EX_ON_FULL_REJECT,
                                     EX_ON_FULL_CALLER_RUNS};
    if (!name || !out)
        return EX_EINVAL;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, ex_on_full_name(all[i])) == 0) {
            *out = all[i];
            return EX_OK;
        }
    return EX_EINVAL;
}
