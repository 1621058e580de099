/*
 * capture.h: runs a subcommand's main function with its stdout and stderr
 * captured, and counts message lines, for the CLI tests.  Include after
 * <cmocka.h> (it asserts with cmocka).
 */
#ifndef POOLBENCH_CAPTURE_H
#define POOLBENCH_CAPTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* fn(argc, argv) with stdout into out and stderr into err (both
 * NUL-terminated, truncated to their sizes); returns fn's status. */
static inline int capture_main(int (*fn)(int, char **), int argc, char **argv, char *out,
                               size_t outlen, char *err, size_t errlen)
{
    char p1[] = "/tmp/pb_test_out_XXXXXX", p2[] = "/tmp/pb_test_err_XXXXXX";
    int fo = mkstemp(p1), fe = mkstemp(p2);
    assert_true(fo >= 0 && fe >= 0);
    unlink(p1);
    unlink(p2);
    fflush(stdout);
    fflush(stderr);
    int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO);
    assert_true(so >= 0 && se >= 0);
    assert_true(dup2(fo, STDOUT_FILENO) >= 0 && dup2(fe, STDERR_FILENO) >= 0);
    int rc = fn(argc, argv);
    fflush(stdout);
    fflush(stderr);
    assert_true(dup2(so, STDOUT_FILENO) >= 0 && dup2(se, STDERR_FILENO) >= 0);
    close(so);
    close(se);
    int fds[2] = {fo, fe};
    char *bufs[2] = {out, err};
    size_t lens[2] = {outlen, errlen};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(lseek(fds[i], 0, SEEK_SET), 0);
        ssize_t r = read(fds[i], bufs[i], lens[i] - 1);
        bufs[i][r > 0 ? r : 0] = 0;
        close(fds[i]);
    }
    return rc;
}

/* Lines of s that start with prefix. */
static inline size_t count_prefixed_lines(const char *s, const char *prefix)
{
    size_t n = 0;
    for (const char *line = s; *line;) {
        n += strncmp(line, prefix, strlen(prefix)) == 0;
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return n;
}

#endif
