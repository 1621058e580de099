/*
 * calibrate_out.c - what `poolbench calibrate` prints: the JSON document
 * (schema_version 1, documented in results/README.md) and the table for a
 * reader on stderr.
 */
#include "calibrate.h"

#include "executor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ output */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* ns values with 0.1 ns resolution; ratios (cv, ci_level) with 4 digits. */
static void json_number(FILE *f, double v, int ratio)
{
    if (!isfinite(v))
        fputs("null", f);
    else if (ratio)
        fprintf(f, "%.4g", v);
    else
        fprintf(f, "%.1f", v);
}

int pb_cal_write_json(FILE *f, const pb_cal_options *opt,
                      const pb_cal_result *results, size_t n)
{
    char host[256] = "unknown";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = 0;
    char stamp[32] = "";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    long npus = sysconf(_SC_NPROCESSORS_ONLN);

    fprintf(f, "{\n  \"schema_version\": %d,\n  \"kind\": \"poolbench-calibrate\",\n",
            PB_CAL_SCHEMA_VERSION);
    fputs("  \"hostname\": ", f);
    json_string(f, host);
    fputs(",\n  \"timestamp_utc\": ", f);
    json_string(f, stamp);
    fprintf(f, ",\n  \"poolbench_version\": \"%s\",\n  \"online_cpus\": %ld,\n"
            "  \"quick\": %s,\n  \"cpus\": ", EX_VERSION, npus,
            opt && opt->quick ? "true" : "false");
    json_string(f, opt && opt->cpus ? opt->cpus : "");
    fputs(",\n", f);
    fputs("  \"measures\": [", f);
    for (size_t i = 0; i < n; i++) {
        const pb_cal_result *r = &results[i];
        fputs(i ? ",\n    {" : "\n    {", f);
        fputs("\"name\": ", f);
        json_string(f, r->name);
        fputs(", \"unit\": \"ns\", \"skipped\": ", f);
        fputs(r->skipped ? "true" : "false", f);
        const struct { const char *k; double v; int ratio; } nums[] = {
            {"median", r->s.median, 0}, {"p5", r->s.p5, 0},
            {"p95", r->s.p95, 0},       {"min", r->s.min, 0},
            {"max", r->s.max, 0},       {"mean", r->s.mean, 0},
            {"stddev", r->s.stddev, 0}, {"cv", r->s.cv, 1},
            {"ci_low", r->s.ci_low, 0}, {"ci_high", r->s.ci_high, 0},
            {"ci_level", r->s.ci_level, 1},
        };
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
            fprintf(f, ", \"%s\": ", nums[k].k);
            if (r->skipped)
                fputs("null", f);
            else
                json_number(f, nums[k].v, nums[k].ratio);
        }
        fprintf(f, ", \"noutliers\": %zu, \"reps\": %u, \"iters\": %u, \"bytes\": %zu",
                r->skipped ? (size_t)0 : r->s.noutliers, r->reps, r->iters, r->bytes);
        fputs(", \"pinning\": ", f);
        json_string(f, r->pinning);
        fputs(", \"what\": ", f);
        json_string(f, r->what);
        fputs(", \"note\": ", f);
        json_string(f, r->note);
        fputc('}', f);
    }
    fputs("\n  ]\n}\n", f);
    if (fflush(f) != 0 || ferror(f))
        return -EIO;
    return 0;
}

static const char *fmt_ns(double ns, char *buf, size_t len)
{
    if (!isfinite(ns))
        snprintf(buf, len, "-");
    else if (fabs(ns) < 1e3)
        snprintf(buf, len, "%.0f ns", ns);
    else if (fabs(ns) < 1e6)
        snprintf(buf, len, "%.2f us", ns / 1e3);
    else
        snprintf(buf, len, "%.2f ms", ns / 1e6);
    return buf;
}

void pb_cal_write_table(FILE *f, const pb_cal_result *results, size_t n)
{
    fprintf(f, "%-24s %10s %10s %10s %10s %5s %6s  %s\n", "measure", "median",
            "p5", "p95", "min", "reps", "iters", "pinning");
    for (size_t i = 0; i < n; i++) {
        const pb_cal_result *r = &results[i];
        char a[32], b[32], c[32], d[32];
        if (r->skipped) {
            fprintf(f, "%-24s %10s %10s %10s %10s %5s %6s  %s\n", r->name, "-",
                    "-", "-", "-", "-", "-", r->note);
            continue;
        }
        char bw[32] = "";
        if (r->bytes && r->s.median > 0)
            snprintf(bw, sizeof bw, " (%.2f GB/s)", (double)r->bytes / r->s.median);
        fprintf(f, "%-24s %10s %10s %10s %10s %5u %6u  %s%s\n", r->name,
                fmt_ns(r->s.median, a, sizeof a), fmt_ns(r->s.p5, b, sizeof b),
                fmt_ns(r->s.p95, c, sizeof c), fmt_ns(r->s.min, d, sizeof d),
                r->reps, r->iters, r->pinning, bw);
    }
    for (size_t i = 0; i < n; i++)
        if (!results[i].skipped && results[i].note[0])
            fprintf(f, "note: %s: %s\n", results[i].name, results[i].note);
}
