/*
 * cli.c: strict option-value parsing shared by every subcommand.  A value
 * is accepted only if all of it parses and it lies in range; otherwise one
 * line names the option, the accepted range and what was given.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pb_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "poolbench %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return PB_EXIT_USAGE;
}

bool pb_parse_u64(const char *cmd, const char *opt, const char *text,
                  uint64_t min, uint64_t max, bool allow_suffix, uint64_t *out)
{
    const char *p = text ? text : "";
    char *end = NULL;
    errno = 0;
    unsigned long long v = 0;
    bool ok = *p >= '0' && *p <= '9';
    if (ok) {
        v = strtoull(p, &end, 10);
        ok = errno == 0;
    }
    if (ok && allow_suffix && *end) {
        unsigned shift = *end == 'k' || *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
        if (shift && v <= (UINT64_MAX >> shift)) {
            v <<= shift;
            end++;
        }
    }
    if (!ok || *end || v < min || v > max) {
        pb_usage_error(cmd, "%s must be an integer in [%" PRIu64 ", %" PRIu64 "]%s, got '%s'",
                       opt, min, max, allow_suffix ? " (k/M/G suffixes allowed)" : "", p);
        return false;
    }
    *out = v;
    return true;
}

bool pb_parse_unsigned(const char *cmd, const char *opt, const char *text,
                       unsigned min, unsigned max, bool allow_suffix, unsigned *out)
{
    uint64_t v;
    if (!pb_parse_u64(cmd, opt, text, min, max, allow_suffix, &v))
        return false;
    *out = (unsigned)v;
    return true;
}

bool pb_parse_size(const char *cmd, const char *opt, const char *text,
                   size_t min, size_t max, bool allow_suffix, size_t *out)
{
    uint64_t v;
    if (!pb_parse_u64(cmd, opt, text, min, max, allow_suffix, &v))
        return false;
    *out = (size_t)v;
    return true;
}

bool pb_parse_double(const char *cmd, const char *opt, const char *text,
                     double min, double max, double *out)
{
    const char *p = text ? text : "";
    char *end = NULL;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || *end || errno || !isfinite(v) || v < min || v > max) {
        pb_usage_error(cmd, "%s must be a number in [%g, %g], got '%s'", opt, min, max, p);
        return false;
    }
    *out = v;
    return true;
}

/* A whole number with an optional k/M/G suffix at *p, moving *p past it:
 * false when there is no digit or it overflows. */
static bool scan_u64(const char **p, bool suffixes, uint64_t *out)
{
    char *end;
    if (**p < '0' || **p > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(*p, &end, 10);
    if (errno)
        return false;
    unsigned shift = !suffixes ? 0 : *end == 'k' || *end == 'K' ? 10 : *end == 'M' ? 20
                   : *end == 'G' ? 30 : 0;
    if (shift) {
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
        end++;
    }
    *p = end;
    *out = v;
    return true;
}

/* One item of a list: N, or with ranges A-B or A-BxF.  *a, *b, *f (0 for
 * consecutive values) describe it; false when it is malformed or out of
 * the rule's range. */
static bool scan_item(const char *item, const pb_list_rule *r, uint64_t *a, uint64_t *b,
                      uint64_t *f)
{
    const char *p = item;
    *f = 0;
    if (!scan_u64(&p, r->suffixes, a))
        return false;
    *b = *a;
    if (r->ranges && *p == '-') {
        p++;
        if (!scan_u64(&p, r->suffixes, b))
            return false;
        if (*p == 'x') {
            p++;
            if (!scan_u64(&p, false, f) || *f < 2)
                return false;
        }
    }
    return *p == 0 && *a >= r->min && *a <= *b && *b <= r->max;
}

static int list_item_error(const char *cmd, const char *opt, const char *item,
                           const pb_list_rule *r)
{
    const char *sfx = r->suffixes ? " (k/M/G suffixes allowed)" : "";
    if (r->ranges)
        return pb_usage_error(cmd, "%s item '%s' is not N, A-B or A-BxF with %" PRIu64
                              " <= A <= B <= %" PRIu64 " and F >= 2%s (e.g. 1,2,4 or 1-8 or 1-64x2)",
                              opt, item, r->min, r->max, sfx);
    return pb_usage_error(cmd, "%s item '%s' is not an integer in [%" PRIu64 ", %" PRIu64 "]%s",
                          opt, item, r->min, r->max, sfx);
}

int pb_parse_u64_list(const char *cmd, const char *opt, const char *text,
                      const pb_list_rule *rule, uint64_t *out, size_t *n)
{
    char buf[512];
    if (strlen(text) >= sizeof buf)
        return pb_usage_error(cmd, "%s is too long (at most %zu characters)", opt, sizeof buf - 1);
    strcpy(buf, text);
    *n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint64_t a, b, f;
        if (!scan_item(tok, rule, &a, &b, &f))
            return list_item_error(cmd, opt, tok, rule);
        for (uint64_t v = a;;) {
            if (*n == rule->cap)
                return pb_usage_error(cmd, "%s lists at most %zu values", opt, rule->cap);
            out[(*n)++] = v;
            /* The next value, unless it would pass b (or overflow). */
            if (f ? v > b / f : v >= b)
                break;
            v = f ? v * f : v + 1;
            if (v > b)
                break;
        }
    }
    return *n ? 0 : pb_usage_error(cmd, "%s is empty", opt);
}

void pb_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

bool pb_progress_enabled(void)
{
    return isatty(STDERR_FILENO) && !getenv("POOLBENCH_NO_PROGRESS");
}
