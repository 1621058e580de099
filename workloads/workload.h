/*
 * workload.h: libworkloads, the identical work every executor runs.
 *
 * A workload is a named, registered kind of task (cpu or io) with typed
 * parameters.  A run prepares an instance (wl_prepare): N task inputs built
 * deterministically from a seed, plus any resources (temporary files, URLs).
 * Each input goes through the workload's task function (an ex_task_fn, bytes
 * in -> bytes out), each output can be checked (wl_check), and all outputs
 * feed a digest (wl_digest_*) that is the same on every backend for the same
 * inputs: the proof that seq, threads and procs computed the same thing.
 *
 * Contract:
 *   - Functions return 0 or a negative EX_E* status from executor.h; those
 *     that take (err, errlen) also write one human-readable line there (never
 *     to stderr) and never exit.
 *   - Task functions are pure functions of their input bytes: everything a
 *     task needs (URL, file path, rounds, tile geometry) is encoded in the
 *     input, so the forked worker of the process pool, which only sees the
 *     input and a fork-time snapshot, computes exactly what a thread would.
 *     The only mutable state is the http workload's per-thread curl handle.
 *   - The registry and parameter specs are immutable; wl_params and wl_ctx
 *     are owned by their creator (every _create/_prepare has a _destroy/
 *     _cleanup).
 *
 * Task codes (the positive values a task returns, kept by the future as
 * ex_future_task_code(); wl_task_code_text() names them):
 *   77              fault: an injected error (WL_FAULT_ERROR_CODE)
 *   100..599        http, fetch-hash: the HTTP status of a non-2xx response
 *   900..903        any: malformed input, out of memory, OpenSSL or zlib
 *                   failure inside the task (WL_CODE_*)
 *   904             a Python executor's task raised an exception that has no
 *                   code of its own (scripts/pyrunner; a bug, shown on stderr)
 *   1000 + c        http, fetch-hash: libcurl transfer error CURLcode c
 *                   (e.g. 1007 = CURLE_COULDNT_CONNECT, 1028 = timeout)
 *   2000 + e        file: the system call failed with errno e
 */
#ifndef POOLBENCH_WORKLOAD_H
#define POOLBENCH_WORKLOAD_H

#include "executor.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ task codes */

#define WL_FAULT_ERROR_CODE 77
#define WL_CODE_EINPUT 900   /* input bytes malformed (wrong length/header) */
#define WL_CODE_ENOMEM 901   /* allocation failed inside the task */
#define WL_CODE_ECRYPTO 902  /* an OpenSSL EVP call failed */
#define WL_CODE_EZLIB 903    /* a zlib call failed */
#define WL_CODE_EPYTHON 904  /* a Python task raised (scripts/pyrunner) */
#define WL_CODE_CURL_BASE 1000  /* + CURLcode */
#define WL_CODE_ERRNO_BASE 2000 /* + errno */

/* Writes a one-line description of a task code ("HTTP 500", "curl error 7:
 * Couldn't connect to server", "errno 2: No such file or directory") and
 * returns buf.  Does not block. */
const char *wl_task_code_text(int code, char *buf, size_t len);

/* ------------------------------------------------------ registry, listing */

typedef enum { WL_CPU = 0, WL_IO = 1 } wl_kind;

typedef enum {
    WL_PARAM_INT = 0,    /* int64; accepts a k/M/G suffix (x 1024^n) */
    WL_PARAM_DOUBLE = 1, /* finite double */
    WL_PARAM_STRING = 2, /* any text; min/max bound its length */
} wl_param_type;

/* Flag: the harness fills this parameter (e.g. base_url); it is listed but
 * left out of wl_params_format so a run's identity does not include it. */
#define WL_PARAM_INTERNAL 1u

typedef struct wl_param_spec {
    const char *name;
    wl_param_type type;
    /* Default and inclusive range: int64 fields for WL_PARAM_INT (and the
     * length bounds of strings), double fields for WL_PARAM_DOUBLE. */
    int64_t def_int, min_int, max_int;
    double def_double, min_double, max_double;
    const char *def_string;
    const char *help; /* one line */
    unsigned flags;   /* WL_PARAM_INTERNAL */
} wl_param_spec;

struct wl_ops; /* private: wl_internal.h */

typedef struct wl_workload {
    const char *name;
    wl_kind kind;
    const char *help; /* one line */
    const wl_param_spec *params;
    size_t nparams;
    const struct wl_ops *ops;
} wl_workload;

/* The registered workloads, in listing order.  Do not block. */
size_t wl_count(void);
const wl_workload *wl_at(size_t index);          /* NULL past the end */
const wl_workload *wl_find(const char *name);    /* NULL if unknown */
/* Names every workload's task functions in the executors' registry
 * (ex_task_register: "wl.<name>", and "wl.<name>.1" for a second stage),
 * so that they can run on an mpi executor.  Call once at the top of main,
 * before ex_worker_main.  0 or the first EX_E* of ex_task_register. */
int wl_register_tasks(void);
/* "cpu" or "io". */
const char *wl_kind_name(wl_kind kind);
/* The spec of a parameter by name, NULL if the workload has none. */
const wl_param_spec *wl_param_find(const wl_workload *w, const char *name);
/* Comma-separated names of all workloads, for "unknown workload" messages
 * ("primes, sha256, ..."). */
const char *wl_names(void);

/* The text of `poolbench list`: every workload with its kind and help, then
 * each parameter with type, default, range and help.  Returns a malloc'd
 * NUL-terminated string the caller frees, or NULL on ENOMEM. */
char *wl_list_text(void);

/* ------------------------------------------------------------- parameters */

typedef struct wl_params wl_params;

/* A parameter set for w holding every default.  0 or EX_ENOMEM. */
int wl_params_create(const wl_workload *w, wl_params **out);
/* Deep copy.  0 or EX_ENOMEM. */
int wl_params_copy(const wl_params *p, wl_params **out);
void wl_params_destroy(wl_params *p);
const wl_workload *wl_params_workload(const wl_params *p);

/* Sets one parameter from text, validating type and range.  EX_EINVAL with
 * a message such as
 *   workload 'sha256': unknown parameter 'foo' (accepted: bytes, rounds)
 *   parameter 'bytes' must be an integer in [1, 1073741824], got 'x'
 * and p unchanged.  0 or EX_EINVAL / EX_ENOMEM. */
int wl_params_set(wl_params *p, const char *key, const char *value,
                  char *err, size_t errlen);
/* Same, from one "key=value" string. */
int wl_params_set_kv(wl_params *p, const char *kv, char *err, size_t errlen);

/* What the CLI calls: defaults for w, then each "key=value" of kv[0..n) in
 * order, then the workload's cross-parameter checks (e.g. fault rates must
 * sum to at most 1).  On error *out is NULL and err holds the message. */
int wl_params_parse(const wl_workload *w, const char *const *kv, size_t n,
                    wl_params **out, char *err, size_t errlen);
/* The workload's cross-parameter checks alone (wl_prepare runs them too). */
int wl_params_validate(const wl_params *p, char *err, size_t errlen);

/* Typed getters by name.  An unknown name or a wrong type returns 0 / 0.0 /
 * "" (a programming error, not an input error). */
int64_t wl_params_int(const wl_params *p, const char *name);
double wl_params_double(const wl_params *p, const char *name);
const char *wl_params_string(const wl_params *p, const char *name);
/* Whether the parameter was set explicitly (not left at its default). */
int wl_params_is_set(const wl_params *p, const char *name);

/* The value of the index-th parameter of the workload as text (what
 * wl_params_set would accept back), e.g. "1048576", "0.25", "http://..". */
int wl_params_value_text(const wl_params *p, size_t index, char *buf,
                         size_t len);
/* "bytes=1048576,rounds=1": every non-internal parameter in spec order.
 * EX_EINVAL if it does not fit (buf then holds a truncated string). */
int wl_params_format(const wl_params *p, char *buf, size_t len);

/* Whether the http-based workloads (http, fetch-hash) need the harness's
 * embedded server: 1 when no `url` override is set, else 0 (and 0 for every
 * other workload).  The harness then starts it and sets `base_url`. */
int wl_needs_server(const wl_params *p);

/* Whether this configuration kills or wedges its worker (fault with
 * crash_rate > 0 or hang_rate > 0): 1 with a message in why (for example
 * "workload 'fault' with crash_rate=0.1 aborts its worker: it needs
 * process isolation (--executor procs)"), else 0.  The harness refuses it
 * on seq and threads.  Does not block. */
int wl_requires_isolation(const wl_params *p, char *why, size_t len);

/* Whether this workload's tasks read state that wl_prepare built in the
 * submitting process's memory (table's shared table): 1 with a message in
 * why, else 0.  Threads read it, forked workers inherit it; the harness
 * refuses it on mpi, whose workers are other programs, possibly on other
 * hosts.  Does not block. */
int wl_requires_shared_memory(const wl_params *p, char *why, size_t len);

/* ------------------------------------------------------------- instances */

typedef struct wl_ctx wl_ctx;

/* wl_prepare flags. */
#define WL_PREPARE_LAZY 1u /* build each input on first wl_input, not now */

/* Builds an instance: validates p (a copy is kept), creates any resources
 * (file: a temporary directory of generated files; http: the URL) and,
 * unless WL_PREPARE_LAZY, builds all ntasks inputs now.  The inputs are a
 * pure function of (workload, params, ntasks, seed).  Blocks while files
 * are written.  0, EX_EINVAL (bad configuration: err says why, e.g.
 * "http needs a server: set base_url or url"), EX_ENOMEM or EX_ESYS. */
int wl_prepare(const wl_workload *w, const wl_params *p, size_t ntasks,
               uint64_t seed, unsigned flags, wl_ctx **out, char *err,
               size_t errlen);

/* Removes temporary files and frees everything.  NULL is a no-op. */
void wl_cleanup(wl_ctx *ctx);

const wl_workload *wl_ctx_workload(const wl_ctx *ctx);
const wl_params *wl_ctx_params(const wl_ctx *ctx);
size_t wl_ntasks(const wl_ctx *ctx);

/* Input i (building it if lazy or released); the pointer stays valid until
 * wl_input_release(ctx, i) or wl_cleanup.  Thread-safe (the cache is
 * locked), so it can serve as an ex_map_source.get.  0, EX_EINVAL (i out of
 * range) or EX_ENOMEM. */
int wl_input(wl_ctx *ctx, size_t i, const void **in, size_t *len);
/* Frees input i's bytes; a later wl_input rebuilds the identical bytes.
 * Fits ex_map_source.put.  Thread-safe. */
void wl_input_release(wl_ctx *ctx, size_t i);
/* ex_map_source adapters: arg is the wl_ctx. */
int wl_map_get(void *ctx, size_t index, const void **in, size_t *len);
void wl_map_put(void *ctx, size_t index, const void *in, size_t len);

/* The task function.  For multi-stage workloads (fetch-hash) this is the
 * first stage; chain the rest with ex_future_then in stage order. */
ex_task_fn wl_task_fn(const wl_ctx *ctx);
/* Number of stages (1, or 2 for fetch-hash: http, then hash). */
size_t wl_stage_count(const wl_ctx *ctx);
/* Stage k's task function, NULL past the end. */
ex_task_fn wl_stage_fn(const wl_ctx *ctx, size_t k);

/* Checks the (final-stage) output of task i: 0, or EX_EINVAL with a
 * message.  Cost is O(output) at most, plus rebuilding input i for
 * workloads that compare against it (compress, noop).  Thread-safe; does
 * not touch the input cache. */
int wl_check(const wl_ctx *ctx, size_t i, const void *out, size_t len,
             char *err, size_t errlen);

/* What task i is built to do, for the fault workload (0 = succeed; for other
 * workloads always 0). */
typedef enum {
    WL_FAULT_NONE = 0,
    WL_FAULT_ERROR = 1, /* returns WL_FAULT_ERROR_CODE */
    WL_FAULT_CRASH = 2, /* abort()s its worker */
    WL_FAULT_HANG = 3,  /* sleeps far longer than any timeout */
} wl_fault;
wl_fault wl_expected_fault(const wl_ctx *ctx, size_t i);

/* ----------------------------------------------------------------- digest */

/* The run digest: SHA-256 over, for each index i in input order, the record
 * SHA-256(le64 i || le64 len || output bytes), or for a failed task
 * SHA-256(le64 i || "fail" || le32 status || le32 task code).  Records may be
 * added in any order (completion order); adds of distinct indexes may run
 * concurrently.  A missing index hashes as a distinct "missing" marker. */
#define WL_DIGEST_HEX_LEN 64

typedef struct wl_digest wl_digest;

int wl_digest_create(size_t n, wl_digest **out);
void wl_digest_destroy(wl_digest *d);
/* Records output `index`.  EX_EINVAL if index >= n or already recorded. */
int wl_digest_add(wl_digest *d, size_t index, const void *out, size_t len);
/* Records that task `index` failed with an EX_E* status (and task code). */
int wl_digest_add_failure(wl_digest *d, size_t index, int status,
                          int task_code);
/* How many indexes have been recorded. */
size_t wl_digest_count(const wl_digest *d);
/* Writes the 64 lowercase hex digits and a NUL into hex (65 bytes). */
int wl_digest_final(const wl_digest *d, char *hex);

/* ------------------------------------------------------------------ http */

/* Frees the calling thread's curl handle now (worker threads free theirs
 * at exit through a pthread key destructor; the main thread may call this
 * before exit so that leak checkers stay quiet).  Does not block. */
void wl_http_thread_cleanup(void);

#ifdef __cplusplus
}
#endif
#endif
