/*
 * build_info.c - the build kind (see build_info.h), from the compiler's own
 * macros: __OPTIMIZE__ is defined at -O1 and above; GCC defines
 * __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__ (clang answers through
 * __has_feature), and the Makefile defines PB_SANITIZE for `make
 * SANITIZE=...`, which also covers UBSan, the one without a macro.
 */
#include "build_info.h"

#include <string.h>

#ifdef __OPTIMIZE__
#define PB_OPT "optimized"
#else
#define PB_OPT "unoptimized"
#endif

#if !defined(__SANITIZE_ADDRESS__) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#if !defined(__SANITIZE_THREAD__) && defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define __SANITIZE_THREAD__ 1
#endif
#endif

#if defined(PB_SANITIZE)
#define PB_KIND PB_OPT "+" PB_SANITIZE
#elif defined(__SANITIZE_ADDRESS__)
#define PB_KIND PB_OPT "+address"
#elif defined(__SANITIZE_THREAD__)
#define PB_KIND PB_OPT "+thread"
#else
#define PB_KIND PB_OPT
#endif

const char *pb_build_kind(void)
{
    return PB_KIND;
}

bool pb_build_is_release(void)
{
    return strcmp(PB_KIND, "optimized") == 0;
}
