/*
 * params.c: a workload's typed parameters: parse, validate, read, format,
 * and what they imply for the harness (a server, isolation).
 */
#include "wl_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void wl_format_double(double d, char *buf, size_t len)
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
            wl_format_double(s->min_double, lo, sizeof lo);
            wl_format_double(s->max_double, hi, sizeof hi);
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
        wl_format_double(p->v[index].d, buf, len);
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

int wl_requires_shared_memory(const wl_params *p, char *why, size_t len)
{
    if (why && len)
        why[0] = '\0';
    if (!p || !p->w->ops || !p->w->ops->shared_memory)
        return 0;
    if (why && len)
        snprintf(why, len, "workload '%s' reads state prepared in this process's memory: "
                 "it needs workers that share it (--executor seq, threads or procs)",
                 p->w->name);
    return 1;
}
