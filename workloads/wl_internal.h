/*
 * wl_internal.h: what the workload files share and workload.h hides: the
 * per-workload operations table, the instance and parameter structs, the
 * seeded generator, little-endian helpers and each workload's task
 * functions and input encoders (the unit tests craft inputs with them).
 *
 * Input layouts are little-endian and fixed per workload; every task
 * validates its input length before reading it and returns WL_CODE_EINPUT
 * on a mismatch, so a corrupt frame can never make a task read past its
 * input.
 */
#ifndef POOLBENCH_WL_INTERNAL_H
#define POOLBENCH_WL_INTERNAL_H

#include "workload.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

struct wl_ops {
    /* Cross-parameter checks (optional). */
    int (*validate)(const wl_params *p, char *err, size_t errlen);
    /* Creates the instance's resources into ctx->priv (optional). */
    int (*setup)(wl_ctx *ctx, char *err, size_t errlen);
    /* Releases ctx->priv (optional; called even if setup failed midway). */
    void (*teardown)(wl_ctx *ctx);
    /* Appends input i to `in`: a pure function of (params, ntasks, seed,
     * priv, i).  Returns 0 or EX_ENOMEM. */
    int (*build)(const wl_ctx *ctx, size_t i, ex_buf *in);
    /* Stage functions; stages[1] is NULL for single-stage workloads. */
    ex_task_fn stages[2];
    /* Checks the final output of task i (optional: absent = accept). */
    int (*check)(const wl_ctx *ctx, size_t i, const void *out, size_t len,
                 char *err, size_t errlen);
    /* Returns 1 (with why) when the configuration needs process isolation. */
    int (*isolation)(const wl_params *p, char *why, size_t len);
    /* Tasks read state that setup built in this process's memory. */
    bool shared_memory;
    /* What input i is built to do (fault only). */
    wl_fault (*fault)(const wl_ctx *ctx, size_t i);
};

struct wl_value {
    int64_t i;
    double d;
    char *s;
};

struct wl_params {
    const wl_workload *w;
    struct wl_value *v;  /* one per spec, in spec order */
    unsigned char *set;  /* 1 if set explicitly */
};

struct wl_ctx {
    const wl_workload *w;
    wl_params *params; /* the instance's own copy */
    size_t ntasks;
    uint64_t seed;
    pthread_mutex_t lock; /* guards inputs[] and built[] */
    ex_buf *inputs;
    unsigned char *built;
    void *priv; /* the workload's instance state (setup/teardown) */
};

/* Formats a message into err (if any) and returns EX_EINVAL. */
int wl_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Builds input i into a fresh buffer without touching the cache (for
 * checks that compare against the input). */
int wl_build_private(const wl_ctx *ctx, size_t i, ex_buf *in);

/* SHA-256 of the concatenation of n parts.  0 or -1 (OpenSSL failed). */
int wl_sha256_parts(const void *const *parts, const size_t *lens, size_t n,
                    unsigned char out[32]);

/* ------------------------------------------------ deterministic generator */

/* splitmix64: tiny, fast, and the same sequence on every platform. */
static inline uint64_t wl_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct wl_rng {
    uint64_t s;
} wl_rng;

/* A generator for (seed, stream, index): streams keep workloads (and
 * different uses inside one workload) independent. */
static inline wl_rng wl_rng_init(uint64_t seed, uint64_t stream,
                                 uint64_t index)
{
    wl_rng r = {wl_mix64(seed ^ wl_mix64(stream * 0x9e3779b97f4a7c15ULL ^
                                         wl_mix64(index + 1)))};
    return r;
}

static inline uint64_t wl_rng_next(wl_rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return wl_mix64(r->s);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double wl_rng_double(wl_rng *r)
{
    return (double)(wl_rng_next(r) >> 11) * 0x1.0p-53;
}

void wl_rng_fill(wl_rng *r, void *buf, size_t n);

/* A double as `poolbench list` and the messages show it (params.c). */
void wl_format_double(double d, char *buf, size_t len);

/* ------------------------------------------------ little-endian encoding */

static inline void wl_put_le32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static inline void wl_put_le64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> (8 * k));
}

static inline uint32_t wl_get_le32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int k = 3; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

static inline uint64_t wl_get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

static inline void wl_put_f64(unsigned char *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    wl_put_le64(p, bits);
}

static inline double wl_get_f64(const unsigned char *p)
{
    uint64_t bits = wl_get_le64(p);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* ------------------------------------------------------------- workloads */

extern const wl_workload wl_primes_workload, wl_sha256_workload,
    wl_mandelbrot_workload, wl_blur_workload, wl_compress_workload,
    wl_sleep_workload, wl_http_workload, wl_file_workload,
    wl_fetch_hash_workload, wl_noop_workload, wl_fault_workload,
    wl_table_workload, wl_mix_workload;

/* primes: input le64 lo, le64 hi; output le64 count of primes in [lo, hi). */
int wl_primes_task(const void *in, size_t len, ex_buf *out);
int wl_primes_encode(ex_buf *in, uint64_t lo, uint64_t hi);

/* sha256: input le32 rounds, data; output the 32-byte digest. */
int wl_sha256_task(const void *in, size_t len, ex_buf *out);

/* mandelbrot: input le32 w, h, max_iter, f64 cx0, cy0, dx, dy; output w*h
 * le16 escape counts (max_iter = never escaped, i.e. inside). */
int wl_mandelbrot_task(const void *in, size_t len, ex_buf *out);
int wl_mandelbrot_encode(ex_buf *in, uint32_t w, uint32_t h,
                         uint32_t max_iter, double cx0, double cy0,
                         double dx, double dy);

/* blur: input le32 w, h, f64 sigma, w*h gray bytes; output w*h bytes. */
int wl_blur_task(const void *in, size_t len, ex_buf *out);
int wl_blur_encode(ex_buf *in, uint32_t w, uint32_t h, double sigma,
                   const unsigned char *pixels);

/* compress: input le32 level, text; output a zlib stream. */
int wl_compress_task(const void *in, size_t len, ex_buf *out);

/* sleep: input le64 index, le64 ns; output le64 index. */
int wl_sleep_task(const void *in, size_t len, ex_buf *out);
/* Sleeps ns nanoseconds, resuming after signals. */
void wl_sleep_ns(uint64_t ns);

/* http: input le32 connect_timeout_ms, le32 timeout_ms, URL, NUL; output
 * the body. */
int wl_http_task(const void *in, size_t len, ex_buf *out);
int wl_http_encode(ex_buf *in, uint32_t connect_timeout_ms,
                   uint32_t timeout_ms, const char *url);
/* fetch-hash's second stage: output SHA-256 of the input (32 bytes). */
int wl_hash_task(const void *in, size_t len, ex_buf *out);
/* Shared by http and fetch-hash. */
#define WL_HTTP_NPARAMS 6
extern const wl_param_spec wl_http_params[WL_HTTP_NPARAMS];
int wl_http_validate(const wl_params *p, char *err, size_t errlen);
int wl_http_setup(wl_ctx *ctx, char *err, size_t errlen);
void wl_http_teardown(wl_ctx *ctx);
int wl_http_build(const wl_ctx *ctx, size_t i, ex_buf *in);
/* The body length task i should get back, or -1 if unknown (url set). */
int64_t wl_http_expected_len(const wl_ctx *ctx);

/* file: input path NUL; output le64 size, le32 crc32. */
int wl_file_task(const void *in, size_t len, ex_buf *out);
/* The instance's directory (NULL if none). */
const char *wl_file_dir(const wl_ctx *ctx);

/* noop: output = input. */
int wl_noop_task(const void *in, size_t len, ex_buf *out);

/* fault: input le64 index, u8 wl_fault, le64 ns; output le64 index. */
int wl_fault_task(const void *in, size_t len, ex_buf *out);

/* table: input le64 instance tag, le64 index, le32 lookups; output le64
 * wrapping sum of the shared table's words it read. */
int wl_table_task(const void *in, size_t len, ex_buf *out);

/* mix: input le64 index, u8 blocks, le64 ns, then a primes input (le64 lo,
 * hi); output le64 index (blocking) or the prime count (CPU). */
int wl_mix_task(const void *in, size_t len, ex_buf *out);

#endif
