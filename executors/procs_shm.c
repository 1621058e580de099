/*
 * procs_shm.c: a worker's shared-memory region, the process pool's second
 * transport (EX_TRANSPORT_SHM).  The pipes stay for the frames, and so for
 * liveness and order; only the payload bytes move here.
 *
 * One region per worker: a memfd the fork server makes for each new worker
 * process (both keep it mapped, MAP_SHARED, for the process's life), holding
 * two rings of `ring` bytes each:
 *
 *   [0, ring)          input ring: the parent copies a task's input in, the
 *                      worker runs the task on it in place
 *   [ring, 2 ring)     output ring: the worker lends its free room to the
 *                      task as its output buffer (buf.c: ex__buf_lend), so
 *                      the task writes its output in place; the parent
 *                      copies it out into the future
 *
 * Invariants:
 * - Each ring has one writer and one reader, and space is taken and freed
 *   in FIFO order: positions only grow, a range never straddles the end
 *   of the ring (the rest of the lap is skipped), and tail - head <= ring.
 *   The input ring is the parent's alone: a task's input is freed when its
 *   result is read (the worker is done with it by then).  The output ring
 *   is the worker's: the parent stores how far it has consumed on the
 *   board (out_done, release) after copying out, and the worker reads it
 *   (acquire) before it lends room, so a range is never reused while read.
 * - A frame names a range by its offset in the ring; the parent finds the
 *   position from its own count (results come in order), and every range
 *   is checked against the ring before it is touched.
 * - Used only when both sides have the region mapped: the parent says so on
 *   the board (shm_mapped), the worker in its READY frame; otherwise the
 *   payloads go through the pipes.  Payloads under EX_SHM_INLINE_MAX go
 *   inline anyway, and so does a payload the ring cannot hold at that
 *   moment (an input waits for room instead when its worker has tasks in
 *   flight: ex__procs_shm_fits).
 * - Memory grows with the payloads: the file is sparse, pages exist once
 *   written, and each ring restarts at its bottom whenever it is empty.
 *   When a ring is empty and has touched more than its recent payloads
 *   need (twice the largest of the last RECENT), the rest is punched out.
 * - The fork server uses only raw system calls here (ex__procs_shm_create).
 */
#include "procs_internal.h"
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RING_MIN ((size_t)1 << 20)
#define RING_MAX ((size_t)256 << 20)
/* Payload sizes remembered for the memory a ring keeps. */
#define RECENT 16
/* Destination buffers at least this large get transparent huge pages
 * (where the kernel offers them on request): fewer faults when the
 * copy-out fills fresh memory. */
#define HUGE_COPY EX__PROCS_HUGE_MIN

/* What a ring has touched and what it recently carried. */
typedef struct ring_use {
    size_t hw;               /* pages below this offset may be touched */
    size_t recent[RECENT];
    unsigned next;
} ring_use;

struct procs_region {        /* the parent's side */
    int fd;
    unsigned char *base;     /* both rings, 2 * ring bytes */
    size_t ring;
    bool on;                 /* the worker mapped it too */
    procs_board *board;
    uint64_t in_head, in_tail;
    ring_use in_use;
    uint64_t out_head;       /* output consumed (mirrors board->out_done) */
};

struct procs_wregion {       /* the worker's side */
    int fd;
    unsigned char *base;
    size_t ring;
    procs_board *board;
    uint64_t out_tail;
    uint64_t lent;           /* position of the room lent to the task */
    ring_use out_use;
};

/* ------------------------------------------------------ ring arithmetic */

/* The largest contiguous free room at the ring's tail, or at the next
 * lap's start when that is larger (an empty ring restarts there, at its
 * bottom): its start position, and its size in *room. */
static uint64_t ring_room(uint64_t head, uint64_t tail, size_t size,
                          size_t *room)
{
    size_t off = (size_t)(tail % size);
    uint64_t lap = off ? tail - off + size : tail;
    if (head == tail) {
        *room = size;
        return lap;
    }
    size_t used = (size_t)(tail - head);
    size_t here = size - off < size - used ? size - off : size - used;
    size_t wrap = lap - head < size ? size - (size_t)(lap - head) : 0;
    if (off && wrap > here) {
        *room = wrap;
        return lap;
    }
    *room = here;
    return tail;
}

static void use_note(ring_use *u, size_t end_off, size_t len)
{
    if (end_off > u->hw)
        u->hw = end_off;
    u->recent[u->next++ % RECENT] = len;
}

/* The ring (at file offset at) is empty: gives back the pages above twice
 * its recent largest payload. */
static void use_trim(ring_use *u, int fd, off_t at)
{
    size_t keep = RING_MIN;
    for (unsigned i = 0; i < RECENT; i++)
        if (2 * u->recent[i] > keep)
            keep = 2 * u->recent[i];
    keep = (keep + RING_MIN - 1) / RING_MIN * RING_MIN;
    if (u->hw <= keep + RING_MIN)
        return;
    /* Best effort: without hole punching the pages simply stay. */
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                  at + (off_t)keep, (off_t)(u->hw - keep)) == 0)
        u->hw = keep;
}

size_t ex__procs_shm_ring_size(const ex_config *cfg, size_t max_payload)
{
    if (cfg->transport != EX_TRANSPORT_SHM)
        return 0;
    size_t r = max_payload > RING_MAX ? RING_MAX : 2 * max_payload;
    r = (r + RING_MIN - 1) / RING_MIN * RING_MIN;
    return r < RING_MIN ? RING_MIN : r > RING_MAX ? RING_MAX : r;
}

/* --------------------------------------------------- the fork server */

int ex__procs_shm_create(const procs *p)
{
    if (!p->shm_ring)
        return -1;
    int fd = memfd_create("poolbench-shm", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Sparse: no page exists until written. */
    if (ftruncate(fd, (off_t)(2 * p->shm_ring)) != 0) {
        ex__close(&fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------- the parent's side */

/* Both rings of a region, mapped shared; NULL on failure. */
static unsigned char *map_rings(int fd, size_t ring)
{
    void *m = mmap(NULL, 2 * ring, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return m == MAP_FAILED ? NULL : m;
}

int ex__procs_shm_attach(procs *p, procs_worker *w, int fd)
{
    procs_region *r = calloc(1, sizeof *r);
    if (!r)
        return EX_ENOMEM;
    r->ring = p->shm_ring;
    r->board = w->board;
    if (!(r->base = map_rings(fd, r->ring))) {
        free(r);
        return EX_ESYS;
    }
    r->fd = fd;
    w->shm = r;
    atomic_store_explicit(&w->board->shm_mapped, 1, memory_order_release);
    return 0;
}

void ex__procs_shm_detach(procs_worker *w)
{
    procs_region *r = w->shm;
    if (!r)
        return;
    munmap(r->base, 2 * r->ring);
    ex__close(&r->fd);
    free(r);
    w->shm = NULL;
}

void ex__procs_shm_ready(procs_worker *w, bool worker_mapped)
{
    if (w->shm && worker_mapped)
        w->shm->on = true;
    else
        ex__procs_shm_detach(w);
}

bool ex__procs_shm_fits(const procs_worker *w, size_t len)
{
    const procs_region *r = w->shm;
    if (!r || !r->on || len < EX_SHM_INLINE_MAX || len > r->ring ||
        w->win_len == 0)
        return true;
    size_t room;
    (void)ring_room(r->in_head, r->in_tail, r->ring, &room);
    return len <= room;
}

uint64_t ex__procs_shm_put(procs_worker *w, const ex_future *f,
                           wire_header *h)
{
    procs_region *r = w->shm;
    if (!r || !r->on || f->in_len < EX_SHM_INLINE_MAX)
        return 0;
    size_t room;
    uint64_t start = ring_room(r->in_head, r->in_tail, r->ring, &room);
    if (f->in_len > room)
        return 0;
    size_t off = (size_t)(start % r->ring);
    memcpy(r->base + off, f->in, f->in_len);
    r->in_tail = start + f->in_len;
    use_note(&r->in_use, off + f->in_len, f->in_len);
    h->flags |= WIRE_F_SHM;
    h->off = off;
    return r->in_tail; /* > 0: in_len > 0 */
}

void ex__procs_shm_release(procs_worker *w, uint64_t in_end)
{
    procs_region *r = w->shm;
    if (!r)
        return;
    r->in_head = in_end;
    if (r->in_head == r->in_tail)
        use_trim(&r->in_use, r->fd, 0);
}

void ex__procs_advise_huge(void *p, size_t len)
{
    const uintptr_t huge = (uintptr_t)2 << 20;
    if (len < HUGE_COPY)
        return;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t b = ((uintptr_t)p + len) & ~(huge - 1);
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_HUGEPAGE);
}

int ex__procs_shm_take(procs_worker *w, const wire_header *h, ex_buf *out)
{
    procs_region *r = w->shm;
    if (!r || !r->on || h->off >= r->ring || h->len > r->ring - h->off)
        return EX_EWORKER;
    size_t off = (size_t)h->off, len = (size_t)h->len;
    uint64_t start = r->out_head +
                     (off + r->ring - (size_t)(r->out_head % r->ring)) % r->ring;
    int rc = EX_ENOMEM;
    out->len = 0;
    if (ex_buf_reserve(out, len) == 0) {
        ex__procs_advise_huge(out->data, len);
        memcpy(out->data, r->base + r->ring + off, len);
        out->len = len;
        rc = 0;
    }
    /* Consumed either way: the worker may reuse the room. */
    r->out_head = start + len;
    atomic_store_explicit(&r->board->out_done, r->out_head,
                          memory_order_release);
    return rc;
}

/* ------------------------------------------------- the worker's side */

procs_wregion *ex__procs_shm_wmap(const procs *p, int fd, procs_board *b)
{
    procs_wregion *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->ring = p->shm_ring;
    r->board = b;
    if (!(r->base = map_rings(fd, r->ring))) {
        free(r);
        return NULL;
    }
    r->fd = fd;
    return r;
}

const void *ex__procs_shm_winput(procs_wregion *r, const wire_header *h)
{
    if (h->off >= r->ring || h->len > r->ring - h->off)
        return NULL;
    return r->base + h->off;
}

bool ex__procs_shm_wlend(procs_wregion *r, ex_buf *out)
{
    if (!atomic_load_explicit(&r->board->shm_mapped, memory_order_acquire))
        return false;
    uint64_t head = atomic_load_explicit(&r->board->out_done,
                                         memory_order_acquire);
    if (head == r->out_tail)
        use_trim(&r->out_use, r->fd, (off_t)r->ring);
    size_t room;
    uint64_t start = ring_room(head, r->out_tail, r->ring, &room);
    if (room < EX_SHM_INLINE_MAX)
        return false;
    r->lent = start;
    ex__buf_lend(out, r->base + r->ring + start % r->ring, room);
    return true;
}

bool ex__procs_shm_wpublish(procs_wregion *r, ex_buf *out, wire_header *h)
{
    ex__buf_lend_end();
    size_t off = (size_t)(r->lent % r->ring);
    if (out->data != r->base + r->ring + off || h->len != out->len ||
        out->len < EX_SHM_INLINE_MAX)
        return false;
    h->flags |= WIRE_F_SHM;
    h->off = off;
    r->out_tail = r->lent + out->len;
    use_note(&r->out_use, off + out->len, out->len);
    return true;
}
