/*
 * map_bounded.c: a map over inputs with a bounded queue, the example of
 * poolbench's README.  Counts the words of each line of its input (or of
 * a built-in text) on a pool of worker processes (or threads with
 * `threads`), at most 8 tasks waiting at a time: a producer faster than
 * the pool blocks instead of filling memory.  Results come back in input
 * order.
 *
 *   cc map_bounded.c $(pkg-config --cflags --libs poolbench-executors)
 *   ./a.out [threads|procs] < some.txt
 */
#include <poolbench/executor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The task: bytes in, the word count out (as text). */
static int count_words(const void *in, size_t len, ex_buf *out)
{
    const char *p = in;
    size_t words = 0;
    for (size_t i = 0; i < len; i++)
        words += (p[i] != ' ' && p[i] != '\t') && (i == 0 || p[i - 1] == ' ' || p[i - 1] == '\t');
    char text[32];
    int n = snprintf(text, sizeof text, "%zu", words);
    return ex_buf_append(out, text, (size_t)n) == 0 ? 0 : 1;
}

static const char *const builtin[] = {
    "the pool runs every task",
    "a bounded queue blocks the producer",
    "results come back in input order",
};

int main(int argc, char **argv)
{
    ex_kind kind = EX_PROCS;
    if (argc > 1 && ex_kind_parse(argv[1], &kind) != 0) {
        fprintf(stderr, "usage: %s [seq|threads|procs] < lines\n", argv[0]);
        return 2;
    }
    /* The inputs: stdin's lines, or the built-in ones on a terminal. */
    const char *lines[1024];
    size_t lens[1024], n = 0;
    char buf[4096];
    while (n < 1024 && !isatty(STDIN_FILENO) && fgets(buf, sizeof buf, stdin)) {
        buf[strcspn(buf, "\n")] = 0;
        lines[n] = strdup(buf);
        lens[n] = strlen(buf);
        n++;
    }
    for (size_t i = 0; n == 0 && i < 3; i++, n = i) {
        lines[i] = strdup(builtin[i]);
        lens[i] = strlen(builtin[i]);
    }

    ex_config cfg;
    ex_config_init(&cfg, kind);
    cfg.max_workers = 2;
    cfg.queue_capacity = 8;           /* at most 8 tasks waiting */
    cfg.on_full = EX_ON_FULL_BLOCK;   /* a full queue blocks the producer */
    ex_executor *ex;
    int rc = ex_create(&cfg, &ex);
    if (rc) {
        fprintf(stderr, "ex_create: %s\n", ex_strerror(rc));
        return 1;
    }
    ex_map *m = NULL;
    rc = ex_map_create_array(ex, count_words, (const void *const *)lines, lens, n, 1, 16, &m);
    size_t index, total = 0;
    int status, code;
    const void *out;
    size_t len;
    while (rc == 0 && ex_map_next(m, &index, &status, &code, &out, &len, EX_FOREVER) == 0) {
        if (status) {
            fprintf(stderr, "line %zu: %s\n", index + 1, ex_strerror(status));
            rc = 1;
            continue;
        }
        char words[32];
        snprintf(words, sizeof words, "%.*s", (int)len, (const char *)out);
        printf("%zu: %s words\n", index + 1, words);
        total += strtoul(words, NULL, 10);
    }
    if (m)
        ex_map_destroy(m);
    ex_destroy(ex);
    printf("%zu words in %zu lines on %s\n", total, n, ex_kind_name(kind));
    for (size_t i = 0; i < n; i++)
        free((void *)lines[i]);
    return rc ? 1 : 0;
}
