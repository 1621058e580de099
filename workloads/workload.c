/*
 * workload.c: the registry, typed parameters (parse, validate, format),
 * the instance lifecycle (prepare / input / check / cleanup), the run
 * digest and the `poolbench list` text.  The workloads themselves live one
 * per file and plug in through struct wl_ops (wl_internal.h).
 */
#include "wl_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdatomic.h>
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

const char *wl_kind_name(wl_kind kind)
{
    return kind == WL_CPU ? "cpu" : kind == WL_IO ? "io" : "?";
}

const char *wl_names(void)
{
    return "primes, sha256, mandelbrot, blur, compress, sleep, http, file, "
           "fetch-hash, noop, fault, table, mix";
}

static ssize_t param_index(const wl_workload *w, const char *name)
{
    for (size_t k = 0; k < w->nparams; k++)
        if (strcmp(w->params[k].name, name) == 0)
            return (ssize_t)k;
    return -1;
}

const wl_param_spec *wl_param_find(const wl_workload *w, const char *name)
{
    if (!w || !name)
        return NULL;
    ssize_t k = param_index(w, name);
    return k < 0 ? NULL : &w->params[k];
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
static void format_double(double d, char *buf, size_t len)
{
    if (d == floor(d) && fabs(d) < 1e15) { /* 3600000, not 3.6e+06 */
        snprintf(buf, len, "%.0f", d);
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static void format_range(const wl_param_spec *s, char *buf, size_t len)
{
    char lo[40], hi[40];
    switch (s->type) {
    case WL_PARAM_INT:
        snprintf(buf, len, "[%" PRId64 ", %" PRId64 "]", s->min_int,
                 s->max_int);
        break;
    case WL_PARAM_DOUBLE:
        format_double(s->min_double, lo, sizeof lo);
        format_double(s->max_double, hi, sizeof hi);
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
        format_double(s->def_double, buf, len);
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

/* ------------------------------------------------------------ parameters */

int wl_params_create(const wl_workload *w, wl_params **out)
{
    if (!w || !out)
        return EX_EINVAL;
    *out = NULL;
    wl_params *p = calloc(1, sizeof *p);
    if (!p)
        return EX_ENOMEM;
    p->w = w;
    p->v = calloc(w->nparams ? w->nparams : 1, sizeof *p->v);
    p->set = calloc(w->nparams ? w->nparams : 1, 1);
    if (!p->v || !p->set) {
        wl_params_destroy(p);
        return EX_ENOMEM;
    }
    for (size_t k = 0; k < w->nparams; k++) {
        const wl_param_spec *s = &w->params[k];
        p->v[k].i = s->def_int;
        p->v[k].d = s->def_double;
        if (s->type == WL_PARAM_STRING) {
            p->v[k].s = strdup(s->def_string ? s->def_string : "");
            if (!p->v[k].s) {
                wl_params_destroy(p);
                return EX_ENOMEM;
            }
        }
    }
    *out = p;
    return 0;
}

void wl_params_destroy(wl_params *p)
{
    if (!p)
        return;
    if (p->v)
        for (size_t k = 0; k < p->w->nparams; k++)
            free(p->v[k].s);
    free(p->v);
    free(p->set);
    free(p);
}

int wl_params_copy(const wl_params *src, wl_params **out)
{
    if (!src || !out)
        return EX_EINVAL;
    wl_params *p;
    int rc = wl_params_create(src->w, &p);
    if (rc)
        return rc;
    for (size_t k = 0; k < src->w->nparams; k++) {
        p->v[k].i = src->v[k].i;
        p->v[k].d = src->v[k].d;
        p->set[k] = src->set[k];
        if (src->v[k].s) {
            char *s = strdup(src->v[k].s);
            if (!s) {
                wl_params_destroy(p);
                return EX_ENOMEM;
            }
            free(p->v[k].s);
            p->v[k].s = s;
        }
    }
    *out = p;
    return 0;
}

const wl_workload *wl_params_workload(const wl_params *p)
{
    return p ? p->w : NULL;
}

/* The accepted names, for the "unknown parameter" message. */
static void accepted_names(const wl_workload *w, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < w->nparams && used < len; k++) {
        int n = snprintf(buf + used, len - used, "%s%s", k ? ", " : "",
                         w->params[k].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    if (w->nparams == 0)
        snprintf(buf, len, "none");
}

/* Integer with an optional k/M/G suffix (x 1024^n); 0 or -1. */
static int parse_int(const char *text, int64_t *out)
{
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || errno == ERANGE)
        return -1;
    int64_t mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024;
    else if (*end == 'm' || *end == 'M')
        mult = 1024 * 1024;
    else if (*end == 'g' || *end == 'G')
        mult = 1024 * 1024 * 1024;
    if (mult != 1)
        end++;
    if (*end != '\0')
        return -1;
    if (v > INT64_MAX / mult || v < INT64_MIN / mult)
        return -1;
    *out = (int64_t)v * mult;
    return 0;
}

int wl_params_set(wl_params *p, const char *key, const char *value,
                  char *err, size_t errlen)
{
    if (!p || !key || !value)
        return wl_errf(err, errlen, "parameter: missing key or value");
    ssize_t k = param_index(p->w, key);
    if (k < 0) {
        char names[512];
        accepted_names(p->w, names, sizeof names);
        return wl_errf(err, errlen,
                       "workload '%s': unknown parameter '%s' (accepted: %s)",
                       p->w->name, key, names);
    }
    const wl_param_spec *s = &p->w->params[k];
    switch (s->type) {
    case WL_PARAM_INT: {
        int64_t v;
        if (parse_int(value, &v) || v < s->min_int || v > s->max_int)
            return wl_errf(err, errlen,
                           "parameter '%s' must be an integer in [%" PRId64
                           ", %" PRId64 "], got '%s'",
                           key, s->min_int, s->max_int, value);
        p->v[k].i = v;
        break;
    }
    case WL_PARAM_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(value, &end);
        if (end == value || *end != '\0' || errno == ERANGE || !isfinite(v) ||
            v < s->min_double || v > s->max_double) {
            char lo[40], hi[40];
            format_double(s->min_double, lo, sizeof lo);
            format_double(s->max_double, hi, sizeof hi);
            return wl_errf(err, errlen,
                           "parameter '%s' must be a number in [%s, %s], "
                           "got '%s'",
                           key, lo, hi, value);
        }
        p->v[k].d = v;
        break;
    }
    case WL_PARAM_STRING: {
        size_t n = strlen(value);
        if ((int64_t)n < s->min_int || (int64_t)n > s->max_int)
            return wl_errf(err, errlen,
                           "parameter '%s' must be %" PRId64 " to %" PRId64
                           " characters long, got %zu",
                           key, s->min_int, s->max_int, n);
        char *copy = strdup(value);
        if (!copy)
            return EX_ENOMEM;
        free(p->v[k].s);
        p->v[k].s = copy;
        break;
    }
    }
    p->set[k] = 1;
    return 0;
}

int wl_params_set_kv(wl_params *p, const char *kv, char *err, size_t errlen)
{
    if (!p || !kv)
        return wl_errf(err, errlen, "parameter: missing key=value");
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return wl_errf(err, errlen,
                       "workload '%s': parameters are key=value, got '%s'",
                       p->w->name, kv);
    size_t klen = (size_t)(eq - kv);
    char key[128];
    if (klen >= sizeof key) {
        char names[512];
        accepted_names(p->w, names, sizeof names);
        return wl_errf(err, errlen,
                       "workload '%s': unknown parameter '%.*s...' "
                       "(accepted: %s)",
                       p->w->name, 32, kv, names);
    }
    memcpy(key, kv, klen);
    key[klen] = '\0';
    return wl_params_set(p, key, eq + 1, err, errlen);
}

int wl_params_validate(const wl_params *p, char *err, size_t errlen)
{
    if (!p)
        return wl_errf(err, errlen, "parameters: none given");
    if (p->w->ops && p->w->ops->validate)
        return p->w->ops->validate(p, err, errlen);
    return 0;
}

int wl_params_parse(const wl_workload *w, const char *const *kv, size_t n,
                    wl_params **out, char *err, size_t errlen)
{
    if (!out)
        return wl_errf(err, errlen, "parameters: no output");
    *out = NULL;
    if (!w)
        return wl_errf(err, errlen, "no workload given (known: %s)",
                       wl_names());
    wl_params *p;
    int rc = wl_params_create(w, &p);
    if (rc) {
        wl_errf(err, errlen, "out of memory");
        return rc;
    }
    for (size_t k = 0; k < n && !rc; k++)
        rc = wl_params_set_kv(p, kv[k], err, errlen);
    if (!rc)
        rc = wl_params_validate(p, err, errlen);
    if (rc) {
        wl_params_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

static ssize_t typed_index(const wl_params *p, const char *name,
                           wl_param_type t)
{
    if (!p || !name)
        return -1;
    ssize_t k = param_index(p->w, name);
    if (k < 0 || p->w->params[k].type != t)
        return -1;
    return k;
}

int64_t wl_params_int(const wl_params *p, const char *name)
{
    ssize_t k = typed_index(p, name, WL_PARAM_INT);
    return k < 0 ? 0 : p->v[k].i;
}

double wl_params_double(const wl_params *p, const char *name)
{
    ssize_t k = typed_index(p, name, WL_PARAM_DOUBLE);
    return k < 0 ? 0.0 : p->v[k].d;
}

const char *wl_params_string(const wl_params *p, const char *name)
{
    ssize_t k = typed_index(p, name, WL_PARAM_STRING);
    return k < 0 || !p->v[k].s ? "" : p->v[k].s;
}

int wl_params_is_set(const wl_params *p, const char *name)
{
    if (!p || !name)
        return 0;
    ssize_t k = param_index(p->w, name);
    return k >= 0 && p->set[k];
}

int wl_params_value_text(const wl_params *p, size_t index, char *buf,
                         size_t len)
{
    if (!p || !buf || !len || index >= p->w->nparams)
        return EX_EINVAL;
    int n = 0;
    switch (p->w->params[index].type) {
    case WL_PARAM_INT:
        n = snprintf(buf, len, "%" PRId64, p->v[index].i);
        break;
    case WL_PARAM_DOUBLE:
        format_double(p->v[index].d, buf, len);
        n = (int)strlen(buf);
        break;
    case WL_PARAM_STRING:
        n = snprintf(buf, len, "%s", p->v[index].s ? p->v[index].s : "");
        break;
    }
    return n < 0 || (size_t)n >= len ? EX_EINVAL : 0;
}

int wl_params_format(const wl_params *p, char *buf, size_t len)
{
    if (!p || !buf || !len)
        return EX_EINVAL;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < p->w->nparams; k++) {
        const wl_param_spec *s = &p->w->params[k];
        if (s->flags & WL_PARAM_INTERNAL)
            continue;
        char value[4200];
        if (wl_params_value_text(p, k, value, sizeof value))
            return EX_EINVAL;
        int n = snprintf(buf + used, len - used, "%s%s=%s", used ? "," : "",
                         s->name, value);
        if (n < 0 || (size_t)n >= len - used)
            return EX_EINVAL;
        used += (size_t)n;
    }
    return 0;
}

int wl_needs_server(const wl_params *p)
{
    if (!p || (p->w != &wl_http_workload && p->w != &wl_fetch_hash_workload))
        return 0;
    return wl_params_string(p, "url")[0] == '\0';
}

int wl_requires_isolation(const wl_params *p, char *why, size_t len)
{
    if (why && len)
        why[0] = '\0';
    if (!p || !p->w->ops || !p->w->ops->isolation)
        return 0;
    return p->w->ops->isolation(p, why, len);
}

/* ------------------------------------------------------------- instances */

int wl_prepare(const wl_workload *w, const wl_params *p, size_t ntasks,
               uint64_t seed, unsigned flags, wl_ctx **out, char *err,
               size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return wl_errf(err, errlen, "wl_prepare: no output");
    *out = NULL;
    if (!w || !p)
        return wl_errf(err, errlen, "wl_prepare: no workload or parameters");
    if (p->w != w)
        return wl_errf(err, errlen,
                       "wl_prepare: parameters are for workload '%s', not "
                       "'%s'",
                       p->w->name, w->name);
    int rc = wl_params_validate(p, err, errlen);
    if (rc)
        return rc;
    wl_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return wl_errf(err, errlen, "out of memory"), EX_ENOMEM;
    ctx->w = w;
    ctx->ntasks = ntasks;
    ctx->seed = seed;
    if (pthread_mutex_init(&ctx->lock, NULL)) {
        free(ctx);
        return wl_errf(err, errlen, "pthread_mutex_init failed"), EX_ESYS;
    }
    rc = wl_params_copy(p, &ctx->params);
    if (!rc) {
        ctx->inputs = calloc(ntasks ? ntasks : 1, sizeof *ctx->inputs);
        ctx->built = calloc(ntasks ? ntasks : 1, 1);
        if (!ctx->inputs || !ctx->built)
            rc = EX_ENOMEM;
    }
    if (rc) {
        wl_errf(err, errlen, "out of memory");
        wl_cleanup(ctx);
        return rc;
    }
    if (w->ops->setup) {
        rc = w->ops->setup(ctx, err, errlen);
        if (rc) {
            wl_cleanup(ctx);
            return rc;
        }
    }
    if (!(flags & WL_PREPARE_LAZY)) {
        for (size_t i = 0; i < ntasks; i++) {
            rc = w->ops->build(ctx, i, &ctx->inputs[i]);
            if (rc) {
                wl_errf(err, errlen,
                        "workload '%s': out of memory building input %zu of "
                        "%zu",
                        w->name, i, ntasks);
                wl_cleanup(ctx);
                return rc;
            }
            ctx->built[i] = 1;
        }
    }
    *out = ctx;
    return 0;
}

void wl_cleanup(wl_ctx *ctx)
{
    if (!ctx)
        return;
    if (ctx->w->ops->teardown)
        ctx->w->ops->teardown(ctx);
    if (ctx->inputs)
        for (size_t i = 0; i < ctx->ntasks; i++)
            ex_buf_free(&ctx->inputs[i]);
    free(ctx->inputs);
    free(ctx->built);
    wl_params_destroy(ctx->params);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

const wl_workload *wl_ctx_workload(const wl_ctx *ctx)
{
    return ctx ? ctx->w : NULL;
}

const wl_params *wl_ctx_params(const wl_ctx *ctx)
{
    return ctx ? ctx->params : NULL;
}

size_t wl_ntasks(const wl_ctx *ctx) { return ctx ? ctx->ntasks : 0; }

int wl_build_private(const wl_ctx *ctx, size_t i, ex_buf *in)
{
    return ctx->w->ops->build(ctx, i, in);
}

int wl_input(wl_ctx *ctx, size_t i, const void **in, size_t *len)
{
    if (!ctx || i >= ctx->ntasks)
        return EX_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&ctx->lock);
    if (!ctx->built[i]) {
        ex_buf b = {0};
        rc = ctx->w->ops->build(ctx, i, &b);
        if (rc)
            ex_buf_free(&b);
        else {
            ctx->inputs[i] = b;
            ctx->built[i] = 1;
        }
    }
    if (!rc) {
        /* A zero-length input still gets a valid pointer. */
        static const unsigned char empty[1];
        if (in)
            *in = ctx->inputs[i].data ? ctx->inputs[i].data : empty;
        if (len)
            *len = ctx->inputs[i].len;
    }
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

void wl_input_release(wl_ctx *ctx, size_t i)
{
    if (!ctx || i >= ctx->ntasks)
        return;
    pthread_mutex_lock(&ctx->lock);
    ex_buf_free(&ctx->inputs[i]);
    ctx->built[i] = 0;
    pthread_mutex_unlock(&ctx->lock);
}

int wl_map_get(void *ctx, size_t index, const void **in, size_t *len)
{
    return wl_input(ctx, index, in, len);
}

void wl_map_put(void *ctx, size_t index, const void *in, size_t len)
{
    (void)in;
    (void)len;
    wl_input_release(ctx, index);
}

ex_task_fn wl_task_fn(const wl_ctx *ctx)
{
    return ctx ? ctx->w->ops->stages[0] : NULL;
}

size_t wl_stage_count(const wl_ctx *ctx)
{
    if (!ctx)
        return 0;
    return ctx->w->ops->stages[1] ? 2 : 1;
}

ex_task_fn wl_stage_fn(const wl_ctx *ctx, size_t k)
{
    if (!ctx || k >= wl_stage_count(ctx))
        return NULL;
    return ctx->w->ops->stages[k];
}

int wl_check(const wl_ctx *ctx, size_t i, const void *out, size_t len,
             char *err, size_t errlen)
{
    if (!ctx || i >= ctx->ntasks)
        return wl_errf(err, errlen, "check: task index %zu out of range", i);
    if (!out && len)
        return wl_errf(err, errlen, "check: task %zu: no output", i);
    if (!ctx->w->ops->check)
        return 0;
    static const unsigned char empty[1];
    return ctx->w->ops->check(ctx, i, out ? out : empty, len, err, errlen);
}

wl_fault wl_expected_fault(const wl_ctx *ctx, size_t i)
{
    if (!ctx || i >= ctx->ntasks || !ctx->w->ops->fault)
        return WL_FAULT_NONE;
    return ctx->w->ops->fault(ctx, i);
}

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
