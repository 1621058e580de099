/*
 * test_httpd.c: the loopback HTTP server, in process (pb_httpd_*), as a child
 * process (pb_server_*) and as `poolbench serve` (pb_cmd_serve).
 *
 * Single requests use a plain-socket HTTP/1.0 client (one connection per
 * request, read to EOF) so that nothing but the server is under test; the
 * keep-alive and concurrency tests use libcurl. Timing assertions only ever
 * bound from below, or from above with a margin meant for a loaded 2-core box
 * under valgrind.
 */
#include "util.h"

#include "httpd.h"
#include "commands.h"
#include "server_proc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------- a plain client */

struct reply {
    int status;            /* from the status line, or -1 */
    char head[4096];       /* status line and headers, NUL-terminated */
    unsigned char *body;   /* malloc'd, body_len bytes */
    size_t body_len;
    double seconds;        /* request sent to EOF */
};

static void reply_free(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 120};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* Reads to EOF and splits status line, headers and body. */
static void read_reply(int fd, struct reply *r)
{
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            unsigned char *grown = realloc(buf, cap);
            assert_non_null(grown);
            buf = grown;
        }
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    unsigned char *end = memmem(buf, len, "\r\n\r\n", 4);
    assert_non_null(end);
    size_t head_len = (size_t)(end - buf);
    assert_true(head_len < sizeof r->head);
    memcpy(r->head, buf, head_len);
    r->head[head_len] = '\0';
    r->body_len = len - head_len - 4;
    r->body = malloc(r->body_len + 1);
    assert_non_null(r->body);
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    free(buf);
    r->status = -1;
    assert_int_equal(sscanf(r->head, "HTTP/1.%*d %d", &r->status), 1);
}

/* One request on a fresh connection; body may be NULL. */
static void request(int port, const char *method, const char *path,
                    const char *body, struct reply *r)
{
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                     method, path);
    if (body != NULL)
        n += snprintf(req + n, sizeof req - (size_t)n,
                      "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    else
        n += snprintf(req + n, sizeof req - (size_t)n, "\r\n");
    assert_true(n > 0 && (size_t)n < sizeof req);

    double t0 = now_s();
    int fd = connect_to(port);
    send_all(fd, req, (size_t)n);
    read_reply(fd, r);
    r->seconds = now_s() - t0;
    assert_int_equal(close(fd), 0);
}

static void get(int port, const char *path, struct reply *r)
{
    request(port, "GET", path, NULL, r);
}

static int get_status(int port, const char *path)
{
    struct reply r;
    get(port, path, &r);
    reply_free(&r);
    return r.status;
}

static void assert_pattern(const unsigned char *body, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (body[i] != pb_httpd_pattern_byte(i)) {
            fail_msg("body byte %zu is %u, expected %u", i, body[i],
                     pb_httpd_pattern_byte(i));
        }
    }
}

/* ----------------------------------------------------------- fixtures */

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

static int server_setup(void **state)
{
    pb_httpd *h = NULL;
    if (pb_httpd_start(NULL, 0, &h) != 0)
        return -1;
    *state = h;
    return 0;
}

/* The same server with four event loops sharing the listening socket. */
static int server4_setup(void **state)
{
    pb_httpd *h = NULL;
    if (pb_httpd_start_loops(NULL, 0, 4, &h) != 0)
        return -1;
    *state = h;
    return 0;
}

static int server_teardown(void **state)
{
    pb_httpd_stop(*state);
    return 0;
}

static int port_of(void **state)
{
    return pb_httpd_port(*state);
}

/* ------------------------------------------------------ in-process tests */

static void test_health(void **state)
{
    struct reply r;
    assert_true(port_of(state) > 0);
    get(port_of(state), "/health", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 2);
    assert_string_equal((char *)r.body, "ok");
    reply_free(&r);
}

static void test_bytes(void **state)
{
    static const size_t sizes[] = {0, 1, 251, 1000, 1 << 20, (1 << 20) + 1, 3000000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char path[64];
        struct reply r;
        snprintf(path, sizeof path, "/bytes/%zu", sizes[k]);
        get(port_of(state), path, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, sizes[k]);
        assert_pattern(r.body, r.body_len);
        if (sizes[k] > 0)
            assert_non_null(strstr(r.head, "Content-Type: application/octet-stream"));
        reply_free(&r);
    }
}

static void test_bytes_limits(void **state)
{
    int port = port_of(state);
    struct reply r;
    /* The cap itself is accepted: HEAD shows its length without sending it. */
    request(port, "HEAD", "/bytes/1073741824", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Length: 1073741824"));
    assert_int_equal(r.body_len, 0);
    reply_free(&r);

    get(port, "/bytes/1073741825", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr((char *)r.body, "bad request"));
    reply_free(&r);
    assert_int_equal(get_status(port, "/bytes/-1"), 400);
    assert_int_equal(get_status(port, "/bytes/abc"), 400);
    assert_int_equal(get_status(port, "/bytes/"), 400);
    assert_int_equal(get_status(port, "/bytes/1.5"), 400);
    assert_int_equal(get_status(port, "/bytes/99999999999999999999999"), 400);
}

static void test_status(void **state)
{
    int port = port_of(state);
    struct reply r;
    get(port, "/status/500", &r);
    assert_int_equal(r.status, 500);
    assert_int_equal(r.body_len, 0);
    reply_free(&r);
    assert_int_equal(get_status(port, "/status/200"), 200);
    assert_int_equal(get_status(port, "/status/418"), 418);
    assert_int_equal(get_status(port, "/status/599"), 599);
    assert_int_equal(get_status(port, "/status/abc"), 400);
    assert_int_equal(get_status(port, "/status/"), 400);
    assert_int_equal(get_status(port, "/status/199"), 400);
    assert_int_equal(get_status(port, "/status/600"), 400);
    assert_int_equal(get_status(port, "/status/-200"), 400);
}

static void test_delay(void **state)
{
    int port = port_of(state);
    struct reply r;
    get(port, "/delay/0.05", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_true(r.seconds >= 0.05);
    reply_free(&r);

    get(port, "/delay/.03", &r);
    assert_int_equal(r.status, 200);
    assert_true(r.seconds >= 0.03);
    reply_free(&r);

    assert_int_equal(get_status(port, "/delay/0"), 200);
    assert_int_equal(get_status(port, "/delay/0."), 200);
    static const char *const bad[] = {
        "/delay/-1", "/delay/abc", "/delay/1e2", "/delay/nan", "/delay/inf",
        "/delay/600.001", "/delay/601", "/delay/", "/delay/.", "/delay/1.2.3",
        "/delay/0x10", "/delay/99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (get_status(port, bad[i]) != 400)
            fail_msg("%s did not get 400", bad[i]);
    }
}

static void test_query(void **state)
{
    int port = port_of(state);
    struct reply r;
    get(port, "/?delay_ms=20&bytes=10", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 10);
    assert_pattern(r.body, r.body_len);
    assert_true(r.seconds >= 0.02);
    reply_free(&r);

    get(port, "/?status=418&bytes=5&unknown=1", &r);
    assert_int_equal(r.status, 418);
    assert_int_equal(r.body_len, 5);
    assert_pattern(r.body, r.body_len);
    reply_free(&r);

    get(port, "/?delay_ms=10.5&status=201", &r);
    assert_int_equal(r.status, 201);
    assert_true(r.seconds >= 0.0105);
    reply_free(&r);

    get(port, "/", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    reply_free(&r);

    assert_int_equal(get_status(port, "/?bytes=x"), 400);
    assert_int_equal(get_status(port, "/?bytes="), 400);
    assert_int_equal(get_status(port, "/?bytes"), 400);
    assert_int_equal(get_status(port, "/?bytes=1073741825"), 400);
    assert_int_equal(get_status(port, "/?delay_ms=600001"), 400);
    assert_int_equal(get_status(port, "/?delay_ms=-5"), 400);
    assert_int_equal(get_status(port, "/?status=99"), 400);
    assert_int_equal(get_status(port, "/?status=abc"), 400);
}

static void test_not_found(void **state)
{
    int port = port_of(state);
    struct reply r;
    get(port, "/nope", &r);
    assert_int_equal(r.status, 404);
    reply_free(&r);
    assert_int_equal(get_status(port, "/delay"), 404);
    assert_int_equal(get_status(port, "/bytes"), 404);
    assert_int_equal(get_status(port, "/health/"), 404);
    assert_int_equal(get_status(port, "/status"), 404);
}

static void test_body_is_discarded(void **state)
{
    struct reply r;
    request(port_of(state), "POST", "/bytes/5", "hello, server", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 5);
    assert_pattern(r.body, r.body_len);
    reply_free(&r);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    size_t *total = arg;
    *total += size * n;
    return size * n;
}

/* One curl handle, one connection, several requests (delayed ones included). */
static void test_keep_alive(void **state)
{
    char url[128];
    static const char *const paths[] = {"/delay/0.01", "/bytes/100", "/status/404",
                                        "/?delay_ms=5&bytes=7"};
    static const long codes[] = {200, 200, 404, 200};
    static const size_t lens[] = {0, 100, 0, 7};
    CURL *c = curl_easy_init();
    assert_non_null(c);
    for (size_t i = 0; i < 4; i++) {
        size_t total = 0;
        long code = 0, connects = -1;
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port_of(state), paths[i]);
        assert_int_equal(curl_easy_setopt(c, CURLOPT_URL, url), CURLE_OK);
        assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard), CURLE_OK);
        assert_int_equal(curl_easy_setopt(c, CURLOPT_WRITEDATA, &total), CURLE_OK);
        assert_int_equal(curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L), CURLE_OK);
        assert_int_equal(curl_easy_perform(c), CURLE_OK);
        assert_int_equal(curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
        assert_int_equal(curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects), CURLE_OK);
        assert_int_equal(code, codes[i]);
        assert_int_equal(total, lens[i]);
        assert_int_equal(connects, i == 0 ? 1 : 0); /* reused after the first */
    }
    curl_easy_cleanup(c);
}

/* 300 concurrent /delay/0.2: sleeping a thread per request would need 300
 * threads or 60 s; suspended connections need neither. */
static void test_concurrent_delays(void **state)
{
    enum { N = 300 };
    char url[128];
    CURL *easy[N];
    size_t totals[N];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/delay/0.2", port_of(state));

    int threads_before = pc_threads();
    assert_true(threads_before > 0);
    CURLM *m = curl_multi_init();
    assert_non_null(m);
    for (int i = 0; i < N; i++) {
        easy[i] = curl_easy_init();
        assert_non_null(easy[i]);
        totals[i] = 0;
        assert_int_equal(curl_easy_setopt(easy[i], CURLOPT_URL, url), CURLE_OK);
        assert_int_equal(curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard), CURLE_OK);
        assert_int_equal(curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &totals[i]), CURLE_OK);
        assert_int_equal(curl_easy_setopt(easy[i], CURLOPT_TIMEOUT, 120L), CURLE_OK);
        assert_int_equal(curl_multi_add_handle(m, easy[i]), CURLM_OK);
    }

    double t0 = now_s();
    int running = N, max_threads = threads_before;
    unsigned max_pending = 0;
    while (running > 0 && now_s() - t0 < 120) {
        assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
        if (running > 0)
            assert_int_equal(curl_multi_poll(m, NULL, 0, 100, NULL), CURLM_OK);
        int t = pc_threads();
        if (t > max_threads)
            max_threads = t;
        unsigned p = pb_httpd_pending(*state);
        if (p > max_pending)
            max_pending = p;
    }
    double elapsed = now_s() - t0;
    assert_int_equal(running, 0);

    int ok = 0, msgs;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(m, &msgs)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        long code = 0;
        assert_int_equal(msg->data.result, CURLE_OK);
        assert_int_equal(curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code),
                         CURLE_OK);
        assert_int_equal(code, 200);
        ok++;
    }
    assert_int_equal(ok, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(curl_multi_remove_handle(m, easy[i]), CURLM_OK);
        curl_easy_cleanup(easy[i]);
    }
    assert_int_equal(curl_multi_cleanup(m), CURLM_OK);

    print_message("300 x /delay/0.2: %.2f s, max %u suspended at once, threads %d -> %d\n",
                  elapsed, max_pending, threads_before, max_threads);
    assert_true(elapsed >= 0.2);
    assert_true(elapsed < 10.0 * test_slow());
    assert_true(max_threads <= threads_before + 1); /* no thread per request */
    assert_true(max_pending >= 1);
}

/* A request delayed 600 s must not hold up pb_httpd_stop. */
static void test_stop_releases_pending(void **state)
{
    (void)state;
    /* One loop, and several: each loop releases its own. */
    for (unsigned loops = 1; loops <= 3; loops += 2) {
        pb_httpd *h;
        assert_int_equal(pb_httpd_start_loops("127.0.0.1", 0, loops, &h), 0);
        enum { N = 4 };
        int fd[N];
        static const char req[] = "GET /delay/600 HTTP/1.0\r\nHost: x\r\n\r\n";
        for (int i = 0; i < N; i++) {
            fd[i] = connect_to(pb_httpd_port(h));
            send_all(fd[i], req, sizeof req - 1);
        }
        double t0 = now_s();
        while (pb_httpd_pending(h) < N) {
            assert_true(now_s() - t0 < 30);
            sleep_ms(5);
        }
        assert_int_equal(pb_httpd_pending(h), N);
        t0 = now_s();
        pb_httpd_stop(h);
        assert_true(now_s() - t0 < 5.0 * test_slow());
        /* The clients see an answer or the connection closed, at once. */
        for (int i = 0; i < N; i++) {
            struct pollfd p = {.fd = fd[i], .events = POLLIN};
            assert_int_equal(poll(&p, 1, 10000), 1);
            assert_int_equal(close(fd[i]), 0);
        }
    }
}

static void test_start_errors(void **state)
{
    (void)state;
    pb_httpd *h = (pb_httpd *)&h, *h2 = NULL;
    assert_int_equal(pb_httpd_start("not-an-address", 0, &h), -EINVAL);
    assert_null(h);
    assert_int_equal(pb_httpd_start("::1", 0, &h), -EINVAL);
    assert_int_equal(pb_httpd_start(NULL, -1, &h), -EINVAL);
    assert_int_equal(pb_httpd_start(NULL, 65536, &h), -EINVAL);
    assert_int_equal(pb_httpd_start(NULL, 0, NULL), -EINVAL);
    assert_int_equal(pb_httpd_start_loops(NULL, 0, PB_HTTPD_MAX_LOOPS + 1, &h), -EINVAL);
    assert_null(h);

    /* A port already taken: the bind fails. */
    assert_int_equal(pb_httpd_start("127.0.0.1", 0, &h), 0);
    int rc = pb_httpd_start("127.0.0.1", pb_httpd_port(h), &h2);
    assert_true(rc < 0);
    assert_null(h2);
    pb_httpd_stop(h);
    pb_httpd_stop(NULL); /* a no-op */
}

/* -------------------------------------------------- the server process */

/* Takes a port with a bare listening socket. The forking tests use this
 * rather than a pb_httpd, whose threads would make the fork multi-threaded
 * (which TSan refuses in the child, and which the harness avoids too). */
static int occupy_port(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void test_server_process(void **state)
{
    (void)state;
    int fds_before = pc_open_fds();
    assert_int_equal(pc_children(), 0);

    pb_server s;
    assert_int_equal(pb_server_start(NULL, 0, &s), 0);
    assert_true(s.pid > 0);
    assert_true(s.port > 0);
    char want[64];
    snprintf(want, sizeof want, "http://127.0.0.1:%d", s.port);
    assert_string_equal(pb_server_url(&s), want);
    assert_int_equal(pc_children(), 1);

    struct reply r;
    get(s.port, "/bytes/1000", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 1000);
    assert_pattern(r.body, r.body_len);
    reply_free(&r);
    get(s.port, "/?delay_ms=20&bytes=3", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 3);
    reply_free(&r);

    assert_int_equal(pb_server_stop(&s), 0);
    assert_int_equal(s.pid, -1);
    assert_int_equal(pb_server_stop(&s), 0); /* stopping twice is harmless */
    assert_int_equal(pc_children(), 0);
    assert_int_equal(pc_open_fds(), fds_before);
}

static void test_server_process_any_address(void **state)
{
    (void)state;
    pb_server s;
    assert_int_equal(pb_server_start("0.0.0.0", 0, &s), 0);
    assert_true(strncmp(pb_server_url(&s), "http://127.0.0.1:", 17) == 0);
    assert_int_equal(get_status(s.port, "/health"), 200);
    assert_int_equal(pb_server_stop(&s), 0);
    assert_int_equal(pc_children(), 0);
}

static void test_server_process_errors(void **state)
{
    (void)state;
    int fds_before = pc_open_fds();
    pb_server s;
    assert_int_equal(pb_server_start("bogus", 0, &s), -EINVAL);
    assert_int_equal(s.pid, -1);
    assert_int_equal(pb_server_start(NULL, 70000, &s), -EINVAL);
    assert_int_equal(pb_server_start(NULL, 0, NULL), -EINVAL);

    /* The child cannot bind: its error comes back through the pipe. */
    int port;
    int fd = occupy_port(&port);
    int rc = pb_server_start("127.0.0.1", port, &s);
    assert_int_equal(rc, -EADDRINUSE);
    assert_int_equal(s.pid, -1);
    assert_int_equal(close(fd), 0);
    assert_int_equal(pc_children(), 0);
    assert_int_equal(pc_open_fds(), fds_before);
}

/* A server that died on its own is still reaped, and reported. */
static void test_server_process_killed(void **state)
{
    (void)state;
    pb_server s;
    assert_int_equal(pb_server_start(NULL, 0, &s), 0);
    assert_int_equal(kill(s.pid, SIGKILL), 0);
    assert_int_equal(pb_server_stop(&s), -EIO);
    assert_int_equal(s.pid, -1);
    assert_int_equal(pc_children(), 0);
}

/* A server that ignores SIGTERM (here: stopped) is killed after the grace
 * period (5 s), and still reaped. */
static void test_server_process_hung(void **state)
{
    (void)state;
    int fds_before = pc_open_fds();
    pb_server s;
    assert_int_equal(pb_server_start(NULL, 0, &s), 0);
    assert_int_equal(kill(s.pid, SIGSTOP), 0);
    double t0 = now_s();
    assert_int_equal(pb_server_stop(&s), -ETIMEDOUT);
    assert_true(now_s() - t0 >= 4.9);
    assert_int_equal(s.pid, -1);
    assert_int_equal(pc_children(), 0);
    assert_int_equal(pc_open_fds(), fds_before);
}

/* ---------------------------------------------------- poolbench serve */

/* Runs pb_cmd_serve(argc, argv) in a child with stdout and stderr captured
 * (for commands that end by themselves) and returns its exit status. */
static int serve_child(char **argv, int argc, char *out, size_t out_len,
                       char *err, size_t err_len)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(99);
        close(po[0]);
        close(pe[0]);
        _exit(pb_cmd_serve(argc, argv));
    }
    close(po[1]);
    close(pe[1]);
    size_t no = 0, ne = 0;
    ssize_t n;
    while ((n = read(po[0], out + no, out_len - 1 - no)) > 0)
        no += (size_t)n;
    while ((n = read(pe[0], err + ne, err_len - 1 - ne)) > 0)
        ne += (size_t)n;
    out[no] = '\0';
    err[ne] = '\0';
    close(po[0]);
    close(pe[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static int newlines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_serve_usage(void **state)
{
    (void)state;
    char out[4096], err[4096];
    struct {
        char *argv[4];
        int argc;
        int want;
        const char *named;
    } cases[] = {
        {{"serve", "--bogus"}, 2, 2, "--bogus"},
        {{"serve", "--port", "abc"}, 3, 2, "--port"},
        {{"serve", "--port"}, 2, 2, "--port"},
        {{"serve", "--port=70000"}, 2, 2, "[0, 65535]"},
        {{"serve", "--port", "-1"}, 3, 2, "--port"},
        {{"serve", "--bind", "localhost"}, 3, 2, "--bind"},
        {{"serve", "--bind=::1"}, 2, 2, "IPv4"},
        {{"serve", "extra"}, 2, 2, "extra"},
        {{"serve", "--loops", "0"}, 3, 2, "--loops"},
        {{"serve", "--loops=9"}, 2, 2, "[1, 8]"},
        {{"serve", "--loops", "x"}, 3, 2, "--loops"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = serve_child(cases[i].argv, cases[i].argc, out, sizeof out, err, sizeof err);
        assert_int_equal(rc, cases[i].want);
        assert_int_equal(newlines(err), 1);
        assert_non_null(strstr(err, cases[i].named));
        assert_string_equal(out, "");
    }
    char *help[] = {"serve", "--help", NULL};
    assert_int_equal(serve_child(help, 2, out, sizeof out, err, sizeof err), 0);
    assert_non_null(strstr(out, "usage: poolbench serve"));
    assert_string_equal(err, "");
}

/* Starts `serve` in a child, reads its URL line, GETs /health, sends sig. */
static void serve_and_signal(int sig)
{
    int po[2];
    assert_int_equal(pipe(po), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = {"serve", "--port", "0", "--bind", "127.0.0.1", NULL};
        if (dup2(po[1], 1) < 0)
            _exit(99);
        close(po[0]);
        close(po[1]);
        _exit(pb_cmd_serve(5, argv));
    }
    close(po[1]);
    char line[256];
    size_t len = 0;
    while (len < sizeof line - 1 && (len == 0 || line[len - 1] != '\n')) {
        ssize_t n = read(po[0], line + len, sizeof line - 1 - len);
        assert_true(n > 0);
        len += (size_t)n;
    }
    line[len] = '\0';
    int port = 0;
    assert_int_equal(sscanf(line, "poolbench serve: listening on http://127.0.0.1:%d\n", &port),
                     1);
    assert_true(port > 0);
    assert_int_equal(get_status(port, "/health"), 200);
    assert_int_equal(get_status(port, "/bytes/10"), 200);
    assert_int_equal(kill(pid, sig), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(po[0]);
}

static void test_serve_runs_until_signal(void **state)
{
    (void)state;
    serve_and_signal(SIGTERM);
    serve_and_signal(SIGINT);
    assert_int_equal(pc_children(), 0);
}

static void test_serve_port_in_use(void **state)
{
    (void)state;
    char out[4096], err[4096], port[16];
    int taken;
    int fd = occupy_port(&taken);
    snprintf(port, sizeof port, "%d", taken);
    char *argv[] = {"serve", "--port", port, NULL};
    assert_int_equal(serve_child(argv, 3, out, sizeof out, err, sizeof err), 1);
    assert_non_null(strstr(err, "cannot listen"));
    assert_string_equal(out, "");
    assert_int_equal(close(fd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define WITH_SERVER(t) cmocka_unit_test_setup_teardown(t, server_setup, server_teardown)
        WITH_SERVER(test_health),
        WITH_SERVER(test_bytes),
        WITH_SERVER(test_bytes_limits),
        WITH_SERVER(test_status),
        WITH_SERVER(test_delay),
        WITH_SERVER(test_query),
        WITH_SERVER(test_not_found),
        WITH_SERVER(test_body_is_discarded),
        WITH_SERVER(test_keep_alive),
        WITH_SERVER(test_concurrent_delays),
#define WITH_SERVER4(t) cmocka_unit_test_setup_teardown(t, server4_setup, server_teardown)
        WITH_SERVER4(test_delay),
        WITH_SERVER4(test_query),
        WITH_SERVER4(test_keep_alive),
        WITH_SERVER4(test_concurrent_delays),
        cmocka_unit_test(test_stop_releases_pending),
        cmocka_unit_test(test_start_errors),
        /* Forking tests: the in-process servers above are all stopped. */
        cmocka_unit_test(test_server_process),
        cmocka_unit_test(test_server_process_any_address),
        cmocka_unit_test(test_server_process_errors),
        cmocka_unit_test(test_server_process_killed),
        cmocka_unit_test(test_server_process_hung),
        cmocka_unit_test(test_serve_usage),
        cmocka_unit_test(test_serve_runs_until_signal),
        cmocka_unit_test(test_serve_port_in_use),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
