/*
 * calibrate_out.c - what `poolbench calibrate` prints: the JSON document
 * (schema_version 1, documented in results/README.md) and the table for a
 * reader on stderr.
 */
#include "calibrate.h"
#include "json.h"

#include "executor.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* ns values with 0.1 ns resolution; ratios (cv, ci_level) with 4 digits;
 * all null when the measure was skipped. */
static int json_measure_stats(json_t *m, const pb_cal_result *r)
{
    const struct { const char *k; double v; int ratio; } nums[] = {
        {"median", r->s.median, 0}, {"p5", r->s.p5, 0},
        {"p95", r->s.p95, 0},       {"min", r->s.min, 0},
        {"max", r->s.max, 0},       {"mean", r->s.mean, 0},
        {"stddev", r->s.stddev, 0}, {"cv", r->s.cv, 1},
        {"ci_low", r->s.ci_low, 0}, {"ci_high", r->s.ci_high, 0},
        {"ci_level", r->s.ci_level, 1},
    };
    int rc = 0;
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
        rc |= r->skipped ? pb_json_null(m, nums[k].k)
                         : pb_json_num(m, nums[k].k, nums[k].v, nums[k].ratio ? "%.4g" : "%.1f");
    return rc;
}

static json_t *json_measure(const pb_cal_result *r)
{
    json_t *m = json_object();
    if (!m)
        return NULL;
    int rc = pb_json_str(m, "name", r->name);
    rc |= pb_json_str(m, "unit", "ns");
    rc |= pb_json_bool(m, "skipped", r->skipped);
    rc |= json_measure_stats(m, r);
    rc |= pb_json_int(m, "noutliers", r->skipped ? 0 : (long long)r->s.noutliers);
    rc |= pb_json_int(m, "reps", r->reps);
    rc |= pb_json_int(m, "iters", r->iters);
    rc |= pb_json_int(m, "bytes", (long long)r->bytes);
    rc |= pb_json_str(m, "pinning", r->pinning);
    rc |= pb_json_str(m, "what", r->what);
    rc |= pb_json_str(m, "note", r->note);
    if (rc) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* The document's head: schema, machine, time, options. */
static int json_head(json_t *doc, const pb_cal_options *opt)
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
    int rc = pb_json_int(doc, "schema_version", PB_CAL_SCHEMA_VERSION);
    rc |= pb_json_str(doc, "kind", "poolbench-calibrate");
    rc |= pb_json_str(doc, "hostname", host);
    rc |= pb_json_str(doc, "timestamp_utc", stamp);
    rc |= pb_json_str(doc, "poolbench_version", EX_VERSION);
    rc |= pb_json_int(doc, "online_cpus", sysconf(_SC_NPROCESSORS_ONLN));
    rc |= pb_json_bool(doc, "quick", opt && opt->quick);
    rc |= pb_json_str(doc, "cpus", opt && opt->cpus ? opt->cpus : "");
    return rc;
}

int pb_cal_write_json(FILE *f, const pb_cal_options *opt,
                      const pb_cal_result *results, size_t n)
{
    json_t *doc = json_object(), *measures = json_array();
    int rc = doc && measures ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = json_array_append_new(measures, json_measure(&results[i]));
    if (rc == 0) {
        rc = json_head(doc, opt) | pb_json_set(doc, "measures", measures);
        measures = NULL; /* doc holds it now, or it is gone */
    }
    if (rc == 0)
        rc = pb_json_dump(f, doc, 2);
    json_decref(measures);
    json_decref(doc);
    if (rc != 0 || fflush(f) != 0 || ferror(f))
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
