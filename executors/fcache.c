/*
 * fcache.c: where futures live.  Each executor has a cache of slabs: 1 MiB
 * mappings, aligned to their size, whose first 64 bytes name the cache and
 * whose rest is cut into futures.  A future finds its cache from its own
 * address, so it carries no pointer to it, and a future may outlive its
 * executor: the cache counts the futures it handed out and goes once the
 * executor has closed it and the last of them came back.
 *
 * Handing out (ex__fcache_get, under `lock`, which only allocating threads
 * take): from the private free list `local`; when that is empty, the whole
 * `returned` stack at once; when that is empty too, the next future cut
 * from the slabs in address order.  Giving back (ex__fcache_put) pushes on
 * `returned` with a compare-and-swap from any thread: releasing never
 * waits for an allocator, and only a whole-stack exchange ever pops, so
 * the push has no ABA problem.
 *
 * No cap and no cliff: released futures are reused however many were out
 * at once.  When a future is asked for while none is out (a quiet point:
 * every task of the last round was released), the free lists are dropped
 * and cutting starts again from the first slab, so the next round gets its futures in address order (what
 * the prefetcher likes, and the one future of a submit-wait loop stays in
 * the same cache lines), and the slabs past the first EX_SLAB_KEEP are
 * handed back to the kernel lazily (MADV_FREE: their pages stay until the
 * kernel needs memory, and cost nothing to reuse before).
 *
 * The cache also tells a future's executor's gauges (ex_internal.h) to
 * whoever cancels it: a cancel knows only the future.
 *
 * Sanitizers: a free future is poisoned for ASan and freed in a valgrind
 * mempool (but for its link word), so a use after release is reported as
 * it would be with malloc; under ASan the slabs are LSan root regions, so
 * what futures point to is not reported as leaked.
 */
#include "ex_internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define EX_HAVE_VALGRIND 1
#endif
#if defined(__SANITIZE_ADDRESS__) && __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#define EX_HAVE_ASAN 1
#endif
#endif

#define SLAB_BYTES ((size_t)1 << 20)
#define SLAB_HEADER ((size_t)64)
#define SLAB_FUTURES ((SLAB_BYTES - SLAB_HEADER) / sizeof(ex_future))
/* Slabs that stay resident at a quiet point (about 18,700 futures). */
#define EX_SLAB_KEEP 2
/* Taken from `balance` while the executor has not closed the cache. */
#define OPEN_BIAS ((size_t)1 << (sizeof(size_t) * 8 - 2))

/* The layout of ex_internal.h, on 64-bit targets. */
_Static_assert(sizeof(void *) != 8 || sizeof(ex_future) == 112, "the future's layout");

typedef struct slab {
    ex_fcache *cache;
    struct slab *next;  /* in mapping order */
    bool advised;       /* handed back with MADV_FREE, not cut from since */
} slab;

_Static_assert(sizeof(slab) <= SLAB_HEADER, "slab header");

/* Counting without a read-modify-write per future handed out: `handed`
 * (under lock) counts them out, `balance` (atomic, written by releasing
 * threads) counts them back, starting at -OPEN_BIAS; closing adds
 * OPEN_BIAS - handed.  So balance reaches 0 exactly once: when the cache
 * is closed and every future is back, and whoever brings it there (the
 * last release, or the close) frees the cache. */
struct ex_fcache {
    pthread_mutex_t lock;  /* allocating threads */
    ex_future *local;      /* free list, through next, under lock */
    slab *first, *cur;     /* every slab, in mapping order; the one cut */
    size_t cut;            /* futures cut from cur */
    size_t handed;         /* futures handed out, ever */
    int64_t spin_ns;
    /* The executor's gauges while it lives (read by a cancel). */
    _Atomic(struct ex__gauges *) gauges;
    /* Both written by releasing threads. */
    _Alignas(64) _Atomic(ex_future *) returned; /* through next */
    atomic_size_t balance; /* futures back - OPEN_BIAS (+ see above) */
};

static slab *slab_of(const ex_future *f)
{
    return (slab *)((uintptr_t)f & ~(uintptr_t)(SLAB_BYTES - 1));
}

static ex_future *slab_future(slab *s, size_t i)
{
    return (ex_future *)((char *)s + SLAB_HEADER) + i;
}

/* ------------------------------------------------- sanitizer annotations */

/* Everything but the link word (next) becomes inaccessible. */
static void mark_free(ex_fcache *c, ex_future *f)
{
    (void)c;
#ifdef EX_HAVE_VALGRIND
    VALGRIND_MEMPOOL_FREE(c, f);
    VALGRIND_MAKE_MEM_DEFINED(&f->next, sizeof f->next);
#endif
#ifdef EX_HAVE_ASAN
    size_t link = offsetof(ex_future, next);
    ASAN_POISON_MEMORY_REGION(f, link);
    ASAN_POISON_MEMORY_REGION((char *)f + link + sizeof f->next,
                              sizeof *f - link - sizeof f->next);
#endif
}

static void mark_used(ex_fcache *c, ex_future *f)
{
    (void)c;
    (void)f;
#ifdef EX_HAVE_VALGRIND
    VALGRIND_MEMPOOL_ALLOC(c, f, sizeof *f);
#endif
#ifdef EX_HAVE_ASAN
    ASAN_UNPOISON_MEMORY_REGION(f, sizeof *f);
#endif
}

/* ------------------------------------------------------------ the slabs */

/* A new slab, aligned to its size: twice the size mapped, the excess on
 * either side unmapped. */
static slab *slab_map(ex_fcache *c)
{
    char *p = mmap(NULL, 2 * SLAB_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *s = (char *)(((uintptr_t)p + SLAB_BYTES - 1) & ~(uintptr_t)(SLAB_BYTES - 1));
    if (s > p)
        munmap(p, (size_t)(s - p));
    if (s + SLAB_BYTES < p + 2 * SLAB_BYTES)
        munmap(s + SLAB_BYTES, (size_t)(p + 2 * SLAB_BYTES - (s + SLAB_BYTES)));
    slab *sl = (slab *)s;
    sl->cache = c;
    sl->next = NULL;
    sl->advised = false;
#ifdef EX_HAVE_VALGRIND
    VALGRIND_MAKE_MEM_NOACCESS(s + SLAB_HEADER, SLAB_BYTES - SLAB_HEADER);
#endif
#ifdef EX_HAVE_ASAN
    __lsan_register_root_region(s, SLAB_BYTES);
#endif
    return sl;
}

static void slab_unmap(slab *s)
{
#ifdef EX_HAVE_ASAN
    ASAN_UNPOISON_MEMORY_REGION(s, SLAB_BYTES);
    __lsan_unregister_root_region(s, SLAB_BYTES);
#endif
    munmap(s, SLAB_BYTES);
}

/* Hands a slab's pages back to the kernel lazily, all but the first (its
 * header; the futures there are few).  Nothing in them is read again
 * before it is cut anew and initialised. */
static void slab_advise(slab *s)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t skip = page > 0 ? (size_t)page : 4096;
    char *p = (char *)s + skip;
#ifdef MADV_FREE
    if (madvise(p, SLAB_BYTES - skip, MADV_FREE) == 0) {
        s->advised = true;
        return;
    }
#endif
    if (madvise(p, SLAB_BYTES - skip, MADV_DONTNEED) == 0)
        s->advised = true;
}

/* The next future in address order: from cur, then the slabs after it,
 * then a new slab.  Under lock; NULL when no slab can be mapped. */
static ex_future *cut_next(ex_fcache *c)
{
    if (!c->cur || c->cut == SLAB_FUTURES) {
        slab *next = c->cur ? c->cur->next : c->first;
        if (!next) {
            if (!(next = slab_map(c)))
                return NULL;
            if (c->cur)
                c->cur->next = next;
            else
                c->first = next;
        }
        next->advised = false;
        c->cur = next;
        c->cut = 0;
    }
    /* The next ones are written soon: start fetching their lines. */
    if (c->cut + 2 < SLAB_FUTURES) {
        char *ahead = (char *)slab_future(c->cur, c->cut + 2);
        __builtin_prefetch(ahead, 1);
        __builtin_prefetch(ahead + sizeof(ex_future) - 1, 1);
    }
    return slab_future(c->cur, c->cut++);
}

/* Nothing is out (under lock): drop the free lists, cut from the first
 * slab again, and hand back the pages of the slabs past EX_SLAB_KEEP that
 * were used since the last quiet point: cutting goes in order, so those
 * are the ones up to cur. */
static void quiet_reset(ex_fcache *c)
{
    if (!c->cur)
        return;
    c->local = NULL;
    atomic_store_explicit(&c->returned, NULL, memory_order_relaxed);
    unsigned i = 0;
    for (slab *s = c->first;; s = s->next, i++) {
        if (i >= EX_SLAB_KEEP && !s->advised)
            slab_advise(s);
        if (s == c->cur)
            break;
    }
    c->cur = NULL;
    c->cut = 0;
}

/* --------------------------------------------------------------- the API */

ex_fcache *ex__fcache_new(int64_t spin_ns)
{
    ex_fcache *c = aligned_alloc(64, (sizeof *c + 63) / 64 * 64);
    if (!c)
        return NULL;
    c->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    c->local = NULL;
    c->first = c->cur = NULL;
    c->cut = 0;
    c->handed = 0;
    c->spin_ns = spin_ns;
    atomic_init(&c->gauges, NULL);
    atomic_init(&c->returned, NULL);
    atomic_init(&c->balance, (size_t)0 - OPEN_BIAS);
#ifdef EX_HAVE_VALGRIND
    VALGRIND_CREATE_MEMPOOL(c, 0, 0);
#endif
    return c;
}

static void cache_free(ex_fcache *c)
{
    slab *s = c->first;
    while (s) {
        slab *next = s->next;
        slab_unmap(s);
        s = next;
    }
#ifdef EX_HAVE_VALGRIND
    VALGRIND_DESTROY_MEMPOOL(c);
#endif
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void ex__fcache_close(ex_fcache *c)
{
    if (!c)
        return;
    /* No future is handed out any more (the executor is gone). */
    pthread_mutex_lock(&c->lock);
    size_t add = OPEN_BIAS - c->handed;
    pthread_mutex_unlock(&c->lock);
    if (atomic_fetch_add_explicit(&c->balance, add, memory_order_acq_rel) + add == 0)
        cache_free(c);
}

/* The private list first, then whatever was given back meanwhile (the
 * exchange only when there is something: it is a full barrier). */
static ex_future *take_free(ex_fcache *c)
{
    ex_future *f = c->local;
    if (!f && atomic_load_explicit(&c->returned, memory_order_relaxed))
        f = atomic_exchange_explicit(&c->returned, NULL, memory_order_acquire);
    if (f)
        c->local = f->next;
    return f;
}

ex_future *ex__fcache_get(ex_fcache *c)
{
    pthread_mutex_lock(&c->lock);
    /* Acquire: every push of a future given back came before its count
     * went up, so when all are counted back the lists hold them all. */
    size_t back = atomic_load_explicit(&c->balance, memory_order_acquire) + OPEN_BIAS;
    if (back == c->handed)
        quiet_reset(c);
    ex_future *f = take_free(c);
    if (!f)
        f = cut_next(c);
    if (f)
        c->handed++;
    pthread_mutex_unlock(&c->lock);
    if (f)
        mark_used(c, f);
    return f;
}

void ex__fcache_put(ex_future *f)
{
    ex_fcache *c = slab_of(f)->cache;
    /* Poisoned before it is pushed: once pushed, an allocator may take it. */
    mark_free(c, f);
    ex_future *top = atomic_load_explicit(&c->returned, memory_order_relaxed);
    do
        f->next = top;
    while (!atomic_compare_exchange_weak_explicit(&c->returned, &top, f,
                                                  memory_order_release,
                                                  memory_order_relaxed));
    /* After the push (see ex__fcache_get); the last one back to a closed
     * cache frees it. */
    if (atomic_fetch_add_explicit(&c->balance, 1, memory_order_acq_rel) + 1 == 0)
        cache_free(c);
}

int64_t ex__fcache_spin_ns(const ex_future *f)
{
    return slab_of(f)->cache->spin_ns;
}

void ex__fcache_set_gauges(ex_fcache *c, struct ex__gauges *g)
{
    atomic_store_explicit(&c->gauges, g, memory_order_release);
}

struct ex__gauges *ex__fcache_gauges(const ex_future *f)
{
    return atomic_load_explicit(&slab_of(f)->cache->gauges, memory_order_acquire);
}
