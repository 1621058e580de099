/*
 * httpd.h - poolbench's loopback HTTP server (libmicrohttpd).
 *
 * The target of the `http` workload: an httpbin-style server with injected
 * latency and payload size that must never be the bottleneck. A delayed
 * request holds no thread: its connection is suspended in libmicrohttpd and
 * resumed by its event loop when a timerfd, armed from a min-heap of
 * deadlines, fires. So thousands of concurrent /delay requests
 * cost a few kilobytes each and little CPU (tens of microseconds per
 * request). Bodies come from one shared pattern buffer, never from a
 * per-request allocation of their size.
 *
 * Routes (any method; a request body is read and discarded):
 *
 *   GET /health                 200 "ok"
 *   GET /delay/<seconds>        200, empty body, after <seconds> (decimal,
 *                               fractions allowed: "0.05", ".5", "2")
 *   GET /bytes/<n>              200, n bytes of the pattern below
 *   GET /status/<code>          <code> (200..599), empty body
 *   GET /?delay_ms=D&bytes=N&status=C
 *                               any combination of the three (defaults 0,
 *                               0, 200); D is decimal milliseconds
 *   anything else               404
 *
 * An invalid or out-of-range value (delay above PB_HTTPD_MAX_DELAY_S, n above
 * PB_HTTPD_MAX_BYTES, a status outside 200..599, an empty or non-decimal
 * value) gets 400 Bad Request with a one-line reason. While the server stops,
 * a request that would be delayed gets 503 at once. Every response has a
 * Content-Length; connections are kept alive (HTTP/1.1) unless the client
 * asks otherwise, and idle ones are closed after 120 s.
 *
 * Body content is deterministic so that clients can check it: byte i of a
 * body is (i % PB_HTTPD_PATTERN_PERIOD), see pb_httpd_pattern_byte(). The
 * workloads cannot include this header (harness -> workloads), so they repeat
 * the formula; it is part of the server's contract and will not change.
 */
#ifndef PB_HTTPD_H
#define PB_HTTPD_H

#include <stdint.h>

/* Largest accepted /bytes/<n> or bytes=N (1 GiB). */
#define PB_HTTPD_MAX_BYTES ((uint64_t)1 << 30)
/* Largest accepted /delay/<s> or delay_ms=D/1000 (10 minutes). */
#define PB_HTTPD_MAX_DELAY_S 600
/* Body byte i is i % PB_HTTPD_PATTERN_PERIOD (a prime, so that a body never
 * lines up with power-of-two buffer sizes and a misplaced chunk shows). */
#define PB_HTTPD_PATTERN_PERIOD 251

/* The byte at offset i of every body the server sends. Does not block. */
static inline unsigned char pb_httpd_pattern_byte(uint64_t i)
{
    return (unsigned char)(i % PB_HTTPD_PATTERN_PERIOD);
}

typedef struct pb_httpd pb_httpd;

/* Starts a server on bind_addr (an IPv4 literal; NULL means "127.0.0.1") and
 * port (0..65535; 0 picks a free ephemeral port). It serves from threads of
 * its own (epoll loops running libmicrohttpd and the delay timer; see
 * pb_httpd_start_loops) until pb_httpd_stop(). Returns 0 and *out, or a
 * negative errno: -EINVAL for a bad
 * address or port, -EADDRINUSE (or the bind error) if it cannot listen,
 * -ENOMEM. Does not block beyond creating the thread. */
int pb_httpd_start(const char *bind_addr, int port, pb_httpd **out);

/* Event loops at most. */
#define PB_HTTPD_MAX_LOOPS 8

/* The same with `loops` event loops (1..PB_HTTPD_MAX_LOOPS; 0 = one per four
 * online CPUs, at least one), each a thread with its own libmicrohttpd
 * daemon, timer and deadlines, all accepting from one listening socket; a
 * connection stays with the loop that accepted it. -EINVAL for loops out of
 * range. */
int pb_httpd_start_loops(const char *bind_addr, int port, unsigned loops,
                         pb_httpd **out);

/* The port the server listens on (the real one when started with port 0).
 * Does not block. */
int pb_httpd_port(const pb_httpd *h);

/* The number of delayed requests currently waiting for their deadline.
 * Takes the server's timer lock briefly; for tests and diagnostics. */
unsigned pb_httpd_pending(pb_httpd *h);

/* Stops the server: delayed requests still waiting are released (a request
 * that would be delayed from now on gets 503), then the listening socket and
 * every connection are closed, in-flight requests included (their clients see
 * the connection close), the loops' threads are joined and everything is freed.
 * Blocks until that is done (milliseconds). NULL is a no-op. */
void pb_httpd_stop(pb_httpd *h);

#endif /* PB_HTTPD_H */
