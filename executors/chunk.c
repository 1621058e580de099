/*
 * chunk.c: batching for ex_map's chunksize.
 *
 * A chunk is an ordinary task (ex__chunk_task) whose input packs the user's
 * function and several inputs, and whose output packs one status and output
 * per input.  Because it is just bytes and a function pointer, chunking
 * works unchanged on every backend and cuts one hand-off (one pipe round
 * trip in the process pool) per chunk instead of per input.
 *
 *   input:  "PBC1" u32 count, u64 fn, then count x (u64 len, bytes)
 *   output: "PBR1" u32 count, then count x (i32 code, u64 len, bytes)
 *
 * Integers are little-endian.  Decoders check every length against what is
 * left, so a malformed buffer is rejected, never read past.
 */
#include "le.h"
#include "ex_internal.h"

#include <string.h>

#define CHUNK_IN_MAGIC 0x31434250u  /* "PBC1" */
#define CHUNK_OUT_MAGIC 0x31524250u /* "PBR1" */
#define CHUNK_HDR 16u
#define ITEM_OUT_HDR 12u

int ex__chunk_pack(ex_buf *dst, ex_task_fn fn, const void *const *ins,
                   const size_t *lens, size_t n)
{
    if (n > UINT32_MAX)
        return EX_EINVAL;
    size_t total = CHUNK_HDR;
    for (size_t i = 0; i < n; i++)
        total += 8 + lens[i];
    dst->len = 0;
    int rc = ex_buf_reserve(dst, total);
    if (rc)
        return rc;
    unsigned char *p = dst->data;
    le_put_u32(p, CHUNK_IN_MAGIC);
    le_put_u32(p + 4, (uint32_t)n);
    le_put_u64(p + 8, (uint64_t)(uintptr_t)fn);
    p += CHUNK_HDR;
    for (size_t i = 0; i < n; i++) {
        le_put_u64(p, lens[i]);
        if (lens[i])
            memcpy(p + 8, ins[i], lens[i]);
        p += 8 + lens[i];
    }
    dst->len = total;
    return EX_OK;
}

int ex__chunk_task(const void *in, size_t len, ex_buf *out)
{
    const unsigned char *p = in;
    if (len < CHUNK_HDR || le_get_u32(p) != CHUNK_IN_MAGIC)
        return 1;
    uint32_t count = le_get_u32(p + 4);
    ex_task_fn fn = (ex_task_fn)(uintptr_t)le_get_u64(p + 8);
    if (!fn)
        return 1;
    size_t left = len - CHUNK_HDR;
    p += CHUNK_HDR;
    if (ex_buf_reserve(out, 8))
        return 2;
    size_t head = out->len;
    out->len += 8;
    le_put_u32(out->data + head, CHUNK_OUT_MAGIC);
    le_put_u32(out->data + head + 4, count);
    for (uint32_t i = 0; i < count; i++) {
        if (left < 8 || le_get_u64(p) > left - 8)
            return 1;
        size_t ilen = (size_t)le_get_u64(p);
        if (ex_buf_reserve(out, ITEM_OUT_HDR))
            return 2;
        size_t item = out->len;
        out->len += ITEM_OUT_HDR;
        /* The task appends its output right after the item header. */
        int code = fn(p + 8, ilen, out);
        le_put_u32(out->data + item, (uint32_t)code);
        le_put_u64(out->data + item + 4, out->len - item - ITEM_OUT_HDR);
        p += 8 + ilen;
        left -= 8 + ilen;
    }
    return 0;
}

int ex__chunk_out_begin(ex_chunk_cursor *c, const void *buf, size_t len,
                        uint32_t expect)
{
    const unsigned char *p = buf;
    if (!p || len < 8 || le_get_u32(p) != CHUNK_OUT_MAGIC || le_get_u32(p + 4) != expect)
        return EX_EINVAL;
    c->p = p + 8;
    c->left = len - 8;
    c->remaining = expect;
    return EX_OK;
}

int ex__chunk_out_next(ex_chunk_cursor *c, int *status, const void **out,
                       size_t *len)
{
    if (c->remaining == 0)
        return 1;
    if (c->left < ITEM_OUT_HDR)
        return EX_EINVAL;
    uint64_t n = le_get_u64(c->p + 4);
    if (n > c->left - ITEM_OUT_HDR)
        return EX_EINVAL;
    *status = (int)le_get_u32(c->p);
    *out = c->p + ITEM_OUT_HDR;
    *len = (size_t)n;
    c->p += ITEM_OUT_HDR + n;
    c->left -= ITEM_OUT_HDR + n;
    c->remaining--;
    return EX_OK;
}

ex_task_fn ex__chunk_fn(const void *in, size_t len)
{
    const unsigned char *p = in;
    if (len < CHUNK_HDR || le_get_u32(p) != CHUNK_IN_MAGIC)
        return NULL;
    return (ex_task_fn)(uintptr_t)le_get_u64(p + 8);
}

void ex__chunk_set_fn(void *in, size_t len, ex_task_fn fn)
{
    if (len >= CHUNK_HDR)
        le_put_u64((unsigned char *)in + 8, (uint64_t)(uintptr_t)fn);
}
