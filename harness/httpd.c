/*
 * httpd.c - the loopback HTTP server behind the `http` workload.
 *
 * Each event loop is one thread that does everything for its connections:
 * an epoll loop over its libmicrohttpd daemon's epoll fd (MHD in
 * external-polling epoll mode), a timerfd and a stop eventfd.  The loops'
 * daemons all accept from one non-blocking listening socket (the loser of
 * a race for a connection gets EAGAIN), and a connection stays with the
 * loop that accepted it, so the loops share nothing but immutable data. A
 * delayed request is never slept on: the access handler suspends its
 * connection (MHD_suspend_connection) and pushes its deadline onto a
 * min-heap ordered by the latest time it may be answered (its deadline plus
 * a slack, see SLACK_DIVISOR); the timerfd is armed for the earliest of
 * those; when it fires the loop resumes the connections that are due
 * (MHD_resume_connection) and MHD_run() calls the handler again, which
 * queues the response. The loop waits without a timeout (a periodic tick
 * serves libmicrohttpd's idle-connection timeouts), so a pass sets up no
 * kernel timer unless the earliest deadline changed. So N
 * concurrent delayed requests cost N heap entries and N idle sockets, not N
 * threads, and a resume needs no wake-up of another thread.
 *
 * (An earlier version ran MHD's internal epoll thread plus a timer thread on
 * a condition variable: same behaviour, ~25% more server CPU per delayed
 * request, from the cross-thread wake-ups.)
 *
 * Bodies are served from one pattern buffer per server (byte i = i % 251):
 * a body of up to PATTERN_SPAN bytes is sent straight from it, a longer one is
 * copied out of it by a content-reader callback, block by block. Nothing
 * allocates the body size.
 *
 * Handler protocol (per request, in MHD's con_cls):
 *   NULL          first call, headers only: mark it and wait for the body
 *   &seen_marker  later calls: discard upload data; once it is all in, route
 *                 and either respond or suspend with a struct delayed
 *   struct delayed *  the connection was suspended; the next call means the
 *                 loop resumed it: respond with what was parsed
 * The request-completed callback frees a struct delayed.
 *
 * Threads: a loop's handler calls, timer and MHD_run() all run on its
 * thread; its lock exists for pb_httpd_pending() (any thread) and is never
 * held while calling into MHD except MHD_suspend_connection(), which takes
 * only MHD's own cleanup mutex; nothing of ours runs under an MHD lock, so
 * no cycle.
 */
#include "httpd.h"

#include "executor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Bodies up to this size go out of the pattern buffer without a copy. */
#define PATTERN_SPAN ((size_t)1 << 20)
/* Block size hint for bodies longer than PATTERN_SPAN. */
#define READER_BLOCK_SIZE ((size_t)64 * 1024)
/* Per-connection memory pool (headers in, headers out, and the copy buffer
 * for bodies over PATTERN_SPAN). MHD's default is 32 KiB; 16 KiB halves the
 * resident size of thousands of idle connections (70 -> 38 MB at 2000) at no
 * measurable cost in CPU or body throughput. */
#define CONNECTION_MEMORY ((size_t)16 * 1024)
/* Concurrent connections, capped further by RLIMIT_NOFILE at start. */
#define CONNECTION_LIMIT 10000u
/* Kernel caps it at net.core.somaxconn (4096 on current kernels). */
#define LISTEN_BACKLOG 4096u
/* Idle keep-alive connections are closed after this; suspended ones never
 * time out (MHD stops their clock while suspended). */
#define CONNECTION_TIMEOUT_S 120u
/* Connections popped per hold of h->lock (resumed after releasing it). */
#define RESUME_BATCH 64
/* The housekeeping tick: how late, at most, an idle connection's timeout
 * (CONNECTION_TIMEOUT_S) is served. */
#define TICK_MS 1000
/* A delayed response goes out between its deadline and a slack later:
 * 1/SLACK_DIVISOR of its delay, at most SLACK_MAX_NS (a 20 ms delay: 100 us,
 * 1 ms: 7.8 us).  The timer is armed for the earliest deadline plus its
 * slack, so that one expiry releases every request due by then instead of
 * one each; a response never goes out early. */
#define SLACK_DIVISOR 128
#define SLACK_MAX_NS 100000ull

#define NS_PER_S 1000000000ull

struct timer_entry {
    uint64_t deadline_ns;              /* CLOCK_MONOTONIC: not before */
    uint64_t latest_ns;                /* nor after (deadline + slack) */
    struct MHD_Connection *connection; /* suspended until deadline_ns */
};

/* What a delayed request answers once resumed. */
struct delayed {
    unsigned status;
    uint64_t bytes;
};

/* One event loop: a daemon of its own on the shared listening socket, its
 * own timer and deadlines, and the thread that runs them. */
struct loop {
    pb_httpd *server;
    struct MHD_Daemon *daemon;
    int epoll_fd;      /* MHD's epoll fd, timer_fd and stop_fd */
    int timer_fd;      /* CLOCK_MONOTONIC, absolute, heap[0].latest_ns */
    uint64_t armed_ns; /* what timer_fd is armed for, 0 for nothing */
    int stop_fd;       /* eventfd: pb_httpd_stop() wakes the loop */
    int tick_fd;       /* periodic timerfd: MHD's idle timeouts */
    pthread_t loop_thread;
    bool loop_started;

    /* The deadlines; guarded by lock (only pb_httpd_pending() reads them from
     * another thread while the loop runs). Invariant: every connection in
     * heap[] is suspended, and it is pushed only after
     * MHD_suspend_connection() returned, so a resume never precedes its
     * suspend. Once stopping is set nothing more is pushed; pb_httpd_stop()
     * resumes what is left, so MHD_stop_daemon() never sees a suspended
     * connection (an API violation that panics). */
    pthread_mutex_t lock;
    bool lock_ready;
    struct timer_entry *heap;
    size_t heap_len;
    size_t heap_cap;
    bool stopping;
};

struct pb_httpd {
    int port;
    /* PATTERN_SPAN + PB_HTTPD_PATTERN_PERIOD bytes of the body pattern, so
     * that PATTERN_SPAN bytes can be read from any phase. Immutable once
     * the daemons run. */
    unsigned char *pattern;
    /* Shared responses (reference counted by MHD, immutable). */
    struct MHD_Response *health;
    struct MHD_Response *empty;       /* any status, no body */
    struct MHD_Response *not_found;
    struct MHD_Response *unavailable;
    unsigned nloops;                  /* loops[0..nloops) were set up */
    struct loop loops[PB_HTTPD_MAX_LOOPS];
};

enum { EV_MHD = 1, EV_TIMER, EV_TICK, EV_STOP };

/* Its address marks a request whose headers were seen (no state needed). */
static const char seen_marker;


/* ---- parsing ----------------------------------------------------------- */

/* A plain decimal integer (digits only, no sign, no spaces) <= max. */
static bool parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (s == NULL || len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A decimal number "12", "0.05", ".5" or "3." scaled by 10^scale_digits
 * (digits past that are truncated) and <= max after scaling. No sign, no
 * exponent, no "inf"/"nan": strtod accepts all of those. */
static bool parse_decimal(const char *s, size_t len, unsigned scale_digits,
                          uint64_t max, uint64_t *out)
{
    uint64_t scale = 1;
    for (unsigned i = 0; i < scale_digits; i++)
        scale *= 10;
    if (s == NULL || len == 0)
        return false;
    size_t i = 0;
    uint64_t whole = 0;
    size_t whole_digits = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, whole_digits++) {
        if (whole > max / scale)
            return false; /* already above max; stop before overflowing */
        whole = whole * 10 + (uint64_t)(s[i] - '0');
    }
    uint64_t frac = 0;
    size_t frac_digits = 0;
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, frac_digits++) {
            if (frac_digits < scale_digits)
                frac = frac * 10 + (uint64_t)(s[i] - '0');
        }
    }
    if (i != len || whole_digits + frac_digits == 0)
        return false;
    for (size_t k = frac_digits; k < scale_digits; k++)
        frac *= 10;
    if (whole > max / scale)
        return false;
    uint64_t v = whole * scale;
    if (frac > max - v)
        return false;
    *out = v + frac;
    return true;
}

enum route_kind { ROUTE_SERVE, ROUTE_HEALTH, ROUTE_BAD, ROUTE_NOT_FOUND };

struct route {
    uint64_t delay_ns;
    uint64_t bytes;
    unsigned status;
    const char *why; /* ROUTE_BAD: a static one-line reason */
};

static bool status_ok(uint64_t code)
{
    /* 1xx are interim responses, not answers; MHD refuses them for HTTP/1.0
     * clients and curl would wait for a final one. */
    return code >= 200 && code <= 599;
}

/* The query argument key: present (true) with *value and *len set, or absent. A key
 * without "=" is present with a NULL value, which the parsers reject. */
static bool query_arg(struct MHD_Connection *c, const char *key,
                      const char **value, size_t *len)
{
    *value = NULL;
    *len = 0;
    return MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, key,
                                         strlen(key), value, len) == MHD_YES;
}

static enum route_kind route(struct MHD_Connection *c, const char *url,
                             struct route *rt)
{
    const uint64_t max_delay_ns = (uint64_t)PB_HTTPD_MAX_DELAY_S * NS_PER_S;
    uint64_t v;

    rt->delay_ns = 0;
    rt->bytes = 0;
    rt->status = 200;
    rt->why = NULL;

    if (strcmp(url, "/health") == 0)
        return ROUTE_HEALTH;
    if (strncmp(url, "/delay/", 7) == 0) {
        if (!parse_decimal(url + 7, strlen(url + 7), 9, max_delay_ns,
                           &rt->delay_ns)) {
            rt->why = "bad request: /delay/<seconds> wants a decimal 0..600\n";
            return ROUTE_BAD;
        }
        return ROUTE_SERVE;
    }
    if (strncmp(url, "/bytes/", 7) == 0) {
        if (!parse_uint(url + 7, strlen(url + 7), PB_HTTPD_MAX_BYTES,
                        &rt->bytes)) {
            rt->why = "bad request: /bytes/<n> wants an integer 0..1073741824\n";
            return ROUTE_BAD;
        }
        return ROUTE_SERVE;
    }
    if (strncmp(url, "/status/", 8) == 0) {
        if (!parse_uint(url + 8, strlen(url + 8), UINT64_MAX, &v) ||
            !status_ok(v)) {
            rt->why = "bad request: /status/<code> wants an integer 200..599\n";
            return ROUTE_BAD;
        }
        rt->status = (unsigned)v;
        return ROUTE_SERVE;
    }
    if (strcmp(url, "/") == 0) {
        const char *s;
        size_t len;
        if (query_arg(c, "delay_ms", &s, &len) &&
            !parse_decimal(s, len, 6, max_delay_ns, &rt->delay_ns)) {
            rt->why = "bad request: delay_ms wants a decimal 0..600000\n";
            return ROUTE_BAD;
        }
        if (query_arg(c, "bytes", &s, &len) &&
            !parse_uint(s, len, PB_HTTPD_MAX_BYTES, &rt->bytes)) {
            rt->why = "bad request: bytes wants an integer 0..1073741824\n";
            return ROUTE_BAD;
        }
        if (query_arg(c, "status", &s, &len)) {
            if (!parse_uint(s, len, UINT64_MAX, &v) || !status_ok(v)) {
                rt->why = "bad request: status wants an integer 200..599\n";
                return ROUTE_BAD;
            }
            rt->status = (unsigned)v;
        }
        return ROUTE_SERVE;
    }
    return ROUTE_NOT_FOUND;
}

/* ---- responses --------------------------------------------------------- */

/* Bodies longer than PATTERN_SPAN: MHD asks for consecutive blocks and never
 * for more than what is left of the declared size. Stateless (a function of
 * pos only), so it is correct even if MHD re-reads a block. */
static ssize_t read_pattern(void *cls, uint64_t pos, char *buf, size_t max)
{
    const pb_httpd *h = cls;
    size_t n = max < PATTERN_SPAN ? max : PATTERN_SPAN;
    memcpy(buf, h->pattern + pos % PB_HTTPD_PATTERN_PERIOD, n);
    return (ssize_t)n;
}

static enum MHD_Result queue_static(struct MHD_Connection *c, unsigned status,
                                    struct MHD_Response *shared)
{
    return MHD_queue_response(c, status, shared);
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status,
                                  const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    enum MHD_Result ok =
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    if (ok == MHD_YES)
        ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r); /* the connection holds its own reference */
    return ok;
}

static enum MHD_Result respond(pb_httpd *h, struct MHD_Connection *c,
                               unsigned status, uint64_t bytes)
{
    if (bytes == 0)
        return queue_static(c, status, h->empty);
    struct MHD_Response *r;
    if (bytes <= PATTERN_SPAN)
        r = MHD_create_response_from_buffer((size_t)bytes, h->pattern,
                                            MHD_RESPMEM_PERSISTENT);
    else
        r = MHD_create_response_from_callback(bytes, READER_BLOCK_SIZE,
                                              read_pattern, h, NULL);
    if (r == NULL)
        return MHD_NO; /* out of memory: MHD closes the connection */
    enum MHD_Result ok = MHD_add_response_header(
        r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    if (ok == MHD_YES)
        ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- the timer --------------------------------------------------------- */

static void heap_swap(struct timer_entry *a, struct timer_entry *b)
{
    struct timer_entry t = *a;
    *a = *b;
    *b = t;
}

/* Caller holds lp->lock and has made room. Returns true if the new entry is
 * now the earliest deadline (the timer must re-arm). */
static bool heap_push(struct loop *lp, struct timer_entry e)
{
    size_t i = lp->heap_len++;
    lp->heap[i] = e;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (lp->heap[parent].latest_ns <= lp->heap[i].latest_ns)
            break;
        heap_swap(&lp->heap[parent], &lp->heap[i]);
        i = parent;
    }
    return i == 0;
}

/* Caller holds lp->lock; the heap is not empty. */
static struct timer_entry heap_pop(struct loop *lp)
{
    struct timer_entry top = lp->heap[0];
    lp->heap[0] = lp->heap[--lp->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < lp->heap_len && lp->heap[l].latest_ns < lp->heap[m].latest_ns)
            m = l;
        if (r < lp->heap_len && lp->heap[r].latest_ns < lp->heap[m].latest_ns)
            m = r;
        if (m == i)
            break;
        heap_swap(&lp->heap[i], &lp->heap[m]);
        i = m;
    }
    return top;
}

/* Points the timerfd at the earliest latest time (deadline + slack), if
 * that changed. Loop thread only. */
static void arm_timer(struct loop *lp)
{
    pthread_mutex_lock(&lp->lock);
    uint64_t top = lp->heap_len > 0 ? lp->heap[0].latest_ns : 0;
    pthread_mutex_unlock(&lp->lock);
    if (top == 0 || top == lp->armed_ns)
        return; /* nothing to wait for, or already armed for it */
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(top / NS_PER_S),
                                          .tv_nsec = (long)(top % NS_PER_S)}};
    /* Fails only for a bad descriptor or value, neither possible here; if it
     * did, armed_ns stays stale and the next pass retries. */
    if (timerfd_settime(lp->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        lp->armed_ns = top;
}

/* Resumes the connections at the top of the heap whose deadline has
 * passed (all of them when everything is true).  The heap is ordered by
 * latest time, so one due but with more slack may wait below an entry
 * that is not due yet: it is resumed at its own latest time at the latest. */
static void resume_due(struct loop *lp, bool everything)
{
    struct MHD_Connection *due[RESUME_BATCH];
    size_t n;
    do {
        uint64_t now = ex_now_ns();
        n = 0;
        pthread_mutex_lock(&lp->lock);
        while (lp->heap_len > 0 && n < RESUME_BATCH &&
               (everything || lp->heap[0].deadline_ns <= now))
            due[n++] = heap_pop(lp).connection;
        pthread_mutex_unlock(&lp->lock);
        for (size_t i = 0; i < n; i++)
            MHD_resume_connection(due[i]);
    } while (n == RESUME_BATCH);
}

static void *loop_main(void *arg)
{
    struct loop *lp = arg;
    struct epoll_event ev[4];
    for (;;) {
        arm_timer(lp);
        /* MHD's own timeout is the earliest idle-connection deadline (0 when
         * it has work pending).  Waiting with it would set up a kernel timer
         * on every pass; the housekeeping tick serves those deadlines (at
         * most TICK_MS late) with none, so the wait only polls or blocks. */
        MHD_UNSIGNED_LONG_LONG mhd_ms;
        int timeout = -1;
        if (MHD_get_timeout(lp->daemon, &mhd_ms) == MHD_YES && mhd_ms == 0)
            timeout = 0;
        int n = epoll_wait(lp->epoll_fd, ev, 4, timeout);
        for (int i = 0; i < n; i++) {
            uint64_t expirations;
            ssize_t got;
            switch (ev[i].data.u32) {
            case EV_STOP:
                return NULL;
            case EV_TIMER:
                /* Drains the expiry. Non-blocking: EAGAIN (re-armed since it
                 * fired) leaves nothing to do either. */
                got = read(lp->timer_fd, &expirations, sizeof expirations);
                (void)got;
                lp->armed_ns = 0;
                break;
            case EV_TICK:
                got = read(lp->tick_fd, &expirations, sizeof expirations);
                (void)got;
                break;
            }
        }
        /* n < 0 is EINTR (a signal handled on this thread): just go round. */
        resume_due(lp, false);
        /* MHD must run after every wait, whatever woke us; it fails only for
         * a daemon started without external polling, which ours is not. */
        (void)MHD_run(lp->daemon);
    }
}

/* Suspends c for delay_ns (and at most its slack more). Returns false (and
 * suspends nothing) if the
 * server is stopping or the heap cannot grow; neither happens in practice:
 * the handler runs only on the loop thread, which has exited before stopping
 * is set, and the heap starts at the connection limit. */
static bool delay_connection(struct loop *lp, struct MHD_Connection *c,
                             uint64_t delay_ns)
{
    uint64_t slack_ns = delay_ns / SLACK_DIVISOR;
    if (slack_ns > SLACK_MAX_NS)
        slack_ns = SLACK_MAX_NS;
    uint64_t deadline_ns = ex_now_ns() + delay_ns;
    bool ok = false;
    pthread_mutex_lock(&lp->lock);
    if (lp->stopping)
        goto out;
    if (lp->heap_len == lp->heap_cap) {
        /* Cannot happen while heap_cap >= the connection limit (every entry
         * is a live suspended connection), but stay correct if it does. */
        size_t cap = lp->heap_cap * 2;
        struct timer_entry *grown = realloc(lp->heap, cap * sizeof *grown);
        if (grown == NULL)
            goto out;
        lp->heap = grown;
        lp->heap_cap = cap;
    }
    MHD_suspend_connection(c);
    /* A new earliest deadline is armed by the loop before it sleeps. */
    (void)heap_push(lp, (struct timer_entry){deadline_ns, deadline_ns + slack_ns, c});
    ok = true;
out:
    pthread_mutex_unlock(&lp->lock);
    return ok;
}

/* ---- libmicrohttpd callbacks ------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct loop *lp = cls;
    pb_httpd *h = lp->server;
    (void)method;
    (void)version;
    (void)upload_data;

    if (*con_cls == NULL) {
        *con_cls = (void *)&seen_marker;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* no route reads a body */
        return MHD_YES;
    }
    if (*con_cls != &seen_marker) {
        /* Resumed by the loop: the delay is over. */
        const struct delayed *d = *con_cls;
        return respond(h, c, d->status, d->bytes);
    }

    struct route rt;
    switch (route(c, url, &rt)) {
    case ROUTE_HEALTH:
        return queue_static(c, MHD_HTTP_OK, h->health);
    case ROUTE_NOT_FOUND:
        return queue_static(c, MHD_HTTP_NOT_FOUND, h->not_found);
    case ROUTE_BAD:
        return queue_text(c, MHD_HTTP_BAD_REQUEST, rt.why);
    case ROUTE_SERVE:
        break;
    }
    if (rt.delay_ns == 0)
        return respond(h, c, rt.status, rt.bytes);

    struct delayed *d = malloc(sizeof *d);
    if (d == NULL)
        return queue_static(c, MHD_HTTP_SERVICE_UNAVAILABLE, h->unavailable);
    d->status = rt.status;
    d->bytes = rt.bytes;
    /* The call after the resume finds it here; on_completed frees it. */
    *con_cls = d;
    if (!delay_connection(lp, c, rt.delay_ns)) {
        *con_cls = (void *)&seen_marker;
        free(d);
        return queue_static(c, MHD_HTTP_SERVICE_UNAVAILABLE, h->unavailable);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (*con_cls != NULL && *con_cls != &seen_marker)
        free(*con_cls);
    *con_cls = NULL;
}

/* ---- lifecycle --------------------------------------------------------- */

/* libmicrohttpd's own messages (bind failures, accept errors), prefixed so
 * that they can be told apart from the harness's. */
static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fputs("pb_httpd: ", stderr);
    vfprintf(stderr, fmt, ap);
}

static struct MHD_Response *text_response(const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                             "text/plain") != MHD_YES) {
        MHD_destroy_response(r);
        r = NULL;
    }
    return r;
}

/* Connections we may accept without running out of descriptors. */
static unsigned connection_limit(void)
{
    struct rlimit rl;
    unsigned limit = CONNECTION_LIMIT;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        /* Keep some descriptors for MHD's own and the rest of the process. */
        rlim_t usable = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : 64;
        if (usable < limit)
            limit = (unsigned)usable;
    }
    return limit;
}

/* Frees whatever of the loop exists; its thread must be joined and its
 * daemon stopped. Descriptors are -1 until opened. */
static void free_loop(struct loop *lp)
{
    /* close() of an epoll, timer or event fd has nothing to flush. */
    if (lp->epoll_fd >= 0)
        (void)close(lp->epoll_fd);
    if (lp->timer_fd >= 0)
        (void)close(lp->timer_fd);
    if (lp->stop_fd >= 0)
        (void)close(lp->stop_fd);
    if (lp->tick_fd >= 0)
        (void)close(lp->tick_fd);
    if (lp->lock_ready)
        pthread_mutex_destroy(&lp->lock);
    free(lp->heap);
}

/* Frees whatever of h exists: the loops' threads are joined and their
 * daemons stopped. */
static void free_server(pb_httpd *h)
{
    if (h->health)
        MHD_destroy_response(h->health);
    if (h->empty)
        MHD_destroy_response(h->empty);
    if (h->not_found)
        MHD_destroy_response(h->not_found);
    if (h->unavailable)
        MHD_destroy_response(h->unavailable);
    for (unsigned i = 0; i < h->nloops; i++)
        free_loop(&h->loops[i]);
    free(h->pattern);
    free(h);
}

static int watch(int epoll_fd, int fd, uint32_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = tag};
    return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : -errno;
}

/* The loop's descriptors, with MHD's epoll fd nested in ours. */
static int init_loop_fds(struct loop *lp)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(lp->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (info == NULL)
        return -EIO;
    lp->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (lp->epoll_fd < 0)
        return -errno;
    lp->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (lp->timer_fd < 0)
        return -errno;
    lp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (lp->stop_fd < 0)
        return -errno;
    lp->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (lp->tick_fd < 0)
        return -errno;
    struct itimerspec tick = {.it_interval = {.tv_sec = TICK_MS / 1000,
                                              .tv_nsec = TICK_MS % 1000 * 1000000L}};
    tick.it_value = tick.it_interval;
    if (timerfd_settime(lp->tick_fd, 0, &tick, NULL) != 0)
        return -errno;
    int rc = watch(lp->epoll_fd, info->epoll_fd, EV_MHD);
    if (rc == 0)
        rc = watch(lp->epoll_fd, lp->timer_fd, EV_TIMER);
    if (rc == 0)
        rc = watch(lp->epoll_fd, lp->tick_fd, EV_TICK);
    if (rc == 0)
        rc = watch(lp->epoll_fd, lp->stop_fd, EV_STOP);
    return rc;
}

/* Event loops by default: one per four online CPUs, at least one and at
 * most PB_HTTPD_MAX_LOOPS.  The server shares the machine with the client
 * it serves: measured on 2 CPUs with 512 client threads, a second loop
 * (both at real-time priority) cut the request rate from 67-87% of the
 * ideal to 52-74%, by taking both CPUs from the client at every burst. */
static unsigned loop_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN) / 4;
    if (n < 1)
        return 1;
    return n > PB_HTTPD_MAX_LOOPS ? PB_HTTPD_MAX_LOOPS : (unsigned)n;
}

/* Starts loop i: a daemon of its own on a duplicate of listen_fd, and its
 * thread. */
static int start_loop(pb_httpd *h, unsigned i, int listen_fd, unsigned limit)
{
    struct loop *lp = &h->loops[i];
    lp->server = h;
    lp->epoll_fd = lp->timer_fd = lp->stop_fd = lp->tick_fd = -1;
    h->nloops = i + 1;
    lp->heap_cap = limit;
    lp->heap = calloc(lp->heap_cap, sizeof *lp->heap);
    if (lp->heap == NULL)
        return -ENOMEM;
    int rc = pthread_mutex_init(&lp->lock, NULL);
    if (rc != 0)
        return -rc;
    lp->lock_ready = true;
    /* The daemon closes its own copy when it stops. */
    int fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    errno = 0;
    lp->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_request, lp,
        /* First, or MHD logs a complaint about it through the default. */
        MHD_OPTION_EXTERNAL_LOGGER, log_mhd, (void *)NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONNECTION_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)lp,
        MHD_OPTION_END);
    if (lp->daemon == NULL) {
        /* MHD reports no error code; errno is the failed call's, if any. */
        rc = errno != 0 ? -errno : -EIO;
        (void)close(fd);
        return rc;
    }
    rc = init_loop_fds(lp);
    if (rc == 0)
        rc = -pthread_create(&lp->loop_thread, NULL, loop_main, lp);
    if (rc == 0)
        lp->loop_started = true;
    return rc;
}

/* The listening socket every loop accepts from (non-blocking: when a
 * connection wakes several loops, the ones that lose the accept() get
 * EAGAIN instead of blocking).  Returns it, or a negative errno. */
static int open_listener(const struct sockaddr_in *sa, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    struct sockaddr_in bound;
    socklen_t len = sizeof bound;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)sa, sizeof *sa) != 0 ||
        listen(fd, (int)LISTEN_BACKLOG) != 0 ||
        getsockname(fd, (struct sockaddr *)&bound, &len) != 0) {
        int rc = -errno;
        (void)close(fd);
        return rc;
    }
    *port = ntohs(bound.sin_port);
    return fd;
}

/* Stops loop threads, then daemons (suspended connections resumed first:
 * MHD_stop_daemon() panics on one). */
static void stop_loops(pb_httpd *h)
{
    for (unsigned i = 0; i < h->nloops; i++) {
        struct loop *lp = &h->loops[i];
        if (lp->loop_started) {
            uint64_t one = 1;
            /* Cannot fail short of a counter overflow (2^64 - 1 stops). */
            ssize_t put = write(lp->stop_fd, &one, sizeof one);
            (void)put;
            pthread_join(lp->loop_thread, NULL);
            lp->loop_started = false;
        }
    }
    for (unsigned i = 0; i < h->nloops; i++) {
        struct loop *lp = &h->loops[i];
        if (!lp->daemon)
            continue;
        /* Nothing runs the handler any more; let nothing be pushed
         * regardless, and resume what is suspended. */
        pthread_mutex_lock(&lp->lock);
        lp->stopping = true;
        pthread_mutex_unlock(&lp->lock);
        resume_due(lp, true);
        MHD_stop_daemon(lp->daemon);
        lp->daemon = NULL;
    }
}

int pb_httpd_start(const char *bind_addr, int port, pb_httpd **out)
{
    return pb_httpd_start_loops(bind_addr, port, 0, out);
}

int pb_httpd_start_loops(const char *bind_addr, int port, unsigned loops,
                         pb_httpd **out)
{
    struct sockaddr_in sa;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (port < 0 || port > 65535 || loops > PB_HTTPD_MAX_LOOPS)
        return -EINVAL;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, bind_addr ? bind_addr : "127.0.0.1",
                  &sa.sin_addr) != 1)
        return -EINVAL;

    pb_httpd *h = calloc(1, sizeof *h);
    if (h == NULL)
        return -ENOMEM;
    unsigned nloops = loops ? loops : loop_count();
    /* The descriptor budget, shared by the loops (each at least 64). */
    unsigned limit = connection_limit() / nloops;
    if (limit < 64)
        limit = 64;
    h->pattern = malloc(PATTERN_SPAN + PB_HTTPD_PATTERN_PERIOD);
    h->health = text_response("ok");
    h->empty = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    h->not_found = text_response("not found\n");
    h->unavailable = text_response("server stopping\n");
    if (h->pattern == NULL || h->health == NULL || h->empty == NULL ||
        h->not_found == NULL || h->unavailable == NULL) {
        free_server(h);
        return -ENOMEM;
    }
    for (size_t i = 0; i < PATTERN_SPAN + PB_HTTPD_PATTERN_PERIOD; i++)
        h->pattern[i] = pb_httpd_pattern_byte(i);

    int listen_fd = open_listener(&sa, &h->port);
    if (listen_fd < 0) {
        free_server(h);
        return listen_fd;
    }
    int rc = 0;
    for (unsigned i = 0; i < nloops && rc == 0; i++)
        rc = start_loop(h, i, listen_fd, limit);
    (void)close(listen_fd); /* each daemon holds its own copy */
    if (rc != 0) {
        stop_loops(h);
        free_server(h);
        return rc;
    }
    *out = h;
    return 0;
}

int pb_httpd_port(const pb_httpd *h)
{
    return h->port;
}

unsigned pb_httpd_pending(pb_httpd *h)
{
    unsigned n = 0;
    for (unsigned i = 0; i < h->nloops; i++) {
        struct loop *lp = &h->loops[i];
        pthread_mutex_lock(&lp->lock);
        n += (unsigned)lp->heap_len;
        pthread_mutex_unlock(&lp->lock);
    }
    return n;
}

void pb_httpd_stop(pb_httpd *h)
{
    if (h == NULL)
        return;
    stop_loops(h);
    free_server(h);
}
