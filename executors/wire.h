/*
 * wire.h: the length-prefixed frame codec the process pool speaks on its
 * pipes (procs_*.c), kept free of any dependency beyond libc and buf.c so that
 * it can be fuzzed alone (fuzz/fuzz_wire.c).
 *
 * Frame = fixed header, then (RESULT frames only) a fixed stats block, then
 * `len` payload bytes, inline, unless the frame carries WIRE_F_SHM: then
 * nothing follows and the payload lies in the sender's shared-memory region
 * (procs_shm.c) at byte `off`.  Every integer is little-endian on the wire
 * and is encoded field by field: no struct is ever copied with its padding.
 *
 *   header (WIRE_HEADER_SIZE = 48 bytes)
 *     off size field
 *      0   4   magic    u32  WIRE_MAGIC (bytes 31 58 42 50)
 *      4   2   type     u16  WIRE_TASK .. WIRE_EXIT
 *      6   2   flags    u16  WIRE_F_* (unknown bits are rejected)
 *      8   4   status   i32  task return code, or an EX_E* with WIRE_F_EXERR
 *     12   4   reserved u32  0 (nonzero is rejected)
 *     16   8   id       u64  task id (echoed back in the RESULT)
 *     24   8   fn       u64  the ex_task_fn pointer value (same image)
 *     32   8   len      u64  payload bytes (inline, or in the region)
 *     40   8   off      u64  WIRE_F_SHM: the payload's offset in the region;
 *                            0 otherwise (nonzero is rejected)
 *
 *   stats block (WIRE_STATS_SIZE = 72 bytes, RESULT frames only)
 *      0   8   start_ns         u64  task began (child CLOCK_MONOTONIC)
 *      8   8   end_ns           u64  task returned
 *     16   8   cpu_ns           u64  thread CPU time used by the task
 *     24   8   nvcsw            i64  voluntary context switches
 *     32   8   nivcsw           i64  involuntary context switches
 *     40   8   input_done_ns    u64  whole task frame read by the child
 *     48   8   output_start_ns  u64  child starts writing the result
 *     56   4   cpu              i32  sched_getcpu() after the task, -1 unknown
 *     60   4   pid              i32  the worker's pid
 *     64   8   read_begin_ns    u64  child began reading the task's frame (its
 *                                    previous result was out by then)
 *
 * Only TASK and RESULT frames may carry a payload (or WIRE_F_SHM); READY,
 * INIT_FAIL and EXIT have len == 0 (on READY, WIRE_F_SHM with off 0 says
 * that the worker mapped its region).  A length above the cap
 * (ex_config.max_payload, 0 = 1 GiB) is rejected before any allocation, and
 * so is an offset that would make off + len overflow WIRE_MAX_OFFSET (the
 * region's bounds are its owner's to check).
 */
#ifndef POOLBENCH_WIRE_H
#define POOLBENCH_WIRE_H

#include "executor.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC 0x50425831u /* "PBX1" read as a big-endian word */
#define WIRE_HEADER_SIZE 48u
#define WIRE_STATS_SIZE 72u
#define WIRE_DEFAULT_MAX_PAYLOAD ((size_t)1 << 30) /* 1 GiB */
#define WIRE_MAX_OFFSET ((uint64_t)1 << 48)         /* off + len bound */

enum wire_type {
    WIRE_TASK = 1,      /* parent -> worker: run fn on the payload */
    WIRE_RESULT = 2,    /* worker -> parent: stats block + output */
    WIRE_READY = 3,     /* worker -> parent: worker_start + initializer ok */
    WIRE_INIT_FAIL = 4, /* worker -> parent: status = their nonzero code */
    WIRE_EXIT = 5,      /* parent -> worker: exit now (same as EOF) */
};

/* RESULT flag: status is a negative EX_E* code raised by the worker itself
 * (e.g. output above the cap), not the task's own return value. */
#define WIRE_F_EXERR 0x0001u
/* RESULT flag: the task's raw CPU reading exceeded its wall time and was
 * cut to it (EX_STATS_CPU_OVER_WALL). */
#define WIRE_F_CPU_OVER_WALL 0x0002u
/* RESULT flag: the task's CPU reading fell below zero and was set to 0
 * (EX_STATS_CPU_UNDER_ZERO: switch detection, see measure.c). */
#define WIRE_F_CPU_UNDER_ZERO 0x0004u
/* TASK or RESULT flag: the payload is in the sender's shared-memory
 * region at `off`, not inline.  READY flag: the worker mapped its region. */
#define WIRE_F_SHM 0x0008u
#define WIRE_F_KNOWN (WIRE_F_EXERR | WIRE_F_CPU_OVER_WALL | \
                      WIRE_F_CPU_UNDER_ZERO | WIRE_F_SHM)

/* Codec errors (negative, distinct from EX_E*; ex__wire_strerror names
 * them). */
enum {
    WIRE_EMAGIC = -100,   /* bad magic */
    WIRE_ETYPE = -101,    /* unknown frame type */
    WIRE_EFLAGS = -102,   /* unknown flag bits, nonzero reserved word, or
                             an offset without WIRE_F_SHM */
    WIRE_ETOOBIG = -103,  /* len above the payload cap */
    WIRE_ELEN = -104,     /* payload on a frame type that has none, or an
                             offset + len past WIRE_MAX_OFFSET */
    WIRE_ETRUNC = -105,   /* input ends inside a frame */
    WIRE_ESTATE = -106,   /* reader fed again without ex__wire_reader_reset */
};

typedef struct wire_header {
    uint32_t magic;
    uint16_t type;
    uint16_t flags;
    int32_t status;
    uint64_t id;
    uint64_t fn;
    uint64_t len;
    uint64_t off;
} wire_header;

typedef struct wire_stats {
    uint64_t start_ns, end_ns, cpu_ns;
    int64_t nvcsw, nivcsw;
    uint64_t input_done_ns, output_start_ns;
    int32_t cpu;
    int32_t pid;
    uint64_t read_begin_ns;
} wire_stats;

/* The effective payload cap: cfg_max, or WIRE_DEFAULT_MAX_PAYLOAD for 0. */
size_t ex__wire_max_payload(size_t cfg_max);

/* Name of a WIRE_E* code (falls back to ex_strerror for EX_E*). */
const char *ex__wire_strerror(int code);

/* Writes h to out (h->magic is ignored: WIRE_MAGIC is written). */
void ex__wire_header_encode(const wire_header *h,
                            unsigned char out[WIRE_HEADER_SIZE]);
/* Decodes and validates n bytes.  0, or WIRE_ETRUNC (n too small),
 * WIRE_EMAGIC, WIRE_ETYPE, WIRE_EFLAGS, WIRE_ELEN, WIRE_ETOOBIG.
 * max_payload 0 means the default cap.  Never reads past n. */
int ex__wire_header_decode(const unsigned char *in, size_t n,
                           size_t max_payload, wire_header *h);
/* True if frames of this type carry the stats block. */
int ex__wire_type_has_stats(uint16_t type);
/* Payload bytes that follow h inline: h->len, or 0 with WIRE_F_SHM. */
uint64_t ex__wire_inline_len(const wire_header *h);

void ex__wire_stats_encode(const wire_stats *s,
                           unsigned char out[WIRE_STATS_SIZE]);
void ex__wire_stats_decode(const unsigned char in[WIRE_STATS_SIZE],
                           wire_stats *s);

/* ------------------------------------------------------- streaming reader */

/* A state machine fed arbitrary chunks of a byte stream; yields whole frames.
 * Used by the parent on non-blocking pipes.  Invariant: the reader never
 * consumes a byte past the end of the current frame, so whatever follows it
 * is left to the caller (`used` says where the frame ended). */
typedef struct wire_reader {
    size_t max_payload;   /* effective cap */
    int state;            /* internal: header, stats, payload, done, error */
    int error;            /* the sticky error once state is error */
    size_t have;          /* bytes of the current fixed part received */
    unsigned char fixed[WIRE_STATS_SIZE]; /* staging for header / stats */
    wire_header hdr;      /* valid once the header is complete */
    wire_stats stats;     /* valid in a complete RESULT frame */
    ex_buf payload;       /* the inline payload; len grows as bytes arrive
                             (empty for a WIRE_F_SHM frame: hdr.off and
                             hdr.len say where its payload is) */
} wire_reader;

enum { WIRE_MORE = 0, WIRE_FRAME = 1 };

/* Does not allocate; max_payload 0 = the default cap. */
void ex__wire_reader_init(wire_reader *r, size_t max_payload);
/* Ready for the next frame; keeps the payload buffer's storage. */
void ex__wire_reader_reset(wire_reader *r);
/* Frees the payload buffer. */
void ex__wire_reader_free(wire_reader *r);

/* Consumes up to n bytes; *used (may be NULL) tells how many.  Returns
 * WIRE_MORE (all n consumed, frame incomplete), WIRE_FRAME (a frame is
 * complete: r->hdr, r->stats, r->payload are valid until reset; bytes after
 * it are not consumed: a stream of several frames is fed again from
 * there after a reset), or an error (WIRE_E*, EX_ENOMEM), sticky until
 * reset.  Feeding a complete frame again without reset is WIRE_ESTATE. */
int ex__wire_reader_feed(wire_reader *r, const void *data, size_t n,
                         size_t *used);

/* Zero-copy path for big payloads: when the reader is inside a payload,
 * returns how many payload bytes may be read now (> 0, at most what is
 * still expected) and sets *dst to storage for them, so the caller can
 * read(2) straight into it and then call ex__wire_reader_advance.  Storage
 * grows with the data received (doubling from 64 KiB), never to the
 * length a header merely claims.  Returns 0 otherwise (use
 * ex__wire_reader_feed, which also reports an allocation failure). */
size_t ex__wire_reader_direct(wire_reader *r, void **dst);
/* Records n bytes written at the ex__wire_reader_direct pointer.
 * WIRE_MORE or WIRE_FRAME; WIRE_ESTATE if n exceeds what was offered. */
int ex__wire_reader_advance(wire_reader *r, size_t n);

#endif
