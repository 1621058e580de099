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
#include "ex_internal.h"

#include <string.h>

#define CHUNK_IN_MAGIC 0x31434250u  /* "PBC1" */
#define CHUNK_OUT_MAGIC 0x31524250u /* "PBR1" */
#define CHUNK_HDR 16u
#define ITEM_OUT_HDR 12u

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

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
    put_u32(p, CHUNK_IN_MAGIC);
    put_u32(p + 4, (uint32_t)n);
    put_u64(p + 8, (uint64_t)(uintptr_t)fn);
    p += CHUNK_HDR;
    for (size_t i = 0; i < n; i++) {
        put_u64(p, lens[i]);
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
    if (len < CHUNK_HDR || get_u32(p) != CHUNK_IN_MAGIC)
        return 1;
    uint32_t count = get_u32(p + 4);
    ex_task_fn fn = (ex_task_fn)(uintptr_t)get_u64(p + 8);
    if (!fn)
        return 1;
    size_t left = len - CHUNK_HDR;
    p += CHUNK_HDR;
    if (ex_buf_reserve(out, 8))
        return 2;
    size_t head = out->len;
    out->len += 8;
    put_u32(out->data + head, CHUNK_OUT_MAGIC);
    put_u32(out->data + head + 4, count);
    for (uint32_t i = 0; i < count; i++) {
        if (left < 8 || get_u64(p) > left - 8)
            return 1;
        size_t ilen = (size_t)get_u64(p);
        if (ex_buf_reserve(out, ITEM_OUT_HDR))
            return 2;
        size_t item = out->len;
        out->len += ITEM_OUT_HDR;
        /* The task appends its output right after the item header. */
        int code = fn(p + 8, ilen, out);
        put_u32(out->data + item, (uint32_t)code);
        put_u64(out->data + item + 4, out->len - item - ITEM_OUT_HDR);
        p += 8 + ilen;
        left -= 8 + ilen;
    }
    return 0;
}

int ex__chunk_out_begin(ex_chunk_cursor *c, const void *buf, size_t len,
                        uint32_t expect)
{
    const unsigned char *p = buf;
    if (!p || len < 8 || get_u32(p) != CHUNK_OUT_MAGIC || get_u32(p + 4) != expect)
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
    uint64_t n = get_u64(c->p + 4);
    if (n > c->left - ITEM_OUT_HDR)
        return EX_EINVAL;
    *status = (int)get_u32(c->p);
    *out = c->p + ITEM_OUT_HDR;
    *len = (size_t)n;
    c->p += ITEM_OUT_HDR + n;
    c->left -= ITEM_OUT_HDR + n;
    c->remaining--;
    return EX_OK;
}
