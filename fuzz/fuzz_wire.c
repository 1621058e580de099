/*
 * fuzz_wire.c: libFuzzer target for everything that parses bytes a child
 * process (or a corrupted pipe) can send us: the frame header decoder, the
 * streaming frame reader fed in random-sized pieces (through both its copy
 * and zero-copy paths), and the chunk-output cursor of ex_map.
 *
 * Properties checked beyond "no crash, no sanitizer report": a header that
 * decodes re-encodes to the same WIRE_HEADER_SIZE bytes, names an offset
 * only with WIRE_F_SHM and then one whose range stays below
 * WIRE_MAX_OFFSET; a frame the reader yields has exactly its inline
 * payload bytes (hdr.len, or none for a shared-memory frame), within the
 * cap; the reader never reports consuming more than it was given; the
 * chunk cursor never yields bytes outside the buffer.
 *
 *   make fuzz FUZZ_SECONDS=60
 */
#include "ex_internal.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* Small deterministic PRNG so piece sizes depend only on the input. */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void fuzz_header(const uint8_t *data, size_t size, size_t cap)
{
    wire_header h;
    if (ex__wire_header_decode(data, size, cap, &h) == 0) {
        unsigned char again[WIRE_HEADER_SIZE];
        ex__wire_header_encode(&h, again);
        CHECK(memcmp(again, data, WIRE_HEADER_SIZE) == 0);
        CHECK(h.len <= ex__wire_max_payload(cap));
        bool shm = h.flags & WIRE_F_SHM;
        CHECK(shm || h.off == 0);
        CHECK(!shm || h.off + h.len <= WIRE_MAX_OFFSET);
        CHECK(ex__wire_inline_len(&h) == (shm ? 0 : h.len));
    }
    if (size >= WIRE_STATS_SIZE) {
        wire_stats s;
        unsigned char again[WIRE_STATS_SIZE];
        ex__wire_stats_decode(data, &s);
        ex__wire_stats_encode(&s, again);
        CHECK(memcmp(again, data, WIRE_STATS_SIZE) == 0);
    }
}

static void fuzz_reader(const uint8_t *data, size_t size, size_t cap,
                        uint32_t seed)
{
    wire_reader r;
    ex__wire_reader_init(&r, cap);
    size_t off = 0;
    while (off < size) {
        uint32_t k = next_rand(&seed);
        void *dst;
        size_t room = ex__wire_reader_direct(&r, &dst);
        size_t piece = 1 + k % 97;
        if (piece > size - off)
            piece = size - off;
        int rc;
        if (room > 0 && (k & 0x100)) {
            /* Zero-copy path: the caller copies into the reader's buffer. */
            if (piece > room)
                piece = room;
            memcpy(dst, data + off, piece);
            off += piece;
            rc = ex__wire_reader_advance(&r, piece);
        } else {
            size_t used = 0;
            rc = ex__wire_reader_feed(&r, data + off, piece, &used);
            CHECK(used <= piece);
            CHECK(rc != WIRE_MORE || used == piece);
            off += used;
        }
        if (rc == WIRE_FRAME) {
            CHECK(r.payload.len == ex__wire_inline_len(&r.hdr));
            CHECK(r.hdr.len <= ex__wire_max_payload(cap));
            CHECK(r.hdr.len == 0 || r.hdr.type == WIRE_TASK ||
                  r.hdr.type == WIRE_RESULT);
            /* Touch every payload byte (ASan checks the bounds). */
            unsigned sum = 0;
            for (size_t i = 0; i < r.payload.len; i++)
                sum += r.payload.data[i];
            (void)sum;
            ex__wire_reader_reset(&r);
        } else if (rc < 0) {
            CHECK(rc != WIRE_ESTATE); /* we never misuse the reader */
            /* Resynchronise one byte later, as a fuzzing device. */
            ex__wire_reader_reset(&r);
            if (off < size)
                off++;
        }
    }
    ex__wire_reader_free(&r);
}

static void fuzz_chunk(const uint8_t *data, size_t size, uint32_t expect)
{
    ex_chunk_cursor c;
    if (ex__chunk_out_begin(&c, data, size, expect) != 0)
        return;
    for (uint32_t guard = 0; guard <= expect + 1; guard++) {
        int status;
        const void *out;
        size_t len;
        int rc = ex__chunk_out_next(&c, &status, &out, &len);
        if (rc != 0)
            break;
        const uint8_t *o = out;
        CHECK(len == 0 || (o >= data && o + len <= data + size));
        unsigned sum = 0;
        for (size_t i = 0; i < len; i++)
            sum += o[i];
        (void)sum;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    /* The first bytes steer: payload cap (small, so claimed lengths stay
     * cheap) and the piece-size seed; the rest is the stream. */
    size_t cap = ((size_t)data[0] << 6) + 1;    /* 1 .. 16 KiB */
    uint32_t seed = 0x9e3779b9u ^ data[1] ^ ((uint32_t)data[2] << 8);
    const uint8_t *body = data + 3;
    size_t n = size - 3;

    fuzz_header(body, n, cap);
    fuzz_reader(body, n, cap, seed);
    fuzz_chunk(body, n, data[1] % 8);
    fuzz_chunk(data, size, data[2]);
    return 0;
}
