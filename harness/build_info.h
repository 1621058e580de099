/*
 * build_info.h - what kind of build this poolbench binary is, as the
 * compiler saw it: optimised or not, and which sanitizer.  Every runs.csv
 * row carries it (a -O0 or sanitizer build measures the instrumentation,
 * not the pool), machine.json records it, and compare.py refuses to
 * compare runs of different kinds.
 */
#ifndef PB_BUILD_INFO_H
#define PB_BUILD_INFO_H

#include <stdbool.h>

/* "optimized", "unoptimized", with "+address", "+thread" or
 * "+undefined" appended for a sanitizer build.  Static storage; does not
 * block. */
const char *pb_build_kind(void);

/* Whether runs of this binary measure the code and not instrumentation:
 * optimised and without a sanitizer. */
bool pb_build_is_release(void);

#endif /* PB_BUILD_INFO_H */
