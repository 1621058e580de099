/*
 * digest.c: the run digest, a SHA-256 over every task's output in input
 * order, however the tasks completed.
 */
#include "wl_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- digest */

enum { SLOT_EMPTY = 0, SLOT_CLAIMED = 1, SLOT_FULL = 2 };

struct wl_digest {
    size_t n;
    atomic_size_t count;
    _Atomic unsigned char *state; /* SLOT_* per index */
    unsigned char (*record)[32];  /* record hash per index */
};

int wl_digest_create(size_t n, wl_digest **out)
{
    if (!out)
        return EX_EINVAL;
    *out = NULL;
    wl_digest *d = calloc(1, sizeof *d);
    if (!d)
        return EX_ENOMEM;
    d->n = n;
    atomic_init(&d->count, 0);
    d->state = calloc(n ? n : 1, sizeof *d->state);
    d->record = calloc(n ? n : 1, sizeof *d->record);
    if (!d->state || !d->record) {
        wl_digest_destroy(d);
        return EX_ENOMEM;
    }
    *out = d;
    return 0;
}

void wl_digest_destroy(wl_digest *d)
{
    if (!d)
        return;
    free((void *)d->state);
    free(d->record);
    free(d);
}

/* Claims slot `index` (each index once); the caller then fills record and
 * publishes with publish(). */
static int claim(wl_digest *d, size_t index)
{
    if (!d || index >= d->n)
        return EX_EINVAL;
    unsigned char expect = SLOT_EMPTY;
    if (!atomic_compare_exchange_strong(&d->state[index], &expect,
                                        SLOT_CLAIMED))
        return EX_EINVAL;
    return 0;
}

static void publish(wl_digest *d, size_t index)
{
    atomic_store(&d->state[index], SLOT_FULL);
    atomic_fetch_add(&d->count, 1);
}

int wl_digest_add(wl_digest *d, size_t index, const void *out, size_t len)
{
    if (!out && len)
        return EX_EINVAL;
    int rc = claim(d, index);
    if (rc)
        return rc;
    unsigned char head[16];
    wl_put_le64(head, (uint64_t)index);
    wl_put_le64(head + 8, (uint64_t)len);
    const void *parts[2] = {head, out ? out : head};
    size_t lens[2] = {sizeof head, len};
    if (wl_sha256_parts(parts, lens, 2, d->record[index])) {
        atomic_store(&d->state[index], SLOT_EMPTY);
        return EX_ESYS;
    }
    publish(d, index);
    return 0;
}

int wl_digest_add_failure(wl_digest *d, size_t index, int status,
                          int task_code)
{
    int rc = claim(d, index);
    if (rc)
        return rc;
    unsigned char rec[20];
    wl_put_le64(rec, (uint64_t)index);
    memcpy(rec + 8, "fail", 4);
    wl_put_le32(rec + 12, (uint32_t)status);
    wl_put_le32(rec + 16, (uint32_t)task_code);
    const void *parts[1] = {rec};
    size_t lens[1] = {sizeof rec};
    if (wl_sha256_parts(parts, lens, 1, d->record[index])) {
        atomic_store(&d->state[index], SLOT_EMPTY);
        return EX_ESYS;
    }
    publish(d, index);
    return 0;
}

size_t wl_digest_count(const wl_digest *d)
{
    return d ? atomic_load(&((wl_digest *)d)->count) : 0;
}

int wl_digest_final(const wl_digest *d, char *hex)
{
    if (!d || !hex)
        return EX_EINVAL;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sum[32];
    unsigned int outlen = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (size_t i = 0; ok && i < d->n; i++) {
        if (atomic_load(&((wl_digest *)d)->state[i]) == SLOT_FULL) {
            ok = EVP_DigestUpdate(md, d->record[i], 32) == 1;
        } else {
            /* Same size as a record, so the stream stays unambiguous. */
            unsigned char miss[32] = {0};
            wl_put_le64(miss, (uint64_t)i);
            memcpy(miss + 8, "missing", 7);
            ok = EVP_DigestUpdate(md, miss, sizeof miss) == 1;
        }
    }
    ok = ok && EVP_DigestFinal_ex(md, sum, &outlen) == 1 && outlen == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        return EX_ESYS;
    static const char digits[] = "0123456789abcdef";
    for (int k = 0; k < 32; k++) {
        hex[2 * k] = digits[sum[k] >> 4];
        hex[2 * k + 1] = digits[sum[k] & 15];
    }
    hex[64] = '\0';
    return 0;
}
