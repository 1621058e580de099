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

void pb_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int pb_opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != 0)
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *val = argv[++*i];
    return 1;
}

bool pb_progress_enabled(void)
{
    return isatty(STDERR_FILENO) && !getenv("POOLBENCH_NO_PROGRESS");
}
