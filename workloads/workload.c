/*
 * workload.c: the registry of workloads, the helpers every workload file
 * shares (error text, random inputs, SHA-256) and the `poolbench list`
 * text.  Parameters are in params.c, an instance's life (prepare / input /
 * check / cleanup) in instance.c, the run digest in digest.c; the
 * workloads themselves live one per file and plug in through struct
 * wl_ops (wl_internal.h).
 */
#include "wl_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* --------------------------------------------------------------- helpers */

int wl_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return EX_EINVAL;
}

void wl_rng_fill(wl_rng *r, void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n >= 8) {
        wl_put_le64(p, wl_rng_next(r));
        p += 8;
        n -= 8;
    }
    if (n) {
        unsigned char tail[8];
        wl_put_le64(tail, wl_rng_next(r));
        memcpy(p, tail, n);
    }
}

int wl_sha256_parts(const void *const *parts, const size_t *lens, size_t n,
                    unsigned char out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int outlen = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (size_t k = 0; ok && k < n; k++)
        ok = EVP_DigestUpdate(md, parts[k], lens[k]) == 1;
    ok = ok && EVP_DigestFinal_ex(md, out, &outlen) == 1 && outlen == 32;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

const char *wl_task_code_text(int code, char *buf, size_t len)
{
    if (!buf || !len)
        return "";
    if (code == 0)
        snprintf(buf, len, "success");
    else if (code == WL_FAULT_ERROR_CODE)
        snprintf(buf, len, "injected fault error (%d)", code);
    else if (code >= 100 && code <= 599)
        snprintf(buf, len, "HTTP %d", code);
    else if (code == WL_CODE_EINPUT)
        snprintf(buf, len, "malformed task input (%d)", code);
    else if (code == WL_CODE_ENOMEM)
        snprintf(buf, len, "out of memory in task (%d)", code);
    else if (code == WL_CODE_ECRYPTO)
        snprintf(buf, len, "OpenSSL failure in task (%d)", code);
    else if (code == WL_CODE_EZLIB)
        snprintf(buf, len, "zlib failure in task (%d)", code);
    else if (code == WL_CODE_EPYTHON)
        snprintf(buf, len, "Python exception in task (%d)", code);
    else if (code >= WL_CODE_CURL_BASE && code < WL_CODE_ERRNO_BASE)
        snprintf(buf, len, "curl error %d: %s", code - WL_CODE_CURL_BASE,
                 curl_easy_strerror((CURLcode)(code - WL_CODE_CURL_BASE)));
    else if (code >= WL_CODE_ERRNO_BASE) {
        char tmp[128];
        /* GNU strerror_r returns the message (maybe not in tmp). */
        const char *msg = strerror_r(code - WL_CODE_ERRNO_BASE, tmp,
                                     sizeof tmp);
        snprintf(buf, len, "errno %d: %s", code - WL_CODE_ERRNO_BASE, msg);
    } else
        snprintf(buf, len, "task code %d", code);
    return buf;
}

/* -------------------------------------------------------------- registry */

static const wl_workload *const registry[] = {
    &wl_primes_workload,  &wl_sha256_workload, &wl_mandelbrot_workload,
    &wl_blur_workload,    &wl_compress_workload, &wl_sleep_workload,
    &wl_http_workload,    &wl_file_workload,   &wl_fetch_hash_workload,
    &wl_noop_workload,    &wl_fault_workload,  &wl_table_workload,
    &wl_mix_workload,
};
#define NREGISTRY (sizeof registry / sizeof registry[0])

size_t wl_count(void) { return NREGISTRY; }

const wl_workload *wl_at(size_t index)
{
    return index < NREGISTRY ? registry[index] : NULL;
}

const wl_workload *wl_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t k = 0; k < NREGISTRY; k++)
        if (strcmp(registry[k]->name, name) == 0)
            return registry[k];
    return NULL;
}

int wl_register_tasks(void)
{
    for (size_t k = 0; k < NREGISTRY; k++)
        for (size_t s = 0; s < 2 && registry[k]->ops->stages[s]; s++) {
            char name[EX_TASK_NAME_MAX + 1];
            snprintf(name, sizeof name, s ? "wl.%s.%zu" : "wl.%s", registry[k]->name, s);
            int rc = ex_task_register(name, registry[k]->ops->stages[s]);
            if (rc)
                return rc;
        }
    return 0;
}

const char *wl_kind_name(wl_kind kind)
{
    return kind == WL_CPU ? "cpu" : kind == WL_IO ? "io" : "?";
}

/* "primes, sha256, ...": the registry's names, for messages. */
static char names[512];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void build_names(void)
{
    size_t off = 0;
    for (size_t k = 0; k < NREGISTRY && off < sizeof names; k++)
        off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", k ? ", " : "",
                                registry[k]->name);
}

const char *wl_names(void)
{
    pthread_once(&names_once, build_names);
    return names;
}

/* ------------------------------------------------------------- text sink */

/* A NUL-terminated growable string on top of ex_buf. */
static int sink_printf(ex_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int sink_printf(ex_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || ex_buf_reserve(b, (size_t)n + 1))
        return EX_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Shortest "%g" text that reads back as the same double. */

static void format_range(const wl_param_spec *s, char *buf, size_t len)
{
    char lo[40], hi[40];
    switch (s->type) {
    case WL_PARAM_INT:
        snprintf(buf, len, "[%" PRId64 ", %" PRId64 "]", s->min_int,
                 s->max_int);
        break;
    case WL_PARAM_DOUBLE:
        wl_format_double(s->min_double, lo, sizeof lo);
        wl_format_double(s->max_double, hi, sizeof hi);
        snprintf(buf, len, "[%s, %s]", lo, hi);
        break;
    case WL_PARAM_STRING:
        snprintf(buf, len, "%" PRId64 "..%" PRId64 " chars", s->min_int,
                 s->max_int);
        break;
    }
}

static void format_default(const wl_param_spec *s, char *buf, size_t len)
{
    switch (s->type) {
    case WL_PARAM_INT:
        snprintf(buf, len, "%" PRId64, s->def_int);
        break;
    case WL_PARAM_DOUBLE:
        wl_format_double(s->def_double, buf, len);
        break;
    case WL_PARAM_STRING:
        snprintf(buf, len, "'%s'", s->def_string ? s->def_string : "");
        break;
    }
}

static const char *type_name(wl_param_type t)
{
    return t == WL_PARAM_INT ? "int" : t == WL_PARAM_DOUBLE ? "float" : "string";
}

char *wl_list_text(void)
{
    ex_buf b = {0};
    int rc = 0;
    for (size_t k = 0; k < NREGISTRY && !rc; k++) {
        const wl_workload *w = registry[k];
        rc = sink_printf(&b, "%s%-11s %-3s  %s\n", k ? "\n" : "", w->name,
                         wl_kind_name(w->kind), w->help);
        for (size_t j = 0; j < w->nparams && !rc; j++) {
            const wl_param_spec *s = &w->params[j];
            char def[64], range[96], lhs[128];
            format_default(s, def, sizeof def);
            format_range(s, range, sizeof range);
            snprintf(lhs, sizeof lhs, "%s=%s", s->name, def);
            rc = sink_printf(&b, "    %-26s %-6s %-24s %s%s\n", lhs,
                             type_name(s->type), range, s->help,
                             (s->flags & WL_PARAM_INTERNAL)
                                 ? " (set by the harness)"
                                 : "");
        }
    }
    if (!rc && !b.data)
        rc = sink_printf(&b, "%s", "");
    if (rc) {
        ex_buf_free(&b);
        return NULL;
    }
    return (char *)b.data; /* NUL-terminated by sink_printf */
}
