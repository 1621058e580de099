/*
 * test_wire.c: the process pool's frame codec (executors/wire.c): exact
 * byte layout, round trips, the streaming reader fed whole, byte by byte
 * and through its zero-copy path, every rejection (bad magic, type, flags,
 * oversized or misplaced length, truncation, misuse).  The blocking fd
 * helpers the worker uses are sys.c's (test_sys.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wire.h"

#include <stdlib.h>
#include <string.h>

static wire_header sample_header(uint16_t type, uint64_t len)
{
    wire_header h;
    memset(&h, 0, sizeof h);
    h.type = type;
    h.flags = 0;
    h.status = -7;
    h.id = 0x0102030405060708ull;
    h.fn = 0xfedcba9876543210ull;
    h.len = len;
    return h;
}

static wire_stats sample_stats(void)
{
    wire_stats s = {
        .start_ns = 1000, .end_ns = 2000, .cpu_ns = 900,
        .nvcsw = -3, .nivcsw = INT64_MIN,
        .input_done_ns = 999, .output_start_ns = 2001,
        .cpu = -1, .pid = 4242, .read_begin_ns = 0xfedcba9876543210ull,
    };
    return s;
}

/* A whole frame in a buffer: header [+ stats] + payload. */
static size_t build_frame(unsigned char *buf, const wire_header *h,
                          const wire_stats *s, const void *payload)
{
    ex__wire_header_encode(h, buf);
    size_t n = WIRE_HEADER_SIZE;
    if (ex__wire_type_has_stats(h->type)) {
        ex__wire_stats_encode(s, buf + n);
        n += WIRE_STATS_SIZE;
    }
    size_t inl = (size_t)ex__wire_inline_len(h);
    memcpy(buf + n, payload, inl);
    return n + inl;
}

static void test_header_layout(void **state)
{
    (void)state;
    wire_header h = sample_header(WIRE_RESULT, 0x1122);
    h.flags = WIRE_F_EXERR;
    unsigned char b[WIRE_HEADER_SIZE];
    memset(b, 0xAA, sizeof b);
    ex__wire_header_encode(&h, b);
    /* Little-endian, field by field, reserved word zero. */
    static const unsigned char want[WIRE_HEADER_SIZE] = {
        0x31, 0x58, 0x42, 0x50, 0x02, 0x00, 0x01, 0x00,
        0xf9, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
        0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
        0x22, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    assert_memory_equal(b, want, sizeof want);

    wire_header d;
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), 0);
    assert_int_equal(d.magic, WIRE_MAGIC);
    assert_int_equal(d.type, WIRE_RESULT);
    assert_int_equal(d.flags, WIRE_F_EXERR);
    assert_int_equal(d.status, -7);
    assert_true(d.id == h.id);
    assert_true(d.fn == h.fn);
    assert_true(d.len == 0x1122);
    assert_true(d.off == 0);
    assert_true(ex__wire_inline_len(&d) == 0x1122);

    /* A payload in the sender's region: offset at 40, nothing inline. */
    h.flags = WIRE_F_SHM | WIRE_F_CPU_UNDER_ZERO;
    h.off = 0x0102030405ull;
    ex__wire_header_encode(&h, b);
    static const unsigned char off[8] = {0x05, 0x04, 0x03, 0x02, 0x01, 0, 0, 0};
    assert_memory_equal(b + 40, off, sizeof off);
    assert_int_equal(b[6], WIRE_F_SHM | WIRE_F_CPU_UNDER_ZERO);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), 0);
    assert_true(d.off == h.off && d.len == 0x1122);
    assert_true(ex__wire_inline_len(&d) == 0);
}

static void test_stats_round_trip(void **state)
{
    (void)state;
    wire_stats s = sample_stats(), d;
    unsigned char b[WIRE_STATS_SIZE];
    ex__wire_stats_encode(&s, b);
    memset(&d, 0x55, sizeof d);
    ex__wire_stats_decode(b, &d);
    assert_true(d.start_ns == 1000 && d.end_ns == 2000 && d.cpu_ns == 900);
    assert_true(d.nvcsw == -3 && d.nivcsw == INT64_MIN);
    assert_true(d.input_done_ns == 999 && d.output_start_ns == 2001);
    assert_int_equal(d.cpu, -1);
    assert_int_equal(d.pid, 4242);
    assert_true(d.read_begin_ns == 0xfedcba9876543210ull);
    assert_int_equal(b[64], 0x10); /* little-endian, at 64 */
}

static void test_decode_rejects(void **state)
{
    (void)state;
    unsigned char b[WIRE_HEADER_SIZE];
    wire_header h = sample_header(WIRE_TASK, 100), d;

    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, WIRE_HEADER_SIZE - 1, 0, &d),
                     WIRE_ETRUNC);
    assert_int_equal(ex__wire_header_decode(b, 0, 0, &d), WIRE_ETRUNC);

    b[0] ^= 1; /* magic */
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_EMAGIC);

    for (unsigned t = 0; t < 8; t++) {
        h.type = (uint16_t)t;
        ex__wire_header_encode(&h, b);
        int want = t >= WIRE_TASK && t <= WIRE_EXIT ? 0 : WIRE_ETYPE;
        if (want == 0 && t != WIRE_TASK && t != WIRE_RESULT)
            want = WIRE_ELEN; /* len 100 on a frame without payload */
        assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), want);
    }
    h.type = 0xffff;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_ETYPE);

    h = sample_header(WIRE_TASK, 100);
    h.flags = 0x8000;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_EFLAGS);
    h.flags = 0;
    ex__wire_header_encode(&h, b);
    b[13] = 1; /* reserved */
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_EFLAGS);

    /* Oversized: against an explicit cap and against the 1 GiB default. */
    h = sample_header(WIRE_TASK, 4097);
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 4096, &d), WIRE_ETOOBIG);
    h.len = 4096;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 4096, &d), 0);
    h.len = WIRE_DEFAULT_MAX_PAYLOAD + 1;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_ETOOBIG);
    h.len = UINT64_MAX;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, SIZE_MAX, &d), 0);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_ETOOBIG);

    /* Shared-memory frames: an offset needs the flag, the flag a frame
     * that carries a payload (or READY, where it says the region is
     * mapped), and the range must stay below WIRE_MAX_OFFSET. */
    h = sample_header(WIRE_TASK, 100);
    h.off = 64;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_EFLAGS);
    h.flags = WIRE_F_SHM;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), 0);
    h.off = WIRE_MAX_OFFSET - 99;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_ELEN);
    h.off = WIRE_MAX_OFFSET - 100;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), 0);
    h.off = UINT64_MAX;
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d), WIRE_ELEN);
    static const uint16_t no_payload[] = {WIRE_INIT_FAIL, WIRE_EXIT, WIRE_READY};
    for (size_t i = 0; i < 3; i++) {
        h = sample_header(no_payload[i], 0);
        h.flags = WIRE_F_SHM;
        ex__wire_header_encode(&h, b);
        assert_int_equal(ex__wire_header_decode(b, sizeof b, 0, &d),
                         no_payload[i] == WIRE_READY ? 0 : WIRE_ELEN);
    }

    assert_true(ex__wire_max_payload(0) == WIRE_DEFAULT_MAX_PAYLOAD);
    assert_true(ex__wire_max_payload(12) == 12);
    assert_non_null(ex__wire_strerror(WIRE_ETOOBIG));
    assert_non_null(ex__wire_strerror(EX_ENOMEM));
    assert_non_null(ex__wire_strerror(12345));
}

/* Feeds a whole stream in pieces of `step` bytes (0: all at once) and
 * checks the frames that come out. */
static void feed_and_check(const unsigned char *stream, size_t n, size_t step,
                           size_t nframes, const wire_header *hs,
                           const unsigned char *const *payloads)
{
    wire_reader r;
    ex__wire_reader_init(&r, 1 << 20);
    size_t off = 0, frames = 0;
    while (off < n) {
        size_t piece = step ? step : n - off;
        if (piece > n - off)
            piece = n - off;
        size_t used = 0;
        int rc = ex__wire_reader_feed(&r, stream + off, piece, &used);
        assert_true(rc == WIRE_MORE || rc == WIRE_FRAME);
        off += used;
        if (rc == WIRE_MORE) {
            assert_int_equal(used, piece);
            continue;
        }
        assert_true(frames < nframes);
        assert_int_equal(r.hdr.type, hs[frames].type);
        assert_true(r.hdr.id == hs[frames].id);
        assert_true(r.hdr.len == hs[frames].len);
        assert_true(r.hdr.off == hs[frames].off);
        assert_int_equal(r.payload.len, (size_t)ex__wire_inline_len(&hs[frames]));
        if (r.payload.len)
            assert_memory_equal(r.payload.data, payloads[frames], r.payload.len);
        if (r.hdr.type == WIRE_RESULT) {
            assert_int_equal(r.stats.pid, 4242);
            assert_true(r.stats.nivcsw == INT64_MIN);
        }
        /* Feeding again without a reset is a misuse. */
        assert_int_equal(ex__wire_reader_feed(&r, stream, 1, NULL), WIRE_ESTATE);
        ex__wire_reader_reset(&r);
        frames++;
    }
    assert_int_equal(frames, nframes);
    ex__wire_reader_free(&r);
}

static void test_reader_stream(void **state)
{
    (void)state;
    static unsigned char p0[1000], p1[3];
    for (size_t i = 0; i < sizeof p0; i++)
        p0[i] = (unsigned char)(i * 7);
    memcpy(p1, "abc", 3);
    /* Several frames back to back, as a window's results come: one of
     * them with its payload in the sender's region (nothing inline). */
    wire_header hs[5] = {
        sample_header(WIRE_READY, 0),
        sample_header(WIRE_RESULT, sizeof p0),
        sample_header(WIRE_TASK, sizeof p1),
        sample_header(WIRE_RESULT, 1 << 20),
        sample_header(WIRE_RESULT, 0),
    };
    hs[3].flags = WIRE_F_SHM;
    hs[3].off = 4096;
    const unsigned char *pl[5] = {NULL, p0, p1, NULL, NULL};
    wire_stats st = sample_stats();
    unsigned char stream[5 * (WIRE_HEADER_SIZE + WIRE_STATS_SIZE) + 1003];
    size_t n = 0;
    for (int i = 0; i < 5; i++)
        n += build_frame(stream + n, &hs[i], &st, pl[i] ? pl[i] : p1);

    size_t steps[] = {0, 1, 2, 3, 7, 47, 48, 49, 64, 119, 120, 121, 999};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        feed_and_check(stream, n, steps[i], 5, hs, pl);
}

static void test_reader_direct(void **state)
{
    (void)state;
    enum { LEN = 70000 };
    unsigned char *payload = malloc(LEN);
    unsigned char *frame = malloc(WIRE_HEADER_SIZE + WIRE_STATS_SIZE + LEN);
    assert_non_null(payload);
    assert_non_null(frame);
    for (size_t i = 0; i < LEN; i++)
        payload[i] = (unsigned char)(i ^ (i >> 8));
    wire_header h = sample_header(WIRE_RESULT, LEN);
    wire_stats st = sample_stats();
    size_t n = build_frame(frame, &h, &st, payload);

    wire_reader r;
    ex__wire_reader_init(&r, 0);
    void *dst;
    assert_int_equal(ex__wire_reader_direct(&r, &dst), 0); /* in the header */
    size_t used;
    /* Header + stats + 10 payload bytes through feed, the rest direct. */
    size_t first = WIRE_HEADER_SIZE + WIRE_STATS_SIZE + 10;
    assert_int_equal(ex__wire_reader_feed(&r, frame, first, &used), WIRE_MORE);
    assert_int_equal(used, first);
    size_t off = first;
    while (off < n) {
        size_t room = ex__wire_reader_direct(&r, &dst);
        assert_true(room > 0 && room <= n - off);
        size_t k = room > 4096 ? 4096 : room;
        memcpy(dst, frame + off, k);
        off += k;
        assert_int_equal(ex__wire_reader_advance(&r, k),
                         off == n ? WIRE_FRAME : WIRE_MORE);
    }
    assert_int_equal(r.payload.len, LEN);
    assert_memory_equal(r.payload.data, payload, LEN);
    assert_int_equal(ex__wire_reader_direct(&r, &dst), 0);
    /* Advancing past the payload is refused, and the error is sticky. */
    ex__wire_reader_reset(&r);
    assert_int_equal(ex__wire_reader_feed(&r, frame, WIRE_HEADER_SIZE + 1, NULL),
                     WIRE_MORE);
    assert_int_equal(ex__wire_reader_advance(&r, 1), WIRE_ESTATE);
    assert_int_equal(ex__wire_reader_feed(&r, frame, 1, NULL), WIRE_ESTATE);
    ex__wire_reader_free(&r);
    free(frame);
    free(payload);
}

/* A header that claims a huge payload reserves nothing until bytes come,
 * then storage grows with them (it used to reserve the claimed length at
 * once, up to 1 GiB per worker slot). */
static void test_reader_grows_with_data(void **state)
{
    (void)state;
    const uint64_t claimed = (uint64_t)512 << 20;
    wire_header h = sample_header(WIRE_RESULT, claimed);
    wire_stats st = sample_stats();
    unsigned char fixed[WIRE_HEADER_SIZE + WIRE_STATS_SIZE];
    ex__wire_header_encode(&h, fixed);
    ex__wire_stats_encode(&st, fixed + WIRE_HEADER_SIZE);
    wire_reader r;
    ex__wire_reader_init(&r, 0);
    assert_int_equal(ex__wire_reader_feed(&r, fixed, sizeof fixed, NULL), WIRE_MORE);
    assert_true(r.payload.cap < ((size_t)1 << 20));
    unsigned char bytes[1000];
    memset(bytes, 'p', sizeof bytes);
    assert_int_equal(ex__wire_reader_feed(&r, bytes, sizeof bytes, NULL), WIRE_MORE);
    assert_int_equal(r.payload.len, sizeof bytes);
    assert_true(r.payload.cap < ((size_t)1 << 20));
    /* The direct path offers a step, not the whole claimed length. */
    void *dst;
    size_t room = ex__wire_reader_direct(&r, &dst);
    assert_true(room > 0 && room < ((size_t)1 << 20));
    assert_true(r.payload.cap < ((size_t)1 << 21));
    /* Advancing past what was offered is refused. */
    assert_int_equal(ex__wire_reader_advance(&r, room + 1), WIRE_ESTATE);
    ex__wire_reader_free(&r);
}

static void test_reader_rejects(void **state)
{
    (void)state;
    unsigned char b[WIRE_HEADER_SIZE];
    wire_reader r;
    size_t used;

    /* Bad magic, byte by byte: the error comes with the 40th byte. */
    wire_header h = sample_header(WIRE_TASK, 10);
    ex__wire_header_encode(&h, b);
    b[3] = 'X';
    ex__wire_reader_init(&r, 1024);
    for (size_t i = 0; i + 1 < sizeof b; i++)
        assert_int_equal(ex__wire_reader_feed(&r, b + i, 1, &used), WIRE_MORE);
    assert_int_equal(ex__wire_reader_feed(&r, b + 39, 1, &used), WIRE_EMAGIC);
    /* Sticky until reset. */
    assert_int_equal(ex__wire_reader_feed(&r, b, 1, &used), WIRE_EMAGIC);
    assert_int_equal(used, 0);
    ex__wire_reader_reset(&r);

    /* Oversized length: rejected before any allocation of it. */
    h = sample_header(WIRE_TASK, 1025);
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_reader_feed(&r, b, sizeof b, &used), WIRE_ETOOBIG);
    assert_null(r.payload.data);
    ex__wire_reader_reset(&r);

    /* Payload on a READY frame. */
    h = sample_header(WIRE_READY, 1);
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_reader_feed(&r, b, sizeof b, &used), WIRE_ELEN);
    ex__wire_reader_reset(&r);

    /* Truncated: a frame that stops short is simply incomplete. */
    h = sample_header(WIRE_TASK, 10);
    ex__wire_header_encode(&h, b);
    assert_int_equal(ex__wire_reader_feed(&r, b, sizeof b, &used), WIRE_MORE);
    assert_int_equal(ex__wire_reader_feed(&r, "12345", 5, &used), WIRE_MORE);
    assert_int_equal(r.payload.len, 5);
    assert_int_equal(ex__wire_reader_feed(&r, "", 0, &used), WIRE_MORE);
    ex__wire_reader_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_stats_round_trip),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_reader_stream),
        cmocka_unit_test(test_reader_direct),
        cmocka_unit_test(test_reader_grows_with_data),
        cmocka_unit_test(test_reader_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
