/*
 * wire.c: the frame codec of the process pool (layout in wire.h).
 *
 * Two layers: explicit little-endian encode/decode of the fixed header and
 * stats block, and a streaming reader the parent feeds with whatever a
 * non-blocking read returned.  The child's blocking reads and writes are
 * the helper layer's (sys.c).  Depends on libc and buf.c only (it is
 * fuzzed alone).
 */
#include "le.h"
#include "wire.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

enum { WR_HEADER, WR_STATS, WR_PAYLOAD, WR_DONE, WR_ERROR };

/* Payload storage grows with the bytes that arrive, never ahead of them
 * by more than what was already received or WIRE_GROW_MIN: a header
 * alone, whatever length it claims (up to the cap, 1 GiB by default),
 * costs at most WIRE_GROW_MIN per reader, not the claimed length.  The
 * doubling keeps the copies of a big payload to about its own size. */
#define WIRE_GROW_MIN ((size_t)64 << 10)

/* ------------------------------------------------------- little-endian io */

/* Two's complement round trip without implementation-defined conversions. */
static int32_t to_i32(uint32_t v)
{
    return v <= INT32_MAX ? (int32_t)v : (int32_t)(v - INT32_MAX - 1) + INT32_MIN;
}

static int64_t to_i64(uint64_t v)
{
    return v <= INT64_MAX ? (int64_t)v : (int64_t)(v - INT64_MAX - 1) + INT64_MIN;
}

/* ------------------------------------------------------------- the header */

size_t ex__wire_max_payload(size_t cfg_max)
{
    return cfg_max ? cfg_max : WIRE_DEFAULT_MAX_PAYLOAD;
}

const char *ex__wire_strerror(int code)
{
    switch (code) {
    case WIRE_EMAGIC: return "WIRE_EMAGIC: bad frame magic";
    case WIRE_ETYPE: return "WIRE_ETYPE: unknown frame type";
    case WIRE_EFLAGS: return "WIRE_EFLAGS: unknown frame flags";
    case WIRE_ETOOBIG: return "WIRE_ETOOBIG: payload above the cap";
    case WIRE_ELEN: return "WIRE_ELEN: payload on a frame that has none";
    case WIRE_ETRUNC: return "WIRE_ETRUNC: truncated frame";
    case WIRE_ESTATE: return "WIRE_ESTATE: reader not reset";
    default: return ex_strerror(code);
    }
}

int ex__wire_type_has_stats(uint16_t type)
{
    return type == WIRE_RESULT;
}

uint64_t ex__wire_inline_len(const wire_header *h)
{
    return (h->flags & WIRE_F_SHM) ? 0 : h->len;
}

void ex__wire_header_encode(const wire_header *h,
                            unsigned char out[WIRE_HEADER_SIZE])
{
    le_put_u32(out + 0, WIRE_MAGIC);
    le_put_u16(out + 4, h->type);
    le_put_u16(out + 6, h->flags);
    le_put_u32(out + 8, (uint32_t)h->status);
    le_put_u32(out + 12, 0);
    le_put_u64(out + 16, h->id);
    le_put_u64(out + 24, h->fn);
    le_put_u64(out + 32, h->len);
    le_put_u64(out + 40, h->off);
}

int ex__wire_header_decode(const unsigned char *in, size_t n,
                           size_t max_payload, wire_header *h)
{
    if (n < WIRE_HEADER_SIZE)
        return WIRE_ETRUNC;
    wire_header d;
    d.magic = le_get_u32(in + 0);
    d.type = le_get_u16(in + 4);
    d.flags = le_get_u16(in + 6);
    d.status = to_i32(le_get_u32(in + 8));
    uint32_t reserved = le_get_u32(in + 12);
    d.id = le_get_u64(in + 16);
    d.fn = le_get_u64(in + 24);
    d.len = le_get_u64(in + 32);
    d.off = le_get_u64(in + 40);

    if (d.magic != WIRE_MAGIC)
        return WIRE_EMAGIC;
    if (d.type < WIRE_TASK || d.type > WIRE_EXIT)
        return WIRE_ETYPE;
    bool shm = d.flags & WIRE_F_SHM;
    if ((d.flags & ~WIRE_F_KNOWN) || reserved != 0 || (d.off && !shm))
        return WIRE_EFLAGS;
    if (d.len > ex__wire_max_payload(max_payload))
        return WIRE_ETOOBIG;
    bool carries = d.type == WIRE_TASK || d.type == WIRE_RESULT;
    /* On READY the flag says the worker mapped its region: no payload. */
    if ((d.len || (shm && d.type != WIRE_READY)) && !carries)
        return WIRE_ELEN;
    /* len <= the cap (< 2^63): the sum cannot wrap. */
    if (shm && (d.off > WIRE_MAX_OFFSET || d.len > WIRE_MAX_OFFSET - d.off))
        return WIRE_ELEN;
    *h = d;
    return 0;
}

void ex__wire_stats_encode(const wire_stats *s,
                           unsigned char out[WIRE_STATS_SIZE])
{
    le_put_u64(out + 0, s->start_ns);
    le_put_u64(out + 8, s->end_ns);
    le_put_u64(out + 16, s->cpu_ns);
    le_put_u64(out + 24, (uint64_t)s->nvcsw);
    le_put_u64(out + 32, (uint64_t)s->nivcsw);
    le_put_u64(out + 40, s->input_done_ns);
    le_put_u64(out + 48, s->output_start_ns);
    le_put_u32(out + 56, (uint32_t)s->cpu);
    le_put_u32(out + 60, (uint32_t)s->pid);
    le_put_u64(out + 64, s->read_begin_ns);
}

void ex__wire_stats_decode(const unsigned char in[WIRE_STATS_SIZE],
                           wire_stats *s)
{
    s->start_ns = le_get_u64(in + 0);
    s->end_ns = le_get_u64(in + 8);
    s->cpu_ns = le_get_u64(in + 16);
    s->nvcsw = to_i64(le_get_u64(in + 24));
    s->nivcsw = to_i64(le_get_u64(in + 32));
    s->input_done_ns = le_get_u64(in + 40);
    s->output_start_ns = le_get_u64(in + 48);
    s->cpu = to_i32(le_get_u32(in + 56));
    s->pid = to_i32(le_get_u32(in + 60));
    s->read_begin_ns = le_get_u64(in + 64);
}

/* ------------------------------------------------------- streaming reader */

void ex__wire_reader_init(wire_reader *r, size_t max_payload)
{
    memset(r, 0, sizeof *r);
    r->max_payload = ex__wire_max_payload(max_payload);
    r->state = WR_HEADER;
}

void ex__wire_reader_reset(wire_reader *r)
{
    r->state = WR_HEADER;
    r->error = 0;
    r->have = 0;
    memset(&r->hdr, 0, sizeof r->hdr);
    memset(&r->stats, 0, sizeof r->stats);
    r->payload.len = 0;
}

void ex__wire_reader_free(wire_reader *r)
{
    ex_buf_free(&r->payload);
    r->have = 0;
    r->state = WR_HEADER;
}

static int reader_fail(wire_reader *r, int err)
{
    r->state = WR_ERROR;
    r->error = err;
    return err;
}

/* After the fixed parts: expect the inline payload, or the frame is
 * complete (none, or it is in the sender's region). */
static int reader_enter_payload(wire_reader *r)
{
    r->payload.len = 0;
    if (ex__wire_inline_len(&r->hdr) == 0) {
        r->state = WR_DONE;
        return WIRE_FRAME;
    }
    /* Nothing reserved yet: storage follows the data (WIRE_GROW_MIN). */
    r->state = WR_PAYLOAD;
    return WIRE_MORE;
}

/* Room for the next step of the payload: 0, or EX_ENOMEM (sticky). */
static int reader_grow(wire_reader *r)
{
    size_t left = (size_t)r->hdr.len - r->payload.len;
    size_t step = r->payload.len > WIRE_GROW_MIN ? r->payload.len : WIRE_GROW_MIN;
    if (step > left)
        step = left;
    if (r->payload.cap - r->payload.len >= step)
        return 0;
    if (ex_buf_reserve(&r->payload, step) != 0)
        return reader_fail(r, EX_ENOMEM);
    return 0;
}

/* The header is complete in r->fixed: validate it and move on. */
static int reader_header_done(wire_reader *r)
{
    int rc = ex__wire_header_decode(r->fixed, WIRE_HEADER_SIZE,
                                    r->max_payload, &r->hdr);
    if (rc != 0)
        return reader_fail(r, rc);
    r->have = 0;
    if (ex__wire_type_has_stats(r->hdr.type)) {
        r->state = WR_STATS;
        return WIRE_MORE;
    }
    return reader_enter_payload(r);
}

/* Copies up to `size - have` bytes of the fixed part (header or stats)
 * being received into r->fixed; returns how many it took. */
static size_t feed_fixed(wire_reader *r, size_t size, const unsigned char *p,
                         size_t n)
{
    size_t take = size - r->have;
    if (take > n)
        take = n;
    memcpy(r->fixed + r->have, p, take);
    r->have += take;
    return take;
}

/* Copies payload bytes (only what arrived: never the length the header
 * claims).  *rc: WIRE_MORE, WIRE_FRAME, or EX_ENOMEM (sticky). */
static size_t feed_payload(wire_reader *r, const unsigned char *p, size_t n,
                           int *rc)
{
    size_t take = (size_t)r->hdr.len - r->payload.len;
    if (take > n)
        take = n;
    if (ex_buf_reserve(&r->payload, take) != 0) {
        *rc = reader_fail(r, EX_ENOMEM);
        return 0;
    }
    memcpy(r->payload.data + r->payload.len, p, take);
    r->payload.len += take;
    if (r->payload.len == r->hdr.len) {
        r->state = WR_DONE;
        *rc = WIRE_FRAME;
    }
    return take;
}

/* One step of the state machine over p[0..n): returns the bytes it
 * consumed and sets *rc when the step ends the frame or fails. */
static size_t feed_step(wire_reader *r, const unsigned char *p, size_t n,
                        int *rc)
{
    size_t took;
    switch (r->state) {
    case WR_HEADER:
        took = feed_fixed(r, WIRE_HEADER_SIZE, p, n);
        if (r->have == WIRE_HEADER_SIZE)
            *rc = reader_header_done(r);
        return took;
    case WR_STATS:
        took = feed_fixed(r, WIRE_STATS_SIZE, p, n);
        if (r->have == WIRE_STATS_SIZE) {
            ex__wire_stats_decode(r->fixed, &r->stats);
            r->have = 0;
            *rc = reader_enter_payload(r);
        }
        return took;
    case WR_PAYLOAD:
        return feed_payload(r, p, n, rc);
    default:
        *rc = reader_fail(r, WIRE_ESTATE);
        return 0;
    }
}

int ex__wire_reader_feed(wire_reader *r, const void *data, size_t n,
                         size_t *used)
{
    const unsigned char *p = data;
    size_t off = 0;
    int rc = WIRE_MORE;

    if (r->state == WR_ERROR)
        rc = r->error;
    else if (r->state == WR_DONE)
        rc = WIRE_ESTATE;
    while (rc == WIRE_MORE && off < n)
        off += feed_step(r, p + off, n - off, &rc);
    if (used)
        *used = off;
    return rc;
}

size_t ex__wire_reader_direct(wire_reader *r, void **dst)
{
    if (r->state != WR_PAYLOAD || reader_grow(r) != 0)
        return 0; /* on ENOMEM the next feed reports it */
    size_t left = (size_t)r->hdr.len - r->payload.len;
    size_t room = r->payload.cap - r->payload.len;
    *dst = r->payload.data + r->payload.len;
    return room < left ? room : left;
}

int ex__wire_reader_advance(wire_reader *r, size_t n)
{
    if (r->state != WR_PAYLOAD || n > (size_t)r->hdr.len - r->payload.len ||
        n > r->payload.cap - r->payload.len)
        return reader_fail(r, WIRE_ESTATE);
    r->payload.len += n;
    if (r->payload.len < r->hdr.len)
        return WIRE_MORE;
    r->state = WR_DONE;
    return WIRE_FRAME;
}
