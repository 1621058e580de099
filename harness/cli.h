/*
 * cli.h: what the subcommands share: strict number parsing with one clear
 * message per bad value, and the usage-error convention (exit status 2).
 */
#ifndef POOLBENCH_CLI_H
#define POOLBENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_EXIT_USAGE 2

/* Prints "poolbench CMD: message" on stderr; returns PB_EXIT_USAGE. */
int pb_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal integer in [min, max] (k/M/G suffixes with
 * allow_suffix, x 1024^n).  On error prints "poolbench CMD: OPT must be an
 * integer in [min, max], got 'text'" and returns false. */
bool pb_parse_u64(const char *cmd, const char *opt, const char *text,
                  uint64_t min, uint64_t max, bool allow_suffix, uint64_t *out);
/* pb_parse_u64 for the common destinations: max must fit the type. */
bool pb_parse_unsigned(const char *cmd, const char *opt, const char *text,
                       unsigned min, unsigned max, bool allow_suffix, unsigned *out);
bool pb_parse_size(const char *cmd, const char *opt, const char *text,
                   size_t min, size_t max, bool allow_suffix, size_t *out);
bool pb_parse_double(const char *cmd, const char *opt, const char *text,
                     double min, double max, double *out);

/* What pb_parse_u64_list accepts: values in [min, max]; with suffixes
 * k/M/G (x 1024^n); with ranges also A-B (every value from A to B) and
 * A-BxF (A, A*F, A*F^2, ... up to B, F >= 2); at most cap values. */
typedef struct pb_list_rule {
    uint64_t min, max;
    bool suffixes;
    bool ranges;
    size_t cap;
} pb_list_rule;

/* Parses a comma-separated list (e.g. "1,2,4", "1-8", "1-64x2", "64,4k,1M")
 * into out[0..*n).  0, or PB_EXIT_USAGE after one message on stderr that
 * names the option, the bad item and what is accepted. */
int pb_parse_u64_list(const char *cmd, const char *opt, const char *text,
                      const pb_list_rule *rule, uint64_t *out, size_t *n);

/* Formats a one-line message into err (nothing if err is NULL or errlen
 * is 0). */
void pb_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether progress lines should be drawn (stderr is a terminal and
 * POOLBENCH_NO_PROGRESS is unset). */
bool pb_progress_enabled(void);

#endif
